"""A time-compressed day on the simulated engine: does the platform keep its deadlines?

One ``SimulatedEngine`` of a fixed throughput (``--slots`` sequences at ``--tps`` tokens/s
each) serves a seeded day of work squeezed into ``--day-seconds`` of wall time (a 24 h window
lasts that long, a 1 h window a 24th of it): realtime requests arriving all day, bursts of flex
requests (1 h deadline), and 1 h and 24 h batches of varied size arriving at random times,
some larger than the engine can finish in their window. The same day runs twice:

* ``platform`` — the platform's scheduling: admission at arrival (``capacity.model.judge``
  on the queue of accepted work, at the throughput the worker's ``capacity.meter`` measures),
  claims earliest deadline first, a feed ``--feed-factor`` lines deep per engine slot, and
  each line entering the engine at the priority its deadline slack earns
  (``capacity.model.priority``);
* ``fcfs`` — plain first come, first served with no admission: everything accepted, claimed
  in arrival order, one engine priority for all background work.

Work still unfinished at its deadline expires (its lines are dropped, as the platform does).
Printed per scheduler: the share of accepted work (batches and flex requests) finished inside
its window, the share of accepted lines, the engine's busy fraction while work was queued
(slots in use over slots), and what was refused.

Run from the repository root:

    .venv/bin/python benchmarks/sla_day.py [--day-seconds 120] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference_platform.capacity.meter import Meter, capacity_of  # noqa: E402
from inference_platform.capacity.model import Profile, judge, priority  # noqa: E402
from inference_platform.engines.base import (  # noqa: E402
    EngineAborted,
    GenerationRequest,
    SamplingParams,
)
from inference_platform.engines.simulated import SimulatedEngine  # noqa: E402

DAY = 86400.0
HOUR = 3600.0


@dataclass
class Work:
    """A batch or a flex request (one line): when it arrives, when it is due, its lines."""

    name: str
    kind: str  # "batch:24h", "batch:1h", "flex"
    arrival: float  # day seconds
    window: float  # day seconds
    lines: list[int]  # output tokens per line
    seq: int = 0
    accepted: bool = False
    next_line: int = 0
    done_lines: int = 0
    expired: bool = False
    finished_at: float | None = None  # wall seconds from the start

    @property
    def tokens(self) -> int:
        return sum(self.lines)


def make_day(seed: int) -> list[Work]:
    """The day's background work (realtime comes separately)."""
    rng = random.Random(seed)
    day: list[Work] = []
    for i in range(8):  # 24 h batches: 200-2,500 lines of 20-80 tokens
        n = rng.randint(200, 2500)
        lines = [rng.randint(20, 80) for _ in range(n)]
        day.append(Work(f"day-{i}", "batch:24h", rng.uniform(0, 0.7 * DAY), DAY, lines))
    # One the engine could not finish in a whole day.
    day.append(Work("day-huge", "batch:24h", rng.uniform(0, 0.3 * DAY), DAY, [80] * 12000))
    for i in range(25):  # 1 h batches: 20-400 lines of 10-40 tokens
        n = rng.randint(20, 400)
        lines = [rng.randint(10, 40) for _ in range(n)]
        day.append(Work(f"hour-{i}", "batch:1h", rng.uniform(0, 0.95 * DAY), HOUR, lines))
    for i in range(2):  # 1 h batches that no hour of this engine holds
        day.append(Work(f"hour-big-{i}", "batch:1h", rng.uniform(0, 0.9 * DAY), HOUR, [30] * 2500))
    for b in range(12):  # flex bursts of 30-100 requests of 20-60 tokens
        at = rng.uniform(0, 0.95 * DAY)
        for j in range(rng.randint(30, 100)):
            day.append(Work(f"flex-{b}-{j}", "flex", at, HOUR, [rng.randint(20, 60)]))
    day.sort(key=lambda w: w.arrival)
    for seq, work in enumerate(day):
        work.seq = seq
    return day


@dataclass
class Run:
    mode: str
    engine: SimulatedEngine
    scale: float  # wall seconds per day second
    depth: int
    slots: int
    day: list[Work]
    meter: Meter
    prior: float
    start: float = field(default_factory=time.monotonic)
    queue: list[tuple[tuple[float, ...], int]] = field(default_factory=list)
    in_flight: dict[str, tuple[Work, asyncio.Task[None]]] = field(default_factory=dict)
    busy_samples: list[float] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=itertools.count)

    def now(self) -> float:
        return time.monotonic() - self.start

    def deadline(self, w: Work) -> float:
        return (w.arrival + w.window) * self.scale

    def key(self, w: Work) -> tuple[float, ...]:
        return (self.deadline(w), w.seq) if self.mode == "platform" else (w.seq,)

    def admit(self, w: Work) -> bool:
        if self.mode == "fcfs":
            return True
        now = self.now()
        rate = capacity_of(self.meter.reading("bench"), self.prior)
        items = sorted(
            (self.deadline(o), float(sum(o.lines[o.done_lines :])))
            for o in self.day
            if o.accepted and o.finished_at is None and not o.expired
        )
        verdict = judge(Profile(now, rate, tuple(items)), now, w.window * self.scale, 1.0, w.tokens)
        return verdict.fits

    def arrive(self, w: Work) -> None:
        w.accepted = self.admit(w)
        if w.accepted:
            heapq.heappush(self.queue, (self.key(w), w.seq))

    def feed(self) -> None:
        """Keep ``depth`` lines submitted to the engine, in the scheduler's order."""
        while len(self.in_flight) < self.depth and self.queue:
            _, seq = self.queue[0]
            w = self.day[seq]
            if w.expired or w.next_line >= len(w.lines):
                heapq.heappop(self.queue)
                continue
            tokens = w.lines[w.next_line]
            w.next_line += 1
            self.submit(w, tokens)

    def submit(self, w: Work | None, tokens: int) -> None:
        if w is None:
            rank = 0  # realtime
        elif self.mode == "platform":
            # Slack in day time, as the platform's workers compute it from the deadline.
            rank = priority(w.arrival + w.window, self.now() / self.scale, 2)
        else:
            rank = 2
        rid = f"r{next(self.ids)}"
        request = GenerationRequest(rid, "x", SamplingParams(max_tokens=tokens), priority=rank)
        task = asyncio.ensure_future(self.generate(w, rid, request))
        if w is not None:
            self.in_flight[rid] = (w, task)

    async def generate(self, w: Work | None, rid: str, request: GenerationRequest) -> None:
        self.meter.started()
        produced = 0
        try:
            async for delta in self.engine.generate(request):
                produced = delta.completion_tokens
        except EngineAborted:
            pass
        finally:
            self.meter.ended(0, produced)
            self.in_flight.pop(rid, None)
        if w is not None and produced == request.params.max_tokens and not w.expired:
            w.done_lines += 1
            if w.done_lines == len(w.lines):
                w.finished_at = self.now()

    def expire(self) -> None:
        now = self.now()
        for rid, (w, _task) in list(self.in_flight.items()):
            if not w.expired and now > self.deadline(w) and w.finished_at is None:
                w.expired = True
            if w.expired:
                asyncio.ensure_future(self.engine.abort(rid))
        for w in self.day:
            if w.accepted and not w.expired and w.finished_at is None and now > self.deadline(w):
                w.expired = True

    def pending(self) -> bool:
        return any(w.accepted and w.finished_at is None and not w.expired for w in self.day)

    def sample(self) -> None:
        waiting = any(
            not self.day[s].expired and self.day[s].next_line < len(self.day[s].lines)
            for _, s in self.queue
        )
        stats = self.engine.stats()
        if waiting or stats["waiting"] > 0:
            self.busy_samples.append(min(1.0, stats["running"] / self.slots))


async def run_day(mode: str, args: argparse.Namespace, day: list[Work]) -> Run:
    engine = SimulatedEngine(
        "sim", None, {"tokens_per_second": args.tps, "batch_size": args.slots, "ttft_ms": 0}
    )
    await engine.start()
    scale = args.day_seconds / DAY
    run = Run(mode, engine, scale, args.slots * args.feed_factor, args.slots, day,
              Meter(args.slots), prior=args.tps * args.slots)  # fmt: skip
    rng = random.Random(args.seed + 1)
    next_realtime = rng.expovariate(args.realtime_per_second)
    arrivals = iter(day)
    upcoming = next(arrivals, None)
    # Until the day is over and every accepted piece of work has finished or expired.
    while run.now() < args.day_seconds or run.pending():
        now = run.now()
        while upcoming is not None and upcoming.arrival * scale <= now:
            run.arrive(upcoming)
            upcoming = next(arrivals, None)
        while next_realtime <= now:
            run.submit(None, rng.randint(10, 50))
            next_realtime += rng.expovariate(args.realtime_per_second)
        run.expire()
        run.feed()
        run.sample()
        await asyncio.sleep(0.02)
    for _w, task in list(run.in_flight.values()):
        task.cancel()
    await engine.stop()
    return run


def report(run: Run) -> dict[str, str]:
    accepted = [w for w in run.day if w.accepted]
    refused = [w for w in run.day if not w.accepted]
    on_time = [w for w in accepted if w.finished_at is not None and not w.expired]
    lines = sum(len(w.lines) for w in accepted)
    lines_on_time = sum(len(w.lines) for w in on_time)
    total_tokens = sum(w.tokens for w in run.day)
    busy = sum(run.busy_samples) / len(run.busy_samples) if run.busy_samples else 0.0
    return {
        "accepted work on time": f"{len(on_time)}/{len(accepted)} "
        f"({100 * len(on_time) / max(1, len(accepted)):.1f}%)",
        "accepted lines on time": f"{100 * lines_on_time / max(1, lines):.1f}%",
        "1 h batches on time": _share(accepted, on_time, "batch:1h"),
        "24 h batches on time": _share(accepted, on_time, "batch:24h"),
        "flex on time": _share(accepted, on_time, "flex"),
        "engine busy while work queued": f"{100 * busy:.1f}%",
        "refused": f"{len(refused)} ({100 * sum(w.tokens for w in refused) / total_tokens:.1f}% "
        "of the day's tokens)",
    }


def _share(accepted: list[Work], on_time: list[Work], kind: str) -> str:
    mine = [w for w in accepted if w.kind == kind]
    kept = [w for w in on_time if w.kind == kind]
    return f"{len(kept)}/{len(mine)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--day-seconds", type=float, default=120.0, help="wall seconds a day")
    parser.add_argument("--slots", type=int, default=32, help="engine batch (sequences)")
    parser.add_argument("--tps", type=float, default=200.0, help="tokens/s of each sequence")
    parser.add_argument("--feed-factor", type=int, default=8, help="lines claimed per slot")
    parser.add_argument("--realtime-per-second", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    day_tokens = sum(w.tokens for w in make_day(args.seed))
    capacity = args.slots * args.tps * args.day_seconds
    print(
        f"a day in {args.day_seconds:g} s: engine {args.slots} x {args.tps:g} tokens/s "
        f"({capacity:,.0f} tokens a day); background work offered {day_tokens:,} tokens "
        f"({100 * day_tokens / capacity:.0f}% of capacity), realtime "
        f"{args.realtime_per_second:g}/s; seed {args.seed}"
    )
    results = {}
    for mode in ("platform", "fcfs"):
        run = asyncio.run(run_day(mode, args, make_day(args.seed)))
        results[mode] = report(run)
    width = max(len(k) for k in results["platform"])
    print(
        f"\n{'':{width}}  {'platform (admission+EDF+priorities)':>38}  {'fcfs, no admission':>22}"
    )
    for key in results["platform"]:
        print(f"{key:{width}}  {results['platform'][key]:>38}  {results['fcfs'][key]:>22}")


if __name__ == "__main__":
    main()
