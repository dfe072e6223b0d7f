"""The worker's watchdog: what it does about a consumer, heartbeat or lease keeper that stopped."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from workers import consumer, watchdog


class FakeBroker:
    """Answers the watchdog's look at the queues: ``waiting`` messages, or Redis away."""

    def __init__(self) -> None:
        self.waiting = 0
        self.away = False

    def pipeline(self, transaction: bool = False) -> FakeBroker:
        self.asked = 0
        return self

    def llen(self, key: str) -> None:
        self.asked += 1

    def execute(self) -> list[int]:
        if self.away:
            raise redis.ConnectionError("away")
        return [self.waiting] + [0] * (self.asked - 1)


class FakeConsumer:
    def __init__(self) -> None:
        self.restarts: list[str] = []

    def start_over(self, reason: str) -> bool:
        self.restarts.append(reason)
        return True


@pytest.fixture
def dog(monkeypatch: pytest.MonkeyPatch) -> tuple[watchdog.Watchdog, FakeBroker, FakeConsumer]:
    fake = FakeConsumer()
    monkeypatch.setattr(consumer, "current", fake)
    monkeypatch.setattr(watchdog.worker_state, "reserved_requests", set())
    broker = FakeBroker()
    clock = {"beat": 0.0, "leases": 0.0}
    dog = watchdog.Watchdog(
        broker,  # type: ignore[arg-type]
        ["batch.m"],
        beat_at=lambda: clock["beat"],
        leases_at=lambda: clock["leases"],
        hand_back=lambda: None,
        lease_seconds=6.0,
        received_at=0.0,
    )
    dog.clock = clock  # type: ignore[attr-defined]
    return dog, broker, fake


def _at(dog: watchdog.Watchdog, now: float) -> str | None:
    clock: dict[str, Any] = dog.clock  # type: ignore[attr-defined]
    clock["beat"] = clock["leases"] = now  # those threads are fine
    return dog.check(now)


def test_messages_waiting_and_none_received_restart_the_consumer_then_give_up(dog) -> None:
    dog, broker, fake = dog
    broker.waiting = 3
    assert _at(dog, 10.0) is None  # the stall starts being timed
    assert _at(dog, 10.0 + watchdog.CONSUMER_STALL_SECONDS) is None
    assert len(fake.restarts) == 1
    # Still nothing received after the restart's window: the process gives up.
    assert _at(dog, 11.0 + watchdog.CONSUMER_STALL_SECONDS) is None
    problem = _at(dog, 10.0 + watchdog.CONSUMER_STALL_SECONDS + watchdog.RESTART_SECONDS)
    assert problem is not None and "none received" in problem


def test_a_message_received_after_the_restart_ends_the_stall(dog) -> None:
    dog, broker, fake = dog
    broker.waiting = 3
    _at(dog, 10.0)
    _at(dog, 10.0 + watchdog.CONSUMER_STALL_SECONDS)
    dog.received_at = 16.0
    assert _at(dog, 17.0) is None
    assert _at(dog, 40.0) is None  # a new stall is timed from scratch, no give-up
    assert len(fake.restarts) == 1


def test_the_consumer_starts_over_once_the_broker_link_is_back(dog) -> None:
    dog, broker, fake = dog
    broker.away = True
    assert _at(dog, 5.0) is None and not fake.restarts
    broker.away = False
    assert _at(dog, 6.0) is None
    assert fake.restarts == ["the connection to the broker was lost"]
    assert _at(dog, 7.0) is None and len(fake.restarts) == 1


def test_a_stuck_heartbeat_or_lease_keeper_is_given_up_on(dog) -> None:
    dog, _broker, _fake = dog
    clock = dog.clock
    clock["beat"], clock["leases"] = 0.0, 100.0
    assert "heartbeat" in (dog.check(1.0 + watchdog.STUCK_SECONDS) or "")
    clock["beat"], clock["leases"] = 100.0, 0.0
    assert "lease renewal" in (dog.check(100.0) or "")
    clock["leases"] = 95.0  # a round 5 s ago: renewing every 2 s, Postgres slow
    assert dog.check(100.0) is None
