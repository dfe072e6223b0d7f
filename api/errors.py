"""Every error leaves as the OpenAI error envelope, never as an HTML page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException

from inference_platform.errors import PlatformError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    404: ("Unknown request URL. Check the path and method.", "unknown_url"),
    405: ("Method not allowed for this URL.", "method_not_allowed"),
    413: ("The request body is too large.", "request_too_large"),
}


# Routes of another API than OpenAI's answer in that API's envelope: path prefix -> builder.
ENVELOPES: dict[str, Callable[[PlatformError], dict[str, Any]]] = {}


def register_envelope(prefix: str, build: Callable[[PlatformError], dict[str, Any]]) -> None:
    """Errors on paths under ``prefix`` (auth, limits and 404s included) use ``build``."""
    ENVELOPES[prefix] = build


def _envelope(err: PlatformError) -> dict[str, Any]:
    if has_request_context():
        for prefix, build in ENVELOPES.items():
            if request.path.startswith(prefix):
                return build(err)
    return err.envelope()


def error_response(err: PlatformError) -> Response:
    response = jsonify(_envelope(err))
    response.status_code = err.status
    for key, value in err.headers.items():
        response.headers[key] = value
    return response


def _platform_error(err: PlatformError) -> Response:
    return error_response(err)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    message, code = _HTTP_CODES.get(status, (exc.description or exc.name, None))
    return error_response(PlatformError(status, message, code=code))


def _backing_service_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean Postgres, Redis or the broker is away or restarting (connections
    refused, dropped or timing out), not a fault of the request or of this server's code."""
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    return (
        OperationalError,
        InterfaceError,
        DisconnectionError,
        RedisConnectionError,
        RedisTimeoutError,
        BrokerError,
    )


def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, _backing_service_errors()):
        log.warning("backing service unavailable: %s", exc)
        return error_response(
            PlatformError(
                503,
                "A backing service is unavailable; try again shortly.",
                code="service_unavailable",
                headers={"Retry-After": "5"},
            )
        )
    log.exception("unhandled error")
    return error_response(PlatformError(500, "The server had an error processing your request."))


def init_app(app: Flask) -> None:
    app.register_error_handler(PlatformError, _platform_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
