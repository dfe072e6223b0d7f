"""What the operator sees in the web console: per model and tier, the work waiting (queued
rows in Postgres and hints on the broker), how long the oldest has waited, what runs, the
live workers and their engines, output tokens per second, and every tenant's usage.

It reads the sources the control role's metrics read (the requests table, the broker's
queues, the workers' liveness records, the usage rows), at the moment the page is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from inference_platform import costs, liveness
from inference_platform.capacity import sla
from inference_platform.capacity.estimate import load_profile
from inference_platform.celery_app import queue_name
from inference_platform.jobs.dispatch import backlog
from inference_platform.keys import list_keys
from inference_platform.platform import Platform

# Output tokens per second are averaged over this many recent seconds of usage rows.
THROUGHPUT_WINDOW_SECONDS = 60

_WAITING = """
    SELECT tier, model,
           count(*) FILTER (WHERE status = 'queued'),
           count(*) FILTER (WHERE status = 'in_progress'),
           extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'queued'))
    FROM requests WHERE status IN ('queued', 'in_progress') GROUP BY 1, 2
"""
_THROUGHPUT = """
    SELECT tier, model, coalesce(sum(output_tokens), 0) FROM usage_records
    WHERE created_at >= now() - make_interval(secs => :window) GROUP BY 1, 2
"""


@dataclass(frozen=True)
class QueueState:
    """One model in one tier."""

    model: str
    tier: str
    queued: int  # rows waiting in Postgres (the source of truth)
    broker: int  # hints waiting on the broker's queue
    running: int
    oldest_seconds: float | None  # how long the oldest queued row has waited
    live_workers: int
    tokens_per_second: float


@dataclass
class WorkerState:
    name: str
    model: str
    engine: str
    tiers: list[str] = field(default_factory=list)
    last_seen_seconds: float = 0.0


@dataclass(frozen=True)
class Capacity:
    """A model's engines as the control role's capacity model last saw them."""

    model: str
    rate: float | None  # work units per second over its live workers; None: unbounded
    busy: float  # fraction of the last minutes the engines were busy
    workers: int
    queued_work: float  # work units queued, earliest deadline first


@dataclass(frozen=True)
class TenantUsage:
    tenant: str
    active_keys: int
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float
    at_realtime: float


def queues(platform: Platform) -> list[QueueState]:
    """Every tier of every catalog model, in catalog order."""
    window = THROUGHPUT_WINDOW_SECONDS
    with platform.db.session() as s:
        waiting = {(t, m): (int(q), int(r), o) for t, m, q, r, o in s.execute(text(_WAITING))}
        made = {(t, m): int(n) for t, m, n in s.execute(text(_THROUGHPUT), {"window": window})}
    max_age = platform.settings.worker_heartbeat_seconds * 3
    out = []
    for spec in platform.catalog:
        for tier in spec.tiers:
            queue = queue_name(tier, spec.name)
            queued, running, oldest = waiting.get((tier, spec.name), (0, 0, None))
            out.append(
                QueueState(
                    model=spec.name,
                    tier=tier,
                    queued=queued,
                    broker=backlog(platform, queue),
                    running=running,
                    oldest_seconds=None if oldest is None else float(oldest),
                    live_workers=liveness.live_count(platform.redis, queue, max_age),
                    tokens_per_second=made.get((tier, spec.name), 0) / window,
                )
            )
    return out


def workers(platform: Platform) -> list[WorkerState]:
    """The workers that sent a heartbeat within three heartbeats, with the tiers they take."""
    max_age = platform.settings.worker_heartbeat_seconds * 3
    found: dict[str, WorkerState] = {}
    for spec in platform.catalog:
        for tier in spec.tiers:
            seen = liveness.live_workers(platform.redis, queue_name(tier, spec.name), max_age)
            for name, age in seen.items():
                state = found.setdefault(name, WorkerState(name, spec.name, spec.engine))
                state.tiers.append(tier)
                state.last_seen_seconds = age
    return sorted(found.values(), key=lambda w: (w.model, w.name))


def tenants(platform: Platform, since_seconds: int) -> list[TenantUsage]:
    """Every tenant with a key or usage in the last ``since_seconds``, priced as
    ``inference-platform usage`` prices it (cost, and the same tokens at realtime prices)."""
    keys = list_keys(platform.db)
    active: dict[str, int] = {}
    for info in keys:
        active[info.tenant] = active.get(info.tenant, 0) + (info.revoked_at is None)
    end = costs.now() + 1
    start = end - since_seconds
    out = []
    for tenant in sorted(active):
        found = costs.slices(platform.db, start=start, end=end, width=since_seconds, owner=tenant)
        lines = costs.report(platform.catalog, found)
        out.append(
            TenantUsage(
                tenant=tenant,
                active_keys=active[tenant],
                requests=sum(line.requests for line in lines),
                input_tokens=sum(line.input_tokens for line in lines),
                output_tokens=sum(line.output_tokens for line in lines),
                cost=sum(line.cost or 0.0 for line in lines),
                at_realtime=sum(line.at_realtime or 0.0 for line in lines),
            )
        )
    return out


def capacity(platform: Platform) -> list[Capacity]:
    """Each catalog model's throughput and busy fraction (none before the control role has
    measured it)."""
    out = []
    for spec in platform.catalog:
        profile = load_profile(platform, spec.name)
        if profile is not None:
            queued = sum(work for _, work in profile.items)
            out.append(Capacity(spec.name, profile.rate, profile.busy, profile.workers, queued))
    return out


def deadlines(platform: Platform, since_seconds: int) -> list[sla.Score]:
    """Batches and flex jobs that ended in the last ``since_seconds``: on time vs late, per
    tier, model and window (every tenant's)."""
    since = datetime.now(UTC) - timedelta(seconds=since_seconds)
    with platform.db.session() as s:
        return sla.scores(s, since)
