"""``/v1/embeddings`` without services: the request schema, the vectors' base64, the catalog's
embedding models and batch lines that name the wrong kind of model."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pytest

from inference_platform.batches.checks import line_checks
from inference_platform.batches.lines import LineValidator
from inference_platform.catalog import EMBED, GENERATE, ModelSpec, load_catalog
from inference_platform.endpoints.embeddings.protocol import (
    MAX_INPUTS,
    EmbeddingCreateRequestSchema,
    decode_vector,
    embedding_response,
    encode_vector,
    inputs,
)
from inference_platform.endpoints.protocol import load
from inference_platform.engines.base import Embedded, EmbeddingRequest, UnsupportedByEngine
from inference_platform.engines.simulated import SimulatedEngine
from inference_platform.engines.vllm_engine import vllm_engine_args
from inference_platform.errors import PlatformError
from inference_platform.events import Usage
from inference_platform.generation import EMBEDDINGS
from inference_platform.jobs.embedding import EmbeddingLine, attempt_of
from inference_platform.jobs.store import Claimed
from inference_platform.settings import Settings

SCHEMA = EmbeddingCreateRequestSchema()


def refused(**body: Any) -> PlatformError:
    with pytest.raises(PlatformError) as err:
        load(SCHEMA, {"model": "e", **body})
    assert err.value.status == 400
    return err.value


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("hello", ["hello"]),
        (["a", "b c"], ["a", "b c"]),
        ([1, 2, 3], [[1, 2, 3]]),
        ([[1, 2], [3]], [[1, 2], [3]]),
    ],
)
def test_every_input_shape_gives_one_input_per_vector(given: Any, expected: Any) -> None:
    body = load(SCHEMA, {"model": "e", "input": given, "encoding_format": "base64"})
    assert inputs(body) == expected
    assert body["encoding_format"] == "base64"


@pytest.mark.parametrize(
    ("given", "param"),
    [
        ("", "input"),
        ([], "input"),
        (["ok", ""], "input[1]"),
        ([[1, 2], []], "input[1]"),
        ([True, 2], "input[0]"),
        ([[1, -2]], "input[0]"),
        ([["a"]], "input[0]"),
        ({"text": "a"}, "input"),
        (["x"] * (MAX_INPUTS + 1), "input"),
    ],
)
def test_bad_inputs_name_the_param(given: Any, param: str) -> None:
    assert refused(input=given).param == param


def test_other_fields_are_checked_and_unknown_ones_refused() -> None:
    assert refused(input="a", encoding_format="hex").param == "encoding_format"
    assert refused(input="a", dimensions=0).param == "dimensions"
    assert refused(input="a", dimensions=1.5).param == "dimensions"
    assert refused(input="a", temperature=1).param == "temperature"
    with pytest.raises(PlatformError) as err:
        load(SCHEMA, {"input": "a"})
    assert err.value.param == "model"
    assert load(SCHEMA, {"model": "e", "input": "a", "user": "u", "dimensions": 8})["user"] == "u"


def test_base64_is_little_endian_float32_as_the_sdk_decodes_it() -> None:
    values = np.array([0.5, -1.25, 3.0e-8, 1.0 / 3.0], dtype="<f4")
    encoded = encode_vector(values.tobytes())
    # What openai.resources.embeddings does with a base64 answer.
    sdk = np.frombuffer(base64.b64decode(encoded), dtype="float32").tolist()
    assert sdk == values.tolist()
    assert decode_vector(encoded) == values.tolist()
    assert base64.b64decode(encoded)[:4] == bytes.fromhex("0000003f")  # 0.5, little-endian


def test_response_shape_and_formats_agree() -> None:
    vectors = [encode_vector(np.array(v, dtype="<f4").tobytes()) for v in ([1, 0], [0.6, 0.8])]
    floats = embedding_response(model="e", vectors=vectors, prompt_tokens=7, encoding_format=None)
    b64 = embedding_response(model="e", vectors=vectors, prompt_tokens=7, encoding_format="base64")
    assert floats["object"] == "list" and floats["model"] == "e"
    assert floats["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    assert [d["index"] for d in floats["data"]] == [0, 1]
    assert {d["object"] for d in floats["data"]} == {"embedding"}
    assert floats["data"][1]["embedding"] == [pytest.approx(0.6), pytest.approx(0.8)]
    for f, b in zip(floats["data"], b64["data"], strict=True):
        assert isinstance(b["embedding"], str)
        assert decode_vector(b["embedding"]) == f["embedding"]
    # Exactly the fields of openai.types.CreateEmbeddingResponse.
    from openai.types import CreateEmbeddingResponse

    parsed = CreateEmbeddingResponse.model_validate(floats)
    assert parsed.data[0].embedding == [1.0, 0.0]
    assert set(floats) == set(CreateEmbeddingResponse.model_fields)


def catalog(entry: dict[str, Any]) -> ModelSpec:
    spec = load_catalog(Settings(models=json.dumps([{"name": "e", **entry}]))).get("e")
    assert spec is not None
    return spec


def test_catalog_declares_embedding_models() -> None:
    spec = catalog({"engine": "vllm", "task": "embed", "path": "/m"})
    assert spec.task == EMBED
    assert spec.tiers == ("realtime", "batch")  # no flex: embeddings are realtime or batch
    assert catalog({"engine": "vllm"}).task == GENERATE
    with pytest.raises(ValueError, match="task"):
        catalog({"engine": "vllm", "task": "rerank"})
    with pytest.raises(ValueError, match="vllm"):
        catalog({"engine": "transformers", "task": "embed"})
    with pytest.raises(ValueError, match="offer"):
        catalog({"engine": "vllm", "task": "embed", "tiers": ["flex"]})


def test_endpoints_refuse_the_other_kind_of_model() -> None:
    embed = catalog({"engine": "vllm", "task": "embed"})
    chat = catalog({"engine": "vllm"})
    embed.check_task(embeddings=True)
    chat.check_task(embeddings=False)
    with pytest.raises(PlatformError, match="is an embedding model") as err:
        embed.check_task(embeddings=False)
    assert (err.value.status, err.value.param) == (400, "model")
    with pytest.raises(PlatformError, match="not an embedding model") as err:
        chat.check_task(embeddings=True)
    assert (err.value.status, err.value.param) == (400, "model")


def test_batch_lines_of_embeddings() -> None:
    def serves(model: str) -> bool:
        # As batches.validate does: a model of the wrong kind is a 400, not "not offered".
        ModelSpec(model, "vllm", task=EMBED if model == "e" else GENERATE).check_task(
            embeddings=True
        )
        return True

    v = LineValidator(EMBEDDINGS, line_checks()[EMBEDDINGS], serves, 10)

    def raw(custom_id: str, body: dict[str, Any]) -> bytes:
        item = {"custom_id": custom_id, "method": "POST", "url": EMBEDDINGS, "body": body}
        return json.dumps(item).encode()

    good = v.check(1, raw("a", {"model": "e", "input": ["x", "y"]}))
    assert good is not None and json.loads(good.body)["input"] == ["x", "y"]
    assert v.check(2, raw("b", {"model": "e", "input": ""})) is None
    assert v.check(3, raw("c", {"model": "chat", "input": "x"})) is None
    assert [(e.line, e.code, e.param) for e in v.errors] == [
        (2, "invalid_body", "body.input"),
        (3, "invalid_model", "body.model"),
    ]
    assert "not an embedding model" in v.errors[1].message


def test_engines_that_cannot_embed_say_so() -> None:
    engine = SimulatedEngine("sim", None, {})
    request = EmbeddingRequest("r:0", text="hello")
    with pytest.raises(UnsupportedByEngine, match="cannot compute embeddings"):
        asyncio.run(engine.embed(request))


def test_an_embedding_model_runs_on_vllms_pooling_runner() -> None:
    args = vllm_engine_args("/m", {"task": "embed", "batch_size": 4})
    assert args["runner"] == "pooling" and "task" not in args
    assert "runner" not in vllm_engine_args("/m", {"batch_size": 4})


def test_a_batch_line_embeds_each_input_and_records_the_response() -> None:
    body = {"model": "e", "input": [[1, 2, 3], "hi"], "dimensions": 4, "encoding_format": "base64"}
    work = Claimed(
        id="batch_req_1",
        tier="batch",
        model="e",
        endpoint=EMBEDDINGS,
        owner="o",
        body=body,
        attempt=1,
        created_at=datetime.now(UTC),
        batch_id="batch_1",
    )
    attempt = attempt_of(work)
    assert isinstance(attempt, EmbeddingLine)
    attempt.start(cast(Any, None))  # a line plans from its body alone
    assert attempt.requests == [
        EmbeddingRequest("batch_req_1:0", None, (1, 2, 3), 4, priority=2),
        EmbeddingRequest("batch_req_1:1", "hi", None, 4, priority=2),
    ]
    # The engine answers in any order; the response keeps the inputs' order.
    second = np.array([0.0, 1.0], dtype="<f4").tobytes()
    first = np.array([1.0, 0.0], dtype="<f4").tobytes()
    attempt.on_embedding(1, Embedded(second, 2))
    attempt.on_embedding(0, Embedded(first, 3))
    done = attempt.finish(cast(Any, None))
    assert done is not None
    assert (done.status, done.status_code, done.bill) == ("completed", 200, Usage(5, 0))
    assert done.result is not None
    assert [decode_vector(d["embedding"]) for d in done.result["data"]] == [[1.0, 0.0], [0.0, 1.0]]
    assert done.result["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
