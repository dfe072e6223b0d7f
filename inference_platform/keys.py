"""API keys: shown once, stored as SHA-256, verified in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from inference_platform.db import Database
from inference_platform.db.models import ApiKey
from inference_platform.ids import KEY, new_id
from inference_platform.ttl_cache import TtlCache

# How long an API process trusts a key lookup: a revoked key works at most this much longer.
KEY_CACHE_SECONDS = 5.0


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    id: str
    tenant: str
    name: str
    hint: str
    created_at: datetime
    revoked_at: datetime | None


def create_key(db: Database, tenant: str = "default", name: str = "") -> tuple[str, KeyInfo]:
    """Make a key for ``tenant``; returns the plaintext (shown once) and its record."""
    plaintext = "sk-" + secrets.token_urlsafe(32)
    row = ApiKey(
        id=new_id(KEY),
        tenant=tenant,
        name=name,
        key_hash=hash_key(plaintext),
        hint=plaintext[:7] + "…",
        created_at=datetime.now(UTC),
    )
    with db.session() as s:
        s.add(row)
    return plaintext, _info(row)


def list_keys(db: Database) -> list[KeyInfo]:
    with db.session() as s:
        rows = s.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        return [_info(r) for r in rows]


def revoke_key(db: Database, key_id: str) -> bool:
    with db.session() as s:
        row = s.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = datetime.now(UTC)
        return True


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.tenant, row.name, row.hint, row.created_at, row.revoked_at)


# The API key of the request being served (set by the API once it has checked the key), so
# the rows a request creates record which key made them without every layer passing it on.
REQUEST_KEY: ContextVar[str | None] = ContextVar("request_api_key_id", default=None)


class KeyVerifier:
    """Resolves a presented key to its tenant.

    A short in-process cache keeps the database off the realtime hot path; a revoked key
    stops working within ``ttl`` seconds.
    """

    def __init__(self, db: Database, ttl: float = KEY_CACHE_SECONDS) -> None:
        self._db = db
        self._cache: TtlCache[str, tuple[str, str] | None] = TtlCache(self._lookup, ttl)

    def tenant_for(self, presented: str) -> str | None:
        found = self.identify(presented)
        return None if found is None else found[0]

    def identify(self, presented: str) -> tuple[str, str] | None:
        """``(tenant, key id)`` of a valid key, else None."""
        return self._cache.get(hash_key(presented))

    def _lookup(self, digest: str) -> tuple[str, str] | None:
        with self._db.session() as s:
            row = s.scalars(
                select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
            ).first()
            if row is None or not hmac.compare_digest(row.key_hash, digest):
                return None
            return row.tenant, row.id
