"""Metrics of the API, a worker and the control role move with traffic; the SDK's usage and
costs calls and ``inference-platform usage`` report tokens and cost per tier."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from typing import Any

import httpx
import openai
import pytest

from inference_platform.db import Database
from inference_platform.keys import ADMIN, create_key
from tests.helpers import SIM, batch_finished, chat_line, eventually, submit
from tests.stack import CLI, ROOT, Stack

pytestmark = pytest.mark.e2e


def _port(stack: Stack, process: str, role: str) -> int:
    found = eventually(
        lambda: re.search(rf"{role} \S+ metrics on http://[^:]+:(\d+)/metrics", stack.log(process)),
        timeout=30,
        what=f"the {process} metrics port in its log",
    )
    assert found is not None
    return int(found.group(1))


def _samples(url: str) -> dict[str, float]:
    text = httpx.get(url, timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = out.get(name, 0.0) + float(value)
    return out


def _total(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        v
        for k, v in samples.items()
        if (k == name or k.startswith(name + "{")) and all(w in k for w in wanted)
    )


@pytest.fixture(scope="module")
def tenant_traffic(stack: Stack, db: Database) -> dict[str, Any]:
    """A tenant of its own with realtime, flex and batch traffic on the priced model."""
    tenant = f"usage-{uuid.uuid4().hex[:8]}"
    key, info = create_key(db, tenant=tenant, name="usage test", role=ADMIN)
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0, timeout=60)
    start = int(time.time()) - 5
    messages: Any = [{"role": "user", "content": "count to three"}]
    stream = client.chat.completions.create(model=SIM, messages=messages, max_tokens=8, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.chat.completions.create(model=SIM, messages=messages, max_tokens=8)
    client.chat.completions.create(model=SIM, messages=messages, max_tokens=8, service_tier="flex")
    day = submit(client, [chat_line(f"d-{i}") for i in range(3)], window="24h")
    hour = submit(client, [chat_line(f"h-{i}") for i in range(2)], window="1h")
    for batch in (day, hour):
        assert batch_finished(client, batch.id).status == "completed"
    return {"key": key, "key_id": info.id, "tenant": tenant, "client": client, "start": start}


def test_usage_completions_per_tier_through_the_sdk(
    stack: Stack, tenant_traffic: dict[str, Any]
) -> None:
    admin = openai.OpenAI(
        base_url=stack.base_url, api_key="unused", admin_api_key=tenant_traffic["key"]
    )

    def by_tier() -> dict[Any, Any]:
        page = admin.admin.organization.usage.completions(
            start_time=tenant_traffic["start"],
            bucket_width="1h",
            group_by=["service_tier", "model"],
        )
        return {r.service_tier: r for b in page.data for r in b.results}

    # Realtime usage is written in groups up to half a second after the answer; the batches
    # may complete before that.
    expected = {"realtime": 2, "flex": 1, "batch": 5}
    tiers = eventually(
        by_tier,
        lambda t: {k: r.num_model_requests for k, r in t.items()} == expected,
        what=f"usage per tier {expected}",
    )
    for result in tiers.values():
        assert result.model == SIM and result.input_tokens > 0 and result.output_tokens > 0
    batch_only = admin.admin.organization.usage.completions(
        start_time=tenant_traffic["start"], group_by=["batch"], batch=True
    )
    (result,) = [r for b in batch_only.data for r in b.results]
    assert result.batch is True and result.num_model_requests == 5


def test_usage_by_api_key_through_the_sdk(
    stack: Stack, db: Database, tenant_traffic: dict[str, Any]
) -> None:
    second, info = create_key(db, tenant=tenant_traffic["tenant"], name="second key", role=ADMIN)
    other = openai.OpenAI(base_url=stack.base_url, api_key=second, max_retries=0, timeout=60)
    messages: Any = [{"role": "user", "content": "once"}]
    other.chat.completions.create(model=SIM, messages=messages, max_tokens=4)
    admin = openai.OpenAI(
        base_url=stack.base_url, api_key="unused", admin_api_key=tenant_traffic["key"]
    )

    def by_key() -> dict[Any, int]:
        page = admin.admin.organization.usage.completions(
            start_time=tenant_traffic["start"], bucket_width="1d", group_by=["api_key_id"]
        )
        counts: dict[Any, int] = {}
        for r in (r for b in page.data for r in b.results):
            counts[r.api_key_id] = counts.get(r.api_key_id, 0) + r.num_model_requests
        return counts

    # The first key made 2 realtime, 1 flex and 5 batch requests; the second one request.
    counts = eventually(
        by_key, lambda c: c.get(info.id) == 1 and c.get(tenant_traffic["key_id"]) == 8
    )
    assert set(counts) == {info.id, tenant_traffic["key_id"]}
    only = admin.admin.organization.usage.completions(
        start_time=tenant_traffic["start"], bucket_width="1d", api_key_ids=[info.id]
    )
    assert sum(r.num_model_requests for b in only.data for r in b.results) == 1


def test_costs_from_the_tariffs_through_the_sdk(
    stack: Stack, tenant_traffic: dict[str, Any]
) -> None:
    admin = openai.OpenAI(
        base_url=stack.base_url, api_key="unused", admin_api_key=tenant_traffic["key"]
    )
    page = admin.admin.organization.usage.costs(
        start_time=tenant_traffic["start"], group_by=["line_item"]
    )
    items = {r.line_item: r for b in page.data for r in b.results}
    assert {
        f"{SIM} {tier}, {kind}"
        for tier in ("realtime", "flex", "batch 24h", "batch 1h")
        for kind in ("input", "output")
    } == set(items)
    realtime_out = items[f"{SIM} realtime, output"]
    assert realtime_out.amount is not None and realtime_out.amount.currency == "usd"
    assert realtime_out.amount.value == pytest.approx(realtime_out.quantity * 0.6 / 1e6)
    hour_in = items[f"{SIM} batch 1h, input"]
    assert hour_in.amount is not None
    assert hour_in.amount.value == pytest.approx(hour_in.quantity * 0.08 / 1e6)
    # Another tenant sees none of it.
    other = openai.OpenAI(
        base_url=stack.base_url, api_key="unused", admin_api_key=_other_key(stack)
    )
    empty = other.admin.organization.usage.costs(start_time=tenant_traffic["start"])
    assert all(not b.results or b.results[0].amount.value == 0 for b in empty.data)


def _other_key(stack: Stack) -> str:
    db = Database(stack.settings.database_url, pool_size=1)
    try:
        key, _ = create_key(db, tenant=f"empty-{uuid.uuid4().hex[:8]}", role=ADMIN)
    finally:
        db.dispose()
    return key


def test_usage_refuses_what_it_cannot_answer(stack: Stack, tenant_traffic: dict[str, Any]) -> None:
    admin = openai.OpenAI(
        base_url=stack.base_url,
        api_key="unused",
        admin_api_key=tenant_traffic["key"],
        max_retries=0,
    )
    with pytest.raises(openai.BadRequestError, match="project_id"):
        admin.admin.organization.usage.completions(start_time=0, group_by=["project_id"])
    with pytest.raises(openai.BadRequestError, match="limit"):
        admin.admin.organization.usage.completions(start_time=0, bucket_width="1d", limit=32)


def test_usage_command_shows_the_saving(stack: Stack, tenant_traffic: dict[str, Any]) -> None:
    out = subprocess.run(
        [*CLI, "usage", "--since", "1h", "--tenant", tenant_traffic["tenant"]],
        env=stack.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "realtime" in out and "flex" in out and "batch 24h" in out and "batch 1h" in out
    assert re.search(r"flex and batch saved \d+\.\d% of realtime prices", out), out


def test_metrics_of_api_worker_and_control_move(
    stack: Stack, tenant_traffic: dict[str, Any]
) -> None:
    api = _samples(f"http://127.0.0.1:{stack.settings.port}/metrics")
    route = "/v1/chat/completions"
    assert _total(api, "inference_api_requests_total", route=route, tier="flex", status="200") >= 1
    assert _total(api, "inference_api_time_to_first_token_seconds_count", tier="realtime") >= 1
    assert "inference_api_open_streams" in "".join(api)

    worker = f"http://127.0.0.1:{_port(stack, 'sim', 'worker')}/metrics"
    before = _total(_samples(worker), "inference_worker_generated_tokens_total", tier="realtime")
    assert before > 0
    client: openai.OpenAI = tenant_traffic["client"]
    client.chat.completions.create(
        model=SIM, messages=[{"role": "user", "content": "again"}], max_tokens=8
    )
    after = _samples(worker)
    assert _total(after, "inference_worker_generated_tokens_total", tier="realtime") > before
    assert _total(after, "inference_worker_queue_wait_seconds_count", tier="batch") >= 5
    assert _total(after, "inference_worker_engine_info", kind="simulated", model=SIM) == 1
    assert "inference_worker_requests_in_flight" in "".join(after)

    control = _samples(f"http://127.0.0.1:{_port(stack, 'control', 'control')}/metrics")
    assert control["inference_control_up"] == 1
    assert _total(control, "inference_batches", status="completed") >= 2
    assert _total(control, "inference_queue_depth", tier="batch", model=SIM, source="broker") >= 0
    assert 'inference_sweeper_actions_total{action="requeued"}' in control
