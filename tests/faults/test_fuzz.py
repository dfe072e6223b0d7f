"""Fuzz every route of the app's url_map (API, docs, console) with requests drawn from the
request schemas, with admin, member, missing and wrong keys: never a 500, every API error in
the OpenAI envelope. 2,000 cases in ``make test``, 10,000 in ``make faults`` (FUZZ_CASES).

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
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import create_app
from cli import main as cli_main
from inference_platform.catalog import load_catalog
from inference_platform.db import Database
from inference_platform.keys import MEMBER, create_key
from inference_platform.settings import Settings
from tests.faults.fuzz import ARGUMENT, Request, any_json, every_route, requests, routes_of
from tests.helpers import chat_line
from tests.hostile import CASES
from tests.stack import Stack

pytestmark = pytest.mark.e2e

CASES_WANTED = int(os.environ.get("FUZZ_CASES", "2000"))
seen: Counter[int] = Counter()
failures: list[str] = []
routes_hit: set[str] = set()
cli_cases: list[int] = []
keys: dict[str, str] = {}
# The app as every API process builds it (the factory connects to nothing): its url_map is
# the list of routes to fuzz, so a route added later is fuzzed without touching this file.
APP = create_app(Settings(database_url="postgresql://unused/x", redis_url="redis://unused"))
ROUTES = routes_of(APP)


@pytest.fixture(scope="module")
def http(stack: Stack, api_key: str, db: Database) -> Iterator[httpx.Client]:
    member, _ = create_key(db, tenant="tenant-a", name="fuzz member", role=MEMBER)
    keys.update(admin=api_key, member=member)
    with httpx.Client(base_url=stack.base_url.removesuffix("/v1"), timeout=60) as client:
        yield client


def _auth(req: Request) -> dict[str, str]:
    if req.auth == "none":
        return {}
    key = keys.get(req.auth, "sk-not-a-key-" + req.auth)
    return {"Authorization": f"Bearer {key}"}


def send(http: httpx.Client, req: Request) -> None:
    headers = _auth(req)
    if req.files is not None:
        r = http.request(req.method, req.path, files=req.files, data=req.data, headers=headers)
    elif req.data is not None:
        r = http.request(req.method, req.path, data=req.data, headers=headers)
    elif req.raw is not None:
        headers["Content-Type"] = "application/json"
        r = http.request(req.method, req.path, content=req.raw, headers=headers)
    else:
        body = None if req.json is None else json.dumps(req.json).encode()
        if body is not None:
            headers["Content-Type"] = "application/json"
        r = http.request(req.method, req.path, content=body, headers=headers)
    seen[r.status_code] += 1
    routes_hit.add(req.path.split("?")[0])
    if r.status_code >= 500 and r.status_code != 503:
        failures.append(f"{r.status_code} {req!r:.300} -> {r.text[:300]}")
    # The API answers in the OpenAI envelope (Anthropic's on its Messages routes); pages
    # (console, docs) may answer in HTML.
    if r.status_code >= 400 and req.path.startswith("/v1"):
        body = r.json()
        if body.get("type") == "error":
            assert {"type", "message"} <= set(body["error"]), (req, r.text)
        else:
            assert set(body["error"]) == {"message", "type", "param", "code"}, (req, r.text)


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


def test_every_route_once_never_500(http: httpx.Client) -> None:
    """Each route of the app's url_map, once, whatever the random draws below cover."""
    for route in ROUTES:
        path = ARGUMENT.sub("x", route.rule)
        body = {} if route.method in ("POST", "PUT", "PATCH") else None
        send(http, Request(route.method, path, json=body))
    assert not failures, failures


@settings(
    max_examples=max(CASES_WANTED // 2, len(ROUTES)),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(req=every_route(APP))
def test_every_route_fuzzed_never_500(http: httpx.Client, req: Request) -> None:
    send(http, req)


# -- the CLI's file inputs -------------------------------------------------------------------

jsonl_lines = st.lists(
    st.sampled_from(
        (
            json.dumps(chat_line("a")),
            json.dumps(chat_line("a", max_tokens=10**9)),
            '{"custom_id": "x", "method": "POST"}',
            "{not json",
            "",
            "[]",
            '"\\u0000"',
        )
    )
    | st.text(max_size=40),
    max_size=4,
).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))
cli_files = jsonl_lines | st.binary(max_size=300)


@settings(
    max_examples=max(20, CASES_WANTED // 100),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(content=cli_files, endpoint=st.sampled_from(("/v1/chat/completions", "/v1/nope", "")))
def test_cli_batch_submit_of_any_file_ends_cleanly(
    stack: Stack,
    api_key: str,
    tmp_path_factory: pytest.TempPathFactory,
    content: bytes,
    endpoint: str,
) -> None:
    """``batch submit FILE``: a batch id or a one-line error, never a traceback."""
    path = tmp_path_factory.mktemp("cli") / "in.jsonl"
    path.write_bytes(content)
    args = ["batch", "submit", str(path), "--endpoint", endpoint]
    args += ["--base-url", stack.base_url, "--api-key", api_key]
    result = CliRunner().invoke(cli_main, args)
    cli_cases.append(result.exit_code)
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        content,
        result.exception,
    )


@settings(max_examples=max(50, CASES_WANTED // 20), deadline=None, database=None)
@given(content=st.binary(max_size=200) | any_json.map(lambda v: json.dumps([v, {"name": 1}])))
def test_a_models_file_of_any_content_is_a_clear_error(
    tmp_path_factory: pytest.TempPathFactory, content: str | bytes
) -> None:
    """``INFERENCE_MODELS=/path/models.json``: a catalog or a ValueError saying what is wrong."""
    path = tmp_path_factory.mktemp("catalog") / "models.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    try:
        load_catalog(Settings(models=str(path)))
    except ValueError as exc:
        assert str(exc)


def test_report(tmp_path: Path) -> None:
    total = sum(seen.values())
    errors = sum(n for code, n in seen.items() if code >= 500 and code != 503)
    print(
        f"\nfuzz: {total} cases over {len(ROUTES)} routes, {errors} responses of 500; "
        f"statuses {dict(sorted(seen.items()))}; CLI file inputs: {len(cli_cases)} cases, "
        f"exit codes {dict(sorted(Counter(cli_cases).items()))}"
    )
    out = Path(os.environ.get("FAULTS_REPORT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    (out / "fuzz.json").write_text(
        json.dumps(
            {
                "cases": total,
                "errors_500": errors,
                "routes": len(ROUTES),
                "cli_cases": len(cli_cases),
            }
        )
    )
    assert errors == 0, failures[:20]
    assert total >= CASES_WANTED
