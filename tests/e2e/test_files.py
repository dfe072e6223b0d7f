"""The Files API through the official openai SDK, against the real stack."""

from __future__ import annotations

import io
import json

import httpx
import openai
import pytest
from sqlalchemy import func, select

from inference_platform.db.models import FileChunk
from inference_platform.settings import Settings
from tests.conftest import SIM

pytestmark = pytest.mark.e2e


def _jsonl(n: int, prefix: str = "r") -> bytes:
    lines = [
        {
            "custom_id": f"{prefix}{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": SIM,
                "messages": [{"role": "user", "content": f"hello {i}"}],
                "max_tokens": 4,
            },
        }
        for i in range(n)
    ]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_upload_retrieve_list_content_delete(client: openai.OpenAI) -> None:
    data = _jsonl(5)
    uploaded = client.files.create(file=("requests.jsonl", data), purpose="batch")
    assert uploaded.id.startswith("file-")
    assert uploaded.object == "file" and uploaded.purpose == "batch"
    assert uploaded.bytes == len(data) and uploaded.filename == "requests.jsonl"
    assert uploaded.status == "processed" and uploaded.created_at > 0
    # Batch files expire after 30 days unless the upload says otherwise.
    assert uploaded.expires_at is not None and uploaded.expires_at > uploaded.created_at

    assert client.files.retrieve(uploaded.id).bytes == len(data)
    assert client.files.content(uploaded.id).read() == data
    assert uploaded.id in [f.id for f in client.files.list(purpose="batch")]

    deleted = client.files.delete(uploaded.id)
    assert deleted.deleted is True and deleted.id == uploaded.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(uploaded.id)
    assert uploaded.id not in [f.id for f in client.files.list()]


def test_list_pagination_and_order(client: openai.OpenAI) -> None:
    ids = [
        client.files.create(file=(f"p{i}.jsonl", _jsonl(1)), purpose="user_data").id
        for i in range(3)
    ]
    first = client.files.list(purpose="user_data", limit=2)
    assert [f.id for f in first.data] == ids[::-1][:2]
    assert first.has_more is True
    rest = client.files.list(purpose="user_data", limit=2, after=first.data[-1].id)
    assert ids[0] in [f.id for f in rest.data]
    oldest_first = client.files.list(purpose="user_data", order="asc")
    listed = [f.id for f in oldest_first.data if f.id in ids]
    assert listed == ids
    # The SDK's auto-pagination follows `after` until has_more is false.
    assert set(ids) <= {f.id for f in client.files.list(purpose="user_data", limit=1)}


def test_expires_after_and_bad_uploads(client: openai.OpenAI, stack) -> None:
    f = client.files.create(
        file=("x.jsonl", _jsonl(1)),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    assert f.expires_at is not None and 7190 <= f.expires_at - f.created_at <= 7210
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("x.jsonl", b"{}"), purpose="nonsense")  # type: ignore[arg-type]
    assert err.value.param == "purpose"
    with pytest.raises(openai.BadRequestError):
        client.files.create(
            file=("x.jsonl", b"{}"),
            purpose="batch",
            expires_after={"anchor": "created_at", "seconds": 5},
        )
    # No file part at all.
    response = httpx.post(
        f"{stack.base_url}/files",
        data={"purpose": "batch"},
        headers={"Authorization": f"Bearer {client.api_key}"},
        files={"other": ("a.txt", b"x")},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"


def test_content_offset_and_limit_on_uploads(client: openai.OpenAI, stack) -> None:
    data = _jsonl(10)
    f = client.files.create(file=("lines.jsonl", data), purpose="batch")
    response = httpx.get(
        f"{stack.base_url}/files/{f.id}/content",
        params={"offset": 3, "limit": 4},
        headers={"Authorization": f"Bearer {client.api_key}"},
    )
    assert response.status_code == 200
    assert response.text.splitlines() == data.decode().splitlines()[3:7]
    assert response.headers["X-Last-Line"] == "7"


def test_large_upload_is_stored_in_chunks(client: openai.OpenAI, db) -> None:
    # ~3 MB: several chunk rows, read back byte for byte.
    data = b"".join(_jsonl(40, prefix=f"c{k}-") for k in range(450))
    assert len(data) > 2_500_000
    f = client.files.create(file=("big.jsonl", io.BytesIO(data)), purpose="batch")
    assert f.bytes == len(data)
    with db.session() as s:
        chunks = s.scalar(select(func.count()).where(FileChunk.file_id == f.id))
    assert chunks is not None and chunks >= 3
    assert client.files.content(f.id).read() == data


def test_file_over_the_limit_gets_413(settings: Settings, api_key: str) -> None:
    from api import create_app

    app = create_app(settings.replace(max_file_bytes=2000))
    http = app.test_client()
    headers = {"Authorization": f"Bearer {api_key}"}
    ok = http.post(
        "/v1/files",
        headers=headers,
        data={"purpose": "batch", "file": (io.BytesIO(b"x" * 1500), "a.jsonl")},
    )
    assert ok.status_code == 200, ok.json
    big = http.post(
        "/v1/files",
        headers=headers,
        data={"purpose": "batch", "file": (io.BytesIO(b"x" * 3000), "a.jsonl")},
    )
    assert big.status_code == 413
    assert big.json["error"]["code"] == "file_too_large"


def test_other_tenant_gets_404(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    mine = client.files.create(file=("mine.jsonl", _jsonl(2)), purpose="batch")
    for call in (
        lambda: other_client.files.retrieve(mine.id),
        lambda: other_client.files.content(mine.id),
        lambda: other_client.files.delete(mine.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert mine.id not in [f.id for f in other_client.files.list()]
    assert client.files.retrieve(mine.id).id == mine.id
