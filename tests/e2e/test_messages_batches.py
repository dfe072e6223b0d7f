"""Message Batches through the official ``anthropic`` SDK, to the end: create with inline
requests, retrieve, list, results, cancel and delete, on the platform's own batches."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import DEMO, SIM, SIM_SLOW
from tests.helpers import eventually
from tests.stack import Stack

pytestmark = pytest.mark.e2e


def _client(stack: Stack, key: str) -> anthropic.Anthropic:
    root = stack.base_url.removesuffix("/v1")
    return anthropic.Anthropic(base_url=root, api_key=key, max_retries=0, timeout=60)


@pytest.fixture
def claude(stack: Stack, api_key: str) -> anthropic.Anthropic:
    return _client(stack, api_key)


def _request(custom_id: str, model: str = SIM, max_tokens: int = 4, **extra: Any) -> Any:
    params = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": f"Request {custom_id}"}],
        **extra,
    }
    return {"custom_id": custom_id, "params": params}


def _ended(claude: anthropic.Anthropic, batch_id: str, timeout: float = 60) -> Any:
    def ended() -> Any:
        batch = claude.messages.batches.retrieve(batch_id)
        return batch if batch.processing_status == "ended" else None

    return eventually(ended, timeout=timeout, what=f"message batch {batch_id} to end")


def test_batch_to_the_end(
    claude: anthropic.Anthropic, client: openai.OpenAI, stack: Stack, other_key: str
) -> None:
    requests = [
        _request("a", system="Be brief."),
        _request("b", max_tokens=3, temperature=0.2),
        _request("c", stop_sequences=["zzz"]),
    ]
    batch = claude.messages.batches.create(requests=requests)
    assert batch.type == "message_batch" and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3 and batch.results_url is None
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(86400, abs=5)

    done = _ended(claude, batch.id)
    assert done.request_counts.succeeded == 3 and done.request_counts.processing == 0
    assert done.ended_at is not None and done.results_url
    results = {r.custom_id: r.result for r in claude.messages.batches.results(batch.id)}
    assert sorted(results) == ["a", "b", "c"]
    for result in results.values():
        assert result.type == "succeeded"
        assert result.message.content[0].type == "text" and result.message.content[0].text
        assert result.message.usage.service_tier == "batch"
    assert results["b"].message.usage.output_tokens == 3
    assert results["b"].message.stop_reason == "max_tokens"

    # Listed newest first, paged by the SDK; the same batch runs as an OpenAI batch too.
    listed = [b.id for b in claude.messages.batches.list(limit=1)]
    assert batch.id in listed
    assert client.batches.retrieve(batch.id).status == "completed"

    # Another tenant cannot see, read or delete it.
    other = _client(stack, other_key)
    with pytest.raises(anthropic.NotFoundError):
        other.messages.batches.retrieve(batch.id)
    with pytest.raises(anthropic.NotFoundError):
        other.messages.batches.delete(batch.id)
    assert batch.id not in [b.id for b in other.messages.batches.list()]

    deleted = claude.messages.batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve(batch.id)


def test_cancel_keeps_finished_results(claude: anthropic.Anthropic) -> None:
    requests = [_request(f"r{i}", model=SIM_SLOW, max_tokens=200) for i in range(12)]
    batch = claude.messages.batches.create(requests=requests)
    with pytest.raises(anthropic.BadRequestError):  # not ended yet: nothing to delete
        claude.messages.batches.delete(batch.id)
    time.sleep(1)
    cancelled = claude.messages.batches.cancel(batch.id)
    assert cancelled.processing_status in ("canceling", "ended")
    assert cancelled.cancel_initiated_at is not None
    done = _ended(claude, batch.id)
    counts = done.request_counts
    assert counts.canceled > 0 and counts.processing == 0
    assert counts.canceled + counts.succeeded + counts.errored + counts.expired == 12
    kinds = [r.result.type for r in claude.messages.batches.results(batch.id)]
    assert len(kinds) == 12 and kinds.count("canceled") == counts.canceled


def test_line_errors_and_bad_batches(
    claude: anthropic.Anthropic, stack: Stack, api_key: str
) -> None:
    # A request the engine refuses (its prompt does not fit) errors; the others succeed.
    long = "word " * 9000
    batch = claude.messages.batches.create(
        requests=[
            _request("ok"),
            {
                "custom_id": "too-long",
                "params": {
                    **_request("x")["params"],
                    "messages": [{"role": "user", "content": long}],
                },
            },
        ]
    )
    done = _ended(claude, batch.id)
    assert done.request_counts.succeeded == 1 and done.request_counts.errored == 1
    results = {r.custom_id: r.result for r in claude.messages.batches.results(batch.id)}
    assert results["too-long"].type == "errored"
    assert results["too-long"].error.error.type == "invalid_request_error"

    url = f"{stack.base_url}/messages/batches"
    headers = {"x-api-key": api_key}
    bad = [
        {"requests": []},
        {"requests": [_request("a"), _request("a")]},
        {"requests": [_request("a", model="no-such-model")]},
        {"requests": [_request("a"), _request("b", model=SIM_SLOW)]},
        {"requests": [_request("a", model=DEMO, max_tokens=10**6)]},
        {"requests": [_request("a", stream=True)]},
        {"requests": [{"custom_id": "bad id!", "params": _request("a")["params"]}]},
        {"requests": [{"custom_id": "a", "params": {"model": SIM, "messages": []}}]},
    ]
    for body in bad:
        response = httpx.post(url, json=body, headers=headers, timeout=30)
        assert response.status_code in (400, 404), response.text
        assert response.json()["type"] == "error"
    pending = httpx.get(f"{url}/{batch.id}/results", headers=headers, timeout=30)
    assert pending.status_code == 200  # ended above: its results are there
    for query in ("limit=0", "limit=x", "before_id=a&after_id=b"):
        response = httpx.get(f"{url}?{query}", headers=headers, timeout=30)
        assert response.status_code == 400 and response.json()["type"] == "error"
