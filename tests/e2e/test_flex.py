"""The flex tier through the official openai SDK: blocking and background flex, Chat
Completions with flex, back-pressure, and durability (lost messages, dead workers, deadlines)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
import pytest
import redis
from sqlalchemy import update

from inference_platform import ids
from inference_platform.db.models import Request
from inference_platform.endpoints.responses import inputs
from inference_platform.events import TextDelta, decode
from tests.conftest import SIM, SIM_SLOW
from tests.helpers import eventually, finished, job, usage_rows

pytestmark = pytest.mark.e2e

NO_WORKERS = "no-workers"


def insert_job(db: Any, *, model: str, text: str, **columns: Any) -> str:
    """A background flex response written straight to Postgres, with no Celery message:
    what is left behind by a lost message or a worker that died."""
    items = inputs.input_items(text)
    turns = inputs.history(items)
    body = {
        "model": model,
        "input": text,
        "background": True,
        "service_tier": "flex",
        "max_output_tokens": 5,
        "stream": False,
        "_input": items,
        "_history": turns,
        "_messages": inputs.messages(None, turns),
    }
    rid = ids.new_id(ids.RESPONSE)
    values: dict[str, Any] = dict(
        id=rid,
        owner="tenant-a",
        tier="flex",
        endpoint="/v1/responses",
        model=model,
        status="queued",
        body=body,
        priority=0,
        attempt=0,
        background=True,
        stream=False,
        store=True,
        dispatched_at=datetime.now(UTC) - timedelta(hours=1),
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    values.update(columns)
    with db.session() as s:
        s.add(Request(**values))
    return rid


def test_flex_responses_block_until_done(client: openai.OpenAI, db: Any) -> None:
    resp = client.responses.create(model=SIM, input="flex please", service_tier="flex")
    assert resp.status == "completed" and resp.service_tier == "flex"
    assert resp.background is False and resp.output_text
    assert client.responses.retrieve(resp.id).output_text == resp.output_text
    row = job(db, resp.id)
    assert row.tier == "flex" and row.attempt == 1 and row.deadline is not None
    [usage] = usage_rows(db, resp.id)
    assert usage.tier == "flex" and usage.output_tokens == resp.usage.output_tokens


def test_flex_background_and_streams(client: openai.OpenAI) -> None:
    queued = client.responses.create(
        model=SIM_SLOW, input="later", service_tier="flex", background=True, max_output_tokens=8
    )
    assert queued.status in ("queued", "in_progress") and queued.service_tier == "flex"
    done = finished(client, queued.id)
    assert done.status == "incomplete" and done.usage.output_tokens == 8
    with client.responses.stream(model=SIM, input="flex stream", service_tier="flex") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.service_tier == "flex" and final.status == "completed"
    assert final.output_text == "".join(
        e.delta for e in events if e.type == "response.output_text.delta"
    )


def test_chat_completions_with_flex(client: openai.OpenAI, db: Any) -> None:
    messages = [{"role": "user", "content": "flex chat"}]
    resp = client.chat.completions.create(
        model=SIM,
        messages=messages,
        max_tokens=7,
        service_tier="flex",  # type: ignore[arg-type]
    )
    assert resp.id.startswith("chatcmpl-") and resp.service_tier == "flex"
    assert resp.usage.completion_tokens == 7 and resp.choices[0].finish_reason == "length"
    assert job(db, resp.id).tier == "flex"
    [usage] = usage_rows(db, resp.id)
    assert usage.tier == "flex" and usage.endpoint == "/v1/chat/completions"

    chunks = list(
        client.chat.completions.create(
            model=SIM_SLOW,
            messages=messages,
            max_tokens=5,
            n=2,
            service_tier="flex",  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    texts = ["", ""]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert all(len(t.split()) == 5 for t in texts)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 10
    assert {c.service_tier for c in chunks} == {"flex"}

    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=SIM,
            messages=[{"role": "user", "content": "word " * 9000}],
            service_tier="flex",  # type: ignore[arg-type]
        )
    assert err.value.code == "context_length_exceeded"


def test_completions_with_flex(client: openai.OpenAI, db: Any) -> None:
    resp = client.completions.create(
        model=SIM,
        prompt=["one", "two"],
        max_tokens=4,
        echo=True,
        extra_body={"service_tier": "flex"},
    )
    assert resp.id.startswith("cmpl-") and job(db, resp.id).tier == "flex"
    assert resp.choices[0].text.startswith("one") and resp.choices[1].text.startswith("two")
    assert resp.usage is not None and resp.usage.completion_tokens == 8
    [usage] = usage_rows(db, resp.id)
    assert usage.tier == "flex" and usage.endpoint == "/v1/completions"
    chunks = list(
        client.completions.create(
            model=SIM,
            prompt="three",
            max_tokens=3,
            stream=True,
            extra_body={"service_tier": "flex"},
        )
    )
    assert len("".join(c.choices[0].text for c in chunks if c.choices).split()) == 3
    assert chunks[-1].choices[0].finish_reason == "length"


def test_flex_queue_limit_answers_429(client: openai.OpenAI, stack: Any) -> None:
    """No worker serves this model, so its flex queue only grows: fill it to the limit."""
    limit = stack.settings.flex_queue_limit
    made = []
    try:
        for i in range(limit):
            made.append(
                client.responses.create(
                    model=NO_WORKERS, input=f"wait {i}", service_tier="flex", background=True
                )
            )
        assert {r.status for r in made} == {"queued"}
        with pytest.raises(openai.RateLimitError) as err:
            client.responses.create(
                model=NO_WORKERS, input="one too many", service_tier="flex", background=True
            )
        assert err.value.code == "rate_limit_exceeded"
        assert err.value.response.headers["retry-after"] == str(
            stack.settings.flex_retry_after_seconds
        )
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(
                model=NO_WORKERS,
                messages=[{"role": "user", "content": "x"}],
                service_tier="flex",  # type: ignore[arg-type]
            )
    finally:
        for resp in made:
            client.responses.cancel(resp.id)
    assert client.responses.retrieve(made[0].id).status == "cancelled"
    # Cancelled work leaves the queue: there is room again.
    room = client.responses.create(
        model=NO_WORKERS, input="fits", service_tier="flex", background=True
    )
    assert client.responses.cancel(room.id).status == "cancelled"


def test_lost_message_is_sent_again(client: openai.OpenAI, db: Any) -> None:
    rid = insert_job(db, model=SIM, text="nobody told a worker")
    done = finished(client, rid, timeout=20)
    assert done.status == "incomplete" and done.usage.output_tokens == 5
    assert job(db, rid).attempt == 1


def test_attempt_cap_and_deadline_fail_the_job(client: openai.OpenAI, db: Any, stack: Any) -> None:
    cap = stack.settings.attempt_cap
    lost = insert_job(
        db,
        model=SIM,
        text="lost too often",
        status="in_progress",
        attempt=cap,
        lease_until=datetime.now(UTC) - timedelta(seconds=1),
    )
    overdue = insert_job(
        db, model=NO_WORKERS, text="too late", deadline=datetime.now(UTC) - timedelta(seconds=1)
    )
    failed = finished(client, lost, timeout=20)
    assert failed.status == "failed" and failed.error.code == "server_error"
    assert f"lost {cap} times" in failed.error.message
    expired = finished(client, overdue, timeout=20)
    assert expired.status == "failed" and "deadline" in expired.error.message
    assert job(db, overdue).status == "expired"
    assert usage_rows(db, lost) == [] and usage_rows(db, overdue) == []  # never billed


def test_expiry_mid_generation_keeps_the_output(client: openai.OpenAI, db: Any, stack: Any) -> None:
    resp = client.responses.create(
        model=SIM_SLOW,
        input="too slow",
        service_tier="flex",
        background=True,
        max_output_tokens=400,
    )
    events = redis.Redis.from_url(stack.settings.redis_url)
    eventually(
        lambda: sum(b'"delta"' in f[b"d"] for _, f in events.xrange(f"ev:{resp.id}")),
        lambda n: n >= 3,
        timeout=20,
    )
    with db.session() as s:  # its deadline passes while it runs
        s.execute(
            update(Request)
            .where(Request.id == resp.id)
            .values(deadline=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = finished(client, resp.id, timeout=20)
    assert expired.status == "failed" and "deadline" in expired.error.message
    assert expired.output_text and expired.output[0].status == "incomplete"  # output kept
    assert job(db, resp.id).status == "expired" and usage_rows(db, resp.id) == []


def test_background_flex_survives_a_killed_worker(
    client: openai.OpenAI, stack: Any, db: Any
) -> None:
    resp = client.responses.create(
        model=SIM_SLOW,
        input="survive a crash",
        service_tier="flex",
        background=True,
        max_output_tokens=60,
    )
    events = redis.Redis.from_url(stack.settings.redis_url)

    def streamed() -> str:
        found = [decode(f[b"d"]) for _, f in events.xrange(f"ev:{resp.id}")]
        return "".join(e.text for e in found if isinstance(e, TextDelta))

    eventually(lambda: len(streamed().split()), lambda n: n >= 5, timeout=20)
    stack.kill("sim-slow")  # SIGKILL mid-generation: no clean-up of any kind
    before = streamed()
    assert len(before.split()) < 60
    stack.restart("sim-slow")
    done = finished(client, resp.id, timeout=90)
    # The retry continued the text where the dead worker left it (nothing lost, nothing
    # repeated) up to exactly the requested length, and it was billed exactly once.
    assert done.status == "incomplete" and done.usage.output_tokens == 60
    assert done.output_text.startswith(before) and len(done.output_text) > len(before)
    row = job(db, resp.id)
    assert row.attempt == 2 and row.status == "incomplete"
    [usage] = usage_rows(db, resp.id)
    assert usage.tier == "flex" and usage.output_tokens == 60
    # Its stream reads as one uninterrupted response.
    with client.responses.retrieve(resp.id, stream=True) as replay:
        replayed = list(replay)
    assert [e.sequence_number for e in replayed] == list(range(len(replayed)))
    assert (
        "".join(e.delta for e in replayed if e.type == "response.output_text.delta")
        == done.output_text
    )
    stack.wait_queue(f"flex.{SIM_SLOW}")


def test_realtime_keeps_room_on_an_engine_shared_with_flex(client: openai.OpenAI) -> None:
    """sim-slow serves realtime and flex with one engine (8 threads, 4 slots): a flood of flex
    work must not take every thread, or realtime would wait for a flex generation to end."""
    flood = [
        client.responses.create(
            model=SIM_SLOW,
            input=f"flood {i}",
            service_tier="flex",
            background=True,
            max_output_tokens=40,  # 2 s each at 20 tokens/s
        ).id
        for i in range(12)
    ]
    try:
        time.sleep(0.5)
        start = time.monotonic()
        client.chat.completions.create(
            model=SIM_SLOW, messages=[{"role": "user", "content": "now"}], max_tokens=2
        )
        assert time.monotonic() - start < 0.8
    finally:
        for response_id in flood:
            client.responses.cancel(response_id)
    assert {finished(client, r).status for r in flood} <= {"cancelled", "incomplete"}
