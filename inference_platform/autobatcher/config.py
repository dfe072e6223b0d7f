"""The autobatcher's own settings (everything else goes to the OpenAI client)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Lines one batch may hold on this platform and on OpenAI.
MAX_BATCH_SIZE = 50_000


@dataclass(frozen=True)
class Settings:
    """``completion_window`` None means flex mode: each call a background flex response."""

    batch_size: int = 1000
    batch_window_seconds: float = 10.0
    poll_interval_seconds: float = 5.0
    completion_window: str | None = "24h"
    batch_metadata: Mapping[str, str] = field(default_factory=dict)
    max_concurrent_requests: int | None = None
    cancel_on_close: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
        if self.batch_window_seconds < 0:
            raise ValueError("batch_window_seconds must not be negative")
        if self.poll_interval_seconds <= 0:
            raise ValueError("poll_interval_seconds must be positive")
        if self.max_concurrent_requests is not None and self.max_concurrent_requests < 1:
            raise ValueError("max_concurrent_requests must be at least 1 (or None: no limit)")
        if self.completion_window is not None and not self.completion_window:
            raise ValueError("completion_window must be a window such as '24h' or '1h', or None")

    @property
    def mode(self) -> str:
        return "flex" if self.completion_window is None else "batch"
