"""``inference-platform usage``: tokens and cost per model and tier, and what flex and batch
saved against realtime prices."""

from __future__ import annotations

import re

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


def table(lines: list[Line]) -> str:
    head = ("model", "tier", "requests", "input", "output", "cost $", "at realtime $", "saved $")
    rows = [
        (
            line.model,
            line.tier,
            str(line.requests),
            str(line.input_tokens),
            str(line.output_tokens),
            _usd(line.cost),
            _usd(line.at_realtime),
            _usd(line.saving),
        )
        for line in lines
    ]
    known = [line for line in lines if line.saving is not None]
    cost = sum(line.cost or 0.0 for line in known)
    realtime = sum(line.at_realtime or 0.0 for line in known)
    rows.append(
        (
            "total",
            "",
            str(sum(line.requests for line in lines)),
            str(sum(line.input_tokens for line in lines)),
            str(sum(line.output_tokens for line in lines)),
            _usd(cost),
            _usd(realtime),
            _usd(realtime - cost),
        )
    )
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
    return "\n".join(out)


@click.command()
@click.option("--since", default="7d", show_default=True, help="How far back: 30m, 12h, 7d, 2w.")
@click.option("--tenant", default=None, help="One tenant's usage (default: every tenant's).")
def usage(since: str, tenant: str | None) -> None:
    """Tokens and cost per model and tier, with the saving of flex and batch over realtime."""
    from inference_platform import costs
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
    finally:
        db.dispose()
    scope = f"tenant {tenant}" if tenant else "all tenants"
    click.echo(f"usage of the last {since} ({scope}); prices in USD from the model catalog\n")
    click.echo(table(costs.report(load_catalog(settings), found)))


def register(group: click.Group) -> None:
    group.add_command(usage)
