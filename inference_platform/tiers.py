"""Which queue a request goes to, and what ``service_tier`` the response reports."""

from __future__ import annotations

REALTIME = "realtime"
FLEX = "flex"
BATCH = "batch"

SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority", "fast")


def tier_for(service_tier: str | None) -> str:
    """``flex`` goes to the flex queue; every other value is served in realtime."""
    return FLEX if service_tier == FLEX else REALTIME


def reported_tier(service_tier: str | None) -> str:
    """The tier echoed back: the one actually used, as OpenAI reports it."""
    if service_tier in ("priority", "fast"):
        return "priority"
    if service_tier == FLEX:
        return FLEX
    return "default"
