"""How often a worker sends each stream's text, so that many open streams stay cheap.

Every text event costs every hop once: a Redis entry, the API's relay and SSE chunk, and the
client's parsing. A stream alone gets each token as it comes. With many streams open, a feed
sends each stream's new text at most every ``streams / events_per_second`` seconds (never less
often than ``MAX_INTERVAL``), joined into one event, so a worker's event rate stays near
``events_per_second`` however many streams it serves. The first text of a stream and
everything that ends a choice or a request go out at once, so time to first token and the
total time are not delayed; only the text in between arrives in larger pieces.
"""

from __future__ import annotations

from inference_platform.events import Event, TextDelta, is_terminal

# The longest a stream's text is held back, however many streams are open.
MAX_INTERVAL = 0.5

Pending = list[tuple[str, Event]]


class Pacer:
    def __init__(self, events_per_second: float) -> None:
        self.rate = events_per_second
        self.interval = 0.0
        self._held: dict[str, list[Event]] = {}
        # When each stream's text last went out.
        self._sent: dict[str, float] = {}
        # No held text is due before this: the held streams are looked over only then, not
        # on every call (a worker may hold a thousand of them).
        self._due = float("inf")

    def set_streams(self, streams: int) -> None:
        """The streams open now decide how long text may wait."""
        self.interval = 0.0 if self.rate <= 0 else min(MAX_INTERVAL, streams / self.rate)

    def admit(self, out: Pending, now: float) -> Pending:
        """What goes out now: ``out`` less the text held back, plus held text that is due.

        Each request's events keep their order.
        """
        ready: Pending = []
        for rid, event in out:
            if isinstance(event, TextDelta):
                last = self._sent.get(rid)
                if rid in self._held or (last is not None and now - last < self.interval):
                    if rid not in self._held:
                        self._held[rid] = []
                        self._due = min(self._due, (now if last is None else last) + self.interval)
                    self._held[rid].append(event)
                    continue
                self._sent[rid] = now
            else:
                ready.extend(self.release(rid))
                if is_terminal(event):
                    self._sent.pop(rid, None)
            ready.append((rid, event))
        if now >= self._due:
            for rid in [r for r in self._held if now - self._sent.get(r, 0.0) >= self.interval]:
                ready.extend(self.release(rid))
                self._sent[rid] = now
            self._due = min(
                (self._sent.get(r, now) + self.interval for r in self._held), default=float("inf")
            )
        return ready

    def release(self, rid: str) -> Pending:
        """The text held back for ``rid``, to send now (its request ends, or it is due)."""
        return [(rid, event) for event in self._held.pop(rid, ())]

    def forget(self, rid: str) -> Pending:
        """``rid`` ended: its held text, and nothing kept about it."""
        self._sent.pop(rid, None)
        return self.release(rid)

    def wait(self, now: float) -> float | None:
        """Seconds until held text is due (None: nothing is held)."""
        if not self._held:
            return None
        return max(0.0, self._due - now)
