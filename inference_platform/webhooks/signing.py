"""Standard Webhooks signatures: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``
(``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` keyed by the secret's bytes after
``whsec_``), exactly what ``openai.OpenAI().webhooks.unwrap`` checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def hint(secret: str) -> str:
    """Enough to tell two secrets apart, never enough to sign."""
    return f"{PREFIX}…{secret[-4:]}"


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(
    keys: list[str], message_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """Headers of one delivery, signed with every secret in ``keys`` (during a rotation that
    keeps the old secret, the receiver may hold either)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "user-agent": "inference-platform-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(signature(k, message_id, ts, body) for k in keys),
    }
