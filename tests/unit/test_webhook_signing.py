"""Signatures the SDK verifies, payloads it parses, and the receiver guard."""

from __future__ import annotations

import time

import openai
import pytest

from inference_platform.limits.headers import duration
from inference_platform.webhooks import guard, signing
from inference_platform.webhooks.events import payload


def test_sdk_unwrap_verifies_our_signature() -> None:
    secret = signing.new_secret()
    body = payload("evt_1", "batch.completed", "batch_1", int(time.time()))
    headers = signing.headers([secret], "evt_1", body)
    event = openai.OpenAI(api_key="unused").webhooks.unwrap(body, headers, secret=secret)
    assert (event.type, event.data.id, event.object) == ("batch.completed", "batch_1", "event")


def test_any_of_several_secrets_verifies_and_a_stale_timestamp_does_not() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = payload("evt_2", "response.failed", "resp_1", 0)
    headers = signing.headers([new, old], "evt_2", body)
    hooks = openai.OpenAI(api_key="unused").webhooks
    for secret in (old, new):
        hooks.verify_signature(body, headers, secret=secret)
    stale = signing.headers([new], "evt_2", body, timestamp=int(time.time()) - 3600)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        hooks.verify_signature(body, stale, secret=new)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "https://user:pw@8.8.8.8/hook",
        "ftp://8.8.8.8/hook",
    ],
)
def test_guard_refuses_private_or_insecure_receivers(url: str) -> None:
    with pytest.raises(guard.UnsafeReceiver):
        guard.check(url, allow_insecure=False)


def test_guard_allows_public_https_and_in_development_loopback() -> None:
    guard.check("https://8.8.8.8/hook", allow_insecure=False)
    guard.check("http://127.0.0.1:9000/hook", allow_insecure=True)
    with pytest.raises(guard.UnsafeReceiver):
        guard.check("file:///etc/passwd", allow_insecure=True)


def test_reset_durations_read_like_openais() -> None:
    assert [duration(s) for s in (0.02, 1, 12, 72.5, 360)] == [
        "20ms",
        "1s",
        "12s",
        "1m12.5s",
        "6m0s",
    ]
