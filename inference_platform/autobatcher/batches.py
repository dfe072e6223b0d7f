"""Batch mode: calls gathered into Batch API batches, answers read back as lines finish.

Calls wait in one queue per (endpoint, model): a batch holds one endpoint and the platform
wants one model per batch. A queue goes out when it reaches ``batch_size`` or when
``batch_window_seconds`` have passed since its first call, whichever comes first. Each batch
then has a task of its own that uploads it, creates it and follows it: every poll reads the
output and error files from the offset it reached (``X-Last-Line``), so a caller is answered
as soon as its line is written, not when the whole batch ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

import openai
from openai.types import Batch

from inference_platform.autobatcher import events
from inference_platform.autobatcher.config import Settings
from inference_platform.autobatcher.errors import (
    AutobatcherError,
    BatchFailedError,
    ClientClosedError,
    RequestCancelledError,
    RequestExpiredError,
)
from inference_platform.autobatcher.events import Emitter
from inference_platform.autobatcher.wire import LineResult, retry_rate_limits

log = logging.getLogger(__name__)

TERMINAL = ("completed", "failed", "expired", "cancelled")
# Lines asked for per read of a result file.
PAGE = 5000
# Rounds of "drop the lines validation named, send the rest again" before giving up.
MAX_RESUBMITS = 3
# Errors of one poll that the next poll may not meet again.
TRANSIENT = (
    openai.APIConnectionError,
    openai.InternalServerError,
    openai.RateLimitError,
    openai.ConflictError,
)


@dataclass(eq=False)
class Call:
    custom_id: str
    body: dict[str, Any]
    future: asyncio.Future[LineResult]

    def resolve(self, result: LineResult) -> None:
        if not self.future.done():
            self.future.set_result(result)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


@dataclass(eq=False)
class Run:
    """Calls on their way through a batch (through several when validation drops lines)."""

    endpoint: str
    model: str
    calls: dict[str, Call]  # the unanswered ones, by custom_id
    order: list[str] = field(default_factory=list)  # custom_ids in the uploaded file's order
    batch_id: str | None = None
    offsets: dict[str, int] = field(default_factory=dict)  # result file id -> next line
    seen: tuple[str, int, int] | None = None  # last (status, completed, failed) reported


class BatchEngine:
    def __init__(self, client: openai.AsyncOpenAI, settings: Settings, emit: Emitter) -> None:
        self._client = client
        self._settings = settings
        self._emit = emit
        self._queues: dict[tuple[str, str], list[Call]] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._runs: dict[asyncio.Task[None], Run] = {}
        self._closed = False
        self._cancelling = False

    # -- gathering ------------------------------------------------------------------------
    async def call(self, endpoint: str, body: dict[str, Any]) -> LineResult:
        if self._closed:
            raise ClientClosedError("the client is closed", code="client_closed")
        future: asyncio.Future[LineResult] = asyncio.get_running_loop().create_future()
        call = Call(f"ab-{uuid.uuid4().hex}", body, future)
        key = (endpoint, str(body.get("model")))
        queue = self._queues.setdefault(key, [])
        queue.append(call)
        if len(queue) >= self._settings.batch_size:
            self._send(key)
        elif key not in self._timers:
            self._timers[key] = asyncio.get_running_loop().call_later(
                self._settings.batch_window_seconds, self._send, key
            )
        return await future

    def flush(self) -> None:
        """Send every waiting call now instead of at the end of its window."""
        for key in list(self._queues):
            self._send(key)

    def _send(self, key: tuple[str, str]) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        calls = self._queues.pop(key, [])
        if not calls:
            return
        run = Run(key[0], key[1], {c.custom_id: c for c in calls})
        task = asyncio.get_running_loop().create_task(self._run(run))
        self._runs[task] = run
        task.add_done_callback(self._runs.pop)

    # -- one batch ------------------------------------------------------------------------
    async def _run(self, run: Run) -> None:
        try:
            for attempt in range(MAX_RESUBMITS + 1):
                batch = await self._submit(run, attempt)
                batch = await self._follow(run, batch)
                if not run.calls or not self._drop_invalid(run, batch) or attempt == MAX_RESUBMITS:
                    break
            self._fail_rest(run, batch)
        except asyncio.CancelledError:
            self._fail_closed(run)
            raise
        except openai.APIError as exc:
            # Upload or create refused (bad key, file too large, ...): the caller sees the
            # SDK's exception for it, as a direct call would.
            self._emit(events.SUBMIT_FAILED, run.batch_id, endpoint=run.endpoint, error=str(exc))
            for call in run.calls.values():
                call.fail(exc)
        except Exception as exc:
            log.exception("autobatcher batch of %d requests failed", len(run.calls))
            for call in run.calls.values():
                call.fail(BatchFailedError(f"the batch could not be run: {exc}"))

    async def _submit(self, run: Run, attempt: int) -> Batch:
        run.order = list(run.calls)
        run.offsets = {}
        data = b"".join(
            json.dumps(
                {"custom_id": cid, "method": "POST", "url": run.endpoint, "body": call.body},
                separators=(",", ":"),
            ).encode()
            + b"\n"
            for cid, call in run.calls.items()
        )
        wait = self._settings.poll_interval_seconds

        def waited(what: str) -> Any:
            return lambda seconds: self._emit(
                events.RATE_LIMITED, run.batch_id, on=what, wait=seconds
            )

        uploaded = await retry_rate_limits(
            lambda: self._client.files.create(
                file=("autobatcher.jsonl", data, "application/jsonl"), purpose="batch"
            ),
            max_retries=self._client.max_retries,
            default_wait=wait,
            on_wait=waited("upload"),
        )
        metadata = dict(self._settings.batch_metadata) or None
        batch = await retry_rate_limits(
            lambda: self._client.batches.create(
                input_file_id=uploaded.id,
                endpoint=cast(Any, run.endpoint),
                completion_window=cast(Any, self._settings.completion_window),
                metadata=metadata,
            ),
            max_retries=self._client.max_retries,
            default_wait=wait,
            on_wait=waited("create"),
        )
        run.batch_id = batch.id
        self._emit(
            events.BATCH_SUBMITTED,
            batch.id,
            endpoint=run.endpoint,
            model=run.model,
            requests=len(run.order),
            completion_window=self._settings.completion_window,
            attempt=attempt,
        )
        return batch

    async def _follow(self, run: Run, batch: Batch) -> Batch:
        """Poll until every call has its line or the batch ends; returns the last batch seen."""
        while True:
            await self._read_results(run, batch)
            self._progress(run, batch)
            if batch.status in TERMINAL or not run.calls:
                return batch
            await asyncio.sleep(self._settings.poll_interval_seconds)
            try:
                batch = await self._client.batches.retrieve(batch.id)
            except TRANSIENT as exc:
                log.warning("autobatcher: polling batch %s failed (%s); retrying", batch.id, exc)

    async def _read_results(self, run: Run, batch: Batch) -> None:
        # The status was read before the files: a terminal batch has every line written.
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id is None:
                continue
            try:
                await self._read_file(run, file_id)
            except TRANSIENT as exc:
                log.warning("autobatcher: reading %s failed (%s); retrying", file_id, exc)

    async def _read_file(self, run: Run, file_id: str) -> None:
        while run.calls:
            offset = run.offsets.get(file_id, 0)
            raw = await self._client.files.with_raw_response.content(
                file_id, extra_query={"offset": offset, "limit": PAGE}
            )
            http = raw.http_response
            lines = http.content.splitlines()
            for line in lines:
                self._deliver(run, line)
            last = http.headers.get("x-last-line")
            if last is None:
                # A server without partial results sends the whole file every time; the
                # lines already delivered are skipped by custom_id.
                return
            run.offsets[file_id] = int(last)
            if len(lines) < PAGE:
                return

    def _deliver(self, run: Run, line: bytes) -> None:
        try:
            item = json.loads(line)
        except ValueError:
            log.warning("autobatcher: unreadable result line in batch %s", run.batch_id)
            return
        call = run.calls.pop(str(item.get("custom_id")), None)
        if call is None:
            return
        response = item.get("response")
        if isinstance(response, dict) and isinstance(response.get("status_code"), int):
            call.resolve(
                LineResult(
                    response["status_code"], response.get("body"), response.get("request_id")
                )
            )
            return
        error = item.get("error") or {}
        call.fail(_line_error(error.get("code"), error.get("message"), run.batch_id))

    def _progress(self, run: Run, batch: Batch) -> None:
        counts = batch.request_counts
        seen = (batch.status, counts.completed if counts else 0, counts.failed if counts else 0)
        if seen == run.seen:
            return
        run.seen = seen
        self._emit(
            events.BATCH_PROGRESS,
            batch.id,
            status=seen[0],
            completed=seen[1],
            failed=seen[2],
            total=len(run.order),
            waiting=len(run.calls),
        )

    # -- endings --------------------------------------------------------------------------
    def _drop_invalid(self, run: Run, batch: Batch) -> bool:
        """After validation failed: answer the lines it named with their error; True when
        the other lines should be sent again in a batch of their own."""
        if batch.status != "failed" or batch.errors is None or not batch.errors.data:
            return False
        named = 0
        for error in batch.errors.data:
            line = error.line
            if line is None or not 1 <= line <= len(run.order):
                continue
            call = run.calls.pop(run.order[line - 1], None)
            if call is None:
                continue
            named += 1
            param = (error.param or "").removeprefix("body.").removeprefix("body") or None
            status = 404 if error.code == "model_not_found" else 400
            envelope = {
                "message": error.message,
                "type": "invalid_request_error",
                "param": param,
                "code": error.code,
            }
            call.resolve(LineResult(status, {"error": envelope}))
        if named and run.calls:
            self._emit(
                events.BATCH_RESUBMITTED, batch.id, rejected=named, resubmitted=len(run.calls)
            )
        return named > 0

    def _fail_rest(self, run: Run, batch: Batch) -> None:
        waiting = len(run.calls)
        for call in run.calls.values():
            call.fail(_batch_error(batch))
        run.calls.clear()
        self._emit(events.BATCH_DONE, batch.id, status=batch.status, unanswered=waiting)

    def _fail_closed(self, run: Run) -> None:
        if run.batch_id is None:
            what = "before its batch was created"
        elif self._cancelling:
            what = f"and cancelled its batch {run.batch_id}"
        else:
            what = (
                f"while its batch {run.batch_id} was running; the batch goes on and its "
                "output file will hold the result"
            )
        for call in run.calls.values():
            call.fail(
                ClientClosedError(
                    f"the client closed {what}", code="client_closed", batch_id=run.batch_id
                )
            )
        run.calls.clear()

    async def close(self, cancel: bool) -> int:
        """Fail the calls not sent yet; cancel the running batches upstream when asked (and
        answer the lines they finished); fail what is left. Returns how many were failed."""
        self._closed, self._cancelling = True, cancel
        failed = 0
        for key in list(self._queues):
            timer = self._timers.pop(key, None)
            if timer is not None:
                timer.cancel()
            for call in self._queues.pop(key):
                call.fail(ClientClosedError("the client closed before the request was sent"))
                failed += 1
        runs = dict(self._runs)
        if cancel:
            await asyncio.gather(*(self._cancel(run) for run in runs.values() if run.batch_id))
        failed += sum(len(run.calls) for run in runs.values())
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        return failed

    async def _cancel(self, run: Run) -> None:
        assert run.batch_id is not None
        with contextlib.suppress(openai.APIError, TimeoutError):
            async with asyncio.timeout(max(10.0, self._settings.poll_interval_seconds)):
                batch = await self._client.batches.cancel(run.batch_id)
                await self._read_results(run, batch)


def _line_error(code: str | None, message: str | None, batch_id: str | None) -> AutobatcherError:
    text = message or f"the request did not run ({code})"
    if code == "batch_expired":
        return RequestExpiredError(text, code=code, batch_id=batch_id)
    if code == "batch_cancelled":
        return RequestCancelledError(text, code=code, batch_id=batch_id)
    return BatchFailedError(text, code=code, batch_id=batch_id)


def _batch_error(batch: Batch) -> AutobatcherError:
    if batch.status == "expired":
        return RequestExpiredError(
            f"batch {batch.id} expired before this request ran",
            code="batch_expired",
            batch_id=batch.id,
        )
    if batch.status == "cancelled":
        return RequestCancelledError(
            f"batch {batch.id} was cancelled before this request ran",
            code="batch_cancelled",
            batch_id=batch.id,
        )
    if batch.status == "failed":
        errors = batch.errors.data if batch.errors and batch.errors.data else []
        why = "; ".join(f"{e.code}: {e.message}" for e in errors[:3]) or "no reason given"
        return BatchFailedError(
            f"batch {batch.id} failed: {why}", code="batch_failed", batch_id=batch.id
        )
    return BatchFailedError(
        f"batch {batch.id} ended ({batch.status}) without a result line for this request",
        code="no_result",
        batch_id=batch.id,
    )
