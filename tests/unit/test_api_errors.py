"""The API answers in the OpenAI envelope even when its backing services are down."""

from __future__ import annotations

import json

import kombu.exceptions
import pytest
import redis.exceptions
import sqlalchemy.exc
from flask import Flask

from api import create_app
from inference_platform.settings import Settings

DOWN = Settings(
    # Nothing listens on port 1: connections are refused at once.
    database_url="postgresql+psycopg2://postgres@127.0.0.1:1/none",
    redis_url="redis://127.0.0.1:1/0",
    models=json.dumps([{"name": "m", "engine": "simulated"}]),
    auth=False,
)


def app() -> Flask:
    return create_app(DOWN)


def test_health_reports_both_services_down() -> None:
    r = app().test_client().get("/health")
    assert r.status_code == 503
    body = r.get_json()
    assert body["error"]["code"] == "service_unavailable"
    assert body["database"].startswith("error") and body["broker"].startswith("error")


def test_generation_with_broker_down_is_503_envelope() -> None:
    r = (
        app()
        .test_client()
        .post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        )
    )
    assert r.status_code == 503
    assert r.get_json()["error"]["type"] == "server_error"
    assert r.headers["Retry-After"]


def test_auth_with_database_down_is_503_not_401() -> None:
    flask_app = create_app(DOWN.replace(auth=True))
    r = flask_app.test_client().get("/v1/models", headers={"Authorization": "Bearer sk-abc"})
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "service_unavailable"


def test_unexpected_errors_are_500_envelopes() -> None:
    flask_app = app()

    @flask_app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    r = flask_app.test_client().get("/v1/boom")
    assert r.status_code == 500
    assert r.get_json()["error"] == {
        "message": "The server had an error processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_model_route_needs_no_services() -> None:
    r = app().test_client().get("/v1/models/m")
    assert r.status_code == 200 and r.get_json()["id"] == "m"
    missing = app().test_client().get("/v1/models/zz")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    "exc",
    [
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        kombu.exceptions.OperationalError("Error 111 connecting to the broker"),
        sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_backing_service_going_away_mid_request_is_503(exc: Exception) -> None:
    """What Redis, Postgres and the broker raise when they restart under a request."""
    flask_app = app()

    @flask_app.get("/v1/flaky")
    def flaky() -> None:
        raise exc

    r = flask_app.test_client().get("/v1/flaky")
    assert r.status_code == 503
    assert r.get_json()["error"]["code"] == "service_unavailable"
    assert r.headers["Retry-After"]
