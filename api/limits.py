"""Tenant limits on the way in, OpenAI's rate-limit headers on the way out.

A request that generates (chat, completions, responses, embeddings) takes one request and its
estimated tokens from its tenant's per-minute budgets for its model, and a realtime one also
an in-flight slot, given back when its response (a stream included) is closed. Every ``/v1``
response carries the ``x-ratelimit-*`` headers; refusals are 429 ``rate_limit_exceeded`` with
``Retry-After``, which the SDK's retries honour.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, g, request

from api.context import platform
from inference_platform.endpoints.output_limits import check_output_limit
from inference_platform.endpoints.protocol import MAX_TOKENS_LIMIT, check_json
from inference_platform.limits import quotas
from inference_platform.limits.buckets import Buckets, Decision
from inference_platform.limits.config import ANY_MODEL, LimitBook
from inference_platform.limits.headers import ratelimit_headers, refusal

log = logging.getLogger(__name__)

GENERATING = frozenset(
    (
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/responses",
        "/v1/embeddings",
        "/v1/messages",  # Anthropic's: the same model, max_tokens and service_tier keys
    )
)
# A rough count of a prompt's tokens from its JSON size (about four bytes a token).
BYTES_PER_TOKEN = 4


def _book() -> LimitBook:
    ext = current_app.extensions
    if "limit_book" not in ext:  # built on first use: the app factory connects to nothing
        ext["limit_book"] = LimitBook(platform().db, platform().settings)
    book: LimitBook = ext["limit_book"]
    return book


def _buckets() -> Buckets:
    ext = current_app.extensions
    if "limit_buckets" not in ext:
        ext["limit_buckets"] = Buckets(platform().redis)
    found: Buckets = ext["limit_buckets"]
    return found


def _body() -> dict[str, Any] | None:
    """The JSON body, once it is known to be storable (no NUL, no lone surrogate, not too
    deep): its model and file ids go to Redis and Postgres before the view runs."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        return None  # the view refuses it with a clear message
    if not isinstance(body, dict):
        return None
    check_json(body)  # the same 400, naming the param, that the view would give
    return body


def estimate_tokens(body: dict[str, Any], default_max_tokens: int) -> int:
    """Prompt tokens guessed from the body's size, plus the output the request may ask for."""
    prompt = (request.content_length or 0) // BYTES_PER_TOKEN
    output = default_max_tokens
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(key)
        # Past the schema's bound the view answers 400 naming the field; not ours to refuse.
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TOKENS_LIMIT:
            output = value
            break
    return prompt + output


def _admit() -> None:
    tenant = getattr(g, "owner", None)
    if tenant is None or request.method != "POST":
        return
    if request.path == "/v1/batches":
        _admit_batch(tenant)
        return
    if request.path not in GENERATING:
        return
    body = _body()
    model = body.get("model") if body else None
    if body is None or not isinstance(model, str) or not model:
        return  # the view answers the missing model
    p = platform()
    spec = p.catalog.get(model)
    if spec is not None:
        # A request no budget could ever admit is the client's mistake (400), not a 429
        # that tells it to come back later.
        check_output_limit(spec, body)
    limits = _book().limits(tenant, model)
    flex = body.get("service_tier") == "flex"
    realtime = not flex and body.get("background") is not True
    if flex:
        with p.db.session() as s:
            quotas.check_flex(
                s, tenant, model, limits.queued_flex_requests, p.settings.flex_retry_after_seconds
            )
    decision = _buckets().check(
        tenant,
        model,
        requests_per_minute=limits.requests_per_minute,
        tokens_per_minute=limits.tokens_per_minute,
        tokens=estimate_tokens(body, p.settings.default_max_tokens),
        concurrent=limits.concurrent_requests if realtime else 0,
        slot_ttl=p.settings.request_timeout_seconds + 60,
    )
    g.ratelimit = decision
    g.ratelimit_model = model
    if not decision.allowed:
        raise refusal(decision, tenant, model)


def _admit_batch(tenant: str) -> None:
    body = _body()
    file_id = body.get("input_file_id") if body else None
    if not isinstance(file_id, str):
        return
    p = platform()
    limit = _book().limits(tenant, ANY_MODEL).enqueued_batch_lines
    with p.db.session() as s:
        quotas.check_batch(s, tenant, file_id, limit)


def _report(response: Response) -> Response:
    tenant = getattr(g, "owner", None)
    if tenant is None or not request.path.startswith("/v1"):
        return response
    decision: Decision | None = getattr(g, "ratelimit", None)
    try:
        if decision is None:
            # No budget taken: report the tenant's general budgets as they stand.
            limits = _book().limits(tenant, ANY_MODEL)
            decision = _buckets().check(
                tenant,
                ANY_MODEL,
                requests_per_minute=limits.requests_per_minute,
                tokens_per_minute=limits.tokens_per_minute,
                tokens=0,
                take=False,
            )
        for key, value in ratelimit_headers(decision).items():
            response.headers.setdefault(key, value)
    except Exception as exc:  # headers are advisory; never fail a served request for them
        log.warning("could not report rate limits: %s", exc)
    if decision is not None and decision.slot is not None:
        # Closed after the app context is gone (a stream ends later): bind what it needs now.
        buckets, slot, model = _buckets(), decision.slot, g.ratelimit_model
        g.ratelimit_released = True
        response.call_on_close(lambda: _release(buckets, tenant, model, slot))
    return response


def _release(buckets: Buckets, tenant: str, model: str, slot: str) -> None:
    try:
        buckets.release(tenant, model, slot)
    except Exception as exc:  # the slot lapses on its own after the request timeout
        log.warning("could not release an in-flight slot: %s", exc)


def _teardown(_exc: BaseException | None) -> None:
    decision: Decision | None = getattr(g, "ratelimit", None)
    if decision is not None and decision.slot and not getattr(g, "ratelimit_released", False):
        _release(_buckets(), g.owner, g.ratelimit_model, decision.slot)


def init_app(app: Flask) -> None:
    """Register after authentication (the tenant is known) and before the views."""
    app.before_request(_admit)
    app.after_request(_report)
    app.teardown_request(_teardown)
