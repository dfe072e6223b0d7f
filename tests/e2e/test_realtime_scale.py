"""Realtime at scale: hundreds of open streams on one API host and one worker, and overload
answered with 503 and Retry-After rather than a reset, a timeout or a 500."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from tests.helpers import SIM_SLOW, SIM_WIDE


async def _stream(client: httpx.AsyncClient, model: str, tokens: int) -> tuple[int, Any]:
    """One streamed chat completion: (status, its text or its error with Retry-After)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "keep talking"}],
        "max_tokens": tokens,
        "stream": True,
    }
    async with client.stream("POST", "/chat/completions", json=body) as r:
        if r.status_code != 200:
            await r.aread()
            return r.status_code, (r.json()["error"]["code"], r.headers.get("retry-after"))
        text, done = "", False
        async for line in r.aiter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: {") and '"content"' in line:
                text += line
        return (200 if done else 599), text


async def _burst(base_url: str, key: str, model: str, n: int, tokens: int) -> list[Any]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=120
    ) as client:
        return await asyncio.gather(*(_stream(client, model, tokens) for _ in range(n)))


def test_300_open_streams_all_complete(stack: Any, api_key: str) -> None:
    # 40 tokens at 20 tokens/s: every stream stays open about two seconds, all at once.
    results = asyncio.run(_burst(stack.base_url, api_key, SIM_WIDE, 300, 40))
    assert Counter(status for status, _ in results) == {200: 300}
    assert all(text for _, text in results)


def test_overload_is_503_with_retry_after(stack: Any, api_key: str) -> None:
    # The sim-slow worker holds 4 x 4 = 16 realtime requests; 40 at once overflow it.
    results = asyncio.run(_burst(stack.base_url, api_key, SIM_SLOW, 40, 30))
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] >= 4 and statuses[503] >= 1, statuses
    refused = [detail for status, detail in results if status == 503]
    assert all(detail == ("engine_overloaded", "1") for detail in refused), refused
