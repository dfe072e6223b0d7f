"""Work a client was given an id for survives restarts of the API, the control worker and
Redis (here: Redis losing everything, which is worse than a restart)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import openai
import pytest
import redis
from sqlalchemy import select

from inference_platform.db.models import UsageRecord
from tests.conftest import SIM_SLOW
from tests.helpers import (
    batch_finished,
    chat_line,
    finished,
    lines_of,
    submit,
    usage_rows,
    wait_for,
)

pytestmark = pytest.mark.e2e


def test_batch_and_background_flex_survive_api_control_and_redis_loss(
    client: openai.OpenAI, stack: Any, db: Any
) -> None:
    n = 32
    batch = submit(client, [chat_line(f"d{i}", model=SIM_SLOW, max_tokens=10) for i in range(n)])
    # Queued behind the batch on the same engine, so it is still waiting when Redis is lost.
    response = client.responses.create(
        model=SIM_SLOW,
        input="keep me",
        service_tier="flex",
        background=True,
        max_output_tokens=30,
    )
    wait_for(client, batch.id, lambda b: b.request_counts.completed >= 2)

    stack.kill("web")
    stack.kill("control")
    # Every queued Celery message, every event stream and every heartbeat is gone.
    redis.Redis.from_url(stack.settings.redis_url).flushdb()
    stack.restart("control")
    stack.restart("web")
    stack.wait_api()
    stack.wait_queue("control")

    done = batch_finished(client, batch.id, timeout=120)
    assert done.status == "completed"
    assert done.request_counts.completed == n and done.request_counts.failed == 0
    out = lines_of(client, done.output_file_id)
    assert Counter(x["custom_id"] for x in out) == Counter(f"d{i}" for i in range(n))
    with db.session() as s:
        billed = list(
            s.scalars(select(UsageRecord.request_id).where(UsageRecord.batch_id == batch.id))
        )
    assert len(billed) == n == len(set(billed))

    final = finished(client, response.id, timeout=90)
    assert final.status == "incomplete" and final.usage.output_tokens == 30
    assert len(usage_rows(db, response.id)) == 1
