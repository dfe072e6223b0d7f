"""The batch input-file validator, line by line."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

from inference_platform.batches.checks import line_checks
from inference_platform.batches.lines import MAX_REPORTED_ERRORS, LineValidator
from inference_platform.endpoints.chat_completions.protocol import ChatCompletionCreateRequestSchema
from inference_platform.endpoints.protocol import load

CHAT = "/v1/chat/completions"
SERVED = {"m1", "m2"}


def validator(max_lines: int = 100) -> LineValidator:
    return LineValidator(
        CHAT, partial(load, ChatCompletionCreateRequestSchema()), lambda m: m in SERVED, max_lines
    )


def line(custom_id: Any = "a", **changes: Any) -> bytes:
    item: dict[str, Any] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": CHAT,
        "body": {"model": "m1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
    }
    for key, value in changes.items():
        if key.startswith("body_"):
            item["body"][key[5:]] = value
        else:
            item[key] = value
    return json.dumps(item).encode()


def codes(v: LineValidator) -> list[tuple[int | None, str]]:
    return [(e.line, e.code) for e in v.errors]


def test_a_good_line_is_returned_validated() -> None:
    v = validator()
    good = v.check(1, line())
    assert good is not None and good.custom_id == "a" and good.model == "m1"
    body = json.loads(good.body)
    # The endpoint schema's defaults are applied, as for a direct request.
    assert body["n"] == 1 and body["messages"][0]["content"] == "hi"
    assert not v.failed and v.finish() == []


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [
        (b"{not json", "invalid_json_line", None),
        (b"[1, 2]", "invalid_json_line", None),
        (line(None), "missing_custom_id", "custom_id"),
        (line(7), "invalid_custom_id", "custom_id"),
        (line("x" * 65), "invalid_custom_id", "custom_id"),
        (line(method="GET"), "invalid_method", "method"),
        (line(url="/v1/completions"), "url_mismatch", "url"),
        (line(body="text"), "invalid_body", "body"),
        (line(body_stream=True), "stream_unsupported", "body.stream"),
        (line(body_model="unknown"), "model_not_found", "body.model"),
        (line(body_messages=[]), "invalid_body", "body.messages"),
        (line(body_temperature=9), "invalid_body", "body.temperature"),
        (line(body_top_logprobs=3), "invalid_body", "body.top_logprobs"),
    ],
)
def test_each_kind_of_bad_line(raw: bytes, code: str, param: str | None) -> None:
    v = validator()
    assert v.check(3, raw) is None
    (error,) = v.errors
    assert (error.line, error.code, error.param) == (3, code, param)
    assert error.message


def test_custom_id_of_64_characters_is_fine() -> None:
    assert validator().check(1, line("x" * 64)) is not None


def test_duplicates_name_the_first_line() -> None:
    v = validator()
    v.check(1, line("a"))
    v.check(2, line("b"))
    assert v.check(3, line("a")) is None
    (error,) = v.errors
    assert (error.line, error.code) == (3, "duplicate_custom_id") and "line 1" in error.message


def test_one_model_per_file() -> None:
    v = validator()
    v.check(1, line("a"))
    v.check(2, line("b", body_model="m2"))
    assert codes(v) == [(2, "model_mismatch")]


def test_blank_lines_are_skipped_but_counted() -> None:
    v = validator()
    assert v.check(1, b"") is None and v.check(2, b"   \r") is None
    v.check(3, b"oops")
    assert codes(v) == [(3, "invalid_json_line")]


def test_empty_file() -> None:
    v = validator()
    v.check(1, b"")
    assert [e["code"] for e in v.finish()] == ["empty_file"]


def test_too_many_lines_stops_reading() -> None:
    v = validator(max_lines=2)
    for n in (1, 2):
        v.check(n, line(f"id{n}"))
    assert not v.stopped
    v.check(3, line("id3"))
    assert v.stopped and codes(v) == [(3, "too_many_tasks")]


def test_errors_are_capped_with_a_summary() -> None:
    v = validator(max_lines=1000)
    for n in range(1, MAX_REPORTED_ERRORS + 11):
        v.check(n, b"bad")
    data = v.finish()
    assert len(data) == MAX_REPORTED_ERRORS + 1
    assert data[-1]["code"] == "too_many_errors" and "10 more" in data[-1]["message"]
    assert set(data[0]) == {"code", "message", "param", "line"}


def test_nul_and_broken_unicode_are_refused() -> None:
    v = validator()
    v.check(1, line("a", body_user="a\u0000b"))
    v.check(2, line("b", body_user="\ud800"))
    assert codes(v) == [(1, "invalid_body"), (2, "invalid_body")]


def test_line_checks_cover_the_endpoints() -> None:
    checks = line_checks()
    assert set(checks) >= {CHAT, "/v1/completions"}
    with pytest.raises(Exception, match="prompt"):
        checks["/v1/completions"]({"model": "m1"})
