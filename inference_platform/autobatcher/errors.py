"""Exceptions a caller of the autobatcher may see besides the SDK's own.

A line that got an HTTP answer raises the SDK's exception for that status (``BadRequestError``
for a 400, ...), exactly as a direct call would. These classes cover the cases with no HTTP
answer of the caller's own: the batch ended without running the line, or the client closed.
All derive from ``openai.OpenAIError`` so a broad ``except openai.OpenAIError`` still holds.
"""

from __future__ import annotations

import openai


class AutobatcherError(openai.OpenAIError):
    """A request the autobatcher could not answer; ``code`` says why in one word."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        batch_id: str | None = None,
        response_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.batch_id = batch_id
        self.response_id = response_id


class StreamingNotSupportedError(AutobatcherError):
    """``stream=True`` asks for tokens as they come; a batch or flex job has none to give."""


class RequestCancelledError(AutobatcherError):
    """The request's batch (or its flex response) was cancelled before the request ran."""


class RequestExpiredError(AutobatcherError):
    """The request's batch reached the end of its completion window before the request ran."""


class BatchFailedError(AutobatcherError):
    """The batch as a whole failed (or ended with no line for this request)."""


class ClientClosedError(AutobatcherError):
    """The client was closed while the request was still waiting."""
