"""Attempts at embedding requests: a realtime request and a batch line of ``/v1/embeddings``.

They run on the feed like any other work: one engine request per input (the engine batches
them with everything else it runs), each answered by one ``Embedded`` instead of deltas. The
inputs' token counts fill the result's prompt counts, so billing and metrics read it as they
read a generation's (with no output tokens).
"""

from __future__ import annotations

import time
from typing import Any

from inference_platform.endpoints.embeddings.protocol import (
    embedding_response,
    encode_vector,
    inputs,
)
from inference_platform.engines.base import Embedded, EmbeddingRequest
from inference_platform.events import End, Event, Started, Usage
from inference_platform.generation import EMBEDDINGS, TIER_PRIORITY, GenerationResult
from inference_platform.jobs.attempts import Attempt, Context, LineAttempt, LiveAttempt, attempt_for
from inference_platform.jobs.store import Claimed, Finished


class EmbeddingAttempt(Attempt):
    """Plans one engine request per input and keeps each input's vector."""

    vectors: list[bytes]

    def _plan_inputs(self) -> None:
        work = self.work
        priority = TIER_PRIORITY.get(work.tier, 0)
        dimensions = work.body.get("dimensions")
        self.requests = []
        for i, item in enumerate(inputs(work.body)):
            text, token_ids = (item, None) if isinstance(item, str) else (None, tuple(item))
            self.requests.append(
                EmbeddingRequest(f"{work.id}:{i}", text, token_ids, dimensions, priority)
            )
        self.where = list(range(len(self.requests)))
        # One "prompt" per input: their token counts add up to the request's usage.
        self.result = GenerationResult.empty(self.where)
        self.vectors = [b""] * len(self.requests)

    def on_embedding(self, j: int, item: Embedded) -> None:
        self.vectors[j] = item.vector
        self.result.choices[j].prompt_tokens = item.prompt_tokens

    def encoded(self) -> tuple[str, ...]:
        return tuple(encode_vector(v) for v in self.vectors)


class EmbeddingLive(EmbeddingAttempt, LiveAttempt):
    """A realtime embedding request: its vectors go to the waiting API host in one ``End``."""

    def start(self, ctx: Context) -> bool:
        started = Started(attempt=1, worker=self.worker, queue=self.queue)
        if ctx.platform.events.start(self.work.id, started):
            return False  # the client gave up before we began
        try:
            self._plan_inputs()
        except Exception as exc:  # reported to the waiting client, never swallowed
            self.failure = exc
            self.requests = []
        return True

    def closing_events(self) -> list[tuple[str, Event]]:
        if self.failure is not None:
            return super().closing_events()
        return [(self.work.id, End(self.result.usage(), embeddings=self.encoded()))]


class EmbeddingLine(EmbeddingAttempt, LineAttempt):
    """A batch line of ``/v1/embeddings``: its result line holds the embedding response."""

    def start(self, ctx: Context) -> bool:
        self.created = int(time.time())
        try:
            self._plan_inputs()
        except Exception as exc:  # this line fails, not the feed
            self.failure = exc
            self.requests = []
        return True

    def finish(self, ctx: Context) -> Finished | None:
        if self.failure is not None:
            return super().finish(ctx)  # handed back (aborted) or an error line
        work = self.work
        body = embedding_response(
            model=work.model,
            vectors=self.encoded(),
            prompt_tokens=self.result.prompt_tokens,
            encoding_format=work.body.get("encoding_format"),
        )
        bill = Usage(self.result.prompt_tokens, 0)
        return Finished(work, "completed", 200, result=dict(body), bill=bill)


def attempt_of(work: Claimed) -> Attempt:
    """The attempt that runs a claimed piece of work."""
    if work.endpoint == EMBEDDINGS and work.is_line:
        return EmbeddingLine(work)
    return attempt_for(work)


def live_attempt(payload: dict[str, Any], *, worker: str, queue: str) -> LiveAttempt:
    """The attempt that runs a realtime request pushed by its task."""
    cls = EmbeddingLive if payload["endpoint"] == EMBEDDINGS else LiveAttempt
    return cls.from_task(payload, worker=worker, queue=queue)


__all__ = ["EmbeddingAttempt", "EmbeddingLine", "EmbeddingLive", "attempt_of", "live_attempt"]
