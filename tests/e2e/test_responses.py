"""The Responses API through the official openai SDK: create, retrieve, stream and resume,
background work, cancel, delete, input items, chaining and bad input."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
import redis

from inference_platform.db.models import Request
from tests.conftest import DEMO, SIM, SIM_SLOW
from tests.helpers import finished, usage_rows

pytestmark = pytest.mark.e2e


def channel(stack: Any) -> redis.Redis:
    return redis.Redis.from_url(stack.settings.redis_url)


def first_delta(client: openai.OpenAI, response_id: str, timeout: float = 20) -> None:
    """Follow a response's stream until its first text arrives."""
    with client.responses.retrieve(response_id, stream=True, timeout=timeout) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                return
    raise AssertionError("the stream ended without any text")


def sim_prompt_words(turns: list[tuple[str, str]]) -> int:
    """Prompt tokens of the simulated engine: words of ``role: content`` lines + ``assistant:``."""
    return sum(1 + len(content.split()) for _role, content in turns) + 1


def test_create_retrieve_input_items_and_delete(client: openai.OpenAI, db: Any) -> None:
    resp = client.responses.create(
        model=SIM,
        instructions="Answer briefly.",
        input=[
            {"role": "user", "content": "first question"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "an answer", "annotations": []}],
            },
            {"role": "developer", "content": [{"type": "input_text", "text": "be kind"}]},
            {"role": "user", "content": "second question"},
        ],
        metadata={"purpose": "test"},
        temperature=0.5,
    )
    assert resp.id.startswith("resp_") and resp.object == "response"
    assert resp.status == "completed" and resp.error is None and resp.incomplete_details is None
    assert resp.model == SIM and resp.service_tier == "default" and resp.store is True
    assert resp.background is False and resp.metadata == {"purpose": "test"}
    assert resp.temperature == 0.5 and resp.top_p == 1.0 and resp.instructions == "Answer briefly."
    assert resp.tools == [] and resp.tool_choice == "auto" and resp.parallel_tool_calls is True
    [item] = resp.output
    assert item.type == "message" and item.id.startswith("msg_") and item.role == "assistant"
    assert item.status == "completed" and item.content[0].type == "output_text"
    assert resp.output_text == item.content[0].text and resp.output_text
    # Nothing limited the output, so the server default did (512) and it still "completed".
    assert resp.usage.output_tokens == 512 == len(resp.output_text.split())
    assert resp.usage.input_tokens == sim_prompt_words(
        [
            ("system", "Answer briefly."),
            ("user", "first question"),
            ("assistant", "an answer"),
            ("system", "be kind"),
            ("user", "second question"),
        ]
    )
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert resp.usage.input_tokens_details.cached_tokens == 0
    assert resp.usage.output_tokens_details.reasoning_tokens == 0
    assert resp.completed_at is not None

    again = client.responses.retrieve(resp.id)
    assert again.model_dump() == resp.model_dump()

    items = client.responses.input_items.list(resp.id)
    assert [i.role for i in items.data] == ["user", "developer", "assistant", "user"]  # desc
    assert all(i.id for i in items.data) and items.has_more is False
    asc = client.responses.input_items.list(resp.id, order="asc", limit=2)
    assert [i.role for i in asc.data] == ["user", "assistant"] and asc.has_more is True
    assert asc.first_id == asc.data[0].id and asc.last_id == asc.data[1].id
    rest = client.responses.input_items.list(resp.id, order="asc", after=asc.last_id)
    assert [i.role for i in rest.data] == ["developer", "user"] and rest.has_more is False
    assert rest.data[1].content[0].text == "second question"
    # Auto-pagination follows after/has_more.
    assert len(list(client.responses.input_items.list(resp.id, limit=1))) == 4

    deleted = client.responses.delete(resp.id)
    assert deleted is None  # SDK v3 ignores the body; the server sent {id, deleted: true}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(resp.id)
    [row] = usage_rows(db, resp.id)
    assert row.tier == "realtime" and row.endpoint == "/v1/responses"


def test_max_output_tokens_makes_it_incomplete(client: openai.OpenAI) -> None:
    resp = client.responses.create(model=SIM, input="count", max_output_tokens=5)
    assert resp.status == "incomplete" and resp.incomplete_details.reason == "max_output_tokens"
    assert resp.output[0].status == "incomplete" and resp.usage.output_tokens == 5
    assert resp.max_output_tokens == 5
    demo = client.responses.create(model=DEMO, input="Hello", max_output_tokens=6, temperature=0)
    assert demo.output_text and 0 < demo.usage.output_tokens <= 6


def test_store_false_is_not_retrievable(client: openai.OpenAI) -> None:
    resp = client.responses.create(model=SIM, input="x", max_output_tokens=3, store=False)
    assert resp.store is False and resp.status == "incomplete"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)


def test_stream_helper_and_replay(client: openai.OpenAI, stack: Any) -> None:
    with client.responses.stream(model=SIM, input="stream this") as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.status == "completed" and final.output_text == deltas
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    # The streamed response was stored: retrieve it, and replay its stream identically.
    assert client.responses.retrieve(final.id).output_text == deltas
    with client.responses.retrieve(final.id, stream=True) as replay:
        again = [(e.type, e.sequence_number) for e in replay]
    assert again == [(e.type, e.sequence_number) for e in events]
    # Once the event stream has expired, the events are rebuilt from the stored object.
    channel(stack).delete(f"ev:{final.id}")
    with client.responses.retrieve(final.id, stream=True, starting_after=1) as rebuilt:
        late = list(rebuilt)
    assert late[0].sequence_number == 2 and late[-1].type == "response.completed"
    assert "".join(e.delta for e in late if e.type == "response.output_text.delta") == deltas


def test_previous_response_id_chaining(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=SIM, instructions="Be brief.", input="first turn", max_output_tokens=4
    )
    second = client.responses.create(
        model=SIM, previous_response_id=first.id, input="second turn", max_output_tokens=4
    )
    assert second.previous_response_id == first.id
    # The earlier input and output are the prefix; its instructions are not carried over.
    assert second.usage.input_tokens == sim_prompt_words(
        [
            ("user", "first turn"),
            ("assistant", first.output_text),
            ("user", "second turn"),
        ]
    )
    items = client.responses.input_items.list(second.id)
    assert [i.content[0].text for i in items.data] == ["second turn"]
    with pytest.raises(openai.NotFoundError) as err:
        other_client.responses.create(
            model=SIM, previous_response_id=first.id, input="steal", max_output_tokens=4
        )
    assert err.value.param == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(
            model=SIM, previous_response_id="resp_missing", input="x", max_output_tokens=4
        )


def test_background_polling(client: openai.OpenAI, db: Any) -> None:
    resp = client.responses.create(
        model=SIM_SLOW, input="background please", background=True, max_output_tokens=10
    )
    assert resp.background is True and resp.status in ("queued", "in_progress")
    assert resp.output == [] and resp.usage is None
    done = finished(client, resp.id)
    assert done.status == "incomplete" and done.usage.output_tokens == 10
    assert len(done.output_text.split()) == 10 and done.service_tier == "default"
    [row] = usage_rows(db, resp.id)
    assert row.tier == "realtime" and row.output_tokens == 10
    with db.session() as s:
        job = s.get(Request, resp.id)
        assert job is not None and job.attempt == 1 and job.status == "incomplete"


def test_background_stream_resume(client: openai.OpenAI) -> None:
    stream = client.responses.create(
        model=SIM_SLOW, input="resume me", background=True, stream=True, max_output_tokens=30
    )
    seen = []
    for event in stream:
        seen.append(event)
        if event.type == "response.output_text.delta" and len(seen) >= 8:
            break
    stream.close()  # the connection drops; background work carries on
    response_id = seen[0].response.id
    assert seen[0].type == "response.created" and seen[0].response.status == "queued"
    last = seen[-1].sequence_number
    with client.responses.retrieve(response_id, stream=True, starting_after=last) as rest:
        resumed = list(rest)
    assert resumed[0].sequence_number == last + 1
    assert [e.sequence_number for e in resumed] == list(range(last + 1, last + 1 + len(resumed)))
    assert resumed[-1].type == "response.incomplete"
    text = "".join(e.delta for e in seen + resumed if e.type == "response.output_text.delta")
    final = client.responses.retrieve(response_id)
    assert final.status == "incomplete" and final.output_text == text
    assert len(text.split()) == 30
    # The SDK's helper resumes the same way (it filters on starting_after itself).
    with client.responses.stream(response_id=response_id, starting_after=last) as helper:
        assert [e.sequence_number for e in helper] == [e.sequence_number for e in resumed]


def test_cancel_frees_the_engine_slot(client: openai.OpenAI, stack: Any, db: Any) -> None:
    """sim-slow runs 4 generations at once: fill them, queue a 5th, cancel one of the 4."""
    create = dict(model=SIM_SLOW, background=True, max_output_tokens=2000)
    long = [client.responses.create(input=f"long {i}", **create) for i in range(4)]
    try:
        for resp in long:
            first_delta(client, resp.id)
        waiting = client.responses.create(input="waiting", **create)
        long.append(waiting)
        r = channel(stack)
        time.sleep(1.0)  # it must still be waiting for a slot: no text yet
        assert not any(b'"delta"' in f[b"d"] for _, f in r.xrange(f"ev:{waiting.id}"))
        cancelled = client.responses.cancel(long[0].id)
        assert cancelled.status == "cancelled" and cancelled.output_text  # partial output kept
        start = time.monotonic()
        first_delta(client, waiting.id, timeout=10)
        assert time.monotonic() - start < 5
        again = client.responses.cancel(long[0].id)  # idempotent
        assert again.status == "cancelled" and again.output_text == cancelled.output_text
    finally:
        for resp in long:
            client.responses.cancel(resp.id)
    [row] = usage_rows(db, long[0].id)
    assert 0 < row.output_tokens < 2000  # the partial output is billed once
    assert client.responses.retrieve(long[1].id).status == "cancelled"


def test_cancel_and_failures(client: openai.OpenAI) -> None:
    plain = client.responses.create(model=SIM, input="x", max_output_tokens=2)
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(plain.id)  # only background responses can be cancelled
    done = client.responses.create(model=SIM, input="x", max_output_tokens=2, background=True)
    done = finished(client, done.id)
    assert client.responses.cancel(done.id).status == done.status  # already final: unchanged
    # A prompt too long for the model fails the background response, with its reason.
    huge = client.responses.create(model=SIM, input="word " * 9000, background=True)
    failed = finished(client, huge.id)
    assert failed.status == "failed" and failed.error.code == "invalid_prompt"
    assert "context length" in failed.error.message and failed.output == []


def test_bad_input(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="no-such-model", input="x")
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model=SIM, input="x", service_tier="bogus")  # type: ignore[arg-type]
    assert bad.value.param == "service_tier"
    for value in (-1, 0):
        with pytest.raises(openai.BadRequestError) as bad:
            client.responses.create(model=SIM, input="x", max_output_tokens=value)
        assert bad.value.param == "max_output_tokens" and bad.value.code == "invalid_value"
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(
            model=SIM,
            input=[{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}],
        )
    assert bad.value.param.startswith("input[0]")
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model=SIM, input="x", tools=[{"type": "web_search"}])
    assert bad.value.param == "tools[0]"
    with pytest.raises(openai.BadRequestError) as bad:  # auto, and no tool parser for SIM
        client.responses.create(
            model=SIM, input="x", tools=[{"type": "function", "name": "f", "parameters": {}}]
        )
    assert bad.value.param == "tool_choice"
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model=SIM, input="x", background=True, store=False)
    assert bad.value.param == "store"
    mine = client.responses.create(model=SIM, input="mine", max_output_tokens=2, background=True)
    for call in (
        lambda: other_client.responses.retrieve(mine.id),
        lambda: other_client.responses.cancel(mine.id),
        lambda: other_client.responses.delete(mine.id),
        lambda: other_client.responses.input_items.list(mine.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert finished(client, mine.id).status == "incomplete"  # untouched by the other tenant


def test_function_tools_without_the_engine_or_a_parser_get_a_clear_400(
    client: openai.OpenAI,
) -> None:
    """A forced call needs structured outputs (vllm engine), ``auto`` a tool parser in the
    catalog; the transformers demo has neither, and says so naming the field."""
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model=DEMO, input="hi", tools=[tool], tool_choice="required", max_output_tokens=8
        )
    assert err.value.param == "tool_choice" and "transformers engine" in str(err.value)
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=DEMO, input="hi", tools=[tool], max_output_tokens=8)
    assert err.value.param == "tool_choice" and "no tool parser configured" in str(err.value)
    # Tools turned off are served as text.
    off = client.responses.create(
        model=DEMO, input="hi", tools=[tool], tool_choice="none", max_output_tokens=4
    )
    assert off.status in ("completed", "incomplete") and off.output[0].type == "message"
    assert off.tools[0].name == "get_weather" and off.tool_choice == "none"
