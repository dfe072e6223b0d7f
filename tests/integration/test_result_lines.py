"""The JSONL lines of batch output and error files, rendered by Postgres."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from inference_platform.db import Database
from inference_platform.files import results

LINE_ID = "batch_req_" + "ab" * 16


def test_jsonl_line_shapes(db: Database) -> None:
    """The SQL that renders a request row as an output / error line."""
    with db.engine.connect() as conn:

        def render(
            status_code: int | None, result: dict[str, Any] | None, error: dict[str, Any] | None
        ) -> dict[str, Any]:
            line = conn.execute(
                text(
                    f"SELECT {results.LINE_SQL} FROM (SELECT :id AS id, :cid AS custom_id, "
                    "CAST(:code AS int) AS status_code, CAST(:result AS jsonb) AS result, "
                    "CAST(:error AS jsonb) AS error) r"
                ),
                {
                    "id": LINE_ID,
                    "cid": "my-id",
                    "code": status_code,
                    "result": json.dumps(result) if result else None,
                    "error": json.dumps(error) if error else None,
                },
            ).scalar_one()
            return json.loads(line)

        ok = render(200, {"object": "chat.completion"}, None)
        assert ok == {
            "id": LINE_ID,
            "custom_id": "my-id",
            "response": {
                "status_code": 200,
                "request_id": "req_" + "ab" * 16,
                "body": {"object": "chat.completion"},
            },
            "error": None,
        }
        failed = render(400, {"error": {"code": "context_length_exceeded"}}, None)
        assert failed["response"]["status_code"] == 400 and failed["error"] is None
        expired = render(None, None, {"code": "batch_expired", "message": "late"})
        assert expired["response"] is None and expired["error"]["code"] == "batch_expired"
        assert list(expired) == ["id", "custom_id", "response", "error"]
