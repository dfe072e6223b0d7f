"""A tenant's usage and costs (with what flex and batch saved against realtime prices), its
API keys and its limits. Usage, costs and keys need an admin key, as in the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.console import charts, session
from api.console.web import Page, admin_page, bp, owner, tenant_page
from api.context import platform
from inference_platform import costs
from inference_platform.endpoints.protocol import load
from inference_platform.endpoints.usage import serving as usage
from inference_platform.endpoints.usage.protocol import (
    UsageCompletionsRequestSchema,
    UsageCostsRequestSchema,
)
from inference_platform.keys import ROLES, KeyInfo, create_key, list_keys, revoke_key
from inference_platform.limits.config import ANY_MODEL, NAMES, defaults, resolve, tenant_rows
from inference_platform.tiers import REALTIME

DAY = 86400
PERIODS = (7, 14, 31)
TIERS = ("realtime", "flex", "batch")
_completions = UsageCompletionsRequestSchema()
_costs = UsageCostsRequestSchema()


def _per_day(page: dict[str, Any], value: Any) -> dict[str, list[float]]:
    """``{tier: [per bucket]}`` from an ``organization.usage`` page grouped by service_tier."""
    out = {tier: [0.0] * len(page["data"]) for tier in TIERS}
    for i, bucket in enumerate(page["data"]):
        for result in bucket["results"]:
            out.setdefault(result["service_tier"], [0.0] * len(page["data"]))[i] += value(result)
    return out


def _savings(start: int, end: int, days: int) -> tuple[list[costs.Line], dict[str, list[float]]]:
    """Per model and tier, and per day: what was paid and what realtime prices would have
    cost (as ``inference-platform usage`` reports it)."""
    db, catalog = platform().db, platform().catalog
    lines = costs.report(
        catalog, costs.slices(db, start=start, end=end, width=end - start, owner=owner())
    )
    paid, saved = [0.0] * days, [0.0] * days
    for s in costs.slices(db, start=start, end=end, width=DAY, owner=owner()):
        own, realtime = costs.price(catalog, s), costs.price(catalog, s, tier=REALTIME)
        if own is not None:
            paid[s.bucket] += own.total
            if realtime is not None:
                saved[s.bucket] += max(0.0, realtime.total - own.total)
    return lines, {"paid": paid, "saved against realtime": saved}


@bp.get("/usage")
@admin_page
def usage_page() -> str:
    """Tokens and cost per day and tier, and the saving of flex and batch."""
    days = request.args.get("days", type=int) or PERIODS[0]
    days = days if days in PERIODS else PERIODS[0]
    # Up to the current second, not into it, as /v1/organization/costs counts.
    end = costs.now()
    start = (end // DAY - (days - 1)) * DAY
    window = {"start_time": start, "bucket_width": "1d", "group_by": ["service_tier"]}
    tokens = usage.completions(platform(), owner(), load(_completions, {**window, "limit": days}))
    spent = usage.costs_page(platform(), owner(), load(_costs, {**window, "limit": days}))
    columns = [
        datetime.fromtimestamp(b["start_time"], UTC).strftime("%b %d") for b in tokens["data"]
    ]
    lines, per_day = _savings(start, end, days)
    known = [line for line in lines if line.saving is not None]
    paid = sum(line.cost or 0.0 for line in known)
    at_realtime = sum(line.at_realtime or 0.0 for line in known)
    return render_template(
        "console/usage.html",
        days=days,
        periods=PERIODS,
        tokens_chart=charts.stacked(
            columns,
            _per_day(tokens, lambda r: r["input_tokens"] + r["output_tokens"]),
            lambda v: f"{v:,.0f}",
        ),
        cost_chart=charts.stacked(
            columns, _per_day(spent, lambda r: r["amount"]["value"]), lambda v: f"${v:.6f}"
        ),
        savings_chart=charts.stacked(columns, per_day, lambda v: f"${v:.6f}"),
        lines=lines,
        paid=paid,
        at_realtime=at_realtime,
        saved_share=(at_realtime - paid) / at_realtime if at_realtime > 0 else None,
    )


def _own(rows: dict[str, Any], model: str, name: str) -> bool:
    """Is the limit set for this tenant (on the model or its ``*`` row), not a default?"""
    return any(
        rows.get(m) is not None and getattr(rows[m], name) is not None for m in (model, ANY_MODEL)
    )


@bp.get("/limits")
@tenant_page
def limits_page() -> str:
    """The limits in force on every catalog model (set by the operator; read-only here)."""
    rows = tenant_rows(platform().db, owner())
    base = defaults(platform().settings)
    models = [ANY_MODEL, *platform().catalog.names()]
    table = []
    for model in models:
        limits = resolve(rows, model, base)
        own = {name for name in NAMES if _own(rows, model, name)}
        table.append((model, [(name, getattr(limits, name), name in own) for name in NAMES]))
    return render_template("console/limits.html", table=table, names=NAMES)


def _tenant_keys() -> list[KeyInfo]:
    """The tenant's keys, newest first."""
    return list(reversed(list_keys(platform().db, tenant=owner())))


@bp.get("/keys")
@admin_page
def keys_page() -> str:
    """The tenant's keys (hints only), a form to make one and a button to revoke each."""
    return render_template("console/keys.html", keys=_tenant_keys(), roles=ROLES, created=None)


@bp.post("/keys")
@admin_page
def key_create() -> Page:
    """Make a key; the answer is the only place its plaintext is ever shown."""
    name = request.form.get("name", "").strip()[:200]
    role = request.form.get("role", "")
    if role not in ROLES:
        session.flash(f"Choose a role: {' or '.join(ROLES)}.", "error")
        return redirect(url_for("console.keys_page"))
    plaintext, info = create_key(platform().db, tenant=owner(), name=name, role=role)
    created = {"key": plaintext, "info": info}
    return render_template("console/keys.html", keys=_tenant_keys(), roles=ROLES, created=created)


@bp.post("/keys/<key_id>/revoke")
@admin_page
def key_revoke(key_id: str) -> BaseResponse:
    """Revoke one of the tenant's keys (every API process refuses it at once)."""
    mine = {k.id: k for k in _tenant_keys()}
    if key_id not in mine:
        session.flash(f"No API key found with id '{key_id}'.", "error")
    elif key_id == g.session.key_id:
        session.flash(
            "This session is signed in with that key; sign in with another admin key to revoke it.",
            "error",
        )
    elif revoke_key(platform().db, key_id, platform().redis):
        session.flash(f"Revoked {mine[key_id].hint} ({key_id}).")
    else:
        session.flash(f"{key_id} was already revoked.")
    return redirect(url_for("console.keys_page"))
