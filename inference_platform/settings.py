"""The one settings registry: every knob, its environment variable, default and meaning.

All variables share the ``INFERENCE_`` prefix. ``inference-platform settings`` prints the table
that the README carries, so code and docs cannot drift apart (a test compares them).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

PREFIX = "INFERENCE_"


def _setting(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Settings:
    """Process-wide configuration, read once from the environment."""

    database_url: str = _setting(
        "", "Postgres URL. Empty: an embedded Postgres under `VAR_DIR` (started by `up`)."
    )
    redis_url: str = _setting(
        "", "Redis URL for the broker and the event channel. Empty: an embedded Redis."
    )
    var_dir: str = _setting("./var", "Where embedded services, the demo model and logs live.")
    models: str = _setting(
        "",
        "Model catalog: a path to a JSON file or inline JSON (see README). "
        "Empty: the demo model `demo-tiny` on the transformers engine.",
    )
    host: str = _setting("127.0.0.1", "Address the API listens on.")
    port: int = _setting(8000, "Port the API listens on.")
    flower_port: int = _setting(5555, "Port Flower listens on.")
    web_workers: int = _setting(2, "gunicorn worker processes of the API.")
    web_worker_class: str = _setting(
        "gevent",
        "gunicorn worker class of the API: `gevent` (a greenlet per open stream, thousands per "
        "process) or `gthread` (a thread per open stream, `INFERENCE_WEB_THREADS` of them).",
    )
    web_connections: int = _setting(
        2000, "Open connections per API process with the gevent worker class."
    )
    web_threads: int = _setting(64, "Threads per API process with the gthread worker class.")
    redis_max_connections: int = _setting(
        32,
        "Redis connections per process for events, limits and liveness; the API opens them all "
        "at start. A request that finds them all busy waits for one (streams hold none: one "
        "reader per process follows them all).",
    )
    broker_connections: int = _setting(
        16,
        "Broker connections per process for sending tasks; the API opens them all at start. A "
        "send that finds them all busy waits for one.",
    )
    stream_events_per_second: float = _setting(
        1000.0,
        "Text events per second a worker sends across its open streams, at most: with S "
        "streams open, each one's new text goes out at most every S / this seconds (0.5 s at "
        "most), joined into one chunk; a stream's first token and its end go out at once. 0: "
        "every token as it comes.",
    )
    auth: bool = _setting(True, "Require `Authorization: Bearer sk-...` API keys.")
    max_body_bytes: int = _setting(16 * 1024 * 1024, "Largest JSON request body; larger gets 413.")
    max_file_bytes: int = _setting(200 * 1024 * 1024, "Largest uploaded file; larger gets 413.")
    worker_wait_seconds: float = _setting(
        10.0,
        "How long a request waits for a worker to pick it up before it fails with 503.",
    )
    realtime_queue_factor: int = _setting(
        4,
        "A worker holds up to this many times its `--batch-size` of realtime requests (those "
        "past the batch wait in the engine's queue); past that, new ones get 503 with "
        "`Retry-After` at once.",
    )
    request_timeout_seconds: float = _setting(
        600.0, "Longest a realtime request may take end to end."
    )
    worker_heartbeat_seconds: float = _setting(
        2.0, "How often workers announce themselves (used to answer 503 fast)."
    )
    engine_nice: int = _setting(
        10,
        "Niceness (0 to 19) of workers that serve the realtime tier, and of their engine "
        "processes: an engine keeps its cores busy, and the API, Redis and Postgres, which "
        "every realtime request passes through, then get a CPU first. Batch- and flex-only "
        "workers keep their priority (throughput first). 0 leaves it as started.",
    )
    default_max_tokens: int = _setting(
        512, "Output limit when a chat or responses request gives none (capped by the context)."
    )
    flex_queue_limit: int = _setting(
        1000, "Flex requests waiting per model before new ones get 429 with Retry-After."
    )
    flex_wait_seconds: float = _setting(
        3600.0, "How long a non-background flex request blocks waiting for its result."
    )
    flex_deadline_seconds: float = _setting(3600.0, "Deadline of flex work (the 1 h window).")
    flex_retry_after_seconds: int = _setting(
        10, "`Retry-After` sent with a 429 when the flex queue is full (the SDK honours it)."
    )
    lease_seconds: float = _setting(
        6.0,
        "A running job's lease; a worker renews it every third of it, the sweeper retries the "
        "work once it lapsed. Work of a killed worker is picked up again after about this long.",
    )
    dispatch_grace_seconds: float = _setting(
        60.0, "Queued work not started this long after it was enqueued is enqueued again."
    )
    attempt_cap: int = _setting(3, "Attempts before a job that keeps losing its worker fails.")
    sweep_interval_seconds: float = _setting(
        2.0, "How often the control role sweeps (on beat's once-a-second tick)."
    )
    event_ttl_seconds: int = _setting(
        3600, "How long a request's event stream stays in Redis for resume and polling."
    )
    batch_max_lines: int = _setting(50000, "Most lines a batch input file may have.")
    batch_windows: str = _setting(
        "24h=86400,1h=3600",
        "Allowed `completion_window` values and their length in seconds.",
    )
    batch_feed_factor: int = _setting(
        8,
        "Batch lines a worker keeps claimed per slot of its engine batch: those past the batch "
        "wait in the engine's own queue, ready for the next free slot, and are refilled in "
        "groups of half that margin (one Postgres round trip per group, not per line). Deep "
        "keeps the engine full (benchmarks/batch_throughput.py: 0.75 of the bare engine at 2, "
        "0.87-0.92 at 32); each line enters the engine at a priority from its deadline slack, "
        "so a later, more urgent line still overtakes those waiting there. Too deep and one "
        "worker holds lines another worker could have taken.",
    )
    admission_overaccept: str = _setting(
        "24h=1.0,1h=1.0,flex=1.0",
        "How strictly batches (per `completion_window`) and flex requests are admitted: work "
        "is refused when, at the measured throughput, the work queued ahead of it (earliest "
        "deadline first) plus its own would take longer than this many windows. The estimate "
        "counts every line's full output limit, and most lines stop before it, so 1.0 already "
        "keeps a margin; above 1 bets on that margin. A window not listed is not checked.",
    )
    capacity_interval_seconds: float = _setting(
        5.0,
        "How often the control role re-estimates each model's throughput, the finish of "
        "every queued batch (`estimated_completion_at`) and the work admission counts.",
    )
    capacity_prior_tokens_per_second: float = _setting(
        500.0,
        "Output tokens per second a worker of a vllm or transformers model is assumed to "
        "manage until it has measured itself (simulated engines use their configured speed).",
    )
    batch_queue_depth: int = _setting(
        4,
        "Hints kept waiting on each tier queue that has queued durable work (at least one "
        "per worker that should pick it up).",
    )
    file_expiry_seconds: int = _setting(
        30 * 86400, "Lifetime of an uploaded `batch` file when the upload names none."
    )
    task_events: bool = _setting(
        False,
        "Workers send Celery task events, so Flower lists every task (about half a "
        "millisecond per realtime request). Workers and queues show in Flower either way.",
    )
    log_level: str = _setting("INFO", "Log level of every process.")
    metrics_port: int = _setting(
        9400,
        "Prometheus metrics of the control role; workers take the next free ports above it "
        "(each logs its port). 0: any free port. The API serves `/metrics` on its own port.",
    )
    requests_per_minute: int = _setting(
        100000,
        "Default requests per minute of a tenant on one model (chat, completions, responses, "
        "embeddings); a tenant's own limits (`inference-platform tenants set`) override it. "
        "0: no limit.",
    )
    tokens_per_minute: int = _setting(
        100000000,
        "Default tokens per minute of a tenant on one model, counted when a request is "
        "admitted (its prompt, estimated, plus its output limit). 0: no limit.",
    )
    concurrent_requests: int = _setting(
        10000, "Default realtime requests in flight at once per tenant and model. 0: no limit."
    )
    queued_flex_requests: int = _setting(
        10000, "Default flex requests a tenant may have waiting per model. 0: no limit."
    )
    enqueued_batch_lines: int = _setting(
        1000000,
        "Default batch lines a tenant may have queued or running; a batch that would go past "
        "it is refused at creation. 0: no limit.",
    )
    webhook_allow_insecure: bool = _setting(
        False,
        "Let webhook endpoints use `http://` and loopback or private addresses (development "
        "only; `up` turns it on). Off: a receiver must be `https://` on a public address.",
    )
    webhook_retry_schedule: str = _setting(
        "5,300,1800,7200,28800,86400",
        "Seconds between a webhook delivery's attempts; once they are used up it fails.",
    )
    webhook_disable_after: int = _setting(
        5, "Failed webhook deliveries in a row (retries used up) that disable an endpoint."
    )
    webhook_timeout_seconds: float = _setting(
        10.0, "How long a webhook receiver has to answer one delivery."
    )
    console_operator_token: str = _setting(
        "",
        "The operator's sign-in secret for the web console's operator view (`/console/operator`)."
        " Empty: the operator view is off (`up` makes one and prints it).",
    )
    console_session_seconds: int = _setting(
        28800, "How long a web console sign-in lasts before the browser must sign in again."
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``INFERENCE_*`` variables; unknown values raise ValueError."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.type, raw, PREFIX + f.name.upper())
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir).resolve()

    def window_seconds(self) -> dict[str, int]:
        """Parsed ``batch_windows``: ``{"24h": 86400, "1h": 3600}``."""
        out: dict[str, int] = {}
        for item in self.batch_windows.split(","):
            name, _, seconds = item.strip().partition("=")
            out[name.strip()] = int(float(seconds))
        return out

    def webhook_retry_delays(self) -> list[float]:
        """Parsed ``webhook_retry_schedule``: seconds before each retry."""
        return [float(x) for x in self.webhook_retry_schedule.split(",") if x.strip()]

    def to_env(self) -> dict[str, str]:
        """The environment that hands these settings to child processes."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            env[PREFIX + f.name.upper()] = (
                ("true" if value else "false") if isinstance(value, bool) else str(value)
            )
        return env


def _parse(type_name: Any, raw: str, name: str) -> Any:
    kind = type_name if isinstance(type_name, str) else type_name.__name__
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid {kind}") from None
    return raw


def settings_table() -> str:
    """The README's settings table, generated from the registry."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for f in fields(Settings):
        default = f.default
        shown = ("true" if default else "false") if isinstance(default, bool) else str(default)
        cell = f"`{shown}`" if shown else "*(empty)*"
        lines.append(f"| `{PREFIX}{f.name.upper()}` | {cell} | {f.metadata['doc']} |")
    return "\n".join(lines)
