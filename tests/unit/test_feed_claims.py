"""A batch feed claims in groups while the engine's queue holds enough, and at once when an
engine slot is free."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from inference_platform.jobs.feed import Feed, _Recorder


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


def test_a_failed_write_of_results_is_retried_at_the_claims_pace() -> None:
    """Postgres away: the lines stay pending, and the idle loop's forced writes do not turn
    into a warning every turn; the last write as the feed stops still tries."""
    tries: list[int] = []

    class Down:
        def session(self) -> None:
            tries.append(1)
            raise OSError("connection refused")

    ctx = SimpleNamespace(platform=SimpleNamespace(db=Down()))
    recorder = _Recorder(ctx)  # type: ignore[arg-type]
    recorder.pending.append(SimpleNamespace(work=SimpleNamespace(batch_id="b", id="l1")))  # type: ignore[arg-type]
    recorder.flush()
    recorder.flush()
    assert len(tries) == 1 and recorder.pending
    recorder.flush(last=True)
    assert len(tries) == 2
    recorder.retry_at = 0.0  # a second later
    recorder.flush()
    assert len(tries) == 3 and recorder.pending


def test_a_realtime_request_delivered_twice_runs_once(tmp_path: Path) -> None:
    """Celery gives an unacknowledged realtime task back when the broker connection drops and
    returns; its second copy must not start the request again (in the engine it collided with
    the first and answered the client 500)."""
    from inference_platform.jobs import feed as feed_module
    from inference_platform.jobs.embedding import live_attempt

    f = feed(tmp_path, capacity=4)

    def delivery(rid: str) -> tuple[object, int, object]:
        payload = {
            "id": rid,
            "endpoint": "/v1/chat/completions",
            "model": "m",
            "tier": "realtime",
            "owner": "t",
            "body": {},
        }
        attempt = live_attempt(payload, worker="w", queue="realtime.m")
        return (attempt, -1, feed_module._NEW)

    assert not f._redelivered(delivery("chatcmpl-1"))  # type: ignore[arg-type]
    assert f._redelivered(delivery("chatcmpl-1"))  # type: ignore[arg-type]
    assert not f._redelivered(delivery("chatcmpl-2"))  # type: ignore[arg-type]
    # Only the newest ids are kept: an old one is forgotten, not held forever.
    for i in range(feed_module.LIVE_SEEN):
        f._redelivered(delivery(f"later-{i}"))  # type: ignore[arg-type]
    assert len(f._live_seen) == feed_module.LIVE_SEEN
    assert not f._redelivered(delivery("chatcmpl-1"))  # type: ignore[arg-type]
