"""OpenAI's Conversations API through the official ``openai`` SDK, ``conversation`` on
Responses in every tier, and the Agents SDK keeping its session in a conversation."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import SIM
from tests.helpers import batch_finished, finished, submit
from tests.stack import Stack

pytestmark = pytest.mark.e2e


def _texts(items: Any) -> list[tuple[str, str]]:
    """(role, text) of each message item."""
    out = []
    for item in items:
        assert item.type == "message", item
        out.append((item.role, "".join(part.text for part in item.content)))
    return out


def test_conversation_crud_and_items(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    conv = client.conversations.create(
        items=[{"role": "user", "content": "first"}, {"role": "assistant", "content": "second"}],
        metadata={"topic": "tests"},
    )
    assert conv.id.startswith("conv_") and conv.object == "conversation"
    assert conv.metadata == {"topic": "tests"}
    assert client.conversations.retrieve(conv.id).created_at == conv.created_at
    updated = client.conversations.update(conv.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"}

    added = client.conversations.items.create(
        conv.id, items=[{"type": "message", "role": "user", "content": "third"}]
    )
    assert len(added.data) == 1 and added.data[0].id.startswith("msg_")
    newest_first = list(client.conversations.items.list(conv.id))
    assert _texts(newest_first) == [("user", "third"), ("assistant", "second"), ("user", "first")]
    # Paged one at a time by the SDK, oldest first.
    paged = list(client.conversations.items.list(conv.id, order="asc", limit=1))
    assert [i.id for i in paged] == [i.id for i in reversed(newest_first)]
    one = client.conversations.items.retrieve(newest_first[1].id, conversation_id=conv.id)
    assert _texts([one]) == [("assistant", "second")]
    back = client.conversations.items.delete(newest_first[1].id, conversation_id=conv.id)
    assert back.id == conv.id
    assert len(list(client.conversations.items.list(conv.id))) == 2

    # Another tenant sees none of it.
    for call in (
        lambda: other_client.conversations.retrieve(conv.id),
        lambda: other_client.conversations.items.list(conv.id),
        lambda: other_client.conversations.delete(conv.id),
        lambda: other_client.responses.create(model=SIM, input="x", conversation=conv.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()

    gone = client.conversations.delete(conv.id)
    assert gone.deleted and gone.object == "conversation.deleted"
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_responses_in_a_conversation_every_tier(client: openai.OpenAI) -> None:
    conv = client.conversations.create(items=[{"role": "system", "content": "Be brief."}])
    first = client.responses.create(model=SIM, input="one", conversation=conv.id)
    assert first.conversation is not None and first.conversation.id == conv.id
    # The next response sees the conversation so far: its prompt is longer.
    second = client.responses.create(model=SIM, input="one", conversation={"id": conv.id})
    assert second.usage.input_tokens > first.usage.input_tokens
    with client.responses.stream(model=SIM, input="three", conversation=conv.id) as stream:
        streamed = stream.get_final_response()
    flex = client.responses.create(
        model=SIM, input="four", conversation=conv.id, service_tier="flex"
    )
    background = client.responses.create(
        model=SIM, input="five", conversation=conv.id, background=True
    )
    assert finished(client, background.id).status == "completed"
    items = _texts(client.conversations.items.list(conv.id, order="asc", limit=100))
    assert items == [
        ("system", "Be brief."),
        ("user", "one"),
        ("assistant", first.output_text),
        ("user", "one"),
        ("assistant", second.output_text),
        ("user", "three"),
        ("assistant", streamed.output_text),
        ("user", "four"),
        ("assistant", flex.output_text),
        ("user", "five"),
        ("assistant", client.responses.retrieve(background.id).output_text),
    ]
    # A response's own input items are only what it was sent.
    assert _texts(client.responses.input_items.list(second.id)) == [("user", "one")]


def test_conversation_errors(client: openai.OpenAI, stack: Stack, api_key: str) -> None:
    first = client.responses.create(model=SIM, input="x")
    conv = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model=SIM, input="y", conversation=conv.id, previous_response_id=first.id
        )
    assert err.value.param == "conversation"
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model=SIM, input="y", conversation="conv_nope")
    assert missing.value.param == "conversation"
    url = f"{stack.base_url}/conversations"
    headers = {"Authorization": f"Bearer {api_key}"}
    bad: list[tuple[str, str, Any]] = [
        ("POST", url, {"items": [{"type": "image"}]}),
        ("POST", url, {"items": [{"role": "user", "content": "x"}] * 21}),
        ("POST", url, {"metadata": {"k": 1}}),
        ("POST", url, {"bogus": 1}),
        ("POST", f"{url}/{conv.id}", {}),
        ("POST", f"{url}/{conv.id}/items", {"items": []}),
        ("POST", f"{url}/{conv.id}/items", {"items": "x"}),
        ("GET", f"{url}/{conv.id}/items?limit=0", None),
        ("GET", f"{url}/{conv.id}/items?after=nope", None),
        ("GET", f"{url}/{conv.id}/items?order=up", None),
        ("GET", f"{url}/{conv.id}/items/x?include=y", None),
    ]
    for method, where, body in bad:
        response = httpx.request(method, where, json=body, headers=headers, timeout=30)
        assert response.status_code == 400, (where, body, response.text)
        assert set(response.json()["error"]) >= {"message", "type", "param"}
    for where in (f"{url}/conv_nope", f"{url}/{conv.id}/items/msg_nope"):
        response = httpx.get(where, headers=headers, timeout=30)
        assert response.status_code == 404 and response.json()["error"]["message"]
    # A batch line runs on its own later: it cannot continue a conversation.
    line = {
        "custom_id": "c1",
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": SIM, "input": "x", "conversation": conv.id},
    }
    bad = batch_finished(client, submit(client, [line], endpoint="/v1/responses").id)
    assert bad.status == "failed" and bad.errors.data[0].param == "body.conversation"


def test_agents_sdk_session_in_a_conversation(stack: Stack, api_key: str) -> None:
    """The Agents SDK keeps its session in a conversation (OpenAIConversationsSession) and
    runs its model over Responses, unchanged but for the base URL."""
    agents = pytest.importorskip("agents")
    from agents.memory import OpenAIConversationsSession

    agents.set_tracing_disabled(True)  # no trace export: nothing outside is reachable

    async def run() -> tuple[list[Any], list[Any], str]:
        client = openai.AsyncOpenAI(base_url=stack.base_url, api_key=api_key, max_retries=0)
        try:
            session = OpenAIConversationsSession(openai_client=client)
            agent = agents.Agent(
                name="echo",
                instructions="Answer briefly.",
                # The simulated model writes until the server's own limit: a completed turn
                # (a client-set limit would make it incomplete, which the SDK refuses).
                model=agents.OpenAIResponsesModel(model=SIM, openai_client=client),
            )
            first = await agents.Runner.run(agent, "Hello there", session=session)
            second = await agents.Runner.run(agent, "And again", session=session)
            items = await session.get_items()
            stored = [i async for i in client.conversations.items.list(session.session_id)]
            return items, [first, second, stored], session.session_id
        finally:
            await client.close()

    items, (first, second, stored), conversation_id = asyncio.run(run())
    assert conversation_id.startswith("conv_")
    roles = [item.get("role") for item in items]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert len(stored) == 4
    texts = [
        "".join(part["text"] for part in item["content"])
        if isinstance(item["content"], list)
        else item["content"]
        for item in items
    ]
    assert texts[0] == "Hello there" and texts[2] == "And again"
    assert texts[1] == first.final_output and texts[3] == second.final_output
    # The second turn was run with the first one before it.
    assert second.raw_responses[0].usage.input_tokens > first.raw_responses[0].usage.input_tokens


def test_agents_sdk_with_a_server_side_conversation(
    client: openai.OpenAI, stack: Stack, api_key: str
) -> None:
    """``Runner.run(..., conversation_id=...)``: the SDK sends only the new input with
    ``conversation`` and the server keeps the turns."""
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(True)
    conv = client.conversations.create()

    async def run() -> list[Any]:
        aclient = openai.AsyncOpenAI(base_url=stack.base_url, api_key=api_key, max_retries=0)
        try:
            agent = agents.Agent(
                name="echo",
                model=agents.OpenAIResponsesModel(model=SIM, openai_client=aclient),
            )
            first = await agents.Runner.run(agent, "Hello there", conversation_id=conv.id)
            second = await agents.Runner.run(agent, "And again", conversation_id=conv.id)
            return [first, second]
        finally:
            await aclient.close()

    first, second = asyncio.run(run())
    assert second.raw_responses[0].usage.input_tokens > first.raw_responses[0].usage.input_tokens
    items = _texts(client.conversations.items.list(conv.id, order="asc"))
    assert items == [
        ("user", "Hello there"),
        ("assistant", first.final_output),
        ("user", "And again"),
        ("assistant", second.final_output),
    ]
