"""Serving the usage and costs routes for one tenant: time buckets, pages and groups over
the usage rows (one per request), priced with the catalog's tariffs."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from inference_platform import costs
from inference_platform.costs import Slice
from inference_platform.endpoints.usage import protocol
from inference_platform.errors import invalid
from inference_platform.platform import Platform

_CURSOR = "bucket_"
_CURSOR_TEXT = re.compile(r"bucket_([0-9]{1,12})")


@dataclass(frozen=True)
class Pages:
    """The buckets one page covers: indexes ``first`` to ``stop`` (exclusive) of ``count``."""

    start: int
    end: int
    width: int
    first: int
    stop: int
    count: int

    def bounds(self, i: int) -> tuple[int, int]:
        at = self.start + i * self.width
        return at, min(at + self.width, self.end)

    @property
    def next_page(self) -> str | None:
        return f"{_CURSOR}{self.stop}" if self.stop < self.count else None


def _pages(args: dict[str, Any], width: int, limits: tuple[int, int]) -> Pages:
    start = args["start_time"]
    end = args["end_time"] if args["end_time"] is not None else costs.now()
    if end <= start:
        raise invalid("`end_time` must be after `start_time`.", "end_time")
    default, most = limits
    limit = args["limit"] or default
    if limit > most:
        raise invalid(f"`limit` is at most {most} for this bucket width.", "limit")
    count = -(-(end - start) // width)
    first = 0
    if args["page"] is not None:
        # ASCII digits only: str.isdigit() and int() also read "٣" as 3.
        found = _CURSOR_TEXT.fullmatch(args["page"])
        if found is None or int(found.group(1)) >= count:
            raise invalid("`page` is not a cursor this query returned.", "page")
        first = int(found.group(1))
    return Pages(start, end, width, first, min(first + limit, count), count)


def _slices(platform: Platform, owner: str, p: Pages, **filters: Any) -> list[Slice]:
    lo, _ = p.bounds(p.first)
    _, hi = p.bounds(p.stop - 1)
    found = costs.slices(platform.db, start=lo, end=hi, width=p.width, owner=owner, **filters)
    # Buckets were numbered from this page's first one.
    return [Slice(s.bucket + p.first, *_rest(s)) for s in found]


def _rest(s: Slice) -> tuple[str, str, str | None, int, int, int, str | None, int]:
    return (
        s.model,
        s.tier,
        s.window,
        s.requests,
        s.input_tokens,
        s.output_tokens,
        s.api_key_id,
        s.cached_tokens,
    )


def _group(s: Slice, fields: list[str]) -> dict[str, Any]:
    values = {
        "model": s.model,
        "service_tier": s.tier,
        "batch": s.batch,
        "api_key_id": s.api_key_id,
    }
    return {f: values[f] for f in fields if f in values}


def _buckets(
    p: Pages, slices: list[Slice], results: Callable[[list[Slice]], list[dict[str, Any]]]
) -> dict[str, Any]:
    by_bucket: dict[int, list[Slice]] = defaultdict(list)
    for s in slices:
        by_bucket[s.bucket].append(s)
    buckets = [
        protocol.bucket(*p.bounds(i), results(by_bucket.get(i, []))) for i in range(p.first, p.stop)
    ]
    return protocol.page(buckets, p.next_page)


def completions(platform: Platform, owner: str, args: dict[str, Any]) -> dict[str, Any]:
    """``organization.usage.completions`` pages for ``owner``."""
    width = args["bucket_width"]
    p = _pages(args, protocol.WIDTHS[width], protocol.COMPLETIONS_LIMITS[width])
    found = _slices(
        platform,
        owner,
        p,
        models=args.get("models"),
        batch=args["batch"],
        api_key_ids=args.get("api_key_ids"),
    )
    fields: list[str] = args["group_by"]

    def results(slices: list[Slice]) -> list[dict[str, Any]]:
        sums: dict[tuple[Any, ...], list[int]] = {}
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for s in slices:
            group = _group(s, fields)
            key = tuple(group.values())
            groups[key] = group
            total = sums.setdefault(key, [0, 0, 0, 0])
            total[0] += s.requests
            total[1] += s.input_tokens
            total[2] += s.output_tokens
            total[3] += s.cached_tokens
        return [
            protocol.completions_result(
                groups[k], requests=n, input_tokens=i, output_tokens=o, cached_tokens=c
            )
            for k, (n, i, o, c) in sums.items()
        ]

    return _buckets(p, found, results)


def _line_items(platform: Platform, s: Slice) -> Iterator[tuple[str, int, float]]:
    """(line item, tokens, USD) of a slice: its input, its cached input (the part of the
    input the engine's prefix cache served, priced apart; only where there is some) and its
    output tokens."""
    found = costs.price(platform.catalog, s)
    fresh = s.input_tokens - s.cached_tokens
    yield f"{s.model} {s.label}, input", fresh, found.input if found else 0.0
    if s.cached_tokens:
        cached = found.cached_input if found else 0.0
        yield f"{s.model} {s.label}, cached input", s.cached_tokens, cached
    yield f"{s.model} {s.label}, output", s.output_tokens, found.output if found else 0.0


def costs_page(platform: Platform, owner: str, args: dict[str, Any]) -> dict[str, Any]:
    """``organization.costs`` pages for ``owner``, in USD from the catalog's tariffs."""
    p = _pages(args, protocol.WIDTHS["1d"], protocol.COSTS_LIMITS)
    found = _slices(platform, owner, p, api_key_ids=args.get("api_key_ids"))
    fields: list[str] = args["group_by"]
    wanted = set(args.get("line_items") or ())

    def results(slices: list[Slice]) -> list[dict[str, Any]]:
        sums: dict[tuple[Any, ...], list[float]] = {}
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for s in slices:
            for item, tokens, usd in _line_items(platform, s):
                if wanted and item not in wanted:
                    continue
                group = _group(s, fields)
                if "line_item" in fields:
                    group["line_item"] = item
                key = tuple(group.values())
                groups[key] = group
                total = sums.setdefault(key, [0.0, 0])
                total[0] += usd
                total[1] += tokens
        return [
            protocol.costs_result(groups[k], value=usd, quantity=int(tokens))
            for k, (usd, tokens) in sums.items()
        ]

    return _buckets(p, found, results)
