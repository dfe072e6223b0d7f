"""The autobatcher: batch and flex prices for unchanged OpenAI SDK code.

Swap ``openai.AsyncOpenAI`` for ``BatchOpenAI`` (Batch API, 24 h window by default) or
``AsyncOpenAI`` (flex); ``chat.completions.create``, ``completions.create`` and
``responses.create`` are then gathered into batches or sent as flex jobs, and each caller
still awaits its own ``ChatCompletion``, ``Completion`` or ``Response``.

A client of the platform's public HTTP API only: it imports the openai SDK, never the server.
"""

from inference_platform.autobatcher.client import AsyncOpenAI, BatchOpenAI
from inference_platform.autobatcher.config import Settings
from inference_platform.autobatcher.errors import (
    AutobatcherError,
    BatchFailedError,
    ClientClosedError,
    RequestCancelledError,
    RequestExpiredError,
    StreamingNotSupportedError,
)
from inference_platform.autobatcher.events import Event, EventHandler

__all__ = [
    "AsyncOpenAI",
    "AutobatcherError",
    "BatchFailedError",
    "BatchOpenAI",
    "ClientClosedError",
    "Event",
    "EventHandler",
    "RequestCancelledError",
    "RequestExpiredError",
    "Settings",
    "StreamingNotSupportedError",
]
