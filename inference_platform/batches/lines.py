"""Checking the lines of a batch input file, one at a time.

Pure logic (no database) so it can be tested line by line. Each bad line yields one error
``{code, message, param, line}`` with its 1-based line number; blank lines carry no request and
are skipped (but still counted for numbering).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference_platform.batches.prefix import prefix_hash
from inference_platform.endpoints.protocol import MAX_DEPTH, unstorable
from inference_platform.errors import PlatformError
from inference_platform.generation import output_limit

MAX_CUSTOM_ID = 64
# errors.data stays readable: the first ones in full, then one entry saying how many more.
MAX_REPORTED_ERRORS = 100

# Validates an endpoint's request body the way the API does; raises PlatformError (400).
BodyCheck = Callable[[dict[str, Any]], dict[str, Any]]
# Whether the batch tier offers a model (raises PlatformError for one of the wrong kind).
ServesModel = Callable[[str], bool]


@dataclass
class LineError:
    code: str
    message: str
    line: int | None = None
    param: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


@dataclass
class GoodLine:
    custom_id: str
    model: str
    body: str  # the validated body as compact JSON, ready to store
    # Its output token limit (None: the model's default), which orders the batch's claims.
    output_limit: int | None = None
    # Its prompt prefix's group (``batches.prefix``): lines that share one are claimed together.
    prefix_hash: int | None = None


@dataclass
class LineValidator:
    """Feed it every line in order; it returns a ``GoodLine`` for each good one."""

    endpoint: str
    check_body: BodyCheck
    serves_model: ServesModel
    max_lines: int
    model: str | None = None
    requests: int = 0
    error_count: int = 0
    stopped: bool = False
    # The line being checked: where a crash that no check foresaw is reported.
    line: int | None = None
    errors: list[LineError] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.error_count > 0

    def error(self, code: str, message: str, line: int | None, param: str | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(LineError(code, message, line, param))

    def check(self, line_no: int, raw: bytes) -> GoodLine | None:
        self.line = line_no
        if not raw.strip():
            return None
        self.requests += 1
        if self.requests > self.max_lines:
            self.error(
                "too_many_tasks",
                f"The file has more than {self.max_lines} requests, the most one batch may hold.",
                line_no,
            )
            self.stopped = True
            return None
        problem = self._check(line_no, raw)
        if isinstance(problem, LineError):
            self.error(problem.code, problem.message, line_no, problem.param)
            return None
        return problem

    def finish(self) -> list[dict[str, Any]]:
        """The ``errors.data`` of a failed batch (call after the last line)."""
        if self.requests == 0:
            self.error("empty_file", "The input file has no requests.", None)
        data = [e.as_dict() for e in self.errors]
        hidden = self.error_count - len(self.errors)
        if hidden > 0:
            data.append(
                LineError(
                    "too_many_errors", f"{hidden} more lines have errors; fix these and retry."
                ).as_dict()
            )
        return data

    def _check(self, line_no: int, raw: bytes) -> GoodLine | LineError:
        try:
            item = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return LineError("invalid_json_line", "This line is not parseable as valid JSON.")
        except RecursionError:
            return LineError(
                "invalid_json_line", f"This line is nested deeper than {MAX_DEPTH} levels."
            )
        if not isinstance(item, dict):
            return LineError("invalid_json_line", "Each line must be a JSON object.")
        custom_id = self._custom_id(line_no, item.get("custom_id"))
        if isinstance(custom_id, LineError):
            return custom_id
        if item.get("method") != "POST":
            return LineError(
                "invalid_method",
                f"`method` must be POST; got {item.get('method')!r}.",
                param="method",
            )
        if item.get("url") != self.endpoint:
            return LineError(
                "url_mismatch",
                f"`url` must be the batch's endpoint {self.endpoint}; got {item.get('url')!r}.",
                param="url",
            )
        body = item.get("body")
        if not isinstance(body, dict):
            return LineError("invalid_body", "`body` must be a JSON object.", param="body")
        return self._body(custom_id, body, raw)

    def _custom_id(self, line_no: int, custom_id: Any) -> str | LineError:
        if custom_id is None:
            return LineError(
                "missing_custom_id", "Each line needs a `custom_id`.", param="custom_id"
            )
        if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID:
            return LineError(
                "invalid_custom_id",
                f"`custom_id` must be a non-empty string of at most {MAX_CUSTOM_ID} characters.",
                param="custom_id",
            )
        problem = unstorable(custom_id)
        if problem:
            return LineError("invalid_custom_id", f"`custom_id` {problem}.", param="custom_id")
        first = self._seen.get(custom_id)
        if first is not None:
            return LineError(
                "duplicate_custom_id",
                f"The custom_id {custom_id!r} is already used on line {first}; "
                "each custom_id must be unique within the file.",
                param="custom_id",
            )
        self._seen[custom_id] = line_no
        return custom_id

    def _body(self, custom_id: str, body: dict[str, Any], raw: bytes) -> GoodLine | LineError:
        if body.get("stream"):
            return LineError(
                "stream_unsupported",
                "Batch requests cannot use `stream: true`.",
                param="body.stream",
            )
        try:
            loaded = self.check_body(body)
        except PlatformError as err:
            param = f"body.{err.param}" if err.param and err.param != "body" else "body"
            return LineError("invalid_body", err.message, param=param)
        try:
            text = json.dumps(loaded, ensure_ascii=False, separators=(",", ":"))
            text.encode("utf-8")
        except (UnicodeEncodeError, TypeError, ValueError):
            return LineError(
                "invalid_body", "The body contains text that is not valid Unicode.", param="body"
            )
        model = loaded.get("model")
        try:
            served = isinstance(model, str) and self.serves_model(model)
        except PlatformError as err:  # a model that does not do what the endpoint needs
            return LineError("invalid_model", err.message, param="body.model")
        if not served or not isinstance(model, str):
            return LineError(
                "model_not_found",
                f"The model `{model}` is not offered in the batch tier.",
                param="body.model",
            )
        if self.model is None:
            self.model = model
        elif model != self.model:
            return LineError(
                "model_mismatch",
                f"Every line of a batch must use the same model; this file uses "
                f"`{self.model}` first and then `{model}`.",
                param="body.model",
            )
        return GoodLine(
            custom_id,
            model,
            text,
            output_limit(self.endpoint, loaded),
            prefix_hash(self.endpoint, loaded),
        )
