"""The capacity model's arithmetic: no database, no Redis, so it can be tested and benchmarked
on its own.

Work is counted in output-token units: an output token costs one, a prompt token
``1 / PREFILL_PER_OUTPUT`` (an engine computes a prompt's tokens together in one forward pass,
so they cost far less than generated ones; 8 is conservative for vLLM, whose prefill runs tens
of times faster per token than decode on a GPU). A model's throughput is in the same units per
second, as its workers measure it (``meter``).

The queue of a model is a list of ``(deadline, work)`` items. The claim serves it earliest
deadline first, so an item finishes once everything with an earlier or equal deadline and the
item itself are done: ``finish = now + cumulative work / throughput``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PREFILL_PER_OUTPUT = 8.0


def work_units(prompt_tokens: float, output_tokens: float) -> float:
    return float(output_tokens) + float(prompt_tokens) / PREFILL_PER_OUTPUT


@dataclass(frozen=True)
class Demand:
    """What a file, batch or request asks of the engine: its lines and their tokens (output
    tokens at each line's limit: an upper bound, most lines stop earlier)."""

    lines: int
    prompt_tokens: int
    output_tokens: int

    @property
    def work(self) -> float:
        return work_units(self.prompt_tokens, self.output_tokens)

    def as_dict(self) -> dict[str, int]:
        return {
            "lines": self.lines,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(frozen=True)
class Profile:
    """A model's queue as the control role last saw it.

    ``rate``: work units per second over its live workers (None: unbounded, e.g. an instant
    simulated engine); ``items``: ``(deadline, work)`` sorted by deadline.
    """

    at: float
    rate: float | None
    items: tuple[tuple[float, float], ...] = ()
    busy: float = 0.0
    workers: int = 0
    _cumulative: list[float] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        total = 0.0
        for _, work in self.items:
            total += work
            self._cumulative.append(total)

    def with_items(self, extra: Iterable[tuple[float, float]]) -> Profile:
        """This profile with more items (work admitted since it was computed)."""
        extra = list(extra)
        if not extra:
            return self
        items = tuple(sorted((*self.items, *extra)))
        return Profile(self.at, self.rate, items, self.busy, self.workers)

    def drained(self, now: float) -> float:
        """Work done since the profile was computed (at most all of it)."""
        if self.rate is None:
            return math.inf
        return self.rate * max(0.0, now - self.at)

    def ahead(self, deadline: float, now: float) -> float:
        """Work that runs before (or with) an item due at ``deadline``, still left at ``now``."""
        i = bisect.bisect_right([d for d, _ in self.items], deadline)
        total = self._cumulative[i - 1] if i else 0.0
        return max(0.0, total - self.drained(now))

    def seconds(self, work: float) -> float:
        """How long ``work`` takes at this throughput (0 when unbounded)."""
        if self.rate is None or work <= 0:
            return 0.0
        if self.rate <= 0:
            return math.inf
        return work / self.rate

    def finish(self, deadline: float, now: float, own: float = 0.0) -> float:
        """When an item due at ``deadline`` finishes (``own``: its work, if not queued yet)."""
        return now + self.seconds(self.ahead(deadline, now) + own)


@dataclass(frozen=True)
class Verdict:
    """Admission's answer for new work: whether it fits, and the figures a message needs."""

    fits: bool
    # From now until the new work would finish, and the parts of it: work queued ahead of it
    # and its own.
    seconds: float
    ahead_seconds: float
    own_seconds: float
    # The new work would push promised work that is on time past its deadline.
    delays_others: bool = False


def judge(
    profile: Profile, now: float, window_seconds: float, factor: float, work: float
) -> Verdict:
    """Can ``work`` due in ``window_seconds`` finish within ``factor`` windows, without making
    work already promised (and on time) late?"""
    deadline = now + window_seconds
    ahead = profile.seconds(profile.ahead(deadline, now))
    own = profile.seconds(work)
    fits = ahead + own <= factor * window_seconds
    delays = fits and _delays_others(profile, now, deadline, own)
    return Verdict(fits and not delays, ahead + own, ahead, own, delays)


def _delays_others(profile: Profile, now: float, deadline: float, own: float) -> bool:
    if own <= 0:
        return False
    drained = profile.drained(now)
    for (due, _), total in zip(profile.items, profile._cumulative, strict=True):
        if due <= deadline:
            continue
        finish = profile.seconds(max(0.0, total - drained))
        if finish <= due - now < finish + own:
            return True
    return False


def finish_times(
    items: Sequence[tuple[float, float]], rate: float | None, now: float
) -> list[float]:
    """The finish of each ``(deadline, work)`` item (in the given, deadline, order)."""
    out, total = [], 0.0
    for _, work in items:
        total += work
        out.append(now if rate is None else now + (total / rate if rate > 0 else math.inf))
    return out


def priority(deadline: float | None, now: float, default: int) -> int:
    """The engine priority (lower runs first; realtime is 0) a deadline's slack earns.

    Logarithmic in the minutes left, so it orders finely near a deadline and coarsely far from
    it: 1 at the deadline, 12 with an hour left (fresh flex and 1 h batch lines), 21 with a day
    left. A 1 h line queued after 24 h lines already waiting in the engine runs before them,
    and a 24 h line whose deadline is half an hour away (10) outranks fresh flex work.
    """
    if deadline is None:
        return default
    minutes = max(0.0, deadline - now) / 60.0
    return 1 + int(2 * math.log2(1 + minutes))


def describe(seconds: float) -> str:
    """A duration as a person reads it: ``40 s``, ``12 min``, ``6.9 h``, ``3.2 days``."""
    if math.isinf(seconds):
        return "forever (no worker is serving the model)"
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
