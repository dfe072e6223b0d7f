"""gunicorn settings the ``web`` command loads as a file (not imported as ``api.*``, so the
master process stays free of the app's imports); ``deploy/gunicorn.conf.py`` reuses it.

The worker classes are gunicorn's own, except that requests they cannot read (a 60 KB header,
an over-long request line, a bad chunk) are answered in the OpenAI error envelope instead of an
HTML page, before the Flask app sees them: SDK clients expect JSON they can show.

Each gunicorn worker process writes its Prometheus figures to files in
``PROMETHEUS_MULTIPROC_DIR``; when one exits, its live gauges (open streams) must stop counting.
"""

from __future__ import annotations

import json
import os
from typing import Any

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers.ggevent import GeventWorker
from gunicorn.workers.gthread import ThreadWorker

from inference_platform.errors import PlatformError

# gunicorn's exceptions for a request it could not read, and the status it answers them with;
# the first match wins, any other client error is a 400.
_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (http_errors.LimitRequestHeaders, 431, "request_header_fields_too_large"),
    (http_errors.LimitRequestLine, 414, "request_line_too_long"),
    (http_errors.UnsupportedTransferCoding, 501, "unsupported_transfer_coding"),
    (http_errors.ExpectationFailed, 417, "expectation_failed"),
    (http_errors.ForbiddenProxyRequest, 403, "forbidden"),
)
_CLIENT_ERRORS: tuple[type[Exception], ...] = (
    http_errors.ParseException,
    http_errors.NoMoreData,
)
_REASONS = {400: "Bad Request", 403: "Forbidden", 414: "URI Too Long", 417: "Expectation Failed"}
_REASONS |= {431: "Request Header Fields Too Large", 501: "Not Implemented"}


def error_response(exc: Exception) -> bytes | None:
    """The whole HTTP answer for a request gunicorn could not read; None for anything else
    (gunicorn's own handling then logs it as the server's fault)."""
    found = next(((s, c) for kind, s, c in _STATUS if isinstance(exc, kind)), None)
    if found is None and not isinstance(exc, _CLIENT_ERRORS):
        return None
    status, code = found or (400, "invalid_http_request")
    message = f"The HTTP request could not be read: {exc}"
    body = json.dumps(PlatformError(status, message, code=code).envelope()).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _EnvelopeErrors:
    """Mixin over a gunicorn worker class."""

    log: Any

    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        answer = error_response(exc)
        if answer is None:
            super().handle_error(req, client, addr, exc)  # type: ignore[misc]
            return
        self.log.warning("Invalid request from %s: %s", (addr or ("",))[0], exc)
        try:
            util.write_nonblock(client, answer)
        except OSError:
            self.log.debug("Failed to send error message.")


class EnvelopeThreadWorker(_EnvelopeErrors, ThreadWorker):  # type: ignore[misc]
    """gunicorn's ``gthread`` worker."""


class EnvelopeGeventWorker(_EnvelopeErrors, GeventWorker):  # type: ignore[misc]
    """gunicorn's ``gevent`` worker."""


# gevent: a greenlet per open stream (importing it patches nothing; the worker patches itself
# when it starts); gthread: a thread per open stream.
worker_class = (
    EnvelopeGeventWorker
    if os.environ.get("INFERENCE_WEB_WORKER_CLASS", "gevent") == "gevent"
    else EnvelopeThreadWorker
)


def post_worker_init(worker: Any) -> None:
    """Open the app's connections before it takes requests (see ``Platform.warm``)."""
    platform = worker.wsgi.extensions["platform"]
    try:
        platform.warm()
    except Exception as exc:  # Redis away: requests get 503 until it is back, as they would
        worker.log.warning("could not open connections at start: %s", exc)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
