"""`inference-platform up` (what `make run` starts) serves every model of the catalog."""

from __future__ import annotations

import json
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from inference_platform.db import Database, migrate
from inference_platform.keys import create_key
from inference_platform.settings import Settings
from tests.helpers import eventually
from tests.stack import Services, Stack, free_port

pytestmark = pytest.mark.e2e

MODELS = ("first-sim", "second-sim")


@pytest.fixture(scope="module")
def up_stack(var_dir: Path) -> Iterator[tuple[Stack, str]]:
    # A directory of its own per instance: test_console_up runs this fixture too, and a log
    # left by that run would hold a "Ready" line before this one's platform is up.
    home = Path(tempfile.mkdtemp(prefix="up-stack-", dir=var_dir))
    (home / "logs").mkdir(parents=True, exist_ok=True)
    services = Services.start(home)
    models = [
        {"name": name, "engine": "simulated", "engine_args": {"tokens_per_second": 0}}
        for name in MODELS
    ]
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        var_dir=str(home),
        models=json.dumps(models),
        port=free_port(),
        flower_port=free_port(),
        web_workers=1,
        worker_heartbeat_seconds=1.0,
    )
    migrate.upgrade(settings.database_url)
    db = Database(settings.database_url, pool_size=1)
    key, _ = create_key(db, name="up test")
    stack = Stack(settings, home / "logs")
    try:
        stack.start("up", ["up", "-c", "web=1,engine=1,control=1"])
        eventually(
            lambda: "Ready: every engine worker is up" in stack.log("up"), timeout=120, what="up"
        )
        yield stack, key
    except BaseException:
        print(stack.log("up")[-6000:])
        raise
    finally:
        stack.stop()
        db.dispose()
        services.stop()


def test_up_starts_one_engine_worker_per_model(up_stack: tuple[Stack, str]) -> None:
    stack, key = up_stack
    log = stack.log("up")
    for name in MODELS:
        assert f"engine.{name}.1" in log
        assert f"{name:<16} simulated engine" in log
    with openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0, timeout=30) as client:
        for name in MODELS:
            done = client.chat.completions.create(
                model=name, messages=[{"role": "user", "content": "hi"}], max_tokens=4
            )
            assert done.choices[0].message.content


def test_up_prints_the_key_only_once_ready(up_stack: tuple[Stack, str]) -> None:
    import httpx

    stack, _ = up_stack
    log = stack.log("up")
    assert log.index("Starting;") < log.index("API key") < log.index("Ready:")
    root = stack.base_url.removesuffix("/v1")
    assert httpx.get(f"{root}/ready", timeout=10).status_code == 200


def test_up_stops_every_process_on_sigterm(up_stack: tuple[Stack, str]) -> None:
    stack, _ = up_stack
    proc = stack.procs["up"]
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    stack.procs.pop("up")
