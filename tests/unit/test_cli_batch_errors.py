"""The batch commands answer a refusal or a missing model with one line, never a traceback,
and a batch that cannot be retried is asked about once, not again by the SDK's retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main


class _Refusing(BaseHTTPRequestHandler):
    """404 for an unknown batch, 409 (x-should-retry: false) for retrying a finished one."""

    seen: list[str] = []

    def _answer(self, status: int, message: str, headers: dict[str, str]) -> None:
        self.seen.append(f"{self.command} {self.path}")
        body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}})
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body.encode())

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        self._answer(404, "No batch found with id 'batch_nope'.", {})

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(409, "Batch b has no failed lines to retry.", {"x-should-retry": "false"})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    _Refusing.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def test_status_of_an_unknown_batch_is_one_line(api: str) -> None:
    result = _run("batch", "status", "batch_nope", "--base-url", api, "--api-key", "sk-x")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # click's error exit, not a crash
    assert "404: No batch found with id 'batch_nope'." in result.output
    assert "Traceback" not in result.output


def test_retry_of_a_batch_with_nothing_to_retry_is_one_line_and_one_request(api: str) -> None:
    result = _run("batch", "retry", "b", "--base-url", api, "--api-key", "sk-x")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "409: Batch b has no failed lines to retry." in result.output
    assert _Refusing.seen == ["POST /v1/batches/b/retry"]


def test_estimate_away_from_the_models_says_where_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./var here: the demo model's files are elsewhere
    for name in ("INFERENCE_VAR_DIR", "INFERENCE_MODELS"):
        monkeypatch.delenv(name, raising=False)
    models = [{"name": "m", "engine": "vllm", "path": str(tmp_path / "var" / "models" / "m")}]
    monkeypatch.setenv("INFERENCE_MODELS", json.dumps(models))
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}  # fmt: skip
    (tmp_path / "q.jsonl").write_text(json.dumps(line) + "\n")
    result = _run("batch", "estimate", "q.jsonl")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "cannot load the model's tokenizer" in result.output
    assert "INFERENCE_VAR_DIR" in result.output
