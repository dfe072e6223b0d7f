"""``BatchOpenAI`` and ``AsyncOpenAI``: the SDK's async client, with generation calls batched.

They are real ``openai.AsyncOpenAI`` subclasses. The one method overridden on the request path
is ``request``, the point every resource method goes through after the SDK has built the
request: a POST to ``/chat/completions``, ``/completions`` or ``/responses`` is answered by the
batch or flex engine; everything else (files, batches, models, retrieving a response, ...)
goes out untouched. Answers are fed back through the SDK's own response processing, so
``create``, ``.with_raw_response.create`` and ``.with_streaming_response.create`` return what
they return on a direct call, and an error line raises the SDK's exception for its status.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Literal, Self, cast, overload

import httpx2
import openai
from openai._base_client import _AsyncStreamT
from openai._models import FinalRequestOptions
from openai._types import ResponseT

from inference_platform.autobatcher import events
from inference_platform.autobatcher.batches import BatchEngine
from inference_platform.autobatcher.config import Settings
from inference_platform.autobatcher.errors import StreamingNotSupportedError
from inference_platform.autobatcher.events import Emitter, EventHandler
from inference_platform.autobatcher.flex import FlexEngine
from inference_platform.autobatcher.translate import chat_to_response, response_to_chat
from inference_platform.autobatcher.wire import (
    CHAT,
    RESPONSES,
    LineResult,
    body_of,
    route_of,
)

# Set while the autobatcher itself sends a generation request, so it is not taken over again.
_direct: ContextVar[bool] = ContextVar("autobatcher_direct", default=False)


class _Unset(enum.Enum):
    UNSET = enum.auto()


@contextmanager
def _sending_directly() -> Iterator[None]:
    token = _direct.set(True)
    try:
        yield
    finally:
        _direct.reset(token)


class _Autobatch:
    """The state one client and its ``with_options`` copies share."""

    def __init__(self, client: BatchOpenAI, settings: Settings, handler: EventHandler | None):
        self.settings = settings
        self.emit = Emitter(handler)
        self.batch = BatchEngine(client, settings, self.emit)
        self.flex = FlexEngine(client, client._create_response_directly, settings, self.emit)
        limit = settings.max_concurrent_requests
        self.limit = asyncio.Semaphore(limit) if limit else None

    async def close(self) -> None:
        cancel = self.settings.cancel_on_close
        failed = await self.batch.close(cancel) + await self.flex.close(cancel)
        self.emit(events.CLOSED, cancelled=cancel, unanswered=failed)


class BatchOpenAI(openai.AsyncOpenAI):
    """An ``openai.AsyncOpenAI`` whose generation calls go out as Batch API batches.

    ``completion_window`` picks the batch window (``"24h"``, ``"1h"``); ``None`` switches to
    flex mode (see ``AsyncOpenAI``). Every other keyword goes to ``openai.AsyncOpenAI``.
    """

    _default_completion_window: ClassVar[str | None] = "24h"

    def __init__(
        self,
        *,
        batch_size: int = 1000,
        batch_window_seconds: float = 10.0,
        poll_interval_seconds: float = 5.0,
        completion_window: str | None | _Unset = _Unset.UNSET,
        batch_metadata: Mapping[str, str] | None = None,
        max_concurrent_requests: int | None = None,
        on_event: EventHandler | None = None,
        cancel_on_close: bool = False,
        **openai_kwargs: Any,
    ) -> None:
        super().__init__(**openai_kwargs)
        window = (
            self._default_completion_window
            if completion_window is _Unset.UNSET
            else completion_window
        )
        settings = Settings(
            batch_size=batch_size,
            batch_window_seconds=batch_window_seconds,
            poll_interval_seconds=poll_interval_seconds,
            completion_window=window,
            batch_metadata=dict(batch_metadata or {}),
            max_concurrent_requests=max_concurrent_requests,
            cancel_on_close=cancel_on_close,
        )
        self._autobatch = _Autobatch(self, settings, on_event)

    @property
    def autobatch_settings(self) -> Settings:
        return self._autobatch.settings

    async def flush(self) -> None:
        """Send the calls waiting for their batch window now."""
        self._autobatch.batch.flush()

    async def close(self) -> None:
        """Fail (or, with ``cancel_on_close``, cancel) what still waits, then close."""
        await self._autobatch.close()
        await super().close()

    def copy(self, *args: Any, **kwargs: Any) -> Self:
        # ``with_options(...)`` builds a new client through __init__; it must share this one's
        # queues and batches rather than start a second autobatcher with default settings.
        copied = super().copy(*args, **kwargs)
        copied._autobatch = self._autobatch
        return copied

    with_options = copy

    # -- the request path -----------------------------------------------------------------
    @overload
    async def request(
        self,
        cast_to: type[ResponseT],
        options: FinalRequestOptions,
        *,
        stream: Literal[False] = False,
    ) -> ResponseT: ...

    @overload
    async def request(
        self,
        cast_to: type[ResponseT],
        options: FinalRequestOptions,
        *,
        stream: Literal[True],
        stream_cls: type[_AsyncStreamT],
    ) -> _AsyncStreamT: ...

    @overload
    async def request(
        self,
        cast_to: type[ResponseT],
        options: FinalRequestOptions,
        *,
        stream: bool,
        stream_cls: type[_AsyncStreamT] | None = None,
    ) -> ResponseT | _AsyncStreamT: ...

    async def request(
        self,
        cast_to: type[ResponseT],
        options: FinalRequestOptions,
        *,
        stream: bool = False,
        stream_cls: type[_AsyncStreamT] | None = None,
    ) -> ResponseT | _AsyncStreamT:
        endpoint = route_of(options)
        if endpoint is None or _direct.get():
            return await super().request(cast_to, options, stream=stream, stream_cls=stream_cls)
        body = body_of(options)
        if stream or body.get("stream"):
            raise StreamingNotSupportedError(
                f"stream=True is not supported by {type(self).__name__}: a {self._mode()} request "
                "has no tokens to stream until it finishes. Call without stream, or use "
                "openai.AsyncOpenAI for streaming.",
                code="stream_unsupported",
            )
        options = options.model_copy()
        cast_to = self._maybe_override_cast_to(cast_to, options)
        limit = self._autobatch.limit
        if limit is None:
            return await self._answer(endpoint, body, cast_to, options)
        async with limit:
            return await self._answer(endpoint, body, cast_to, options)

    def _mode(self) -> str:
        return self._autobatch.settings.mode

    async def _answer(
        self,
        endpoint: str,
        body: dict[str, Any],
        cast_to: type[ResponseT],
        options: FinalRequestOptions,
    ) -> ResponseT:
        if self._mode() == "batch":
            result = await self._autobatch.batch.call(endpoint, body)
        elif endpoint == RESPONSES and not body.get("background"):
            result = await self._autobatch.flex.call(body)
        elif endpoint == CHAT and (translated := chat_to_response(body)) is not None:
            result = response_to_chat((await self._autobatch.flex.call(translated)).body)
        else:
            # Nothing to translate to (legacy completions, chat fields Responses lacks) or the
            # caller asked for background: the same request, in the flex tier.
            options.json_data = {**body, "service_tier": "flex"}
            options.extra_json = None
            with _sending_directly():
                return await super().request(cast_to, options)
        return await self._sdk_result(cast_to, options, result)

    async def _sdk_result(
        self, cast_to: type[ResponseT], options: FinalRequestOptions, result: LineResult
    ) -> ResponseT:
        """What the SDK would have made of ``result`` had it come over HTTP."""
        sent = {k: v for k, v in dict(options.headers or {}).items() if isinstance(v, str)}
        request = httpx2.Request("POST", self._prepare_url(options.url), headers=sent)
        headers = {"x-request-id": result.request_id} if result.request_id else {}
        response = httpx2.Response(
            result.status_code, json=result.body, headers=headers, request=request
        )
        if response.status_code >= 400:
            raise self._make_status_error_from_response(response)
        return await self._process_response(
            cast_to=cast_to, options=options, response=response, stream=False, stream_cls=None
        )

    async def _create_response_directly(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /responses`` as a plain client sends it; the raw JSON of the answer."""
        with _sending_directly():
            raw = await self.post("/responses", body=body, cast_to=httpx2.Response)
        return cast(dict[str, Any], raw.json())


class AsyncOpenAI(BatchOpenAI):
    """Flex mode: each generation call a background ``service_tier: "flex"`` Response,
    polled to its end (Chat Completions translated to Responses and back). Pass
    ``completion_window="1h"`` (or ``"24h"``) for batch mode instead."""

    _default_completion_window: ClassVar[str | None] = None
