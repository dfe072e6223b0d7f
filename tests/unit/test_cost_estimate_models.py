"""The cost estimate prices only what batch validation would run: a file priced for a model of
the wrong kind for its endpoint is refused as the batch would be, not given a price."""

from __future__ import annotations

import json

import pytest

from inference_platform.batches.estimate import estimate
from inference_platform.catalog import EMBED, Catalog, ModelSpec
from inference_platform.errors import PlatformError
from inference_platform.settings import Settings

CATALOG = Catalog([ModelSpec("sim", "simulated"), ModelSpec("emb", "vllm", task=EMBED)])


def _line(url: str, body: dict[str, object]) -> bytes:
    return json.dumps({"custom_id": "a", "method": "POST", "url": url, "body": body}).encode()


CHAT = _line(
    "/v1/chat/completions", {"model": "sim", "messages": [{"role": "user", "content": "hi"}]}
)


def test_a_chat_file_priced_for_an_embedding_model_is_a_400_naming_the_model() -> None:
    with pytest.raises(PlatformError) as refused:
        estimate([CHAT], CATALOG, Settings(), model="emb", window="24h")
    assert refused.value.status == 400
    assert "embedding model" in refused.value.message
    assert refused.value.param == "body.model"


def test_an_embeddings_file_for_a_chat_model_is_a_400() -> None:
    line = _line("/v1/embeddings", {"model": "sim", "input": "hi"})
    with pytest.raises(PlatformError) as refused:
        estimate([line], CATALOG, Settings(), model=None, window="24h")
    assert refused.value.status == 400
    assert "not an embedding model" in refused.value.message


def test_a_chat_file_for_its_own_chat_model_is_priced() -> None:
    found = estimate([CHAT], CATALOG, Settings(), model=None, window="24h")
    assert found["model"] == "sim" and found["lines"] == 1
