"""``inference-platform tenants``: show and set each tenant's limits (and ``keys limits``)."""

from __future__ import annotations

import click

from cli.admin import _db, keys

_OPTIONS = (
    ("rpm", "requests_per_minute", "Requests per minute."),
    ("tpm", "tokens_per_minute", "Tokens per minute."),
    ("concurrent", "concurrent_requests", "Realtime requests in flight at once."),
    ("flex-queued", "queued_flex_requests", "Flex requests waiting."),
    ("batch-lines", "enqueued_batch_lines", "Batch lines queued or running (all models)."),
)


@click.group()
def tenants() -> None:
    """Each tenant's limits: per model, else the tenant's own default, else the settings'."""


def _show(tenant: str) -> None:
    from inference_platform.catalog import load_catalog
    from inference_platform.embedded import load_settings
    from inference_platform.limits.config import ANY_MODEL, NAMES, defaults, resolve, tenant_rows

    settings = load_settings()
    rows = tenant_rows(_db(), tenant)
    base = defaults(settings)
    models = [ANY_MODEL, *load_catalog(settings).names()]
    models += [m for m in rows if m not in models]
    width = max(len(n) for n in NAMES)
    click.echo(f"tenant {tenant} (0 = no limit; * = own: set for this tenant)")
    for model in models:
        limits = resolve(rows, model, base)
        click.echo(f"  model {model}")
        for name in NAMES:
            own = any(
                rows.get(m) is not None and getattr(rows[m], name) is not None
                for m in (model, ANY_MODEL)
            )
            click.echo(f"    {name:{width}}  {getattr(limits, name):>12}{' *' if own else ''}")


@tenants.command("show")
@click.argument("tenant")
def tenants_show(tenant: str) -> None:
    """The limits in force for TENANT on every catalog model."""
    _show(tenant)


@tenants.command("list")
def tenants_list() -> None:
    """Every tenant with keys or limits of its own."""
    from sqlalchemy import select

    from inference_platform.db.models import ApiKey
    from inference_platform.limits.config import all_rows

    db = _db()
    with db.session() as s:
        names = set(s.scalars(select(ApiKey.tenant).distinct()))
    own = all_rows(db)
    for tenant in sorted(names | {r.tenant for r in own}):
        models = sorted(r.model for r in own if r.tenant == tenant)
        click.echo(f"{tenant}  limits set on: {', '.join(models) if models else 'none (defaults)'}")


def _limit_options(fn: click.decorators.FC) -> click.decorators.FC:
    for flag, name, text in reversed(_OPTIONS):
        fn = click.option(f"--{flag}", name, type=click.IntRange(min=0), help=text)(fn)
    return fn


@tenants.command("set")
@click.argument("tenant")
@click.option("--model", default="*", show_default=True, help="One model, or * for all.")
@_limit_options
def tenants_set(tenant: str, model: str, **values: int | None) -> None:
    """Set some of TENANT's limits (0: no limit); the ones not given stay as they are."""
    from inference_platform.limits.config import CACHE_SECONDS, set_limits, tenant_rows

    chosen = {k: v for k, v in values.items() if v is not None}
    if not chosen:
        raise click.UsageError("give at least one limit, e.g. --rpm 600")
    db = _db()
    current = tenant_rows(db, tenant).get(model)
    merged = {
        name: getattr(current, name) if current is not None else None for _, name, _ in _OPTIONS
    }
    set_limits(db, tenant, model, {**merged, **chosen})
    click.echo(f"set; API processes apply it within {CACHE_SECONDS:g} s")
    _show(tenant)


@tenants.command("clear")
@click.argument("tenant")
@click.option("--model", default=None, help="Only this model's limits (* for the default).")
def tenants_clear(tenant: str, model: str | None) -> None:
    """Forget TENANT's own limits, so the defaults apply again."""
    from inference_platform.limits.config import clear_limits

    click.echo(f"removed {clear_limits(_db(), tenant, model)} row(s)")


@keys.command("limits")
@click.argument("key_id")
def keys_limits(key_id: str) -> None:
    """The limits of KEY_ID's tenant (set them with `tenants set`)."""
    from inference_platform.db.models import ApiKey

    with _db().session() as s:
        row = s.get(ApiKey, key_id)
        tenant = None if row is None else row.tenant
    if tenant is None:
        raise click.ClickException(f"no key {key_id}")
    _show(tenant)


def register(group: click.Group) -> None:
    group.add_command(tenants)
