"""Hostile input against the real stack: every case gets a 4xx OpenAI envelope naming its
param (or its batch line), never a 500; bad batch files fail with line numbers at once."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.conftest import SIM
from tests.helpers import chat_line, jsonl, submit, wait_for
from tests.hostile import ANY, CASES, Case
from tests.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def http(stack: Stack, api_key: str) -> httpx.Client:
    with httpx.Client(
        base_url=stack.base_url.removesuffix("/v1"),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        timeout=60,
    ) as c:
        yield c


def assert_envelope(r: httpx.Response, status: int, param: str | None = ANY) -> dict:
    assert r.status_code == status, r.text[:500]
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param != ANY:
        assert error["param"] == param, error
    return error


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_request_gets_a_4xx_envelope(http: httpx.Client, case: Case) -> None:
    r = http.request(case.method, case.path, content=case.content())
    assert_envelope(r, case.status, case.param)


def test_nul_refused_realtime_response_bills_nothing(http: httpx.Client, db) -> None:
    from sqlalchemy import func, select

    from inference_platform.db.models import UsageRecord

    with db.session() as s:
        before = s.scalar(select(func.count()).select_from(UsageRecord))
    r = http.post("/v1/responses", json={"model": SIM, "input": "x\x00y", "max_output_tokens": 4})
    assert_envelope(r, 400, "input")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(UsageRecord)) == before


def test_upload_with_40_form_fields_is_a_400_not_413(stack: Stack, api_key: str) -> None:
    fields = {f"extra{i}": "x" for i in range(40)}
    r = httpx.post(
        f"{stack.base_url}/files",
        data={"purpose": "batch", **fields},
        files={"file": ("a.jsonl", b"{}\n")},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    )
    assert_envelope(r, 400, "file")


def _batch_errors(client: openai.OpenAI, raw: bytes) -> list[dict]:
    f = client.files.create(file=("bad.jsonl", raw), purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = wait_for(client, batch.id, lambda b: b.status != "validating", timeout=30)
    assert done.status == "failed", done
    assert done.errors is not None
    return [e.model_dump() for e in done.errors.data]


def test_batch_with_lone_surrogate_custom_id_fails_with_its_line(client: openai.OpenAI) -> None:
    good = json.dumps(chat_line("ok")).encode()
    bad = good.replace(b'"ok"', b'"a\\ud800"')
    errors = _batch_errors(client, jsonl([good, bad, good.replace(b'"ok"', b'"ok2"')]))
    assert [(e["line"], e["param"]) for e in errors] == [(2, "custom_id")]


def test_batch_with_deep_or_unstorable_bodies_fails_with_line_numbers(
    client: openai.OpenAI,
) -> None:
    good = chat_line("ok")
    deep = b'{"custom_id": "deep", "method": "POST", "url": "/v1/chat/completions", "body": '
    deep += b"[" * 50_000 + b"]" * 50_000 + b"}"
    nul = chat_line("nul")
    nul["body"]["messages"][0]["content"] = "x\x00"
    meta_key = chat_line("meta", metadata={"k\x00": "v"})
    sur = json.dumps(chat_line("sur")).encode().replace(b"say sur", b"say \\udc00")
    errors = _batch_errors(client, jsonl([good, deep, nul, meta_key, sur]))
    got = [(e["line"], e["code"], e["param"]) for e in errors]
    assert got == [
        (2, "invalid_json_line", None),
        (3, "invalid_body", "body.messages[0].content"),
        (4, "invalid_body", "body.metadata"),
        (5, "invalid_body", "body.messages[0].content"),
    ]


def test_a_good_batch_after_bad_ones_still_runs(client: openai.OpenAI) -> None:
    batch = submit(client, [chat_line(f"g{i}") for i in range(3)])
    done = wait_for(client, batch.id, lambda b: b.status == "completed", timeout=60)
    assert done.request_counts.completed == 3


def test_huge_header_is_refused_without_a_500(stack: Stack, api_key: str) -> None:
    r = httpx.get(
        f"{stack.base_url}/models",
        headers={"Authorization": f"Bearer {api_key}", "X-Big": "x" * 60_000},
        timeout=30,
    )
    assert r.status_code == 431
    error = r.json()["error"]
    assert error["code"] == "request_header_fields_too_large"
    assert error["type"] == "invalid_request_error"


def test_an_over_long_request_line_gets_the_envelope(stack: Stack, api_key: str) -> None:
    r = httpx.get(
        f"{stack.base_url}/models?{'q' * 20_000}",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    )
    assert r.status_code == 414
    assert r.json()["error"]["code"] == "request_line_too_long"
