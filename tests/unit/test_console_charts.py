"""The console's server-drawn charts and progress figures: pure functions, no services."""

from __future__ import annotations

import pytest

from api.console import charts
from api.console.work import progress


def test_stacked_bars_share_one_scale_with_a_round_top() -> None:
    chart = charts.stacked(
        ["Mon", "Tue"], {"realtime": [300.0, 0.0], "batch": [100.0, 50.0]}, lambda v: f"{v:g}"
    )
    assert [t.label for t in chart.ticks] == ["0", "250", "500"]
    heights = {(b.series, b.title.split()[0]): b.height for b in chart.bars}
    assert heights[("realtime", "Mon")] == pytest.approx(3 * heights[("batch", "Mon")])
    assert heights[("batch", "Mon")] == pytest.approx(2 * heights[("batch", "Tue")])
    # Stacked: the second series starts where the first ends.
    mon = [b for b in chart.bars if b.title.startswith("Mon")]
    assert mon[1].y + mon[1].height == pytest.approx(mon[0].y)
    assert not any(b.title.startswith("Tue realtime") for b in chart.bars)  # zero: no bar
    assert not chart.empty


def test_an_empty_period_is_said_so() -> None:
    chart = charts.stacked(["Mon"], {"flex": [0.0]}, str)
    assert chart.empty and chart.bars == []


@pytest.mark.parametrize(
    ("counts", "status", "percent"),
    [
        ({"total": 12, "completed": 3, "failed": 0}, "in_progress", 25),
        ({"total": 12, "completed": 3, "failed": 3}, "in_progress", 50),
        ({"total": 0, "completed": 0, "failed": 0}, "validating", 0),
        ({"total": 4, "completed": 4, "failed": 0}, "completed", 100),
        # Cancelled or expired: the unanswered lines count as failed, not as done.
        ({"total": 50, "completed": 0, "failed": 50}, "cancelled", 0),
        ({"total": 10, "completed": 4, "failed": 6}, "expired", 40),
    ],
)
def test_progress_counts_done_and_failed_lines(
    counts: dict[str, int], status: str, percent: int
) -> None:
    assert progress({"status": status, "request_counts": counts})["percent"] == percent
