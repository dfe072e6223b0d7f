"""A batch file with a line whose output limit is past the model's context window is not
refused at creation as days of work (a 429 ``insufficient_capacity`` for every line): it is
created, and validation names the bad line, so a client (the autobatcher) fails only that
line's caller. A file that is merely too big for its window is still refused."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from inference_platform.capacity import admission, estimate
from inference_platform.capacity.model import Profile
from inference_platform.endpoints.batches import serving as batch_serving
from inference_platform.errors import PlatformError
from inference_platform.files.upload import store_lines
from inference_platform.platform import Platform
from inference_platform.settings import Settings

MODEL = "sim-impossible"  # simulated: an 8192-token context window


@pytest.fixture
def platform(settings: Settings) -> Platform:
    catalog = [{"name": MODEL, "engine": "simulated", "engine_args": {"tokens_per_second": 10}}]
    p = Platform(settings.replace(models=json.dumps(catalog)))
    p.redis.delete(admission.PENDING_KEY.format(model=MODEL))
    # 100 tokens/s measured, nothing queued.
    estimate._store(p, MODEL, Profile(time.time(), 100.0, (), 0.5, 1))
    return p


def _line(i: int, max_tokens: int) -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    item = {"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions"}
    return json.dumps({**item, "body": {**body, "max_tokens": max_tokens}}).encode()


def _create(platform: Platform, owner: str, lines: list[bytes]) -> dict[str, object]:
    with platform.db.session() as s:
        file_id = store_lines(s, owner, "in.jsonl", lines, None, 10**8).id
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions"}
    return batch_serving.create(platform, owner, {**body, "completion_window": "24h"})


def test_a_line_past_the_context_window_is_left_to_validation(platform: Platform) -> None:
    owner = f"impossible-{uuid.uuid4().hex[:8]}"
    lines = [_line(i, 8) for i in range(5)] + [_line(5, 10**9)]
    created = _create(platform, owner, lines)
    assert created["status"] == "validating"


def test_a_file_too_big_for_its_window_is_still_refused(platform: Platform) -> None:
    owner = f"impossible-{uuid.uuid4().hex[:8]}"
    # 1,100 lines of 8,000 tokens at 100 tokens/s: about 24.4 h of work.
    with pytest.raises(PlatformError) as refused:
        _create(platform, owner, [_line(i, 8000) for i in range(1100)])
    assert refused.value.status == 429 and refused.value.code == "insufficient_capacity"
