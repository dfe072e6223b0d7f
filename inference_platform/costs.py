"""Usage and what it costs: the usage rows summed per time bucket, priced with the catalog's
tariffs per model, tier and completion window.

``tariffs`` in the catalog are USD per million input, output and cached input tokens per tier
(``catalog.Tariff``). A batch may be priced per completion window with a key ``batch:<window>``
(``"batch:1h": [0.08, 0.24]``); without one its tier's tariff applies. Flex work runs in the 1 h
window of its tier. A model without a tariff for a tier costs nothing there (and shows no
realtime comparison). Cached input (the part of the input the engine's prefix cache served) is
priced at the cached-input price; the rest of the input at the input price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from inference_platform.catalog import Catalog, Tariff
from inference_platform.db import Database
from inference_platform.tiers import BATCH, REALTIME

PER_TOKENS = 1_000_000


@dataclass(frozen=True)
class Slice:
    """Usage of one time bucket, model, tier and completion window (one SQL group)."""

    bucket: int  # index of the time bucket from the query's start
    model: str
    tier: str
    window: str | None  # a batch's completion window
    requests: int
    input_tokens: int
    output_tokens: int
    api_key_id: str | None = None  # the key the requests were made with
    cached_tokens: int = 0  # of input_tokens, those the engine's prefix cache served

    @property
    def batch(self) -> bool:
        return self.tier == BATCH

    @property
    def label(self) -> str:
        """The tier as line items and tables show it: ``batch 1h``, ``flex``."""
        return f"{self.tier} {self.window}" if self.window else self.tier


def tariff(catalog: Catalog, model: str, tier: str, window: str | None = None) -> Tariff | None:
    """USD per million input, output and cached input tokens; None when the catalog names
    no price."""
    spec = catalog.get(model)
    if spec is None:
        return None
    if window and f"{tier}:{window}" in spec.tariffs:
        return spec.tariffs[f"{tier}:{window}"]
    return spec.tariffs.get(tier)


@dataclass(frozen=True)
class Price:
    input: float  # the input the cache did not serve
    output: float
    cached_input: float = 0.0

    @property
    def total(self) -> float:
        return self.input + self.output + self.cached_input


def charge(found: Tariff, input_tokens: int, output_tokens: int, cached_tokens: int) -> Price:
    """What tokens cost at one tariff, cached input apart."""
    return Price(
        (input_tokens - cached_tokens) * found.input / PER_TOKENS,
        output_tokens * found.output / PER_TOKENS,
        cached_tokens * found.cached_input / PER_TOKENS,
    )


def price(
    catalog: Catalog, s: Slice, *, tier: str | None = None, cache: bool = True
) -> Price | None:
    """What ``s`` costs at its own tariff, or at ``tier``'s (e.g. realtime) for comparison;
    ``cache=False``: as if no input had been cached (what caching saved is the difference)."""
    found = tariff(catalog, s.model, tier or s.tier, None if tier else s.window)
    if found is None:
        return None
    return charge(found, s.input_tokens, s.output_tokens, s.cached_tokens if cache else 0)


_SLICES = """
    SELECT floor((extract(epoch FROM u.created_at) - :start) / :width) AS bucket,
           u.model, u.tier, b.completion_window, count(*), sum(u.input_tokens),
           sum(u.output_tokens), u.api_key_id, sum(u.cached_tokens)
    FROM usage_records u LEFT JOIN batches b ON b.id = u.batch_id
    WHERE u.created_at >= to_timestamp(:start) AND u.created_at < to_timestamp(:end)
      {where}
    GROUP BY 1, 2, 3, 4, 8
    ORDER BY 1, 2, 3, 4, 8
"""


def slices(
    db: Database,
    *,
    start: int,
    end: int,
    width: int,
    owner: str | None = None,
    models: list[str] | None = None,
    batch: bool | None = None,
    api_key_ids: list[str] | None = None,
) -> list[Slice]:
    """Usage from ``start`` (inclusive) to ``end`` (exclusive), Unix seconds, in buckets of
    ``width`` seconds from ``start``; one tenant's (``owner``) or everyone's."""
    where = []
    params: dict[str, Any] = {"start": start, "end": end, "width": width}
    if owner is not None:
        where.append("AND u.owner = :owner")
        params["owner"] = owner
    if models:
        where.append("AND u.model = ANY(:models)")
        params["models"] = models
    if api_key_ids:
        where.append("AND u.api_key_id = ANY(:keys)")
        params["keys"] = api_key_ids
    if batch is not None:
        where.append("AND u.tier " + ("=" if batch else "<>") + " :batch_tier")
        params["batch_tier"] = BATCH
    sql = text(_SLICES.format(where=" ".join(where)))
    with db.session() as s:
        rows = s.execute(sql, params).all()
    return [
        Slice(int(b), m, t, w, int(n), int(i or 0), int(o or 0), k, int(c or 0))
        for b, m, t, w, n, i, o, k, c in rows
    ]


def now() -> int:
    return int(datetime.now(UTC).timestamp())


@dataclass(frozen=True)
class Line:
    """One row of a usage report: a model in a tier (and window), priced two ways."""

    model: str
    tier: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float | None  # at its own tariff; None when the catalog names none
    at_realtime: float | None  # the same tokens at the model's realtime tariff
    cached_tokens: int = 0
    # At its own tariff with every input token at the full input price.
    uncached: float | None = None

    @property
    def saving(self) -> float | None:
        """What the tier saved against realtime prices."""
        if self.cost is None or self.at_realtime is None:
            return None
        return self.at_realtime - self.cost

    @property
    def cache_saving(self) -> float | None:
        """What the prefix cache saved at this tier's prices."""
        if self.cost is None or self.uncached is None:
            return None
        return self.uncached - self.cost


def report(catalog: Catalog, found: list[Slice]) -> list[Line]:
    """Slices summed per model and tier label, with their cost and the realtime comparison."""
    sums: dict[tuple[str, str], list[Slice]] = {}
    for s in found:
        sums.setdefault((s.model, s.label), []).append(s)
    lines = []
    for (model, label), group in sorted(sums.items()):
        own = [price(catalog, s) for s in group]
        realtime = [price(catalog, s, tier=REALTIME) for s in group]
        uncached = [price(catalog, s, cache=False) for s in group]
        lines.append(
            Line(
                model=model,
                tier=label,
                requests=sum(s.requests for s in group),
                input_tokens=sum(s.input_tokens for s in group),
                output_tokens=sum(s.output_tokens for s in group),
                cost=None if None in own else sum(p.total for p in own if p),
                at_realtime=None if None in realtime else sum(p.total for p in realtime if p),
                cached_tokens=sum(s.cached_tokens for s in group),
                uncached=None if None in uncached else sum(p.total for p in uncached if p),
            )
        )
    return lines
