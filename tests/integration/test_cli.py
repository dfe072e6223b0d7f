"""The console script's key and settings commands against a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from inference_platform.db import Database
from inference_platform.settings import Settings, settings_table


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("INFERENCE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("INFERENCE_REDIS_URL", settings.redis_url)
    return CliRunner()


def test_keys_create_list_revoke(runner: CliRunner, db: Database) -> None:
    from inference_platform.keys import KeyVerifier

    created = runner.invoke(main, ["keys", "create", "--tenant", "cli-team", "--name", "cli"])
    assert created.exit_code == 0, created.output
    key = created.output.strip()
    assert key.startswith("sk-")
    assert KeyVerifier(db).tenant_for(key) == "cli-team"

    listed = runner.invoke(main, ["keys", "list"])
    line = next(x for x in listed.output.splitlines() if "tenant=cli-team" in x)
    assert key not in listed.output  # only a hint is ever shown
    key_id = line.split()[0]
    assert "role=member" in line  # a new key is a member key unless asked otherwise

    revoked = runner.invoke(main, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0 and key_id in revoked.output
    assert "within a second" in revoked.output  # the API processes were told
    assert KeyVerifier(db).tenant_for(key) is None
    again = runner.invoke(main, ["keys", "revoke", key_id])
    assert again.exit_code != 0 and "no active key" in again.output


def test_settings_command_prints_the_table(runner: CliRunner) -> None:
    result = runner.invoke(main, ["settings"])
    assert result.exit_code == 0 and result.output.strip() == settings_table()


def test_demo_model_command_is_idempotent(runner: CliRunner, demo_model_path: Path) -> None:
    result = runner.invoke(main, ["demo-model", str(demo_model_path)])
    assert result.exit_code == 0 and result.output.strip() == str(demo_model_path)


def test_cli_keeps_http_client_logs_off_progress_output(runner: CliRunner) -> None:
    import logging

    runner.invoke(main, ["settings"])
    assert all(logging.getLogger(n).level == logging.WARNING for n in ("httpx", "openai"))


def test_keys_create_with_a_role_and_list_shows_it(runner: CliRunner, db: Database) -> None:
    from inference_platform.keys import KeyVerifier

    admin = runner.invoke(main, ["keys", "create", "--tenant", "cli-roles", "--role", "admin"])
    assert admin.exit_code == 0, admin.output
    assert KeyVerifier(db).role_of(admin.output.strip()) == "admin"
    listed = runner.invoke(main, ["keys", "list"])
    assert any("tenant=cli-roles" in x and "role=admin" in x for x in listed.output.splitlines())
    wrong = runner.invoke(main, ["keys", "create", "--role", "owner"])
    assert wrong.exit_code != 0 and "owner" in wrong.output
