"""A batch cancelled while it was still validating ends with no request rows: none of its
lines ran. Retrying it runs every line again, and as a Message Batch every request reads as
``canceled`` in its counts and results (not ``processing`` forever, not an empty result)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from inference_platform.batches import lifecycle
from inference_platform.db import migrate
from inference_platform.endpoints.batches import serving as batch_serving
from inference_platform.endpoints.messages import batches as message_batches
from inference_platform.errors import PlatformError
from inference_platform.files.store import upload_lines
from inference_platform.platform import Platform
from inference_platform.settings import Settings
from tests.stack import Services

MODEL = "sim-unrun"
BASE = "http://test/v1/messages/batches"


@pytest.fixture(scope="module")
def own_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A database and Redis db of their own: the session's stack, when one runs, has a control
    role on the shared ones that would validate (and fail) these batches before the cancel."""
    services = Services.start(tmp_path_factory.mktemp("unrun"))
    try:
        migrate.upgrade(services.database_url)
        yield services
    finally:
        services.stop()


@pytest.fixture
def platform(settings: Settings, own_services: Services) -> Platform:
    catalog = [{"name": MODEL, "engine": "simulated", "engine_args": {"tokens_per_second": 0}}]
    return Platform(
        settings.replace(
            models=json.dumps(catalog),
            database_url=own_services.database_url,
            redis_url=own_services.redis_url,
        )
    )


def _requests(n: int) -> list[dict[str, object]]:
    params = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    return [{"custom_id": f"r{i}", "params": params} for i in range(n)]


def _cancelled_while_validating(platform: Platform, owner: str, n: int) -> str:
    # No control role runs here, so the batch stays `validating` until it is cancelled.
    created = message_batches.create(platform, owner, {"requests": _requests(n)}, BASE)
    message_batches.cancel(platform, owner, created["id"], BASE)
    assert lifecycle.finalize(platform, created["id"]) == "cancelled"
    return str(created["id"])


def test_a_message_batch_cancelled_while_validating_reads_every_request_canceled(
    platform: Platform,
) -> None:
    owner = f"unrun-{uuid.uuid4().hex[:8]}"
    batch_id = _cancelled_while_validating(platform, owner, 3)
    got = message_batches.retrieve(platform, owner, batch_id, BASE)
    assert got["processing_status"] == "ended"
    assert got["request_counts"] == {
        "succeeded": 0, "errored": 0, "canceled": 3, "expired": 0, "processing": 0,
    }  # fmt: skip
    lines = [json.loads(x) for x in message_batches.results(platform, owner, batch_id)]
    assert lines == [{"custom_id": f"r{i}", "result": {"type": "canceled"}} for i in range(3)]


def test_retrying_a_batch_cancelled_while_validating_sends_every_line_again(
    platform: Platform,
) -> None:
    owner = f"unrun-{uuid.uuid4().hex[:8]}"
    batch_id = _cancelled_while_validating(platform, owner, 4)
    again = batch_serving.retry(platform, owner, batch_id)
    assert again["metadata"]["retry_of"] == batch_id
    sent = [json.loads(x)["custom_id"] for x in upload_lines(platform, again["input_file_id"])]
    assert sent == ["r0", "r1", "r2", "r3"]
    # The new batch is still validating: a 409 the SDK is told not to send again.
    with pytest.raises(PlatformError) as refused:
        batch_serving.retry(platform, owner, again["id"])
    assert refused.value.status == 409 and refused.value.code == "batch_not_finished"
    assert refused.value.headers == {"x-should-retry": "false"}
