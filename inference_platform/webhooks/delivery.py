"""Sending recorded deliveries, from the control role: at least once, with retries.

A delivery is claimed by moving its next attempt past the send's timeout (so a control worker
that dies mid-send leaves it to be sent again), sent signed, then marked delivered on 2xx or
given its next attempt from the retry schedule. A delivery that uses up the schedule fails;
an endpoint whose deliveries fail ``webhook_disable_after`` times in a row is disabled.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from inference_platform.db.models import WebhookDelivery, WebhookEndpoint
from inference_platform.platform import Platform
from inference_platform.webhooks import guard, signing
from inference_platform.webhooks.events import payload

log = logging.getLogger(__name__)

BATCH_SIZE = 32
SENDERS = 8

_CLAIM = text(
    """
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => :lease)
    FROM (
        SELECT id FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at
        LIMIT :n
        FOR UPDATE SKIP LOCKED
    ) due
    WHERE d.id = due.id
    RETURNING d.id
    """
)


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    attempt: int
    endpoint_id: str
    url: str
    keys: list[str]
    disabled: bool
    message_id: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver_due(platform: Platform) -> int:
    """Send what is due; returns how many were attempted."""
    attempts = _claim(platform)
    if not attempts:
        return 0
    with ThreadPoolExecutor(max_workers=min(SENDERS, len(attempts))) as pool:
        outcomes = list(pool.map(lambda a: _send(platform, a), attempts))
    for attempt, outcome in zip(attempts, outcomes, strict=True):
        _record(platform, attempt, outcome)
    return len(attempts)


def _claim(platform: Platform) -> list[Attempt]:
    lease = platform.settings.webhook_timeout_seconds + 30
    with platform.db.session() as s:
        ids = [row[0] for row in s.execute(_CLAIM, {"lease": lease, "n": BATCH_SIZE})]
        if not ids:
            return []
        rows = s.execute(
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id.in_(ids))
        ).all()
        now = datetime.now(UTC)
        return [
            Attempt(
                delivery_id=d.id,
                attempt=d.attempts,
                endpoint_id=e.id,
                url=e.url,
                keys=signing_keys(e, now),
                disabled=e.disabled_at is not None,
                message_id=d.event_id,
                body=payload(d.event_id, d.event_type, d.object_id, int(d.created_at.timestamp())),
            )
            for d, e in rows
        ]


def signing_keys(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    keys = [endpoint.secret]
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and until > now:
        keys.append(endpoint.previous_secret)
    return keys


def post(platform: Platform, url: str, keys: list[str], message_id: str, body: bytes) -> Outcome:
    """One signed POST to a receiver that passes the guard; never follows redirects."""
    settings = platform.settings
    try:
        guard.check(url, allow_insecure=settings.webhook_allow_insecure)
        response = httpx.post(
            url,
            content=body,
            headers=signing.headers(keys, message_id, body),
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
        )
    except guard.UnsafeReceiver as exc:
        return Outcome(None, str(exc))
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
    return Outcome(response.status_code, None if response.is_success else response.text[:200])


def _send(platform: Platform, attempt: Attempt) -> Outcome:
    if attempt.disabled:
        return Outcome(None, "the endpoint is disabled")
    return post(platform, attempt.url, attempt.keys, attempt.message_id, attempt.body)


def _record(platform: Platform, attempt: Attempt, outcome: Outcome) -> None:
    delays = platform.settings.webhook_retry_delays()
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
    }
    endpoint = update(WebhookEndpoint).where(WebhookEndpoint.id == attempt.endpoint_id)
    with platform.db.session() as s:
        if outcome.ok:
            values.update(status="delivered", delivered_at=now)
            s.execute(endpoint.values(failed_deliveries=0))
        elif attempt.attempt <= len(delays) and not attempt.disabled:
            values["next_attempt_at"] = now + timedelta(seconds=delays[attempt.attempt - 1])
        else:
            values["status"] = "failed"
            if not attempt.disabled:
                _count_failure(platform, s, attempt.endpoint_id, now)
        s.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == attempt.delivery_id,
                WebhookDelivery.attempts == attempt.attempt,
            )
            .values(**values)
        )
    if not outcome.ok:
        log.info(
            "webhook %s to %s: attempt %d failed (%s)",
            attempt.message_id,
            attempt.url,
            attempt.attempt,
            outcome.error or outcome.status_code,
        )


def _count_failure(platform: Platform, s: Session, endpoint_id: str, now: datetime) -> None:
    failed = s.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(failed_deliveries=WebhookEndpoint.failed_deliveries + 1)
        .returning(WebhookEndpoint.failed_deliveries)
    ).scalar()
    if failed is not None and failed >= platform.settings.webhook_disable_after:
        s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.disabled_at.is_(None))
            .values(disabled_at=now)
        )
        log.warning("webhook endpoint %s disabled after %d failed deliveries", endpoint_id, failed)
