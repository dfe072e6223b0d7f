"""Families of the API: requests by route, tier, model and status; latency and time to first
token by tier; open streams; 429s. The Flask hooks that feed them live in ``api.metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Whole requests: from a few milliseconds (a retrieve) to minutes (a long blocking generation).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)


class ApiMetrics:
    """One app's families, registered in ``registry`` (under gunicorn they also write to the
    shared multiprocess directory, whichever registry they are in)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "inference_api_requests",
            "HTTP requests answered, by route, method, tier, model and status code.",
            ["route", "method", "tier", "model", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "inference_api_request_duration_seconds",
            "Time from a request's arrival to its last byte (streams: to the stream's end).",
            ["route", "tier"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "inference_api_time_to_first_token_seconds",
            "Time from a streamed request's arrival to its first generated text.",
            ["route", "tier", "model"],
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.open_streams = Gauge(
            "inference_api_open_streams",
            "Server-sent event streams open right now.",
            ["route", "tier"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.rate_limited = Counter(
            "inference_api_rate_limited",
            "Requests answered 429 (a full queue or engine), by route, tier and model.",
            ["route", "tier", "model"],
            registry=registry,
        )
