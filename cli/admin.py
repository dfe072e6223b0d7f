"""Administration commands: keys, database, demo model, settings table."""

from __future__ import annotations

from pathlib import Path

import click

from inference_platform.db import Database
from inference_platform.db import migrate as migrations
from inference_platform.settings import Settings, settings_table


def _settings() -> Settings:
    from inference_platform.embedded import load_settings

    settings = load_settings()
    if not settings.database_url:
        raise click.ClickException(
            "no database: set INFERENCE_DATABASE_URL or start the platform with `make run`"
        )
    return settings


def _db() -> Database:
    return Database(_settings().database_url, pool_size=1)


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (admin keys also read usage and manage webhooks)."""


@keys.command("create")
@click.option("--tenant", default="default", show_default=True, help="Owner of the key's objects.")
@click.option("--name", default="", help="A label to recognise the key by.")
@click.option(
    "--role",
    type=click.Choice(["admin", "member"]),
    default="member",
    show_default=True,
    help="member: inference, files, batches; admin: also usage, costs and webhook endpoints.",
)
def keys_create(tenant: str, name: str, role: str) -> None:
    """Print a new key (shown once; only its hash is stored)."""
    from inference_platform.keys import create_key

    plaintext, _info = create_key(_db(), tenant=tenant, name=name, role=role)
    click.echo(plaintext)


@keys.command("list")
def keys_list() -> None:
    """List keys (hints only, never the keys)."""
    from inference_platform.keys import list_keys

    for info in list_keys(_db()):
        state = "revoked" if info.revoked_at else "active"
        click.echo(
            f"{info.id}  {info.hint:10}  tenant={info.tenant}  role={info.role}  {state}  "
            f"{info.name}"
        )


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (``key_…``, see ``keys list``); every API process refuses it
    within a second."""
    from inference_platform.events import redis_client
    from inference_platform.keys import KEY_CACHE_SECONDS, publish_revocation, revoke_key

    settings = _settings()
    if not revoke_key(Database(settings.database_url, pool_size=1), key_id):
        raise click.ClickException(f"no active key {key_id}")
    try:
        publish_revocation(redis_client(settings.redis_url, 1))
    except Exception as exc:  # Redis away: the API processes' caches still lapse on their own
        click.echo(
            f"revoked {key_id}, but could not tell the API processes ({exc}); they may accept "
            f"it for up to {KEY_CACHE_SECONDS:g} s more (their key cache)"
        )
        return
    click.echo(f"revoked {key_id}; every API process refuses it within a second")


@click.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    migrations.upgrade(_db().url, revision)
    click.echo("database is up to date")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    migrations.downgrade(_db().url, revision)


@click.command("demo-model")
@click.argument("path", type=click.Path(path_type=Path))
def demo_model(path: Path) -> None:
    """Build the tiny random-weight demo model (no network needed) at PATH."""
    from inference_platform.demo_model import build_demo_model

    click.echo(str(build_demo_model(path)))


@click.command("settings")
def settings() -> None:
    """Print every setting as the README's Markdown table."""
    click.echo(settings_table())


def register(group: click.Group) -> None:
    for command in (keys, db, demo_model, settings):
        group.add_command(command)
