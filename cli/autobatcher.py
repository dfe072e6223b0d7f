"""``inference-platform autobatcher serve``: a local OpenAI-compatible proxy that batches.

Programs in any language point their OpenAI client at it (``base_url=http://127.0.0.1:8080/v1``);
it answers ``POST /v1/chat/completions``, ``/v1/completions`` and ``/v1/responses`` through
the autobatcher (Batch API or flex), one HTTP answer per request, and prints its lifecycle
events on stdout as JSON lines. The upstream URL and key come from ``--base-url`` /
``--api-key`` or, as for the SDK, ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``.

aiohttp serves it: every waiting request is a coroutine on one event loop with the autobatcher,
so thousands of callers held for a batch cost no threads (a WSGI server such as Flask's would
hold one thread per waiting caller, for hours). It is the ``autobatcher`` extra.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from aiohttp import web

    from inference_platform.autobatcher import BatchOpenAI, Event

ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/responses")


def _print_event(event: Event) -> None:
    sys.stdout.write(event.to_json() + "\n")
    sys.stdout.flush()


def _error(status: int, message: str, code: str | None, **headers: str) -> web.Response:
    from aiohttp import web

    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }
    return web.json_response(body, status=status, headers=headers)


async def _forward(client: BatchOpenAI, request: web.Request) -> web.StreamResponse:
    """One generation request through the autobatcher, answered as the upstream would."""
    import httpx2
    import openai
    from aiohttp import web

    from inference_platform.autobatcher import AutobatcherError, StreamingNotSupportedError

    try:
        body = await request.json()
    except ValueError:
        return _error(400, "The body is not valid JSON.", "invalid_json")
    if not isinstance(body, dict):
        return _error(400, "The body must be a JSON object.", "invalid_json")
    path = request.path.removeprefix("/v1")
    try:
        answer = await client.post(path, body=body, cast_to=httpx2.Response)
    except openai.APIStatusError as exc:
        answer = exc.response
    except StreamingNotSupportedError as exc:
        return _error(400, exc.message, exc.code)
    except AutobatcherError as exc:
        # No HTTP answer for this request (its batch failed, expired or was cancelled, or
        # the proxy is closing); tell the client not to retry it blindly into a new batch.
        return _error(500, exc.message, exc.code, **{"x-should-retry": "false"})
    except openai.APIConnectionError as exc:
        return _error(502, f"The upstream API is unreachable: {exc}", "upstream_unreachable")
    headers = {k: v for k, v in answer.headers.items() if k.lower() in ("x-request-id",)}
    return web.Response(
        status=answer.status_code,
        body=answer.content,
        content_type="application/json",
        headers=headers,
    )


def build_app(make_client: Callable[[], BatchOpenAI]) -> web.Application:
    """The proxy; ``make_client()`` builds the autobatcher inside the server's event loop."""
    from aiohttp import web

    app = web.Application(client_max_size=64 * 1024 * 1024)
    clients: list[BatchOpenAI] = []

    async def start(app: web.Application) -> None:
        clients.append(make_client())

    async def stop(app: web.Application) -> None:
        # Before connections close: callers still waiting get their answer (an error) now.
        for client in clients:
            await client.close()

    async def forward(request: web.Request) -> web.StreamResponse:
        return await _forward(clients[0], request)

    async def health(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok", "mode": clients[0].autobatch_settings.mode})

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    for route in ROUTES:
        app.router.add_post(route, forward)
    app.router.add_get("/health", health)
    return app


@click.group()
def autobatcher() -> None:
    """The autobatcher: batch and flex prices for unchanged OpenAI clients."""


@autobatcher.command()
@click.option("--mode", type=click.Choice(["batch", "flex"]), default="batch", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--base-url", default=None, help="Upstream API (default: OPENAI_BASE_URL).")
@click.option("--api-key", default=None, help="Upstream key (default: OPENAI_API_KEY).")
@click.option(
    "--completion-window", default="24h", show_default=True, help="Batch window (batch mode)."
)
@click.option("--batch-size", type=int, default=1000, show_default=True)
@click.option("--batch-window", type=float, default=10.0, show_default=True, help="Seconds.")
@click.option("--poll-interval", type=float, default=5.0, show_default=True, help="Seconds.")
@click.option("--max-concurrent-requests", type=int, default=None)
@click.option("--batch-metadata", multiple=True, metavar="KEY=VALUE")
@click.option(
    "--cancel-on-close/--keep-on-close",
    default=False,
    show_default=True,
    help="On shutdown, cancel the batches and flex responses still running.",
)
def serve(
    mode: str,
    host: str,
    port: int,
    base_url: str | None,
    api_key: str | None,
    completion_window: str,
    batch_size: int,
    batch_window: float,
    poll_interval: float,
    max_concurrent_requests: int | None,
    batch_metadata: tuple[str, ...],
    cancel_on_close: bool,
) -> None:
    """Serve an OpenAI-compatible API that batches what it receives."""
    try:
        from aiohttp import web

        from inference_platform.autobatcher import BatchOpenAI
    except ImportError as exc:
        raise click.ClickException(
            f"the proxy needs the autobatcher extra ({exc.name} is missing): "
            "pip install 'inference-platform[autobatcher]'"
        ) from None
    metadata = {}
    for pair in batch_metadata:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        metadata[key] = value
    options: dict[str, Any] = {"api_key": api_key} if api_key else {}
    if base_url:
        options["base_url"] = base_url

    def make_client() -> BatchOpenAI:
        return BatchOpenAI(
            completion_window=completion_window if mode == "batch" else None,
            batch_size=batch_size,
            batch_window_seconds=batch_window,
            poll_interval_seconds=poll_interval,
            batch_metadata=metadata,
            max_concurrent_requests=max_concurrent_requests,
            on_event=_print_event,
            cancel_on_close=cancel_on_close,
            # A batched call may wait hours; the proxy's own callers set their timeouts.
            timeout=600,
            **options,
        )

    if not (api_key or os.environ.get("OPENAI_API_KEY")):
        raise click.ClickException("no upstream key: pass --api-key or set OPENAI_API_KEY")
    listening = {"event": "listening", "url": f"http://{host}:{port}/v1", "mode": mode}
    sys.stdout.write(json.dumps(listening) + "\n")
    sys.stdout.flush()
    web.run_app(build_app(make_client), host=host, port=port, print=None)


def register(group: click.Group) -> None:
    group.add_command(autobatcher)
