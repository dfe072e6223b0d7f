"""Usage records: one per request, with its tier, so cost reports can show tier savings."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from inference_platform.db import Database
from inference_platform.db.models import UsageRecord


def usage_row(
    *,
    request_id: str,
    owner: str,
    model: str,
    tier: str,
    endpoint: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    batch_id: str | None = None,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    """One request's usage row; ``cached_tokens`` (the part of ``input_tokens`` the engine's
    prefix cache served) is kept apart so it can be priced at the cached-input tariff."""
    return {
        "request_id": request_id,
        "owner": owner,
        "api_key_id": api_key_id,
        "model": model,
        "tier": tier,
        "endpoint": endpoint,
        "batch_id": batch_id,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_tokens": cached_tokens,
    }


def record(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert usage rows; a request already billed is left alone (idempotent)."""
    if rows:
        # Rows spooled before cached tokens were counted have none: every row gets the key.
        rows = [r if "cached_tokens" in r else {**r, "cached_tokens": 0} for r in rows]
        # One statement with the rows as parameters (not as a VALUES list built into it), so
        # SQLAlchemy compiles it once per process rather than once per group of rows.
        session.execute(_INSERT, rows)


_INSERT = insert(cast(Table, UsageRecord.__table__)).on_conflict_do_nothing(
    index_elements=["request_id"]
)


def record_one(db: Database, **fields: Any) -> None:
    with db.session() as s:
        record(s, [usage_row(**fields)])
