"""Flex mode: each call a background ``service_tier: "flex"`` Response, polled to its end.

A background response is durable on the server: a dropped connection or a restarted API host
loses nothing, and the caller is answered when polling sees it finish. Polls start fast and
back off to ``poll_interval_seconds``, so short jobs are not held back by a long interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import openai

from inference_platform.autobatcher import events
from inference_platform.autobatcher.config import Settings
from inference_platform.autobatcher.errors import ClientClosedError, RequestCancelledError
from inference_platform.autobatcher.events import Emitter
from inference_platform.autobatcher.wire import LineResult, retry_rate_limits

log = logging.getLogger(__name__)

FIRST_POLL_SECONDS = 0.25
RUNNING = ("queued", "in_progress")
TRANSIENT = (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)

# POST /responses as the SDK's plain client sends it (not taken over), returning the raw JSON.
CreateResponse = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class FlexEngine:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        create: CreateResponse,
        settings: Settings,
        emit: Emitter,
    ) -> None:
        self._client = client
        self._create = create
        self._settings = settings
        self._emit = emit
        self._live: dict[asyncio.Task[LineResult], str | None] = {}  # task -> response id
        self._closed = False
        self._cancelling = False

    async def call(self, body: dict[str, Any]) -> LineResult:
        """The finished response for a Responses body, as a direct blocking call returns it."""
        if self._closed:
            raise ClientClosedError("the client is closed", code="client_closed")
        task = asyncio.get_running_loop().create_task(self._run(body))
        self._live[task] = None
        task.add_done_callback(self._live.pop)
        return await task

    async def _run(self, body: dict[str, Any]) -> LineResult:
        me = asyncio.current_task()
        body = {**body, "background": True, "service_tier": "flex"}
        response_id: str | None = None
        try:
            created = await retry_rate_limits(
                lambda: self._create(body),
                max_retries=self._client.max_retries,
                default_wait=self._settings.poll_interval_seconds,
                on_wait=lambda s: self._emit(events.RATE_LIMITED, on="flex", wait=s),
            )
            response_id = str(created["id"])
            if me is not None:
                self._live[me] = response_id
            self._emit(events.FLEX_SUBMITTED, response_id=response_id, model=body.get("model"))
            final = await self._poll(created)
        except asyncio.CancelledError:
            if not self._closed:
                raise
            what = "cancelled its flex response" if self._cancelling else "stopped waiting"
            raise ClientClosedError(
                f"the client closed and {what}", code="client_closed", response_id=response_id
            ) from None
        self._emit(events.FLEX_DONE, response_id=response_id, status=final.get("status"))
        if final.get("status") == "cancelled":
            raise RequestCancelledError(
                f"response {response_id} was cancelled", code="cancelled", response_id=response_id
            )
        return LineResult(200, final, None)

    async def _poll(self, response: dict[str, Any]) -> dict[str, Any]:
        delay = min(FIRST_POLL_SECONDS, self._settings.poll_interval_seconds)
        while response.get("status") in RUNNING:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.poll_interval_seconds)
            try:
                raw = await self._client.responses.with_raw_response.retrieve(str(response["id"]))
            except TRANSIENT as exc:
                log.warning("autobatcher: polling %s failed (%s); retrying", response["id"], exc)
                continue
            response = raw.http_response.json()
        return response

    async def close(self, cancel: bool) -> int:
        self._closed, self._cancelling = True, cancel
        live = dict(self._live)
        if cancel:
            await asyncio.gather(*(self._cancel(rid) for rid in live.values() if rid))
        for task in live:
            task.cancel()
        await asyncio.gather(*live, return_exceptions=True)
        return len(live)

    async def _cancel(self, response_id: str) -> None:
        with contextlib.suppress(openai.APIError, TimeoutError):
            async with asyncio.timeout(10):
                await self._client.responses.cancel(response_id)
