"""Webhooks managed with the SDK's ``client.webhooks`` and verified by its ``unwrap``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import SIM
from tests.helpers import batch_finished, chat_line, eventually, finished, submit


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers with ``statuses`` in turn (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, event_type: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b in self.received if json.loads(b)["type"] == event_type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_batch_completed_reaches_a_receiver_that_verifies_it_with_the_sdk(
    client: openai.OpenAI, receiver: Receiver
) -> None:
    endpoint = client.webhooks.create(
        name="batches", url=receiver.url, event_types=["batch.completed", "batch.failed"]
    )
    assert endpoint.signing_secret.startswith("whsec_")
    assert endpoint.signing_secret_hint and endpoint.signing_secret_hint.endswith(
        endpoint.signing_secret[-4:]
    )
    receiver.statuses = [500]  # the first try fails: the delivery is retried
    try:
        batch = submit(client, [chat_line("a"), chat_line("b")])
        assert batch_finished(client, batch.id).status == "completed"
        deliveries = eventually(
            lambda: receiver.events("batch.completed"), lambda d: len(d) >= 2, what="a retry"
        )
        headers, body = deliveries[-1]
        event = client.webhooks.unwrap(body, headers, secret=endpoint.signing_secret)
        assert event.type == "batch.completed" and event.data.id == batch.id
        assert headers["webhook-id"] == event.id == deliveries[0][0]["webhook-id"]
        with pytest.raises(openai.InvalidWebhookSignatureError):
            client.webhooks.unwrap(body, headers, secret="whsec_" + "A" * 44)
    finally:
        client.webhooks.delete(endpoint.id)


def test_background_response_completed(client: openai.OpenAI, receiver: Receiver) -> None:
    endpoint = client.webhooks.create(
        name="responses", url=receiver.url, event_types=["response.completed"]
    )
    try:
        resp = client.responses.create(model=SIM, input="hi", background=True)
        assert finished(client, resp.id).status == "completed"
        headers, body = eventually(
            lambda: receiver.events("response.completed"), what="a delivery"
        )[0]
        event = client.webhooks.unwrap(body, headers, secret=endpoint.signing_secret)
        assert event.type == "response.completed" and event.data.id == resp.id
    finally:
        client.webhooks.delete(endpoint.id)


def test_endpoint_management_through_the_sdk(
    client: openai.OpenAI, other_client: openai.OpenAI, receiver: Receiver
) -> None:
    created = client.webhooks.create(
        name="managed", url=receiver.url, event_types=["batch.expired"]
    )
    try:
        assert client.webhooks.retrieve(created.id).name == "managed"
        assert created.id in [e.id for e in client.webhooks.list()]
        with pytest.raises(openai.NotFoundError):
            other_client.webhooks.retrieve(created.id)
        assert created.id not in [e.id for e in other_client.webhooks.list()]
        updated = client.webhooks.update(created.id, name="renamed", event_types=["batch.failed"])
        assert (updated.name, updated.event_types) == ("renamed", ["batch.failed"])

        rotated = client.webhooks.rotate_secret(
            created.id, keep_old_secret_active_for_24_hours=True
        )
        assert rotated.signing_secret != created.signing_secret
        result = client.webhooks.test(created.id, event_type="batch.failed")
        assert (result.status_code, result.success) == (200, True)
        headers, body = receiver.received[-1]
        # Both secrets verify while the old one is kept.
        for secret in (rotated.signing_secret, created.signing_secret):
            assert client.webhooks.unwrap(body, headers, secret=secret).type == "batch.failed"
        # Every field of a rotation is optional: a bare POST with no body rotates too.
        bare = httpx.post(
            f"{client.base_url}webhook_endpoints/{created.id}/rotate_secret",
            headers={"Authorization": f"Bearer {client.api_key}"},
        )
        assert bare.status_code == 200, bare.text
        assert bare.json()["signing_secret"] not in (rotated.signing_secret, None)

        with pytest.raises(openai.BadRequestError):
            client.webhooks.create(
                name="x",
                url=receiver.url,
                event_types=["fine_tuning.job.succeeded"],
            )
        assert "batch.completed" in client.webhooks.event_types.list().data
    finally:
        deleted = client.webhooks.delete(created.id)
    assert deleted.deleted and deleted.object == "webhook_endpoint.deleted"
    with pytest.raises(openai.NotFoundError):
        client.webhooks.retrieve(created.id)


def test_an_endpoint_that_keeps_failing_is_disabled(
    client: openai.OpenAI, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 100
    endpoint = client.webhooks.create(
        name="down", url=receiver.url, event_types=["response.completed"]
    )
    try:
        for _ in range(2):  # the tests' settings disable an endpoint after 2 failed deliveries
            resp = client.responses.create(model=SIM, input="hi", background=True)
            finished(client, resp.id)
        eventually(
            lambda: client.webhooks.retrieve(endpoint.id).model_extra or {},
            lambda extra: extra.get("status") == "disabled",
            timeout=40,
            what="the endpoint disabled",
        )
        # 2 deliveries x (first try + 3 retries), none more once disabled.
        assert len(receiver.events("response.completed")) == 8
        assert client.webhooks.update(endpoint.id, name="up again").model_extra == {
            "status": "enabled"
        }
    finally:
        client.webhooks.delete(endpoint.id)
