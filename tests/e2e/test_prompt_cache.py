"""Prompt caching a client can see and is billed for, through the SDK: cached prompt tokens in
realtime, flex and batch usage (each line and ``batch.usage``, while it runs and after), the
cached-input line item of the costs API, and a batch file's price before it runs.

The simulated engine models a prefix cache in blocks of 16 words (``engines.prefix_cache``),
so these counts are exact; real vLLM reports its own ``num_cached_tokens`` the same way."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inference_platform.engines.tokenizer import ModelTokenizer
from tests.helpers import (
    DEMO,
    SIM,
    SIM_SLOW,
    TERMINAL,
    batch_finished,
    eventually,
    finished,
    jsonl,
    lines_of,
    submit,
    wait_for,
)
from tests.stack import CLI, ROOT, Stack

pytestmark = pytest.mark.e2e

# The test catalog's tariffs of SIM (USD per million tokens) and the default cached share.
BATCH_24H = (0.05, 0.15, 0.05 * 0.25)


def _doc(words: int = 40) -> str:
    """A system prompt no other test sends: its blocks are cached only by this test."""
    tag = uuid.uuid4().hex[:8]
    return " ".join(f"{tag}{i}" for i in range(words))


def _chat(doc: str, question: str) -> list[Any]:
    return [{"role": "system", "content": doc}, {"role": "user", "content": question}]


def test_realtime_usage_reports_cached_tokens_of_a_repeated_prompt(client: openai.OpenAI) -> None:
    messages = _chat(_doc(), "again")  # 44 words: "system:", 40, "user:", "again", "assistant:"
    first = client.chat.completions.create(model=SIM, messages=messages, max_tokens=4)
    again = client.chat.completions.create(model=SIM, messages=messages, max_tokens=4)
    assert first.usage is not None and again.usage is not None
    assert first.usage.prompt_tokens == again.usage.prompt_tokens == 44
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    # Two full blocks of 16; the third is not full, and the last token is always computed.
    assert again.usage.prompt_tokens_details is not None
    assert again.usage.prompt_tokens_details.cached_tokens == 32

    stream = client.chat.completions.create(
        model=SIM,
        messages=messages,
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    [last] = [c for c in stream if c.usage is not None]
    assert last.usage is not None and last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 32

    prompt = _doc()
    client.completions.create(model=SIM, prompt=prompt, max_tokens=2)
    text = client.completions.create(model=SIM, prompt=prompt, max_tokens=2)
    assert text.usage is not None and text.usage.prompt_tokens_details is not None
    assert text.usage.prompt_tokens_details.cached_tokens == 32

    doc = _doc()
    kept = [client.responses.create(model=SIM, instructions=doc, input="hi") for _ in range(2)]
    assert kept[0].usage is not None and kept[1].usage is not None
    assert kept[0].usage.input_tokens_details.cached_tokens == 0
    assert kept[1].usage.input_tokens_details.cached_tokens == 32
    assert client.responses.retrieve(kept[1].id).usage == kept[1].usage


def test_flex_and_background_usage_report_cached_tokens(client: openai.OpenAI) -> None:
    messages = _chat(_doc(), "again")
    for expected in (0, 32):
        flex = client.chat.completions.create(
            model=SIM, messages=messages, max_tokens=4, service_tier="flex"
        )
        assert flex.usage is not None and flex.usage.prompt_tokens_details is not None
        assert flex.usage.prompt_tokens_details.cached_tokens == expected
    doc = _doc()
    ids = [
        client.responses.create(
            model=SIM, instructions=doc, input="hi", service_tier="flex", background=True
        ).id
        for _ in range(2)
    ]
    done = [finished(client, i) for i in ids]
    assert [r.status for r in done] == ["completed", "completed"]
    cached = sorted(r.usage.input_tokens_details.cached_tokens for r in done)
    assert cached == [0, 32]


def _doc_lines(doc: str, count: int, model: str = SIM, max_tokens: int = 5) -> list[Any]:
    return [
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": _chat(doc, f"question {i}"),
                "max_tokens": max_tokens,
            },
        }
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def cached_batch(stack: Stack, api_key: str) -> dict[str, Any]:
    """A finished 24 h batch of six lines asking about one 64-word document."""
    client = openai.OpenAI(base_url=stack.base_url, api_key=api_key, max_retries=0, timeout=60)
    start = int(time.time()) - 5
    batch = submit(client, _doc_lines(_doc(64), 6))
    done = batch_finished(client, batch.id)
    assert done.status == "completed", done
    return {"batch": done, "lines": lines_of(client, done.output_file_id), "start": start}


def test_batch_lines_and_batch_usage_report_cached_tokens(cached_batch: dict[str, Any]) -> None:
    usages = [line["response"]["body"]["usage"] for line in cached_batch["lines"]]
    cached = sorted(u["prompt_tokens_details"]["cached_tokens"] for u in usages)
    # 69 words each; the document and the role before it fill four blocks the five later
    # lines find cached.
    assert cached == [0, 64, 64, 64, 64, 64]
    usage = cached_batch["batch"].usage
    assert usage.input_tokens == sum(u["prompt_tokens"] for u in usages) == 6 * 69
    assert usage.input_tokens_details.cached_tokens == sum(cached) == 320
    assert usage.output_tokens == 30 and usage.total_tokens == 6 * 69 + 30


def test_batch_usage_shows_cached_tokens_while_the_batch_runs(client: openai.OpenAI) -> None:
    """Four lines at a time, 20 tokens a second: the first lines' cached tokens show in
    ``batch.usage`` while later ones still run."""
    batch = submit(client, _doc_lines(_doc(40), 12, model=SIM_SLOW, max_tokens=20))
    running = wait_for(
        client,
        batch.id,
        lambda b: (
            b.status in TERMINAL
            or (b.usage is not None and b.usage.input_tokens_details.cached_tokens > 0)
        ),
        timeout=60,
    )
    assert running.status == "in_progress", running
    assert running.request_counts.completed < 12
    done = batch_finished(client, batch.id)
    seen = running.usage.input_tokens_details.cached_tokens
    assert done.usage.input_tokens_details.cached_tokens == 11 * 32 >= seen


def test_costs_and_usage_show_cached_input_apart(
    stack: Stack, api_key: str, cached_batch: dict[str, Any]
) -> None:
    admin = openai.OpenAI(base_url=stack.base_url, api_key="unused", admin_api_key=api_key)
    start = cached_batch["start"]
    item = f"{SIM} batch 24h, cached input"

    def items() -> dict[Any, Any]:
        page = admin.admin.organization.usage.costs(start_time=start, group_by=["line_item"])
        return {r.line_item: r for b in page.data for r in b.results}

    found = eventually(items, lambda i: item in i, what="the cached input line item")
    cached = found[item]
    assert cached.quantity >= 320 and cached.amount is not None
    assert cached.amount.value == pytest.approx(cached.quantity * BATCH_24H[2] / 1e6)
    fresh = found[f"{SIM} batch 24h, input"]
    assert fresh.amount is not None
    assert fresh.amount.value == pytest.approx(fresh.quantity * BATCH_24H[0] / 1e6)

    page = admin.admin.organization.usage.completions(
        start_time=start, group_by=["model", "batch"], batch=True, models=[SIM]
    )
    [result] = [r for b in page.data for r in b.results]
    assert result.input_cached_tokens >= 320
    assert result.input_tokens >= result.input_cached_tokens

    out = _cli(stack, "usage", "--since", "1h", "--tenant", "tenant-a")
    print(out)
    assert "cache saved $" in out and "tier saved $" in out, out
    assert "prefix caching saved $" in out, out


def _cli(stack: Stack, *args: str) -> str:
    """What ``inference-platform ARGS`` prints against the test stack."""
    done = subprocess.run(
        [*CLI, *args], env=stack.env(), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _estimate(stack: Stack, api_key: str, file_id: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{stack.base_url}/files/{file_id}/cost_estimate",
        params=params,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )


def test_the_estimate_is_what_the_batch_is_billed_when_every_line_reaches_its_limit(
    stack: Stack, api_key: str, client: openai.OpenAI, tmp_path: Path
) -> None:
    shared, other = _doc(50), _doc(20)
    lines = _doc_lines(shared, 5, max_tokens=7) + _doc_lines(other, 3, max_tokens=3)
    for i, line in enumerate(lines):
        line["custom_id"] = f"line-{i}"
    lines[0]["body"]["n"] = 2  # two choices of one prompt: its tokens billed once
    data = jsonl(lines)
    upload = client.files.create(file=("priced.jsonl", data), purpose="batch")
    got = _estimate(stack, api_key, upload.id, completion_window="24h")
    assert got.status_code == 200, got.text
    estimate = got.json()
    assert estimate["object"] == "batch.cost_estimate" and estimate["lines"] == 8
    assert estimate["model"] == SIM and estimate["simulated"] is True
    assert estimate["max_output_tokens"] == 7 * 6 + 3 * 3
    low, high = estimate["cost"]["low"], estimate["cost"]["high"]
    assert 0 < low < high < estimate["realtime_cost"]["low"]

    # The same file, unsent, through the command line: the same figures.
    local = tmp_path / "priced.jsonl"
    local.write_bytes(data)
    printed = _cli(stack, "batch", "estimate", str(local), "--window", "24h", "--json")
    assert {**json.loads(printed), "file_id": upload.id} == estimate

    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = batch_finished(client, batch.id)
    assert done.status == "completed"
    usage = done.usage
    cached = usage.input_tokens_details.cached_tokens
    assert usage.output_tokens == estimate["max_output_tokens"]  # every line at its limit
    assert usage.input_tokens == estimate["prompt_tokens"]
    assert cached == estimate["cached_prompt_tokens"] > 0
    price_in, price_out, price_cached = BATCH_24H
    billed = (
        (usage.input_tokens - cached) * price_in
        + cached * price_cached
        + usage.output_tokens * price_out
    ) / 1e6
    assert billed == pytest.approx(low) and low <= billed <= high


def test_the_estimate_refuses_what_it_cannot_price(
    stack: Stack, api_key: str, other_key: str, client: openai.OpenAI
) -> None:
    good = client.files.create(file=("ok.jsonl", jsonl(_doc_lines("hi", 1))), purpose="batch")
    assert _estimate(stack, other_key, good.id).status_code == 404  # another tenant's file
    bad_window = _estimate(stack, api_key, good.id, completion_window="3d")
    assert bad_window.status_code == 400
    assert bad_window.json()["error"]["param"] == "completion_window"
    unknown = _estimate(stack, api_key, good.id, model="no-such-model")
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "model"
    broken = jsonl([*_doc_lines("hi", 1), {"custom_id": "x", "method": "GET"}])
    bad = client.files.create(file=("bad.jsonl", broken), purpose="batch")
    refused = _estimate(stack, api_key, bad.id)
    assert refused.status_code == 400 and "Line 2" in refused.json()["error"]["message"]
    notes = client.files.create(file=("n.txt", b"hello"), purpose="user_data")
    assert _estimate(stack, api_key, notes.id).status_code == 400


def test_the_estimate_counts_with_the_models_own_tokenizer(
    stack: Stack, api_key: str, client: openai.OpenAI, demo_model_path: Path
) -> None:
    """A tokenizer-backed model: its chat template and tokenizer count the prompt, and the
    transformers engine, which reports no cached tokens, gets none in the estimate either."""
    lines = _doc_lines("Answer from the document.", 3, max_tokens=6)
    upload = client.files.create(file=("demo.jsonl", jsonl(lines)), purpose="batch")
    got = _estimate(stack, api_key, upload.id, model=DEMO, completion_window="1h")
    assert got.status_code == 200, got.text
    found = got.json()
    tok = ModelTokenizer.load(str(demo_model_path))
    each = [len(tok.encode(tok.render_chat(line["body"]["messages"]))) for line in lines]
    assert found["model"] == DEMO and found["simulated"] is False
    assert found["prompt_tokens"] == sum(each) and found["cached_prompt_tokens"] == 0
    assert found["max_output_tokens"] == 18 and found["cost"] is None  # no tariff for it
