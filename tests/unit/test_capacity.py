"""The capacity model's arithmetic: finish times under earliest deadline first, admission,
deadline priorities, and the demand a file is counted with while it is uploaded."""

from __future__ import annotations

import json

import pytest

from inference_platform.capacity.meter import Meter
from inference_platform.capacity.model import (
    Demand,
    Profile,
    describe,
    finish_times,
    judge,
    priority,
)
from inference_platform.files.stats import LineStats, demand_of

HOUR, DAY = 3600.0, 86400.0


def test_finish_times_follow_earliest_deadline_first() -> None:
    now = 1000.0
    items = [(now + HOUR, 3600.0), (now + DAY, 7200.0)]
    assert finish_times(items, 2.0, now) == [now + 1800, now + 5400]
    assert finish_times(items, None, now) == [now, now]  # an instant engine


def test_the_make_run_file_is_refused_for_1h_and_fits_24h() -> None:
    # 50,000 short prompts with max_tokens 500 at 1,000 tokens/s: about 7 h of work.
    demand = Demand(lines=50_000, prompt_tokens=50_000 * 12, output_tokens=50_000 * 500)
    empty = Profile(at=0.0, rate=1000.0)
    one_hour = judge(empty, 0.0, HOUR, 1.0, demand.work)
    assert not one_hour.fits and 6 * HOUR < one_hour.own_seconds < 8 * HOUR
    assert judge(empty, 0.0, DAY, 1.0, demand.work).fits
    # With that 24 h batch queued, a small 1 h batch goes ahead of it and still fits...
    queued = Profile(at=0.0, rate=1000.0, items=((DAY, demand.work),))
    small = Demand(lines=20, prompt_tokens=200, output_tokens=20 * 500)
    verdict = judge(queued, 10.0, HOUR, 1.0, small.work)
    assert verdict.fits and verdict.ahead_seconds == 0.0
    # ...but a second big 24 h batch does not: the first one is ahead of it.
    assert not judge(queued, 10.0, DAY, 1.0, demand.work * 3).fits


def test_new_work_may_not_make_promised_work_late() -> None:
    # A 24 h batch that needs 23.5 h: a 1 h batch of 0.9 h of work fits its own window but
    # would push the 24 h one past its end.
    rate = 1.0
    queued = Profile(at=0.0, rate=rate, items=((DAY, 23.5 * HOUR),))
    verdict = judge(queued, 0.0, HOUR, 1.0, 0.9 * HOUR)
    assert not verdict.fits and verdict.delays_others
    assert judge(queued, 0.0, HOUR, 1.0, 0.4 * HOUR).fits
    # Work that is late already does not block everything after it.
    late = Profile(at=0.0, rate=rate, items=((DAY, 30 * HOUR),))
    assert judge(late, 0.0, HOUR, 1.0, 0.5 * HOUR).fits


def test_overaccept_factor_and_drain_since_the_profile() -> None:
    profile = Profile(at=0.0, rate=1.0, items=((HOUR, 3000.0),))
    assert not judge(profile, 0.0, HOUR, 1.0, 1000.0).fits
    assert judge(profile, 0.0, HOUR, 1.5, 1000.0).fits
    # 500 s after the profile was computed, 500 units of the queue are done.
    assert profile.ahead(HOUR, 500.0) == 2500.0
    more = profile.with_items([(HOUR / 2, 100.0)])
    assert more.ahead(HOUR / 2, 0.0) == 100.0 and more.ahead(HOUR, 0.0) == 3100.0


def test_slack_orders_engine_priorities() -> None:
    now = 0.0
    fresh_1h, fresh_24h = priority(now + HOUR, now, 2), priority(now + DAY, now, 2)
    assert 0 < fresh_1h < fresh_24h  # never realtime's 0
    assert priority(now + 1800, now, 1) < priority(now + HOUR, now, 1)  # near deadline first
    assert priority(now - 5, now, 2) == 1
    assert priority(None, now, 2) == 2


def test_describe_reads_like_a_person() -> None:
    assert describe(40) == "40 s" and describe(720) == "12 min"
    assert describe(6.9 * HOUR) == "6.9 h" and describe(3 * DAY) == "3.0 days"


def _line(custom_id: str, body: dict[str, object], url: str = "/v1/chat/completions") -> bytes:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body}).encode()


def test_upload_stats_count_lines_prompts_and_output_limits_across_pieces() -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 100}
    lines = [
        _line("a", chat),
        _line("b", {**chat, "n": 2}),
        _line("c", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        b"not json",
        _line("d", {"model": "m", "prompt": ["p1", "p2"]}, "/v1/completions"),
    ]
    data = b"\n".join(lines) + b"\n\n"
    stats = LineStats()
    for i in range(0, len(data), 7):  # the parser hands the file over in pieces
        stats.write(data[i : i + 7])
    stats.close()
    entry = stats.as_dict()["models"]["m"]
    assert entry["lines"] == 4
    assert entry["output_tokens"] == 100 + 200 + 2 * 16
    assert entry["unbounded"] == 1
    assert entry["prompt_tokens"] >= 20  # 40 characters twice, at 4 a token
    found = demand_of(stats.as_dict(), default_max_tokens=512)
    assert found == ("m", {"lines": 4, "prompt_tokens": entry["prompt_tokens"],
                           "output_tokens": 332 + 512})  # fmt: skip


def test_a_file_of_several_models_has_no_demand() -> None:
    entry = {"lines": 1, "prompt_tokens": 1, "output_tokens": 1, "unbounded": 0}
    stats = {"models": {"a": entry, "b": entry}}
    assert demand_of(stats, 512) is None
    assert demand_of(None, 512) is None


def test_meter_measures_throughput_while_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    from inference_platform.capacity import meter as meter_module

    clock = [0.0]
    monkeypatch.setattr(meter_module.time, "monotonic", lambda: clock[0])
    m = Meter(slots=2)
    for _ in range(4):  # a deep queue: twice the engine's slots in flight
        m.started()
    clock[0] = 2.0
    m.ended(prompt_tokens=0, output_tokens=100)  # the first end closes the filling stretch
    m.started()
    assert m.reading("w").rate is None  # nothing counted yet: no figure rather than 0
    while clock[0] < 20.0:  # then a 100-token piece ends every 0.5 s: 200 tokens/s
        clock[0] += 0.5
        m.ended(prompt_tokens=80, output_tokens=90)  # 100 units
        m.started()
    for _ in range(4):
        m.ended(prompt_tokens=0, output_tokens=0)
    clock[0] = 40.0  # idle for 20 s: throughput kept, busy fraction halved
    reading = m.reading("w")
    assert reading.rate == pytest.approx(200.0, rel=0.1)
    assert reading.fullness == pytest.approx(1.0)
    assert reading.busy_fraction == pytest.approx(0.5, rel=0.05)


def test_a_1h_line_overtakes_24h_lines_already_waiting_in_the_engine() -> None:
    import asyncio

    from inference_platform.engines.base import GenerationRequest, SamplingParams
    from inference_platform.engines.simulated import SimulatedEngine

    async def scenario() -> list[str]:
        engine = SimulatedEngine("sim", None, {"tokens_per_second": 200, "batch_size": 1})
        order: list[str] = []
        now = 0.0

        async def run(name: str, deadline: float) -> None:
            rank = priority(deadline, now, 2)
            request = GenerationRequest(name, "x", SamplingParams(max_tokens=2), priority=rank)
            async for delta in engine.generate(request):
                if delta.finish_reason:
                    order.append(name)

        tasks = [asyncio.create_task(run(f"day-{i}", now + DAY)) for i in range(4)]
        await asyncio.sleep(0.001)  # the 24 h lines are in the engine: one runs, three wait
        tasks.append(asyncio.create_task(run("hour", now + HOUR)))
        await asyncio.gather(*tasks)
        return order

    order = asyncio.run(scenario())
    assert order[0] == "day-0" and order[1] == "hour", order


def test_the_shared_engine_gate_lets_the_line_due_sooner_pass() -> None:
    import asyncio

    from inference_platform.engines.gate import PriorityGate

    async def scenario() -> list[str]:
        gate, order = PriorityGate(1), []

        async def line(name: str, rank: int) -> None:
            await gate.acquire(rank)
            order.append(name)
            await asyncio.sleep(0.001)
            gate.release()

        day = [asyncio.create_task(line(f"day-{i}", 21)) for i in range(3)]
        await asyncio.sleep(0)  # day-0 holds the gate; day-1 and day-2 wait
        cancelled = asyncio.create_task(line("gone", 1))
        await asyncio.sleep(0)
        cancelled.cancel()  # an aborted waiter gives its turn away
        hour = asyncio.create_task(line("hour", 12))
        await asyncio.gather(*day, hour, return_exceptions=True)
        return order

    assert asyncio.run(scenario()) == ["day-0", "hour", "day-1", "day-2"]
