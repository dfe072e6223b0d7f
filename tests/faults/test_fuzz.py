"""Fuzz every route with requests drawn from the request schemas: never a 500, every error
in the OpenAI envelope. 2,000 cases in ``make test``, 10,000 in ``make faults`` (FUZZ_CASES).

Runs against the one shared stack; the hostile cases once found (tests/hostile.py) go first
as regression seeds.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from tests.faults.fuzz import Request, requests
from tests.hostile import CASES
from tests.stack import Stack

pytestmark = pytest.mark.e2e

CASES_WANTED = int(os.environ.get("FUZZ_CASES", "2000"))
seen: Counter[int] = Counter()
failures: list[str] = []


@pytest.fixture(scope="module")
def http(stack: Stack, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=stack.base_url.removesuffix("/v1"),
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    ) as client:
        yield client


def send(http: httpx.Client, req: Request) -> None:
    if req.files is not None:
        r = http.request(req.method, req.path, files=req.files, data=req.data)
    elif req.raw is not None:
        r = http.request(
            req.method, req.path, content=req.raw, headers={"Content-Type": "application/json"}
        )
    else:
        body = None if req.json is None else json.dumps(req.json).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        r = http.request(req.method, req.path, content=body, headers=headers)
    seen[r.status_code] += 1
    if r.status_code >= 500 and r.status_code != 503:
        failures.append(f"{r.status_code} {req!r:.300} -> {r.text[:300]}")
    if r.status_code >= 400:
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, (req, r.text)


def test_regression_seeds_never_500(http: httpx.Client) -> None:
    for case in CASES:
        send(http, Request(case.method, case.path, raw=case.content()))
    assert not failures, failures


@settings(
    max_examples=CASES_WANTED,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(req=requests)
def test_fuzzed_requests_never_500(http: httpx.Client, req: Request) -> None:
    send(http, req)


def test_report(tmp_path: Path) -> None:
    total = sum(seen.values())
    errors = sum(n for code, n in seen.items() if code >= 500 and code != 503)
    print(
        f"\nfuzz: {total} cases, {errors} responses of 500; statuses {dict(sorted(seen.items()))}"
    )
    out = Path(os.environ.get("FAULTS_REPORT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    (out / "fuzz.json").write_text(json.dumps({"cases": total, "errors_500": errors}))
    assert errors == 0, failures[:20]
    assert total >= CASES_WANTED
