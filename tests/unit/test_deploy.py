"""The deployment files: Kubernetes manifests against the Kubernetes JSON schemas, KEDA's
ScaledObjects against the queues the platform uses, Compose with `docker compose config`
where Docker's Compose plugin is installed and by its structure everywhere."""

from __future__ import annotations

import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from inference_platform.catalog import TIERS
from inference_platform.celery_app import queue_name
from inference_platform.settings import PREFIX, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
K8S_VERSION = "1.30.0"


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _kubernetes_objects() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, d)
        for name, d in _manifests()
        if not d["apiVersion"].startswith(("keda.sh/", "kustomize.config.k8s.io/"))
    ]


@pytest.mark.parametrize(
    "doc",
    [d for _, d in _kubernetes_objects()],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_manifest_fits_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_catches_a_bad_manifest() -> None:
    _, deployment = next((n, d) for n, d in _kubernetes_objects() if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_every_role_is_deployed_with_gpus_for_workers() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in _kubernetes_objects()}
    assert {("Service", "inference-api"), ("Job", "inference-platform-migrate")} <= kinds
    deployments = {
        d["metadata"]["name"]: d for _, d in _kubernetes_objects() if d["kind"] == "Deployment"
    }
    assert {"inference-api", "inference-control", "inference-flower"} <= set(deployments)
    assert deployments["inference-control"]["spec"]["replicas"] == 1  # it runs beat
    for tier in TIERS:
        pod = deployments[f"inference-worker-{tier}"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert container["command"][container["command"].index("--queues") + 1] == tier


def test_keda_scales_each_tier_on_its_queue_lists() -> None:
    deployments = {d["metadata"]["name"] for _, d in _manifests() if d["kind"] == "Deployment"}
    scaled = [d for _, d in _manifests() if d["kind"] == "ScaledObject"]
    assert len(scaled) == len(TIERS)
    for obj in scaled:
        target = obj["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        tier = target.removeprefix("inference-worker-")
        model = _worker_model(target)
        lists = {t["metadata"]["listName"] for t in obj["spec"]["triggers"]}
        base = queue_name(tier, model)
        # kombu's Redis transport: priority 0 in the bare list, priority N in `<q>\x06\x16N`.
        assert lists == {base, f"{base}\x06\x165"}
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "redis" and int(trigger["metadata"]["listLength"]) >= 1
            assert trigger["authenticationRef"]["name"] == "inference-redis"


def _worker_model(name: str) -> str:
    for _, d in _manifests():
        if d["kind"] == "Deployment" and d["metadata"]["name"] == name:
            command = d["spec"]["template"]["spec"]["containers"][0]["command"]
            return str(command[command.index("--model") + 1])
    raise AssertionError(name)


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_file_structure() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "api", "control", "flower"} <= set(services)
    for name in ("postgres", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name
    gpus = [s for n, s in services.items() if n.startswith("worker-gpu")]
    assert gpus
    ids = []
    for worker in gpus:
        (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        ids += device["device_ids"]
    assert len(ids) == len(set(ids)), "one worker per GPU"
    known = {PREFIX + f.upper() for f in Settings.__dataclass_fields__}
    for name, service in services.items():
        env = service.get("environment") or {}
        unknown = {k for k in env if k.startswith(PREFIX)} - known
        assert not unknown, (name, unknown)
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services and cond["condition"] in (
                "service_healthy",
                "service_completed_successfully",
                "service_started",
            )


def _compose_cli() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_cli(), reason="Docker's Compose plugin is not installed")
def test_docker_compose_config_accepts_the_file() -> None:
    subprocess.run(
        ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
        check=True,
    )


def test_gunicorn_config_reads_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERENCE_PORT", "8123")
    monkeypatch.setenv("INFERENCE_WEB_WORKERS", "3")
    # gunicorn loads the file as a module of its own, as run_path does.
    namespace: dict[str, Any] = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert namespace["bind"].endswith(":8123") and namespace["workers"] == 3
    # gunicorn's own worker class for the setting, answering in the OpenAI envelope.
    kind = "Gevent" if Settings().web_worker_class == "gevent" else "Thread"
    assert namespace["worker_class"].__name__ == f"Envelope{kind}Worker"
