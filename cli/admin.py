"""Administration commands: keys, database, demo model, settings table."""

from __future__ import annotations

from pathlib import Path

import click

from inference_platform.db import Database
from inference_platform.db import migrate as migrations
from inference_platform.settings import settings_table


def _db() -> Database:
    from inference_platform.embedded import load_settings

    settings = load_settings()
    if not settings.database_url:
        raise click.ClickException(
            "no database: set INFERENCE_DATABASE_URL or start the platform with `make run`"
        )
    return Database(settings.database_url, pool_size=1)


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--tenant", default="default", show_default=True, help="Owner of the key's objects.")
@click.option("--name", default="", help="A label to recognise the key by.")
def keys_create(tenant: str, name: str) -> None:
    """Print a new key (shown once; only its hash is stored)."""
    from inference_platform.keys import create_key

    plaintext, _info = create_key(_db(), tenant=tenant, name=name)
    click.echo(plaintext)


@keys.command("list")
def keys_list() -> None:
    """List keys (hints only, never the keys)."""
    from inference_platform.keys import list_keys

    for info in list_keys(_db()):
        state = "revoked" if info.revoked_at else "active"
        click.echo(f"{info.id}  {info.hint:10}  tenant={info.tenant}  {state}  {info.name}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (``key_…``, see ``keys list``)."""
    from inference_platform.keys import KEY_CACHE_SECONDS, revoke_key

    if not revoke_key(_db(), key_id):
        raise click.ClickException(f"no active key {key_id}")
    click.echo(
        f"revoked {key_id}; running API processes may accept it for up to "
        f"{KEY_CACHE_SECONDS:g} s more (their key cache)"
    )


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
