"""The control role's capacity computation, every ``capacity_interval_seconds``.

For each model: its throughput (the live workers' readings, or a prior until they have
measured themselves), its queue (validating batches by the demand they were admitted with,
running batches by their unfinished lines, flex jobs by their output limits), and under
earliest deadline first the finish of each item. Batches get ``estimated_completion_at``;
the model's ``Profile`` goes to Redis for admission and for the ETA of flex responses.

A batch's lines count at their output limit until some have finished; from then on at the
share of the limit its finished lines actually used (a batch of lines that mostly stop early
is not estimated at its worst case for the rest of its run).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from inference_platform.capacity import meter
from inference_platform.capacity.model import Profile, finish_times, work_units
from inference_platform.catalog import ModelSpec
from inference_platform.platform import Platform
from inference_platform.tiers import BATCH, FLEX

log = logging.getLogger(__name__)

PROFILE_KEY = "capacity:profile:{model}"
# A profile's items: flex jobs are grouped by their deadline to this many seconds.
FLEX_BUCKET_SECONDS = 10
MAX_ITEMS = 2000
# Finished lines a batch needs before its own history replaces its output limits.
HISTORY_LINES = 20

_VALIDATING = "SELECT id, demand, expires_at FROM batches WHERE status = 'validating'"
_RUNNING = """
    SELECT b.id, b.model, b.expires_at, b.demand, count(*),
           coalesce(sum(coalesce(r.output_limit, :default)), 0)
    FROM batches b JOIN requests r ON r.batch_id = b.id
    WHERE b.status = 'in_progress' AND r.status IN ('queued', 'in_progress')
    GROUP BY b.id
"""
_USED = """
    SELECT batch_id, count(*), coalesce(sum(output_tokens), 0) FROM usage_records
    WHERE batch_id = ANY(:ids) GROUP BY batch_id
"""
_FLEX = """
    SELECT model, floor(extract(epoch FROM deadline) / :bucket) * :bucket + :bucket, count(*),
           coalesce(sum(coalesce(output_limit, :default)), 0),
           coalesce(sum(length(CAST(body AS text))), 0) / 4
    FROM requests
    WHERE tier = 'flex' AND batch_id IS NULL AND status IN ('queued', 'in_progress')
      AND deadline IS NOT NULL
    GROUP BY 1, 2
"""


@dataclass(frozen=True)
class Item:
    model: str
    deadline: float
    work: float
    batch_id: str | None = None


def prior_rate(spec: ModelSpec, prior: float, slots: int | None = None) -> float | None:
    """Throughput of one worker before it has measured itself (None: unbounded).

    A simulated engine's is known: ``tokens_per_second`` for each sequence it runs at once.
    """
    if spec.engine != "simulated":
        return prior
    per_sequence = float(spec.engine_args.get("tokens_per_second", 0) or 0)
    if per_sequence <= 0:
        return None
    return per_sequence * (slots or int(spec.engine_args.get("batch_size", 8)))


def fleet(platform: Platform, spec: ModelSpec) -> tuple[float | None, float, int]:
    """``(rate, busy fraction, live workers)`` of a model (``meter.capacity_of`` each)."""
    settings = platform.settings
    max_age = settings.worker_heartbeat_seconds * 3
    readings = meter.read(platform.redis, spec.name, max_age)
    prior = settings.capacity_prior_tokens_per_second
    if prior_rate(spec, prior) is None:
        return None, _mean(r.busy_fraction for r in readings), len(readings)
    if not readings:  # none measured yet (starting): as if one worker
        return prior_rate(spec, prior), 0.0, 0
    total = sum(meter.capacity_of(r, prior_rate(spec, prior, r.slots) or 0.0) for r in readings)
    return total, _mean(r.busy_fraction for r in readings), len(readings)


def _mean(values: Iterable[float]) -> float:
    seen = list(values)
    return sum(seen) / len(seen) if seen else 0.0


def queued_items(platform: Platform) -> list[Item]:
    """Every unfinished batch and flex job, as work items."""
    default = platform.settings.default_max_tokens
    items: list[Item] = []
    with platform.db.session() as s:
        for batch_id, demand, expires_at in s.execute(text(_VALIDATING)):
            if demand and demand.get("model") and expires_at is not None:
                work = work_units(demand["prompt_tokens"], demand["output_tokens"])
                items.append(Item(demand["model"], expires_at.timestamp(), work, batch_id))
        running = s.execute(text(_RUNNING), {"default": default}).all()
        used = {
            b: (int(n), int(out))
            for b, n, out in s.execute(text(_USED), {"ids": [r[0] for r in running]})
        }
        for batch_id, model, expires_at, demand, left, limits in running:
            work = _left(demand, left, limits, used.get(batch_id))
            items.append(Item(model, expires_at.timestamp(), work, batch_id))
        params = {"bucket": FLEX_BUCKET_SECONDS, "default": default}
        for model, due, _n, limits, prompt in s.execute(text(_FLEX), params):
            items.append(Item(model, float(due), work_units(float(prompt), float(limits))))
    return items


def _left(
    demand: dict[str, Any] | None, left: int, limits: int, used: tuple[int, int] | None
) -> float:
    """Work of a running batch's ``left`` unfinished lines (``limits``: their output limits)."""
    prompt_per_line = 0.0
    expected = float(limits)
    if demand and demand.get("lines"):
        prompt_per_line = demand["prompt_tokens"] / demand["lines"]
        finished_limits = demand["output_tokens"] - limits
        if used and used[0] >= HISTORY_LINES and finished_limits > 0:
            share = min(1.0, max(0.05, used[1] / finished_limits))
            expected = limits * share
    return work_units(prompt_per_line * left, expected)


def refresh(platform: Platform) -> dict[str, Profile]:
    """Recompute every model's profile, store it, and write the batches' ETAs."""
    now = time.time()
    by_model: dict[str, list[Item]] = {}
    for item in queued_items(platform):
        by_model.setdefault(item.model, []).append(item)
    profiles: dict[str, Profile] = {}
    etas: list[tuple[str, float]] = []
    for spec in platform.catalog:
        if not (spec.serves(BATCH) or spec.serves(FLEX)):
            continue
        rate, busy, workers = fleet(platform, spec)
        items = sorted(by_model.get(spec.name, []), key=lambda i: (i.deadline, i.batch_id or ""))
        finishes = finish_times([(i.deadline, i.work) for i in items], rate, now)
        etas += [(i.batch_id, f) for i, f in zip(items, finishes, strict=True) if i.batch_id]
        profile = Profile(now, rate, tuple((i.deadline, i.work) for i in items), busy, workers)
        profiles[spec.name] = profile
        _store(platform, spec.name, profile)
    _write_etas(platform, etas)
    return profiles


def _store(platform: Platform, model: str, profile: Profile) -> None:
    items = profile.items
    if len(items) > MAX_ITEMS:  # merge the far end into one item: admission needs the near one
        rest = sum(w for _, w in items[MAX_ITEMS - 1 :])
        items = (*items[: MAX_ITEMS - 1], (items[-1][0], rest))
    payload = {
        "at": profile.at,
        "rate": profile.rate,
        "items": [[round(d, 1), round(w, 1)] for d, w in items],
        "busy": round(profile.busy, 4),
        "workers": profile.workers,
    }
    ttl = max(30, int(platform.settings.capacity_interval_seconds * 10))
    platform.redis.set(PROFILE_KEY.format(model=model), json.dumps(payload), ex=ttl)


def load_profile(platform: Platform, model: str) -> Profile | None:
    raw = platform.redis.get(PROFILE_KEY.format(model=model))
    if raw is None:
        return None
    data = json.loads(raw)
    items = tuple((float(d), float(w)) for d, w in data["items"])
    return Profile(data["at"], data["rate"], items, data["busy"], data["workers"])


_SET_ETAS = text(
    "UPDATE batches b SET estimated_completion_at = to_timestamp(v.eta) "
    "FROM unnest(CAST(:ids AS text[]), CAST(:etas AS float8[])) AS v(id, eta) "
    "WHERE b.id = v.id AND b.status IN ('validating', 'in_progress') "
    "AND (b.estimated_completion_at IS NULL "
    "OR abs(extract(epoch FROM b.estimated_completion_at) - v.eta) >= 1)"
)


def _write_etas(platform: Platform, etas: list[tuple[str, float]]) -> None:
    finite = [(b, e) for b, e in etas if e != float("inf")]
    if not finite:
        return
    with platform.db.session() as s:
        s.execute(_SET_ETAS, {"ids": [b for b, _ in finite], "etas": [e for _, e in finite]})
