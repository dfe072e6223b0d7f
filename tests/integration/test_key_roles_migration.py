"""Key roles in the database: the migration that introduced them, and revocation with Redis
away."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from inference_platform.db import Database, migrate
from inference_platform.keys import KeyVerifier, create_key, revoke_key
from inference_platform.settings import Settings


@pytest.fixture
def fresh_url(settings: Settings) -> Iterator[str]:
    """An empty database of its own on the test server (migrations run from scratch)."""
    name = f"ip_roles_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(settings.database_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            make_url(settings.database_url).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_keys_made_before_roles_become_admin_keys(fresh_url: str) -> None:
    migrate.upgrade(fresh_url, "0004")
    engine = create_engine(fresh_url)
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO api_keys (id, tenant, name, key_hash, hint) "
                "VALUES ('key_old', 'acme', 'old', repeat('a', 64), 'sk-old…')"
            )
        )
    migrate.upgrade(fresh_url)
    with engine.begin() as c:
        assert c.scalar(text("SELECT role FROM api_keys WHERE id = 'key_old'")) == "admin"
        c.execute(
            text(
                "INSERT INTO api_keys (id, tenant, name, key_hash, hint) "
                "VALUES ('key_new', 'acme', 'new', repeat('b', 64), 'sk-new…')"
            )
        )
        assert c.scalar(text("SELECT role FROM api_keys WHERE id = 'key_new'")) == "member"
    engine.dispose()


def test_a_revocation_with_redis_away_still_revokes(db: Database) -> None:
    key, info = create_key(db, tenant="roles-redis-away")
    away = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    assert revoke_key(db, info.id, away)
    assert KeyVerifier(db).verify(key) is None
