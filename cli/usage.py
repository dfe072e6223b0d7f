"""``inference-platform usage``: tokens and cost per model and tier, what flex and batch saved
against realtime prices, and what the engine's prefix cache saved (cached input is billed at
the cached-input price)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import click

from inference_platform.costs import Line

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str) -> int:
    """``7d``, ``12h``, ``30m``, ``2w`` as seconds."""
    found = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if found is None:
        raise click.BadParameter("use a number and a unit: 30m, 12h, 7d or 2w")
    return int(found.group(1)) * _UNITS[found.group(2)]


def _usd(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


_HEAD = (
    "model",
    "tier",
    "requests",
    "input",
    "cached",
    "output",
    "cost $",
    "at realtime $",
    "tier saved $",
    "cache saved $",
)


def _row(line: Line) -> tuple[str, ...]:
    return (
        line.model,
        line.tier,
        str(line.requests),
        str(line.input_tokens),
        str(line.cached_tokens),
        str(line.output_tokens),
        _usd(line.cost),
        _usd(line.at_realtime),
        _usd(line.saving),
        _usd(line.cache_saving),
    )


def table(lines: list[Line]) -> str:
    head = _HEAD
    rows = [_row(line) for line in lines]
    known = [line for line in lines if line.saving is not None]
    cost = sum(line.cost or 0.0 for line in known)
    realtime = sum(line.at_realtime or 0.0 for line in known)
    cache_saved = sum(line.cache_saving or 0.0 for line in lines)
    total = Line(
        model="total",
        tier="",
        requests=sum(line.requests for line in lines),
        input_tokens=sum(line.input_tokens for line in lines),
        output_tokens=sum(line.output_tokens for line in lines),
        cost=cost,
        at_realtime=realtime,
        cached_tokens=sum(line.cached_tokens for line in lines),
        uncached=cost + cache_saved,
    )
    rows.append(_row(total))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs]
        return "  ".join(cells).rstrip()

    out = [fmt(head), "  ".join("-" * w for w in widths), *map(fmt, rows)]
    if realtime > 0:
        out.append(
            f"\nflex and batch saved {100 * (realtime - cost) / realtime:.1f}% of realtime prices"
        )
    if total.uncached:
        out.append(
            f"prefix caching saved ${cache_saved:.6f} "
            f"({100 * cache_saved / total.uncached:.1f}% of what the same tokens cost uncached)"
        )
    return "\n".join(out)


@click.command()
@click.option("--since", default="7d", show_default=True, help="How far back: 30m, 12h, 7d, 2w.")
@click.option("--tenant", default=None, help="One tenant's usage (default: every tenant's).")
def usage(since: str, tenant: str | None) -> None:
    """Tokens and cost per model and tier, with the saving of flex and batch over realtime and
    the saving of the prefix cache."""
    from inference_platform import costs
    from inference_platform.capacity import sla
    from inference_platform.catalog import load_catalog
    from inference_platform.db import Database
    from inference_platform.embedded import load_settings

    settings = load_settings()
    if not settings.database_url:
        raise click.ClickException(
            "no database: set INFERENCE_DATABASE_URL or start the platform with `make run`"
        )
    seconds = parse_since(since)
    end = costs.now() + 1
    start = end - seconds
    db = Database(settings.database_url, pool_size=1)
    try:
        found = costs.slices(db, start=start, end=end, width=seconds, owner=tenant)
        with db.session() as s:
            kept = sla.scores(s, datetime.fromtimestamp(start, UTC), owner=tenant)
    finally:
        db.dispose()
    scope = f"tenant {tenant}" if tenant else "all tenants"
    click.echo(f"usage of the last {since} ({scope}); prices in USD from the model catalog\n")
    catalog = load_catalog(settings)
    click.echo(table(costs.report(catalog, found)))
    click.echo("\n" + sla.table(kept, _busy(settings, catalog)))


def _busy(settings: Any, catalog: Any) -> dict[str, float]:
    """Each model's engine busy fraction, as the control role last measured it (none when the
    platform is not running)."""
    from inference_platform.capacity.estimate import load_profile
    from inference_platform.platform import Platform

    try:
        platform = Platform(settings)
        found = {spec.name: load_profile(platform, spec.name) for spec in catalog}
    except Exception:  # Redis away: the report goes without it
        return {}
    return {name: p.busy for name, p in found.items() if p is not None}


def register(group: click.Group) -> None:
    group.add_command(usage)
