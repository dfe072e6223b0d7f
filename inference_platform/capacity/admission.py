"""Admission on the API's side: refuse at once what the model cannot finish in its window.

Decided in the request from what is at hand: the file's demand (counted at upload), the
model's profile (computed by the control role every few seconds) and the work admitted since
that profile was computed (a sorted set per model, so two batches created within one interval
are not both measured against a queue without the other).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Mapping

from inference_platform.capacity.estimate import fleet, load_profile, prior_rate
from inference_platform.capacity.model import Demand, Profile, Verdict, describe, judge
from inference_platform.errors import PlatformError
from inference_platform.platform import Platform

PENDING_KEY = "capacity:pending:{model}"
FLEX_WINDOW = "flex"


def overaccept(spec: str) -> dict[str, float]:
    """Parsed ``admission_overaccept``: ``{"24h": 1.0, "1h": 1.0, "flex": 1.0}``."""
    out: dict[str, float] = {}
    for item in spec.split(","):
        name, _, factor = item.strip().partition("=")
        if name.strip() and factor.strip():
            out[name.strip()] = float(factor)
    return out


def profile(platform: Platform, model: str, now: float) -> Profile:
    """The model's latest profile plus the work admitted since; without one (the control role
    is away or just started), an empty queue at the fleet's throughput."""
    found = load_profile(platform, model)
    if found is None:
        spec = platform.model(model)
        rate, busy, workers = fleet(platform, spec)
        found = Profile(now, rate, (), busy, workers)
    key = PENDING_KEY.format(model=model)
    since = platform.redis.zrangebyscore(key, found.at, "+inf")
    extra = []
    for raw in since:
        entry = json.loads(raw)
        extra.append((float(entry["deadline"]), float(entry["work"])))
    return found.with_items(extra)


def note(platform: Platform, model: str, deadline: float, work: float, now: float) -> None:
    """Count admitted work until the next profile includes it."""
    key = PENDING_KEY.format(model=model)
    entry = json.dumps({"deadline": deadline, "work": work, "id": uuid.uuid4().hex})
    pipe = platform.redis.pipeline(transaction=False)
    pipe.zadd(key, {entry: now})
    pipe.zremrangebyscore(key, "-inf", now - 600)
    pipe.expire(key, 900)
    pipe.execute()


def admit_batch(platform: Platform, model: str, window: str, demand: Demand) -> float:
    """The batch's estimated finish (unix seconds), or a 429 ``insufficient_capacity`` when it
    cannot finish inside ``window``."""
    settings = platform.settings
    windows = settings.window_seconds()
    factors = overaccept(settings.admission_overaccept)
    now = time.time()
    current = profile(platform, model, now)
    seconds = windows[window]
    factor = factors.get(window)
    verdict = judge(current, now, seconds, factor or math.inf, demand.work)
    if factor is not None and not verdict.fits:
        others = {w: s for w, s in windows.items() if w != window and w in factors}
        room = factor * seconds
        raise insufficient(model, window, demand, verdict, current, others, factors, now, room)
    note(platform, model, now + seconds, demand.work, now)
    return now + verdict.seconds


def insufficient(
    model: str,
    window: str,
    demand: Demand,
    verdict: Verdict,
    current: Profile,
    others: Mapping[str, int],
    factors: Mapping[str, float],
    now: float,
    room_seconds: float,
) -> PlatformError:
    """A 429 that says how long the batch would take and what would fit."""
    rate = f"{current.rate:,.0f} tokens/s" if current.rate else "no measured throughput"
    if verdict.delays_others:
        why = (
            f"it would take about {describe(verdict.own_seconds)} of `{model}` ({rate}) and "
            "push batches already accepted past their deadlines"
        )
    else:
        ahead = (
            f"after {describe(verdict.ahead_seconds)} of work queued ahead of it"
            if verdict.ahead_seconds >= 1
            else "with nothing queued ahead of it"
        )
        why = (
            f"it needs about {describe(verdict.own_seconds)} of `{model}` at its current "
            f"throughput ({rate}; {demand.lines:,} lines, up to {demand.output_tokens:,} "
            f"output tokens) {ahead}"
        )
    fitting = [
        w
        for w, s in sorted(others.items(), key=lambda x: x[1])
        if judge(current, now, s, factors[w], demand.work).fits
    ]
    if fitting:
        advice = f'Create it with completion_window "{fitting[0]}", or split it.'
    else:
        fit = _lines_that_fit(verdict, demand, room_seconds)
        advice = f"Split it: about {fit:,} lines like these fit in the {window} window now."
    return PlatformError(
        429,
        f"This batch cannot finish inside its {window} completion window: {why}. {advice}",
        code="insufficient_capacity",
        param="completion_window",
        headers={"x-should-retry": "false"},
    )


def _lines_that_fit(verdict: Verdict, demand: Demand, room_seconds: float) -> int:
    """Lines like these (on average) that fit in ``room_seconds`` after the work ahead."""
    if verdict.own_seconds <= 0:
        return demand.lines
    room = max(0.0, room_seconds - verdict.ahead_seconds)
    return int(demand.lines * min(1.0, room / verdict.own_seconds))


def admit_flex(platform: Platform, model: str, work: float) -> float:
    """The flex request's estimated finish, or a 429 whose ``Retry-After`` is the time until
    the work ahead of it has drained enough for it to fit."""
    settings = platform.settings
    factor = overaccept(settings.admission_overaccept).get(FLEX_WINDOW)
    now = time.time()
    current = profile(platform, model, now)
    window = settings.flex_deadline_seconds
    verdict = judge(current, now, window, factor or math.inf, work)
    if factor is not None and not verdict.fits:
        wait = verdict.seconds - factor * window if not verdict.delays_others else 0.0
        retry_after = str(int(min(3600, max(1, math.ceil(max(wait, verdict.own_seconds))))))
        raise PlatformError(
            429,
            f"`{model}` cannot take more flex work now: the flex work and 1 h batches ahead "
            f"need about {describe(verdict.ahead_seconds)} at its current throughput. Retry "
            f"after {retry_after} s, or use the default service tier.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": retry_after},
        )
    return now + verdict.seconds


def job_eta(platform: Platform, model: str, deadline: float) -> float | None:
    """When a queued or running flex job due at ``deadline`` should finish."""
    found = load_profile(platform, model)
    if found is None or (found.rate is not None and found.rate <= 0):
        return None
    now = time.time()
    return max(now, found.finish(deadline, now))


__all__ = ["admit_batch", "admit_flex", "job_eta", "overaccept", "prior_rate"]
