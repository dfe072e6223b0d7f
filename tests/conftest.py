"""Fixtures: real Postgres and Redis (local servers, else embedded), the demo model, and the
whole platform started as separate processes for end-to-end tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from inference_platform.db import Database, migrate
from inference_platform.keys import ADMIN, create_key
from inference_platform.settings import Settings
from tests.helpers import DEMO, SIM, SIM_CAPACITY, SIM_SLOW, SIM_WIDE
from tests.stack import Services, Stack, free_port

# Each test's layer follows from its folder, so `-m unit` or `-m e2e` (and `make test-unit`,
# `make test-e2e`) select whole layers without a marker forgotten on a new file. Fault tests
# start stacks of their own: they are end-to-end too.
LAYERS = {
    "unit": ("unit",),
    "integration": ("integration",),
    "e2e": ("e2e",),
    "faults": ("faults", "e2e"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in LAYERS.get(item.path.parent.name, ()):
            item.add_marker(marker)


__all__ = [
    "DEMO",
    "SIM",
    "SIM_CAPACITY",
    "SIM_SLOW",
    "SIM_WIDE",
]  # the test catalog's models, imported from here by tests


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def services(var_dir: Path) -> Iterator[Services]:
    svc = Services.start(var_dir)
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def demo_model_path(var_dir: Path) -> Path:
    from inference_platform.demo_model import build_demo_model

    return build_demo_model(var_dir / "models" / DEMO)


def catalog_json(demo_path: Path) -> str:
    return json.dumps(
        [
            {"name": DEMO, "engine": "transformers", "path": str(demo_path)},
            {
                "name": SIM,
                "engine": "simulated",
                "engine_args": {"tokens_per_second": 0},
                # USD per million input and output tokens (the usage and costs tests).
                "tariffs": {
                    "realtime": [0.2, 0.6],
                    "flex": [0.1, 0.3],
                    "batch": [0.05, 0.15],
                    "batch:1h": [0.08, 0.24],
                },
            },
            {
                "name": SIM_SLOW,
                "engine": "simulated",
                "engine_args": {"tokens_per_second": 20, "batch_size": 4},
            },
            {
                "name": SIM_WIDE,
                "engine": "simulated",
                "engine_args": {"ttft_ms": 50, "tokens_per_second": 20, "batch_size": 512},
            },
            # A known throughput for the capacity model: 10 sequences at 100 tokens/s each,
            # 1,000 tokens/s as `make run`'s CPU engine; tests/e2e/test_deadlines.py starts
            # its worker.
            {
                "name": SIM_CAPACITY,
                "engine": "simulated",
                "engine_args": {"tokens_per_second": 100, "batch_size": 10},
            },
            # In the catalog but no worker ever serves it: 503, not a hang.
            {"name": "no-workers", "engine": "simulated"},
        ]
    )


@pytest.fixture(scope="session")
def settings(services: Services, var_dir: Path, demo_model_path: Path) -> Settings:
    settings = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        var_dir=str(var_dir),
        models=catalog_json(demo_model_path),
        port=free_port(),
        flower_port=free_port(),
        web_workers=1,
        web_threads=64,
        worker_wait_seconds=3.0,
        worker_heartbeat_seconds=1.0,
        lease_seconds=6.0,
        dispatch_grace_seconds=10.0,
        sweep_interval_seconds=1.0,
        capacity_interval_seconds=1.0,
        flex_queue_limit=20,
        batch_windows="24h=86400,1h=3600,test=8",
        # Webhook receivers in the tests listen on 127.0.0.1; retries come within seconds.
        webhook_allow_insecure=True,
        webhook_retry_schedule="1,1,1",
        webhook_disable_after=2,
        log_level="INFO",
    )
    migrate.upgrade(settings.database_url)
    return settings


@pytest.fixture(scope="session")
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url, pool_size=2)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def stack(settings: Settings, var_dir: Path) -> Iterator[Stack]:
    """API, one transformers worker for the demo model (all three roles on one engine),
    simulated workers, and the control role."""
    logs = var_dir / "logs"
    logs.mkdir(exist_ok=True)
    s = Stack(settings, logs)
    s.start("web", ["web"])
    s.start(
        "demo",
        [
            "worker",
            "--queues",
            "realtime,flex,batch",
            "--model",
            DEMO,
            "--concurrency",
            "48",
            "--batch-size",
            "8",
        ],
    )
    s.start(
        "sim",
        [
            "worker",
            "--queues",
            "realtime,flex,batch",
            "--model",
            SIM,
            "--concurrency",
            "64",
            "--batch-size",
            "64",
        ],
    )
    s.start(
        "sim-slow",
        [
            "worker",
            "--queues",
            "realtime,flex,batch",
            "--model",
            SIM_SLOW,
            "--concurrency",
            "8",
            "--batch-size",
            "4",
        ],
    )
    s.start("sim-wide", ["worker", "--queues", "realtime", "--model", SIM_WIDE])
    s.start("control", ["control"])
    try:
        s.wait_api()
        models = (DEMO, SIM, SIM_SLOW, SIM_WIDE)
        for queue in (*(f"realtime.{m}" for m in models), "control"):
            s.wait_queue(queue)
        yield s
    except BaseException:
        for name in list(s.procs):
            print(f"==== {name} log ====\n{s.log(name)[-4000:]}")
        raise
    finally:
        s.stop()


@pytest.fixture(scope="session")
def api_key(db: Database) -> str:
    key, _ = create_key(db, tenant="tenant-a", name="tests", role=ADMIN)
    return key


@pytest.fixture(scope="session")
def other_key(db: Database) -> str:
    key, _ = create_key(db, tenant="tenant-b", name="tests other tenant", role=ADMIN)
    return key


@pytest.fixture
def client(stack: Stack, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=api_key, max_retries=0, timeout=60)


@pytest.fixture
def other_client(stack: Stack, other_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=other_key, max_retries=0, timeout=60)


@pytest.fixture
def aclient(stack: Stack, api_key: str) -> Callable[[], openai.AsyncOpenAI]:
    """Makes async clients; use one as ``async with aclient() as c`` inside the test's event
    loop, so its connections close with it."""
    return lambda: openai.AsyncOpenAI(
        base_url=stack.base_url, api_key=api_key, max_retries=0, timeout=120
    )


@pytest.fixture(scope="module")
def vllm_stack(var_dir: Path, demo_model_path: Path) -> Iterator[object]:
    """A stack of its own around one real vLLM worker (see tests/e2e/vllm_stack.py)."""
    from tests.e2e.vllm_stack import run_vllm_stack

    yield from run_vllm_stack(var_dir, demo_model_path)
