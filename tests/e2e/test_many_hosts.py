"""Two hosts serving one model: work spreads over both, and losing one host loses nothing.

The second worker runs as if on another machine: its own var directory and process group,
sharing only the broker and the database with the first.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from inference_platform.db.models import UsageRecord
from tests.helpers import SIM_SLOW, batch_finished, chat_line, eventually, lines_of, submit
from tests.stack import Stack

_PORT = re.compile(r"metrics on http://[^:]+:(\d+)/metrics")


def _batch_tokens(stack: Stack, name: str) -> float:
    """Batch tokens a worker generated, from its own metrics port (named in its log)."""
    ports = _PORT.findall(stack.log(name))
    if not ports:
        return 0.0
    text = httpx.get(f"http://127.0.0.1:{ports[-1]}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("inference_worker_generated_tokens_total{") and 'tier="batch"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def second_host(stack: Stack, tmp_path: Path) -> Any:
    var = tmp_path / "host2"
    (var / "logs").mkdir(parents=True)
    host = Stack(stack.settings.replace(var_dir=str(var)), var / "logs")
    host.start("host2", ["worker", "--queues", "realtime,flex,batch", "--model", SIM_SLOW])
    try:
        eventually(lambda: "metrics on http" in host.log("host2"), timeout=60, what="host 2")
        yield host
    finally:
        host.stop()


def test_two_hosts_share_a_batch_and_losing_one_loses_nothing(
    client: openai.OpenAI, stack: Stack, second_host: Stack, db: Any
) -> None:
    n = 48
    before = (_batch_tokens(stack, SIM_SLOW), 0.0)
    batch = submit(client, [chat_line(f"h{i}", model=SIM_SLOW, max_tokens=20) for i in range(n)])
    # Both hosts take lines of the same batch...
    eventually(
        lambda: (_batch_tokens(stack, SIM_SLOW), _batch_tokens(second_host, "host2")),
        lambda t: t[0] > before[0] and t[1] > before[1],
        timeout=60,
        what="both hosts generating the batch",
    )
    # ...then the second host is lost with the lines it was running.
    second_host.kill("host2")
    done = batch_finished(client, batch.id, timeout=120)
    assert done.status == "completed" and done.error_file_id is None
    out = lines_of(client, done.output_file_id)
    assert Counter(x["custom_id"] for x in out) == Counter(f"h{i}" for i in range(n))
    with db.session() as s:
        billed = list(
            s.scalars(select(UsageRecord.request_id).where(UsageRecord.batch_id == batch.id))
        )
    assert len(billed) == n and len(set(billed)) == n
