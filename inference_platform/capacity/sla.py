"""Keeping score of the deadline promise: work that ended inside its window vs late.

A batch kept its promise when it completed before its window closed; one that expired (or
completed after its window, finalised late) did not. A flex job kept it when it completed
(or hit its own output limit) before its deadline; one that expired or ended after it did
not. Failed and cancelled work is left out: its fate was not the schedule's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

ON_TIME, LATE = "on_time", "late"

_BATCHES = """
    SELECT 'batch', coalesce(model, ''), completion_window,
           CASE WHEN status = 'completed' AND completed_at <= expires_at
                THEN 'on_time' ELSE 'late' END,
           count(*)
    FROM batches
    WHERE status IN ('completed', 'expired') AND coalesce(completed_at, expired_at) >= :since
      AND (CAST(:owner AS text) IS NULL OR owner = :owner)
    GROUP BY 1, 2, 3, 4
"""
_FLEX = """
    SELECT 'flex', model, '1h',
           CASE WHEN status IN ('completed', 'incomplete') AND finished_at <= deadline
                THEN 'on_time' ELSE 'late' END,
           count(*)
    FROM requests
    WHERE tier = 'flex' AND batch_id IS NULL AND finished_at >= :since
      AND status IN ('completed', 'incomplete', 'expired')
      AND (CAST(:owner AS text) IS NULL OR owner = :owner)
    GROUP BY 1, 2, 3, 4
"""


@dataclass(frozen=True)
class Score:
    tier: str
    model: str
    window: str
    on_time: int
    late: int

    @property
    def share(self) -> float | None:
        total = self.on_time + self.late
        return None if total == 0 else self.on_time / total


def scores(session: Session, since: datetime, owner: str | None = None) -> list[Score]:
    """Per tier, model and window: how much work ended on time and late since ``since``."""
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    params = {"since": since, "owner": owner}
    for query in (_BATCHES, _FLEX):
        for tier, model, window, outcome, n in session.execute(text(query), params):
            counts.setdefault((tier, model, window), {ON_TIME: 0, LATE: 0})[outcome] += int(n)
    return [
        Score(tier, model, window, c[ON_TIME], c[LATE])
        for (tier, model, window), c in sorted(counts.items())
    ]


def table(found: list[Score], busy: dict[str, float]) -> str:
    """The usage report's deadline section: one row per tier, model and window."""
    if not found and not busy:
        return "deadlines: no batch or flex work ended in this period"
    head = ("tier", "model", "window", "on time", "late", "kept")
    rows = [
        (
            s.tier,
            s.model,
            s.window,
            str(s.on_time),
            str(s.late),
            "-" if s.share is None else f"{100 * s.share:.1f}%",
        )
        for s in found
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["deadlines kept (batches and flex jobs that ended in this period):"]
    for row in [head, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for model, fraction in sorted(busy.items()):
        lines.append(f"engine busy (last minutes), {model}: {100 * fraction:.0f}%")
    return "\n".join(lines)
