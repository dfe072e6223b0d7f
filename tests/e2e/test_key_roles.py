"""Admin and member keys as a client meets them, and revocation that reaches every API
process within a second."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from inference_platform.keys import ADMIN, MEMBER, create_key, revoke_key
from tests.conftest import SIM
from tests.helpers import chat_line, eventually, submit
from tests.stack import Stack, free_port


@pytest.fixture
def member(stack: Stack, db: Any) -> openai.OpenAI:
    key, _ = create_key(db, tenant="tenant-a", name="member", role=MEMBER)
    return openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0, timeout=60)


def _forbidden(call: Any) -> openai.PermissionDeniedError:
    with pytest.raises(openai.PermissionDeniedError) as err:
        call()
    assert err.value.status_code == 403 and err.value.code == "insufficient_permissions"
    body = err.value.response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"} and "admin" in body["message"]
    return err.value


def test_a_member_key_does_inference_files_and_batches(member: openai.OpenAI) -> None:
    chat = member.chat.completions.create(
        model=SIM, messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert chat.choices[0].message.content
    assert member.responses.create(model=SIM, input="hi", max_output_tokens=3).output_text
    batch = submit(member, [chat_line("m0")])
    assert member.batches.retrieve(batch.id).id == batch.id
    assert any(f.id == batch.input_file_id for f in member.files.list())


def test_a_member_key_gets_403_on_every_admin_route(stack: Stack, member: openai.OpenAI) -> None:
    admin_view = openai.OpenAI(base_url=stack.base_url, admin_api_key=member.api_key)
    usage = admin_view.admin.organization.usage
    _forbidden(lambda: usage.completions(start_time=0))
    _forbidden(lambda: usage.costs(start_time=0))
    _forbidden(
        lambda: member.webhooks.create(
            name="m", url="https://example.com/h", event_types=["batch.completed"]
        )
    )
    _forbidden(lambda: member.webhooks.list())
    _forbidden(lambda: member.webhooks.retrieve("whep_x"))
    _forbidden(lambda: member.webhooks.delete("whep_x"))


def test_an_admin_key_reads_usage_and_manages_webhooks(stack: Stack, db: Any) -> None:
    key, _ = create_key(db, tenant="tenant-admin", name="admin", role=ADMIN)
    admin = openai.OpenAI(base_url=stack.base_url, admin_api_key=key, max_retries=0)
    assert admin.admin.organization.usage.completions(start_time=0).object == "page"
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    endpoint = client.webhooks.create(
        name="a", url="http://127.0.0.1:9/hook", event_types=["batch.completed"]
    )
    assert client.webhooks.retrieve(endpoint.id).id == endpoint.id


@pytest.fixture
def second_api(stack: Stack, tmp_path: Path) -> Iterator[Stack]:
    """Another API process on its own port (as another host behind a load balancer)."""
    (tmp_path / "logs").mkdir()
    api = Stack(stack.settings.replace(port=free_port()), tmp_path / "logs")
    api.start("web2", ["web"])
    try:
        api.wait_api()
        yield api
    finally:
        api.stop()


def test_a_revoked_key_is_refused_by_every_api_process_within_a_second(
    stack: Stack, second_api: Stack, db: Any
) -> None:
    key, info = create_key(db, tenant="tenant-revoke", name="revoked soon")
    urls = [f"{s.base_url}/models" for s in (stack, second_api)]
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=10) as http:
        for url in urls:  # both processes have the key in their cache now
            assert http.get(url, headers=headers).status_code == 200
        assert revoke_key(db, info.id, redis.Redis.from_url(stack.settings.redis_url))
        done = time.monotonic()
        refused_after = []
        for url in urls:
            eventually(
                lambda u=url: http.get(u, headers=headers).status_code,  # type: ignore[misc]
                lambda status: status == 401,
                timeout=5,
                interval=0.05,
                what="the revoked key refused",
            )
            refused_after.append(time.monotonic() - done)
    print(f"revoked key refused after {refused_after} s", file=sys.stderr)
    assert max(refused_after) < 1.0, refused_after
