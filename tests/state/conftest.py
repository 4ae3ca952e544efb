"""Fixtures of the state tests: a fresh PostgreSQL schema per test (`pg_support`), and the
backend-contract fixture that runs a test once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_support import fresh_schema_url

from runner.state.backends import StateLocation, open_registry, open_runtime_state


@pytest.fixture
def pg_url() -> str:
    return fresh_schema_url()


class Backend:
    """One state backend under test: opens registries and runtime stores on the same state."""

    def __init__(self, name: str, location: StateLocation) -> None:
        self.name = name
        self.location = location
        self._opened: list[Any] = []

    def registry(self, **kw: Any) -> Any:
        registry = open_registry(self.location, **kw)
        self._opened.append(registry.close)
        return registry

    def runtime(self, owner: str | None = None, project: str = "") -> Any:
        state = open_runtime_state(self.location, owner=owner, project=project)
        self._opened.append(state.registry.close)
        self._opened.append(state.sessions.close)
        self._opened.append(state.operators.close)
        return state

    def close(self) -> None:
        for close in reversed(self._opened):
            close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        location = StateLocation(path=tmp_path / "state.db")
    else:
        location = StateLocation(url=fresh_schema_url())
    opened = Backend(request.param, location)
    yield opened
    opened.close()
