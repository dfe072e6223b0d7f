"""The Batch API through the official openai SDK, against the real stack: lifecycle, bad
files, cancel, expiry, partial results, a worker killed mid-chunk, and tenant isolation."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import func, select

from inference_platform.db.models import Batch, Request, UsageRecord
from tests.conftest import DEMO, SIM, SIM_SLOW
from tests.helpers import (
    CHAT,
    COMPLETIONS,
    TERMINAL,
    chat_line,
    jsonl,
    lines_of,
    submit,
    wait_for,
)
from tests.helpers import (
    batch_finished as finished,
)

pytestmark = pytest.mark.e2e


def test_a_1000_line_batch_answers_every_custom_id_once(client: openai.OpenAI, db) -> None:
    n = 1000
    batch = submit(
        client,
        [chat_line(f"req-{i}", max_tokens=4 + i % 5) for i in range(n)],
        metadata={"job": "thousand"},
    )
    assert batch.id.startswith("batch_") and batch.object == "batch"
    assert batch.status == "validating" and batch.endpoint == CHAT
    assert batch.completion_window == "24h" and batch.metadata == {"job": "thousand"}
    assert batch.expires_at == batch.created_at + 86400
    done = finished(client, batch.id, timeout=120)
    assert done.status == "completed", done.errors
    assert done.request_counts.total == n and done.request_counts.completed == n
    assert done.request_counts.failed == 0 and done.error_file_id is None
    assert done.model == SIM
    for stamp in ("in_progress_at", "finalizing_at", "completed_at"):
        assert getattr(done, stamp) is not None, stamp
    out = lines_of(client, done.output_file_id)
    counts = Counter(line["custom_id"] for line in out)
    assert len(counts) == n and set(counts.values()) == {1}
    sample = out[0]
    assert sample["id"].startswith("batch_req_") and sample["error"] is None
    assert sample["response"]["status_code"] == 200
    assert sample["response"]["request_id"].startswith("req_")
    body = sample["response"]["body"]
    assert body["object"] == "chat.completion" and body["model"] == SIM
    assert body["choices"][0]["message"]["content"]
    # Usage: one record per line, summed on the batch.
    with db.session() as s:
        records = s.scalar(
            select(func.count(UsageRecord.id)).where(UsageRecord.batch_id == batch.id)
        )
    assert records == n
    expected_out = sum(4 + i % 5 for i in range(n))
    assert done.usage.output_tokens == expected_out
    assert done.usage.total_tokens == done.usage.input_tokens + expected_out
    output_file = client.files.retrieve(done.output_file_id)
    assert output_file.purpose == "batch_output"
    assert output_file.bytes == len(client.files.content(done.output_file_id).read())


def test_completions_batch_and_a_line_that_fails(client: openai.OpenAI) -> None:
    long_prompt = "word " * 9000  # beyond the simulated model's 8192-token context
    lines = [
        {
            "custom_id": "ok-1",
            "method": "POST",
            "url": COMPLETIONS,
            "body": {"model": SIM, "prompt": "Once upon", "max_tokens": 5},
        },
        {
            "custom_id": "ok-2",
            "method": "POST",
            "url": COMPLETIONS,
            "body": {"model": SIM, "prompt": ["a", "b"], "max_tokens": 3, "echo": True},
        },
        {
            "custom_id": "too-long",
            "method": "POST",
            "url": COMPLETIONS,
            "body": {"model": SIM, "prompt": long_prompt, "max_tokens": 5},
        },
    ]
    done = finished(client, submit(client, lines, endpoint=COMPLETIONS).id)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    out = {line["custom_id"]: line for line in lines_of(client, done.output_file_id)}
    assert set(out) == {"ok-1", "ok-2"}
    assert out["ok-1"]["response"]["body"]["object"] == "text_completion"
    echoed = out["ok-2"]["response"]["body"]["choices"]
    assert len(echoed) == 2 and echoed[1]["text"].startswith("b")
    (bad,) = lines_of(client, done.error_file_id)
    assert bad["custom_id"] == "too-long" and bad["error"] is None
    assert bad["response"]["status_code"] == 400
    assert bad["response"]["body"]["error"]["code"] == "context_length_exceeded"


def test_demo_model_batch(client: openai.OpenAI) -> None:
    lines = [chat_line(f"d{i}", model=DEMO, max_tokens=6, temperature=0) for i in range(3)]
    done = finished(client, submit(client, lines, window="1h").id, timeout=120)
    assert done.status == "completed" and done.request_counts.completed == 3
    assert done.expires_at == done.created_at + 3600
    for line in lines_of(client, done.output_file_id):
        assert line["response"]["body"]["choices"][0]["message"]["content"]


def test_a_bad_line_among_many_fails_with_line_numbers(client: openai.OpenAI) -> None:
    lines: list[Any] = [chat_line(f"ok-{i}") for i in range(60)]
    lines[4] = b'{"custom_id": "broken", "method": "POST",'  # line 5
    lines[9] = {**chat_line("wrong-url"), "url": COMPLETIONS}  # line 10
    lines[14] = chat_line("ok-3")  # line 15: duplicate of line 4
    lines[19] = {**chat_line("get"), "method": "GET"}  # line 20
    lines[24] = chat_line("streams", stream=True)  # line 25
    lines[29] = chat_line("no-model", model="no-such-model")  # line 30
    lines[34] = {**chat_line("bad-body"), "body": {"model": SIM}}  # line 35: no messages
    lines[39] = chat_line("x" * 65)  # line 40: custom_id too long
    lines[44] = {k: v for k, v in chat_line("gone").items() if k != "custom_id"}  # line 45
    lines[49] = chat_line("other-model", model=SIM_SLOW)  # line 50
    done = finished(client, submit(client, lines).id)
    assert done.status == "failed" and done.failed_at is not None
    assert done.output_file_id is None and done.request_counts.total == 0
    errors = {(e.line, e.code) for e in done.errors.data}
    assert errors == {
        (5, "invalid_json_line"),
        (10, "url_mismatch"),
        (15, "duplicate_custom_id"),
        (20, "invalid_method"),
        (25, "stream_unsupported"),
        (30, "model_not_found"),
        (35, "invalid_body"),
        (40, "invalid_custom_id"),
        (45, "missing_custom_id"),
        (50, "model_mismatch"),
    }
    by_line = {e.line: e for e in done.errors.data}
    assert "line 4" in by_line[15].message and by_line[35].param == "body.messages"


def test_duplicate_custom_id_and_empty_file(client: openai.OpenAI) -> None:
    dup = finished(client, submit(client, [chat_line("same"), chat_line("same")]).id)
    assert dup.status == "failed"
    assert [(e.code, e.line) for e in dup.errors.data] == [("duplicate_custom_id", 2)]
    f = client.files.create(file=("empty.jsonl", b"\n\n"), purpose="batch")
    empty = finished(
        client, client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h").id
    )
    assert empty.status == "failed" and empty.errors.data[0].code == "empty_file"


def test_create_is_checked_synchronously(
    client: openai.OpenAI, other_client: openai.OpenAI
) -> None:
    f = client.files.create(file=("b.jsonl", jsonl([chat_line("a")])), purpose="batch")
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(
            input_file_id=f.id, endpoint="/v1/moderations", completion_window="24h"
        )
    assert err.value.param == "endpoint"
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="48h")  # type: ignore[arg-type]
    assert err.value.param == "completion_window"
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        other_client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
    user_data = client.files.create(file=("u.jsonl", b"{}\n"), purpose="user_data")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=user_data.id, endpoint=CHAT, completion_window="24h")


def test_list_pagination(client: openai.OpenAI) -> None:
    made = [submit(client, [chat_line(f"l{i}")]).id for i in range(3)]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == made[::-1][:2] and page.has_more is True
    nxt = client.batches.list(limit=2, after=page.data[-1].id)
    assert nxt.data[0].id == made[0]
    assert set(made) <= {b.id for b in client.batches.list(limit=2)}  # auto-pagination
    for batch_id in made:
        finished(client, batch_id)


def _read(
    stack: Any, key: str, file_id: str, offset: int, limit: int | None = None
) -> httpx.Response:
    params = {"offset": offset} | ({"limit": limit} if limit else {})
    return httpx.get(
        f"{stack.base_url}/files/{file_id}/content",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_partial_results_with_offset_and_limit(client: openai.OpenAI, stack) -> None:
    n = 12
    batch = submit(client, [chat_line(f"p{i}", model=SIM_SLOW, max_tokens=10) for i in range(n)])
    running = wait_for(
        client, batch.id, lambda b: b.output_file_id is not None or b.status in TERMINAL
    )
    assert running.status == "in_progress", "the batch finished before it could be read"
    seen: list[str] = []
    offset, saw_incomplete = 0, False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = _read(stack, client.api_key, running.output_file_id, offset, limit=3)
        assert response.status_code == 200
        got = [json.loads(x)["custom_id"] for x in response.text.splitlines()]
        assert len(got) <= 3
        seen += got
        assert int(response.headers["X-Last-Line"]) == offset + len(got)
        offset = int(response.headers["X-Last-Line"])
        if response.headers["X-Incomplete"] == "true":
            saw_incomplete = True
            time.sleep(0.2)
            continue
        break
    assert saw_incomplete
    assert Counter(seen) == Counter(f"p{i}" for i in range(n))
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed"
    full = _read(stack, client.api_key, done.output_file_id, 0)
    assert full.headers["X-Incomplete"] == "false" and full.headers["X-Last-Line"] == str(n)
    tail = _read(stack, client.api_key, done.output_file_id, n - 2)
    assert len(tail.text.splitlines()) == 2


def test_cancel_mid_run_keeps_partial_results(client: openai.OpenAI) -> None:
    n = 24
    batch = submit(client, [chat_line(f"c{i}", model=SIM_SLOW, max_tokens=10) for i in range(n)])
    wait_for(client, batch.id, lambda b: b.request_counts.completed >= 2)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    done = finished(client, batch.id, timeout=30)
    assert done.status == "cancelled" and done.cancelled_at is not None
    out = lines_of(client, done.output_file_id)
    errors = lines_of(client, done.error_file_id)
    assert 2 <= len(out) < n
    assert all(e["error"]["code"] == "batch_cancelled" and e["response"] is None for e in errors)
    assert Counter(x["custom_id"] for x in out + errors) == Counter(f"c{i}" for i in range(n))
    assert (done.request_counts.completed, done.request_counts.failed) == (len(out), len(errors))
    # Cancelling again answers with the batch; a finished batch cannot be cancelled.
    assert client.batches.cancel(batch.id).status == "cancelled"


def test_cancel_a_completed_batch_is_refused(client: openai.OpenAI) -> None:
    done = finished(client, submit(client, [chat_line("only")]).id)
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(done.id)


def test_expiry_keeps_finished_lines(client: openai.OpenAI) -> None:
    n = 40
    lines = [chat_line(f"e{i}", model=SIM_SLOW, max_tokens=20) for i in range(n)]
    batch = submit(client, lines, window="test")  # an 8-second window (tests/conftest.py)
    assert batch.expires_at - batch.created_at == 8
    done = finished(client, batch.id, timeout=40)
    assert done.status == "expired" and done.expired_at is not None
    out = lines_of(client, done.output_file_id)
    errors = lines_of(client, done.error_file_id)
    assert out, "no line finished inside the window"
    assert errors and all(e["error"]["code"] == "batch_expired" for e in errors)
    assert Counter(x["custom_id"] for x in out + errors) == Counter(f"e{i}" for i in range(n))
    assert done.request_counts.completed == len(out)


def test_1h_window_is_served_before_24h(client: openai.OpenAI) -> None:
    slow = submit(client, [chat_line(f"s{i}", model=SIM_SLOW, max_tokens=10) for i in range(30)])
    wait_for(client, slow.id, lambda b: b.status == "in_progress")
    urgent = submit(
        client, [chat_line(f"u{i}", model=SIM_SLOW, max_tokens=10) for i in range(3)], window="1h"
    )
    urgent_done = finished(client, urgent.id)
    slow_now = client.batches.retrieve(slow.id)
    assert urgent_done.status == "completed"
    assert slow_now.status == "in_progress", "the 1h batch waited for the whole 24h one"
    finished(client, slow.id)


def test_kill_worker_mid_chunk_loses_and_doubles_nothing(client: openai.OpenAI, stack, db) -> None:
    n = 24
    batch = submit(client, [chat_line(f"k{i}", model=SIM_SLOW, max_tokens=20) for i in range(n)])

    def running_lines() -> int:
        with db.session() as s:
            return int(
                s.scalar(
                    select(func.count(Request.id)).where(
                        Request.batch_id == batch.id, Request.status == "in_progress"
                    )
                )
                or 0
            )

    wait_for(client, batch.id, lambda b: b.request_counts.completed >= 3 and running_lines() > 0)
    stack.kill(SIM_SLOW)
    stack.restart(SIM_SLOW)
    stack.wait_queue(f"batch.{SIM_SLOW}")
    done = finished(client, batch.id, timeout=90)
    assert done.status == "completed"
    out = lines_of(client, done.output_file_id)
    assert Counter(x["custom_id"] for x in out) == Counter(f"k{i}" for i in range(n))
    assert done.error_file_id is None
    with db.session() as s:
        usage_ids = list(
            s.scalars(select(UsageRecord.request_id).where(UsageRecord.batch_id == batch.id))
        )
        attempts = list(s.scalars(select(Request.attempt).where(Request.batch_id == batch.id)))
    assert len(usage_ids) == n and len(set(usage_ids)) == n
    assert max(attempts) >= 2, "no line was re-run after the kill"


def test_other_tenant_gets_404_on_every_route(
    client: openai.OpenAI, other_client: openai.OpenAI
) -> None:
    done = finished(client, submit(client, [chat_line("mine")]).id)
    for call in (
        lambda: other_client.batches.retrieve(done.id),
        lambda: other_client.batches.cancel(done.id),
        lambda: other_client.files.retrieve(done.output_file_id),
        lambda: other_client.files.content(done.output_file_id),
        lambda: other_client.files.delete(done.output_file_id),
        lambda: other_client.files.retrieve(done.input_file_id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert done.id not in [b.id for b in other_client.batches.list()]
    assert done.output_file_id not in [f.id for f in other_client.files.list()]
    # The owner sees the output file among its files.
    assert done.output_file_id in [f.id for f in client.files.list(purpose="batch_output")]


def test_responses_batch(client: openai.OpenAI) -> None:
    line = {
        "custom_id": "r1",
        "method": "POST",
        "url": "/v1/responses",
        "body": {
            "model": SIM,
            "input": "Write a haiku.",
            "instructions": "Be brief.",
            "max_output_tokens": 6,
        },
    }
    items = [
        line,
        {
            **line,
            "custom_id": "r2",
            "body": {"model": SIM, "input": [{"role": "user", "content": "Hi"}]},
        },
    ]
    done = finished(client, submit(client, items, endpoint="/v1/responses").id)
    assert done.status == "completed" and done.request_counts.completed == 2
    out = {x["custom_id"]: x["response"]["body"] for x in lines_of(client, done.output_file_id)}
    first = out["r1"]
    assert first["object"] == "response" and first["id"].startswith("resp_")
    assert first["status"] == "incomplete"  # stopped by its max_output_tokens
    assert first["output"][0]["content"][0]["text"] and first["usage"]["output_tokens"] == 6
    assert out["r2"]["status"] == "completed" and out["r2"]["model"] == SIM
    bad = finished(
        client,
        submit(
            client,
            [{**line, "body": {**line["body"], "previous_response_id": "resp_x"}}],
            endpoint="/v1/responses",
        ).id,
    )
    assert bad.status == "failed" and bad.errors.data[0].param == "body.previous_response_id"


def test_cli_submit_waits_and_downloads(client: openai.OpenAI, stack, tmp_path) -> None:
    import subprocess
    import sys

    source = tmp_path / "work.jsonl"
    source.write_bytes(
        jsonl(
            [chat_line(f"cli-{i}") for i in range(5)]
            + [
                chat_line(
                    "cli-bad", max_tokens=3, messages=[{"role": "user", "content": "w " * 9000}]
                )
            ]
        )
    )
    env = {**stack.env(), "OPENAI_BASE_URL": stack.base_url, "OPENAI_API_KEY": client.api_key}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "batch",
            "submit",
            str(source),
            "--window",
            "1h",
            "--wait",
            "--poll",
            "0.3",
            "--metadata",
            "from=cli",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "completed" in run.stdout
    out = (tmp_path / "work.output.jsonl").read_text().splitlines()
    errors = (tmp_path / "work.errors.jsonl").read_text().splitlines()
    assert len(out) == 5 and len(errors) == 1
    assert json.loads(errors[0])["custom_id"] == "cli-bad"


def test_cancel_while_validating(client: openai.OpenAI, db) -> None:
    # Big enough that validation is still running when the cancel arrives.
    batch = submit(client, [chat_line(f"v{i}") for i in range(30000)])

    def validating_now() -> bool:  # the control worker holds the validation lease
        with db.session() as s:
            return s.get(Batch, batch.id, populate_existing=True).lease_until is not None

    wait_for(client, batch.id, lambda b: validating_now() or b.status != "validating")
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status == "cancelling"
    done = finished(client, batch.id, timeout=60)
    assert done.status == "cancelled" and done.in_progress_at is None
    with db.session() as s:
        assert s.scalar(select(func.count(Request.id)).where(Request.batch_id == batch.id)) == 0
