"""Unit tests run without Postgres or Redis: whatever needs them lives in tests/integration."""

from __future__ import annotations

from typing import NoReturn

import pytest


@pytest.fixture(scope="session")
def services() -> NoReturn:
    # Shadows the session fixture every database- and Redis-backed fixture builds on, so a
    # unit test that reaches for one fails here instead of quietly starting servers.
    pytest.fail("unit tests run without Postgres or Redis; move this test to tests/integration")
