"""The platform on real vLLM (its CPU build), driven through the openai SDK.

One vLLM worker serves every tier of the module's chat model, another its embedding model; the
kill test restarts the first and runs last.
"""

from __future__ import annotations

import array
import base64
import concurrent.futures
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import openai
import psutil
import pydantic
import pytest
from sqlalchemy import func, select

from inference_platform.db.models import Request, UsageRecord
from inference_platform.engines.tokenizer import ModelTokenizer
from inference_platform.keys import create_key
from tests.e2e.vllm_stack import (
    EMBED_MODEL,
    MAX_MODEL_LEN,
    VLLM_MODEL,
    VllmStack,
    alive,
    requires_vllm,
)
from tests.helpers import (
    batch_finished,
    chat_line,
    eventually,
    finished,
    lines_of,
    submit,
    wait_for,
)

pytestmark = [pytest.mark.e2e, requires_vllm]

USER = [{"role": "user", "content": "Tell me about the sea."}]
# The demo model's hidden size: the length of its embeddings.
EMBED_DIMENSIONS = 128


def chat(client: openai.OpenAI, **kw: object) -> Any:
    args: dict[str, object] = {"model": VLLM_MODEL, "messages": USER, "max_tokens": 16, **kw}
    if args.pop("ignore_eos", False):
        args["extra_body"] = {"ignore_eos": True}  # vLLM's extension, not in the SDK
    return client.chat.completions.create(**args)  # type: ignore[call-overload]


def test_chat_uses_the_models_template_and_reports_usage(
    vllm_stack: VllmStack, demo_model_path: object
) -> None:
    done = chat(vllm_stack.client(), max_tokens=12, ignore_eos=True)
    tokenizer = ModelTokenizer.load(str(demo_model_path))
    expected_prompt = len(tokenizer.encode(tokenizer.render_chat(USER)))
    choice = done.choices[0]
    assert choice.message.content and choice.finish_reason == "length"
    assert done.usage is not None
    assert done.usage.prompt_tokens == expected_prompt
    assert done.usage.completion_tokens == 12


def test_streaming_with_usage(vllm_stack: VllmStack) -> None:
    stream = chat(
        vllm_stack.client(), stream=True, stream_options={"include_usage": True}, max_tokens=20
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert text and finish in ("stop", "length")
    assert usage is not None and 0 < usage.completion_tokens <= 20


def test_a_repeated_long_prompt_reports_cached_tokens(vllm_stack: VllmStack) -> None:
    """vLLM's prefix cache, as the SDK reads it: realtime, flex and a batch's lines and usage."""
    client = vllm_stack.client()
    document = " ".join(f"fact {i} is about the sea." for i in range(40))  # about 400 tokens
    messages: Any = [{"role": "system", "content": document}, {"role": "user", "content": "Hi"}]
    chat(client, messages=messages, max_tokens=4)
    again = chat(client, messages=messages, max_tokens=4)
    assert again.usage is not None and again.usage.prompt_tokens_details is not None
    cached = again.usage.prompt_tokens_details.cached_tokens
    assert cached is not None and 0 < cached < again.usage.prompt_tokens
    flex = chat(client, messages=messages, max_tokens=4, service_tier="flex")
    assert flex.usage.prompt_tokens_details.cached_tokens == cached
    lines = [
        chat_line(f"q{i}", model=VLLM_MODEL, max_tokens=4, messages=messages) for i in range(3)
    ]
    done = batch_finished(client, submit(client, lines).id, timeout=300)
    assert done.status == "completed"
    found = [
        line["response"]["body"]["usage"]["prompt_tokens_details"]["cached_tokens"]
        for line in lines_of(client, done.output_file_id)
    ]
    assert all(c > 0 for c in found)
    assert done.usage.input_tokens_details.cached_tokens == sum(found)


def test_n_choices(vllm_stack: VllmStack) -> None:
    done = chat(vllm_stack.client(), n=2, max_tokens=8, ignore_eos=True)
    assert sorted(c.index for c in done.choices) == [0, 1]
    assert all(c.message.content for c in done.choices)
    assert done.usage is not None and done.usage.completion_tokens == 16


def test_same_seed_same_text_and_stop(vllm_stack: VllmStack) -> None:
    client = vllm_stack.client()
    first = chat(client, seed=7, temperature=1.0, max_tokens=24, ignore_eos=True)
    again = chat(client, seed=7, temperature=1.0, max_tokens=24, ignore_eos=True)
    text = first.choices[0].message.content or ""
    assert text and again.choices[0].message.content == text
    # Stop at the third word of that same text.
    stop = " " + text.split()[2]
    cut = chat(client, seed=7, temperature=1.0, max_tokens=24, stop=[stop])
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_prompt_longer_than_the_context_gets_400(vllm_stack: VllmStack) -> None:
    long = [{"role": "user", "content": "hello " * (MAX_MODEL_LEN + 50)}]
    with pytest.raises(openai.BadRequestError) as err:
        chat(vllm_stack.client(), messages=long, max_tokens=8)
    assert err.value.status_code == 400
    assert "context length" in str(err.value)


def test_realtime_is_served_before_queued_batch_lines(vllm_stack: VllmStack) -> None:
    client = vllm_stack.client()
    n = 48
    lines = [
        chat_line(f"s{i}", model=VLLM_MODEL, max_tokens=256, ignore_eos=True) for i in range(n)
    ]
    batch = submit(client, lines)
    wait_for(client, batch.id, lambda b: b.status == "in_progress", timeout=60)
    started = time.monotonic()
    done = chat(client, max_tokens=8)
    latency = time.monotonic() - started
    state = client.batches.retrieve(batch.id)
    assert done.choices[0].message.content
    counts = state.request_counts
    assert counts is not None and counts.completed < n, "the batch finished first"
    assert latency < 15, f"realtime took {latency:.1f} s behind the batch"
    client.batches.cancel(batch.id)
    batch_finished(client, batch.id, timeout=120)


def test_the_engine_gives_way_to_the_platforms_processes(vllm_stack: VllmStack) -> None:
    """The worker and vLLM's engine processes run at INFERENCE_ENGINE_NICE, and so does the
    worker's session (each role leads its own, as under `make run`): the API, Postgres and
    Redis get a CPU first while the engine keeps both cores busy."""
    worker = psutil.Process(vllm_stack.worker_pid())
    engine = [p for p in worker.children(recursive=True) if p.name().startswith("VLLM::")]
    assert engine and {p.nice() for p in [worker, *engine]} == {10}
    autogroup = Path(f"/proc/{worker.pid}/autogroup")
    if autogroup.exists():
        assert autogroup.read_text().split()[-1] == "10"


def test_a_500_line_batch_answers_every_custom_id_once(vllm_stack: VllmStack) -> None:
    client = vllm_stack.client()
    n = 500
    started = time.monotonic()
    batch = submit(client, [chat_line(f"q{i}", model=VLLM_MODEL, max_tokens=4) for i in range(n)])
    done = batch_finished(client, batch.id, timeout=600)
    print(f"500-line batch on vLLM: {time.monotonic() - started:.1f} s")
    assert done.status == "completed"
    out = lines_of(client, done.output_file_id)
    assert Counter(x["custom_id"] for x in out) == Counter(f"q{i}" for i in range(n))
    assert all(x["response"]["status_code"] == 200 for x in out)


# -- structured outputs and forced tool calls (vLLM's structured outputs) -------------------


class City(pydantic.BaseModel):
    # Bounded, so a random-weight model always closes its strings within the budget; plain
    # letters, because xgrammar lets raw control characters into JSON strings and a random
    # model writes them.
    name: str = pydantic.Field(pattern="^[a-z ]{1,12}$")
    rank: int


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "pattern": "^[a-z ]{1,12}$"},
                "unit": {"enum": ["c", "f"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


class WeatherArgs(pydantic.BaseModel):
    """What the function's schema allows, for validating the arguments of its calls."""

    model_config = pydantic.ConfigDict(extra="forbid")
    city: str = pydantic.Field(pattern="^[a-z ]{1,12}$")
    unit: Literal["c", "f"]


def _weather_args(text: str) -> WeatherArgs:
    return WeatherArgs.model_validate_json(text)


def test_json_schema_parses_with_a_pydantic_model(vllm_stack: VllmStack) -> None:
    client = vllm_stack.client()
    done = client.chat.completions.parse(
        model=VLLM_MODEL, messages=USER, max_tokens=120, response_format=City, seed=1
    )
    parsed = done.choices[0].message.parsed
    assert isinstance(parsed, City) and len(parsed.name) <= 12
    loose = chat(client, max_tokens=120, seed=2, response_format={"type": "json_object"})
    text = loose.choices[0].message.content or ""
    # Any JSON object: a random-weight model may write one string until the token limit.
    assert text.startswith("{")
    if loose.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)


def test_forced_tool_call_streamed_and_not_then_a_second_turn(vllm_stack: VllmStack) -> None:
    client = vllm_stack.client()
    done = chat(client, max_tokens=120, tools=[WEATHER], tool_choice=NAMED, seed=3)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    _weather_args(call.function.arguments)

    stream = chat(client, max_tokens=120, tools=[WEATHER], tool_choice=NAMED, stream=True)
    ids, args, finish = set(), "", None
    for chunk in stream:
        for delta_call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            ids.add(delta_call.id) if delta_call.id else None
            args += delta_call.function.arguments or ""
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert len(ids) == 1 and finish == "tool_calls"
    _weather_args(args)

    history = [
        *USER,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 12}'},
    ]
    # One call (a random-weight model left free to add calls would add them to the limit).
    again = chat(
        client,
        messages=history,
        max_tokens=120,
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    calls = again.choices[0].message.tool_calls
    assert calls and len(calls) == 1, again.choices[0]
    assert calls[0].function.name == "get_weather" and calls[0].id != call.id
    _weather_args(calls[0].function.arguments)
    answer = chat(client, messages=history, max_tokens=8, tools=[WEATHER], tool_choice="none")
    assert answer.choices[0].message.content is not None


def test_auto_tool_choice_is_refused_clearly(vllm_stack: VllmStack) -> None:
    """This stack's model has no ``tool_parser`` (test_vllm_tools serves one that has)."""
    client = vllm_stack.client()
    for tool_choice in (None, "auto"):
        with pytest.raises(openai.BadRequestError) as err:
            chat(client, tools=[WEATHER], **({"tool_choice": tool_choice} if tool_choice else {}))
        assert err.value.param == "tool_choice" and "auto" in str(err.value)
        assert "no tool parser configured" in str(err.value)
    flat = {"type": "function", **WEATHER["function"]}
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=VLLM_MODEL, input="hi", tools=[flat])  # type: ignore[list-item]
    assert err.value.param == "tool_choice" and "no tool parser configured" in str(err.value)


def test_penalties_and_vllm_extras(vllm_stack: VllmStack) -> None:
    done = chat(
        vllm_stack.client(),
        max_tokens=8,
        presence_penalty=1.0,
        frequency_penalty=0.5,
        logit_bias={"5": -100},
        extra_body={"top_k": 5, "min_tokens": 8, "repetition_penalty": 1.2},
    )
    assert done.usage is not None and done.usage.completion_tokens == 8


# -- log probabilities -----------------------------------------------------------------------


def _check_entries(entries: list[Any], top: int) -> None:
    """Each token entry as OpenAI gives it: ``top`` alternatives, most likely first."""
    for entry in entries:
        assert entry.logprob <= 0
        assert entry.bytes == list(entry.token.encode("utf-8"))
        ranked = [alt.logprob for alt in entry.top_logprobs]
        assert len(ranked) == top and ranked == sorted(ranked, reverse=True)
        # The sampled token is no more likely than the most likely one.
        assert entry.logprob <= ranked[0] + 1e-4


def test_chat_logprobs_one_entry_per_token(vllm_stack: VllmStack) -> None:
    done = chat(vllm_stack.client(), max_tokens=12, logprobs=True, top_logprobs=3)
    (choice,) = done.choices
    assert done.usage is not None and choice.logprobs is not None
    entries = choice.logprobs.content or []
    assert len(entries) == done.usage.completion_tokens > 0
    _check_entries(entries, 3)


def test_chat_logprobs_streamed_add_up_to_the_tokens(vllm_stack: VllmStack) -> None:
    stream = chat(
        vllm_stack.client(),
        max_tokens=12,
        logprobs=True,
        top_logprobs=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    entries: list[Any] = []
    usage = None
    for chunk in stream:
        for c in chunk.choices:
            if c.logprobs is not None:
                entries.extend(c.logprobs.content or [])
        usage = chunk.usage or usage
    assert usage is not None and len(entries) == usage.completion_tokens > 0
    _check_entries(entries, 2)


def test_completions_logprobs(vllm_stack: VllmStack) -> None:
    done = vllm_stack.client().completions.create(
        model=VLLM_MODEL, prompt="The sea is", max_tokens=10, logprobs=2
    )
    (choice,) = done.choices
    lp = choice.logprobs
    assert done.usage is not None and lp is not None
    n = done.usage.completion_tokens
    assert n > 0 and len(lp.tokens or []) == len(lp.token_logprobs or []) == n
    assert len(lp.text_offset or []) == n and (lp.text_offset or [])[0] == 0
    rows = zip(lp.tokens or [], lp.token_logprobs or [], lp.top_logprobs or [], strict=True)
    for token, logprob, top in rows:
        # The two most likely tokens, and the sampled one when it is not among them.
        assert logprob <= 0 and top[token] == logprob and 2 <= len(top) <= 3


def test_logprobs_in_flex_and_in_a_batch_line(vllm_stack: VllmStack) -> None:
    client = vllm_stack.client()
    flex = chat(client, max_tokens=8, logprobs=True, top_logprobs=1, service_tier="flex")
    (choice,) = flex.choices
    assert flex.usage is not None and choice.logprobs is not None
    assert len(choice.logprobs.content or []) == flex.usage.completion_tokens
    lines = [chat_line("lp", model=VLLM_MODEL, max_tokens=6, logprobs=True, top_logprobs=2)]
    done = batch_finished(client, submit(client, lines).id, timeout=180)
    (line,) = lines_of(client, done.output_file_id)
    body = line["response"]["body"]
    entries = body["choices"][0]["logprobs"]["content"]
    assert len(entries) == body["usage"]["completion_tokens"] > 0
    assert all(len(e["top_logprobs"]) == 2 and e["logprob"] <= 0 for e in entries)


def test_tool_and_schema_lines_in_a_batch_and_a_flex_background_response(
    vllm_stack: VllmStack,
) -> None:
    client = vllm_stack.client()
    schema = {"name": "city", "schema": City.model_json_schema(), "strict": True}
    lines = [
        chat_line("tool", model=VLLM_MODEL, max_tokens=120, tools=[WEATHER], tool_choice=NAMED),
        chat_line(
            "json",
            model=VLLM_MODEL,
            max_tokens=120,
            response_format={"type": "json_schema", "json_schema": schema},
        ),
    ]
    done = batch_finished(client, submit(client, lines).id, timeout=180)
    out = {x["custom_id"]: x["response"]["body"] for x in lines_of(client, done.output_file_id)}
    (call,) = out["tool"]["choices"][0]["message"]["tool_calls"]
    _weather_args(call["function"]["arguments"])
    City.model_validate_json(out["json"]["choices"][0]["message"]["content"])

    bg = client.responses.create(
        model=VLLM_MODEL,
        input="Name a city.",
        max_output_tokens=120,
        background=True,
        service_tier="flex",
        text={"format": {"type": "json_schema", **schema}},
    )
    final = finished(client, bg.id, timeout=120)
    assert final.status == "completed"
    City.model_validate_json(final.output_text)
    assert final.text.format.type == "json_schema"
    parsed = client.responses.parse(
        model=VLLM_MODEL, input="Name a city.", max_output_tokens=120, text_format=City
    )
    assert isinstance(parsed.output_parsed, City)


# -- embeddings (the embedding model on vLLM's pooling runner) -----------------------------

TEXTS = ["the sea is blue", "a quiet morning in the garden", "the sea is blue"]


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_embeddings_one_unit_vector_per_input_in_both_formats(
    vllm_stack: VllmStack, demo_model_path: object
) -> None:
    client = vllm_stack.client()
    # No encoding_format: the SDK asks for base64 and decodes it itself.
    done = client.embeddings.create(model=EMBED_MODEL, input=TEXTS)
    assert done.object == "list" and done.model == EMBED_MODEL
    assert [d.index for d in done.data] == [0, 1, 2]
    assert {len(d.embedding) for d in done.data} == {EMBED_DIMENSIONS}
    assert all(abs(_norm(d.embedding) - 1.0) < 1e-5 for d in done.data)  # normalised
    first, other, again = (d.embedding for d in done.data)
    assert again == pytest.approx(first, abs=1e-6) and other != pytest.approx(first, abs=1e-3)
    tokenizer = ModelTokenizer.load(str(demo_model_path))
    tokens = sum(len(tokenizer.encode(t)) for t in TEXTS)
    assert (done.usage.prompt_tokens, done.usage.total_tokens) == (tokens, tokens)

    floats = client.embeddings.create(model=EMBED_MODEL, input=TEXTS, encoding_format="float")
    for f, b in zip(floats.data, done.data, strict=True):
        assert f.embedding == pytest.approx(b.embedding, abs=1e-6)
    raw = client.embeddings.create(model=EMBED_MODEL, input=TEXTS[0], encoding_format="base64")
    encoded = raw.data[0].embedding
    assert isinstance(encoded, str)  # left encoded when the caller asked for base64
    decoded = array.array("f", base64.b64decode(encoded)).tolist()
    assert decoded == pytest.approx(first, abs=1e-6)

    # Token ids embed exactly as the text they encode.
    ids = tokenizer.encode(TEXTS[0])
    by_ids = client.embeddings.create(model=EMBED_MODEL, input=ids, encoding_format="float")
    assert by_ids.data[0].embedding == pytest.approx(first, abs=1e-6)
    lists = client.embeddings.create(model=EMBED_MODEL, input=[ids, ids[:3]])
    assert len(lists.data) == 2 and lists.usage.prompt_tokens == len(ids) + 3


def test_embeddings_usage_is_recorded(vllm_stack: VllmStack) -> None:
    # A tenant of its own: its usage rows are this request's alone.
    key, _ = create_key(vllm_stack.db, tenant="tenant-embed-usage", name="embeddings usage")
    client = openai.OpenAI(base_url=vllm_stack.stack.base_url, api_key=key, max_retries=0)
    done = client.embeddings.create(model=EMBED_MODEL, input=["bill me", "and me too"])

    def rows() -> list[tuple[str, str, str, int, int]]:
        with vllm_stack.db.session() as s:
            found = s.execute(
                select(
                    UsageRecord.model,
                    UsageRecord.tier,
                    UsageRecord.endpoint,
                    UsageRecord.input_tokens,
                    UsageRecord.output_tokens,
                ).where(UsageRecord.owner == "tenant-embed-usage")
            ).all()
        return [tuple(r) for r in found]

    recorded = eventually(rows, timeout=30, what="the embedding request's usage row")
    tokens = done.usage.prompt_tokens
    assert recorded == [(EMBED_MODEL, "realtime", "/v1/embeddings", tokens, 0)]


def test_embeddings_refusals(vllm_stack: VllmStack) -> None:
    client = vllm_stack.client()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"model": VLLM_MODEL, "input": "x"}, "model", "not an embedding model"),
        ({"model": EMBED_MODEL, "input": ""}, "input", "empty"),
        ({"model": EMBED_MODEL, "input": ["a", ""]}, "input[1]", "empty"),
        ({"model": EMBED_MODEL, "input": ["a"] * 2049}, "input", "2048"),
        ({"model": EMBED_MODEL, "input": "word " * MAX_MODEL_LEN}, "input", "context length"),
        ({"model": EMBED_MODEL, "input": [[1, 10**9]]}, "input", "vocabulary"),
        ({"model": EMBED_MODEL, "input": "x", "dimensions": 8}, "dimensions", "dimensions"),
    ]
    for kwargs, param, words in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.embeddings.create(**kwargs)
        assert err.value.status_code == 400, kwargs
        assert err.value.param == param, kwargs
        assert words in err.value.message, (kwargs, err.value.message)
    # The model's own size is no reduction: accepted.
    same = client.embeddings.create(model=EMBED_MODEL, input="x", dimensions=EMBED_DIMENSIONS)
    assert len(same.data[0].embedding) == EMBED_DIMENSIONS
    with pytest.raises(openai.BadRequestError, match="is an embedding model"):
        client.chat.completions.create(model=EMBED_MODEL, messages=USER, max_tokens=4)


def test_a_batch_of_embedding_lines_answers_every_custom_id(vllm_stack: VllmStack) -> None:
    client = vllm_stack.client()
    n = 40
    lines = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": EMBED_MODEL, "input": [TEXTS[i % 2], f"line {i}"]},
        }
        for i in range(n)
    ]
    done = batch_finished(client, submit(client, lines, endpoint="/v1/embeddings").id, 300)
    assert done.status == "completed" and done.request_counts.completed == n
    out = lines_of(client, done.output_file_id)
    assert Counter(x["custom_id"] for x in out) == Counter(f"e{i}" for i in range(n))
    realtime = client.embeddings.create(model=EMBED_MODEL, input=TEXTS[:2], encoding_format="float")
    for x in out:
        assert x["response"]["status_code"] == 200
        body = x["response"]["body"]
        assert body["object"] == "list" and body["model"] == EMBED_MODEL
        assert [d["index"] for d in body["data"]] == [0, 1]
        i = int(x["custom_id"][1:])
        expected = realtime.data[i % 2].embedding
        assert body["data"][0]["embedding"] == pytest.approx(expected, abs=1e-6)
        assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0

    # A line naming the chat model fails validation with its line and param.
    wrong = [{**lines[0], "body": {"model": VLLM_MODEL, "input": "x"}}]
    failed = batch_finished(client, submit(client, wrong, endpoint="/v1/embeddings").id, 60)
    assert failed.status == "failed" and failed.errors is not None
    error = failed.errors.data[0]
    assert (error.code, error.line, error.param) == ("invalid_model", 1, "body.model")


def test_a_cancelled_background_response_frees_its_engine_slot(vllm_stack: VllmStack) -> None:
    """Flex work holds at most 3 of the engine's 4 slots (realtime keeps one): fill them, queue
    a fourth, cancel the three; the fourth runs, and the cancelled ones stop where they were."""
    client = vllm_stack.client()
    limit = MAX_MODEL_LEN - 64
    create: dict[str, Any] = {
        "model": VLLM_MODEL,
        "input": "Tell me a long story.",
        "background": True,
        "service_tier": "flex",
        "max_output_tokens": limit,
        "extra_body": {"ignore_eos": True},
    }
    # The engine is held while the work is placed and cancelled: on a fast engine the three
    # reached their limit before the calls to cancel them were answered.
    with vllm_stack.engine_paused():
        running = [client.responses.create(**create) for _ in range(3)]
        waiting = client.responses.create(**create)
        for r in running:
            eventually(lambda r=r: client.responses.retrieve(r.id).status, "in_progress".__eq__)
        assert client.responses.retrieve(waiting.id).status == "queued"
        cancelled = [client.responses.cancel(r.id) for r in running]
    assert [r.status for r in cancelled] == ["cancelled"] * 3

    def done() -> Any:
        got = client.responses.retrieve(waiting.id)
        # It runs to its limit (ignore_eos), which Responses reports as incomplete.
        return got if got.status == "incomplete" else None

    finished = eventually(done, timeout=120, what="the queued response")
    assert finished.usage is not None and finished.usage.output_tokens == limit
    for r in running:
        again = client.responses.retrieve(r.id)
        assert again.status == "cancelled"
        assert again.usage is None or again.usage.output_tokens < limit


def test_kill_9_mid_batch_loses_and_doubles_nothing_and_leaves_no_engine(
    vllm_stack: VllmStack,
) -> None:
    client = vllm_stack.client()
    db = vllm_stack.db
    n = 40
    lines = [
        chat_line(f"k{i}", model=VLLM_MODEL, max_tokens=128, ignore_eos=True) for i in range(n)
    ]
    batch = submit(client, lines)

    def running() -> int:
        with db.session() as s:
            query = select(func.count(Request.id)).where(
                Request.batch_id == batch.id, Request.status == "in_progress"
            )
            return int(s.scalar(query) or 0)

    wait_for(client, batch.id, lambda b: b.request_counts.completed >= 3 and running() > 0, 120)
    children = vllm_stack.kill_worker_only()
    assert children, "the vLLM worker had no engine processes"
    killed_at = time.monotonic()
    while alive(children) and time.monotonic() - killed_at < 10:
        time.sleep(0.2)
    assert not alive(children), f"engine processes outlived the worker: {alive(children)}"
    print(f"engine processes gone {time.monotonic() - killed_at:.1f} s after kill -9")

    restart = vllm_stack.start_worker()
    print(f"vLLM worker restarted in {restart:.1f} s")
    done = batch_finished(client, batch.id, timeout=300)
    assert done.status == "completed"
    out = lines_of(client, done.output_file_id)
    assert Counter(x["custom_id"] for x in out) == Counter(f"k{i}" for i in range(n))
    with db.session() as s:
        usage = list(
            s.scalars(select(UsageRecord.request_id).where(UsageRecord.batch_id == batch.id))
        )
        attempts = list(s.scalars(select(Request.attempt).where(Request.batch_id == batch.id)))
    assert len(usage) == n and len(set(usage)) == n
    assert max(attempts) >= 2, "no line was re-run after the kill"


def test_concurrent_realtime_requests_all_finish(vllm_stack: VllmStack) -> None:
    client = vllm_stack.client()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: chat(client, max_tokens=16), range(8)))
    assert all(r.choices[0].message.content for r in results)
