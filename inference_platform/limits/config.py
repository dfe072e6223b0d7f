"""What a tenant may do: its own limits per model, its ``*`` row, then the settings."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from inference_platform.db import Database
from inference_platform.db.models import TenantLimit
from inference_platform.settings import Settings
from inference_platform.ttl_cache import TtlCache

ANY_MODEL = "*"
# How long an API process trusts what it read: a change takes effect within this.
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    """Limits in force for one tenant and model; 0 means no limit."""

    requests_per_minute: int
    tokens_per_minute: int
    concurrent_requests: int
    queued_flex_requests: int
    enqueued_batch_lines: int


NAMES = tuple(f.name for f in fields(Limits))


def defaults(settings: Settings) -> Limits:
    return Limits(**{name: int(getattr(settings, name)) for name in NAMES})


def resolve(rows: dict[str, TenantLimit], model: str, base: Limits) -> Limits:
    """The model's row, else the tenant's ``*`` row, else ``base``, field by field."""
    chosen: dict[str, int] = {}
    for name in NAMES:
        value = None
        for key in (model, ANY_MODEL):
            row = rows.get(key)
            if row is not None and getattr(row, name) is not None:
                value = int(getattr(row, name))
                break
        chosen[name] = getattr(base, name) if value is None else value
    return Limits(**chosen)


def tenant_rows(db: Database, tenant: str) -> dict[str, TenantLimit]:
    with db.session() as s:
        found = s.scalars(select(TenantLimit).where(TenantLimit.tenant == tenant)).all()
        return {row.model: row for row in found}


def all_rows(db: Database) -> list[TenantLimit]:
    with db.session() as s:
        return list(
            s.scalars(select(TenantLimit).order_by(TenantLimit.tenant, TenantLimit.model)).all()
        )


def set_limits(db: Database, tenant: str, model: str, values: dict[str, int | None]) -> None:
    """Set some limits of ``tenant`` on ``model`` (``*``: all models); None inherits again."""
    unknown = set(values) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown limits: {sorted(unknown)}")
    row = {"tenant": tenant, "model": model, **values, "updated_at": datetime.now(UTC)}
    stmt = insert(TenantLimit).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "model"], set_={k: stmt.excluded[k] for k in row}
    )
    with db.session() as s:
        s.execute(stmt)


def clear_limits(db: Database, tenant: str, model: str | None = None) -> int:
    """Forget a tenant's own limits (on one model, or all of them); returns rows removed."""
    stmt = delete(TenantLimit).where(TenantLimit.tenant == tenant)
    if model is not None:
        stmt = stmt.where(TenantLimit.model == model)
    with db.session() as s:
        return int(s.execute(stmt).rowcount)  # type: ignore[attr-defined]


class LimitBook:
    """Limits per tenant and model, read from Postgres at most every ``ttl`` seconds per
    tenant, so the hot path costs no query."""

    def __init__(self, db: Database, settings: Settings, ttl: float = CACHE_SECONDS) -> None:
        self._base = defaults(settings)
        self._cache: TtlCache[str, dict[str, TenantLimit]] = TtlCache(
            lambda tenant: tenant_rows(db, tenant), ttl
        )

    def limits(self, tenant: str, model: str) -> Limits:
        rows = self._cache.get(tenant)
        return resolve(rows, model, self._base)
