"""API keys: shown once, stored as SHA-256, verified in constant time.

A key has a role, as OpenAI separates admin keys from project keys: a ``member`` key does
inference, files and batches; an ``admin`` key may also read the tenant's usage and costs and
manage its webhook endpoints (and, through the CLI, keys and limits).

Revocation is instant across API processes: ``revoke_key`` sets a new value in Redis, and every
``KeyVerifier`` reads that value at most every ``REVOCATION_CHECK_SECONDS`` and drops its
cache when it moved, so the in-process cache keeps the database off the hot path without
letting a revoked key live on.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy import select

from inference_platform.db import Database
from inference_platform.db.models import ApiKey
from inference_platform.ids import KEY, new_id
from inference_platform.ttl_cache import TtlCache

log = logging.getLogger(__name__)

ADMIN, MEMBER = "admin", "member"
ROLES = (ADMIN, MEMBER)
# How long an API process trusts a key lookup when it cannot hear of revocations (Redis away).
KEY_CACHE_SECONDS = 5.0
# How often an API process reads the revocation value: a revoked key is refused within this
# (plus one database read) by every process.
REVOCATION_CHECK_SECONDS = 0.25
# Set anew by every revocation; its value means nothing, only that it changed.
REVOCATIONS_KEY = "keys:revocations"


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
    role: str = MEMBER


@dataclass(frozen=True)
class VerifiedKey:
    """A presented key that is valid now: whose it is and what it may do."""

    id: str
    tenant: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def create_key(
    db: Database, tenant: str = "default", name: str = "", role: str = MEMBER
) -> tuple[str, KeyInfo]:
    """Make a key for ``tenant``; returns the plaintext (shown once) and its record."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    plaintext = "sk-" + secrets.token_urlsafe(32)
    row = ApiKey(
        id=new_id(KEY),
        tenant=tenant,
        name=name,
        role=role,
        key_hash=hash_key(plaintext),
        hint=plaintext[:7] + "…",
        created_at=datetime.now(UTC),
    )
    with db.session() as s:
        s.add(row)
    return plaintext, _info(row)


def list_keys(db: Database, tenant: str | None = None) -> list[KeyInfo]:
    """Every key, or one tenant's, oldest first."""
    query = select(ApiKey).order_by(ApiKey.created_at)
    if tenant is not None:
        query = query.where(ApiKey.tenant == tenant)
    with db.session() as s:
        return [_info(r) for r in s.scalars(query).all()]


def key_info(db: Database, key_id: str) -> KeyInfo | None:
    """One key's record, revoked or not; None for an id no key has."""
    with db.session() as s:
        row = s.get(ApiKey, key_id)
        return None if row is None else _info(row)


def revoke_key(db: Database, key_id: str, client: redis.Redis[bytes] | None = None) -> bool:
    """Revoke a key; with ``client``, tell every API process at once (see
    ``publish_revocation``; with Redis away they stop accepting it within the cache's ttl)."""
    with db.session() as s:
        row = s.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = datetime.now(UTC)
    if client is not None:
        try:
            publish_revocation(client)
        except redis.RedisError as exc:  # revoked all the same; caches lapse within their ttl
            log.warning("revoked %s but could not tell the API processes: %s", key_id, exc)
    return True


def publish_revocation(client: redis.Redis[bytes]) -> None:
    """Make every API process forget the keys it cached (after the revocation committed).

    A fresh random value, not a count: after Redis lost the key (FLUSHALL, a restart) a count
    could come back to a value a process last saw and go unnoticed."""
    client.set(REVOCATIONS_KEY, secrets.token_hex(8))


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.tenant, row.name, row.hint, row.created_at, row.revoked_at, row.role)


# The API key of the request being served (set by the API once it has checked the key), so
# the rows a request creates record which key made them without every layer passing it on.
REQUEST_KEY: ContextVar[str | None] = ContextVar("request_api_key_id", default=None)


class KeyVerifier:
    """Resolves a presented key to its tenant and role.

    A short in-process cache keeps the database off the realtime hot path. With ``client``
    (Redis), a revocation empties it within ``check_every`` seconds; without, or while Redis
    is away, a revoked key stops working within ``ttl`` seconds.
    """

    def __init__(
        self,
        db: Database,
        client: redis.Redis[bytes] | None = None,
        ttl: float = KEY_CACHE_SECONDS,
        check_every: float = REVOCATION_CHECK_SECONDS,
    ) -> None:
        self._db = db
        self._client = client
        self._check_every = check_every
        self._next_check = 0.0
        self._seen: bytes | None = None
        self._cache: TtlCache[str, VerifiedKey | None] = TtlCache(self._lookup, ttl)

    def verify(self, presented: str) -> VerifiedKey | None:
        """The key's tenant, id and role when it is valid now, else None."""
        self._hear_revocations()
        return self._cache.get(hash_key(presented))

    def role_of(self, presented: str) -> str | None:
        """``admin`` or ``member`` for a valid key, None for any other."""
        found = self.verify(presented)
        return None if found is None else found.role

    def tenant_for(self, presented: str) -> str | None:
        found = self.verify(presented)
        return None if found is None else found.tenant

    def _hear_revocations(self) -> None:
        if self._client is None:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._check_every  # set first: one caller reads, not all
        try:
            current = self._client.get(REVOCATIONS_KEY)
        except redis.RedisError as exc:  # the cache's own ttl bounds a revocation meanwhile
            log.debug("could not read key revocations: %s", exc)
            return
        if current != self._seen:
            self._seen = current
            self._cache.clear()

    def _lookup(self, digest: str) -> VerifiedKey | None:
        with self._db.session() as s:
            row = s.scalars(
                select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
            ).first()
            if row is None or not hmac.compare_digest(row.key_hash, digest):
                return None
            return VerifiedKey(row.id, row.tenant, row.role)
