"""A batch feed claims in groups while the engine's queue holds enough, and at once when an
engine slot is free."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from inference_platform.jobs.feed import Feed


def feed(tmp_path: Path, capacity: int, slots: int | None = None) -> Feed:
    settings = SimpleNamespace(stream_events_per_second=0, var_path=tmp_path)
    ctx = SimpleNamespace(platform=SimpleNamespace(settings=settings))
    return Feed(ctx, tier="batch", model="m", capacity=capacity, slots=slots)  # type: ignore[arg-type]


def test_lines_past_the_engine_slots_are_refilled_in_groups(tmp_path: Path) -> None:
    f = feed(tmp_path, capacity=32, slots=16)
    assert f.refill == 8

    def wants(in_flight: int) -> bool:
        f._durable = in_flight
        return f._wants(f.capacity - in_flight)

    assert not wants(32)  # full
    assert not wants(25)  # the engine runs 16, and 9 wait behind them: no round trip yet
    assert wants(24)  # 8 have room: claim them together
    assert wants(15)  # an engine slot is free: never wait for the group


def test_a_feed_without_a_margin_claims_for_every_free_slot(tmp_path: Path) -> None:
    f = feed(tmp_path, capacity=16)
    assert (f.slots, f.refill) == (16, 1)
    f._durable = 15
    assert f._wants(1)
