"""``inference-platform tenants`` and ``keys limits`` against a real database."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import main
from inference_platform.db import Database
from inference_platform.limits.config import LimitBook, defaults
from inference_platform.settings import Settings
from tests.conftest import SIM


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    return CliRunner()


def test_set_show_and_clear_limits(runner: CliRunner, db: Database, settings: Settings) -> None:
    done = runner.invoke(main, ["tenants", "set", "cli-limits", "--rpm", "5", "--tpm", "900"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(
        main, ["tenants", "set", "cli-limits", "--model", SIM, "--concurrent", "2"]
    )
    assert done.exit_code == 0, done.output
    # Setting one limit keeps the others.
    assert runner.invoke(main, ["tenants", "set", "cli-limits", "--rpm", "6"]).exit_code == 0

    limits = LimitBook(db, settings, ttl=0).limits("cli-limits", SIM)
    assert (limits.requests_per_minute, limits.tokens_per_minute) == (6, 900)
    assert limits.concurrent_requests == 2
    assert limits.enqueued_batch_lines == defaults(settings).enqueued_batch_lines

    shown = runner.invoke(main, ["tenants", "show", "cli-limits"])
    assert "requests_per_minute" in shown.output and "6 *" in shown.output
    assert "cli-limits" in runner.invoke(main, ["tenants", "list"]).output

    created = runner.invoke(main, ["keys", "create", "--tenant", "cli-limits"])
    key_id = next(
        line.split()[0]
        for line in runner.invoke(main, ["keys", "list"]).output.splitlines()
        if "tenant=cli-limits" in line
    )
    assert created.exit_code == 0
    assert "6 *" in runner.invoke(main, ["keys", "limits", key_id]).output

    assert runner.invoke(main, ["tenants", "clear", "cli-limits"]).output.startswith("removed 2")
    assert LimitBook(db, settings, ttl=0).limits("cli-limits", SIM) == defaults(settings)
    assert runner.invoke(main, ["tenants", "set", "cli-limits"]).exit_code != 0
