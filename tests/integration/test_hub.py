"""The API process's one reader of every followed stream, against a real Redis: each
subscriber gets every entry after its position, in order, also when it joins while reads
for other subscribers of the same stream are flowing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from inference_platform.events import redis_client
from inference_platform.hub import Hub
from tests.stack import _claim_redis_db, _release_redis_db

ADMIN = "redis://127.0.0.1:6379/0"


@pytest.fixture
def client(services: object) -> Iterator[redis.Redis[bytes]]:
    index = _claim_redis_db(ADMIN)
    c = redis_client(f"redis://127.0.0.1:6379/{index}")
    c.flushdb()
    try:
        yield c
    finally:
        _release_redis_db(ADMIN, index)


def _read(sub: object, until: float) -> list[str]:
    got: list[str] = []
    while time.monotonic() < until:
        got += [entry_id for entry_id, _ in sub.get(0.1)]  # type: ignore[attr-defined]
    return got


def test_a_subscriber_joining_mid_stream_gets_every_entry_from_the_start(
    client: redis.Redis[bytes],
) -> None:
    hub = Hub(client)
    first = hub.subscribe("k")
    written = [client.xadd("k", {"d": str(i)}).decode() for i in range(5)]
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            written.append(client.xadd("k", {"d": "x"}).decode())
            stop.wait(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        early = _read(first, time.monotonic() + 0.3)  # reads are flowing for `first`
        late = hub.subscribe("k")  # from the start, while those reads go on
        late_got = _read(late, time.monotonic() + 1.0)
        early += _read(first, time.monotonic() + 0.01)
    finally:
        stop.set()
        thread.join()
    late_got += _read(late, time.monotonic() + 0.5)
    early += _read(first, time.monotonic() + 0.1)
    assert late_got == written
    assert early == written
    late.close()
    first.close()


def test_a_new_subscriber_wakes_a_reader_that_waits_long(client: redis.Redis[bytes]) -> None:
    hub = Hub(client)
    idle = hub.subscribe("quiet")  # the reader now blocks: nothing flows
    time.sleep(0.3)
    sub = hub.subscribe("k")
    entry = client.xadd("k", {"d": "1"}).decode()
    started = time.monotonic()
    assert [e for e, _ in sub.get(3.0)] == [entry]
    assert time.monotonic() - started < 2.0  # not after the reader's 5 s wait
    idle.close()
    sub.close()


def test_a_read_that_began_past_a_subscriber_position_is_not_given_to_it(
    client: redis.Redis[bytes],
) -> None:
    # Under the API's gevent workers a request subscribes while the reader's XREAD is in
    # flight, its positions taken before the new subscriber existed. Those entries would
    # leave a gap before them; the subscriber takes the next read, from its own position.
    hub = Hub(client)
    sub = hub.subscribe("k")
    sub._deliver([("5-0", [b"d", b"x"])], start="4-0")
    assert sub.get(0.01) == []
    sub._deliver([("1-0", [b"d", b"a"]), ("5-0", [b"d", b"x"])], start="0")
    assert [e for e, _ in sub.get(0.01)] == ["1-0", "5-0"]
    sub._deliver([("5-0", [b"d", b"x"]), ("6-0", [b"d", b"y"])], start="4-0")
    assert [e for e, _ in sub.get(0.01)] == ["6-0"]
    sub.close()


def test_a_subscriber_between_a_read_s_planning_and_its_start_is_not_left_waiting(
    client: redis.Redis[bytes],
) -> None:
    # The reader takes its list of streams, then sends the XREAD. A request subscribing in
    # between is not in that read, and its wake-up reaches Redis before the read does: the
    # read must still see that wake-up, or the request waits out the reader's long block.
    hub = Hub(client)
    plan = hub._streams
    late: list[object] = []

    def planned() -> dict[object, object]:
        streams = plan()
        if not late:
            late.append(hub.subscribe("late"))  # its wake-up lands before the XREAD
        return streams

    hub._streams = planned  # type: ignore[method-assign]
    idle = hub.subscribe("quiet")
    deadline = time.monotonic() + 2.0
    while not late and time.monotonic() < deadline:
        time.sleep(0.01)
    assert late, "the reader never planned a read"
    entry = client.xadd("late", {"d": "1"}).decode()
    started = time.monotonic()
    assert [e for e, _ in late[0].get(3.0)] == [entry]  # type: ignore[attr-defined]
    assert time.monotonic() - started < 2.0  # not after the reader's 5 s wait
    idle.close()


def test_a_burst_of_subscribers_costs_one_wake_up(client: redis.Redis[bytes]) -> None:
    # Subscribers that come before the woken reader plans its next read ride the first
    # wake-up. The reader is held before that planning, so the burst surely fits in the gap.
    hub = Hub(client)
    plan = hub._streams
    gate, woken = threading.Event(), threading.Event()
    gate.set()

    def planned() -> dict[object, object]:
        if not gate.is_set():
            woken.set()
            gate.wait(5.0)
        return plan()

    hub._streams = planned  # type: ignore[method-assign]
    idle = hub.subscribe("quiet")
    time.sleep(0.3)  # the reader blocks long: the next subscriber wakes it
    before = client.xlen(hub._wake_key)
    gate.clear()
    subs = [hub.subscribe("k0")]
    assert woken.wait(3.0)  # the reader is up, and has not planned its read yet
    subs += [hub.subscribe(f"k{i}") for i in range(1, 200)]
    assert client.xlen(hub._wake_key) == before + 1
    gate.set()
    entries = [client.xadd(f"k{i}", {"d": "1"}).decode() for i in range(200)]
    for sub, entry in zip(subs, entries, strict=True):
        assert [e for e, _ in sub.get(3.0)] == [entry]
    idle.close()


def test_a_subscriber_wakes_a_reader_whose_streams_are_flowing(client: redis.Redis[bytes]) -> None:
    # While another stream's events flow, a new request must not wait for the reader's read
    # to time out (Redis wakes a timed-out reader only on its own 100 ms tick when idle): it
    # wakes the read it is not part of.
    hub = Hub(client)
    busy = hub.subscribe("busy")
    client.xadd("busy", {"d": "1"})
    assert busy.get(3.0)  # the reader has delivered: it is planning or inside its next read
    time.sleep(0.05)  # now surely inside it, with "busy" in it and nothing new to read
    before = client.xlen(hub._wake_key)
    new = hub.subscribe("new")
    assert client.xlen(hub._wake_key) == before + 1
    entry = client.xadd("new", {"d": "1"}).decode()
    assert [e for e, _ in new.get(3.0)] == [entry]
    busy.close()
    new.close()
