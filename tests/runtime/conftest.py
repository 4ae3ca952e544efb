"""Fixtures for runtime tests: the contract specs in a temp project, a fake clock, a registry file.

Tests run the real local provider (SQLite store under tmp_path) and the real SQLite registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from runtime_support import contract_project

from runner.runtime.clock import FakeClock
from runner.runtime.lifecycle import Lifecycle
from runner.spec.project import Project

LOCAL_ENV = """
apiVersion: runner/v1
kind: Environment
name: local
provider: local
default: true
data_dir: {data_dir}
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def make_project(tmp_path: Path) -> Any:
    def make(*extra: str) -> Project:
        return contract_project(LOCAL_ENV.format(data_dir=tmp_path / "store"), *extra)

    return make


@pytest.fixture
def open_lc(tmp_path: Path, clock: FakeClock, registry_file: Path, make_project: Any) -> Any:
    """open_lc(*extra_yaml, environ=..., **kw) -> async context manager of a Lifecycle."""

    def opener(*extra: str, environ: Mapping[str, str] | None = None, **kw: Any) -> Any:
        kw.setdefault("clock", clock)
        kw.setdefault("background", False)
        kw.setdefault("notify_backoff", 0.01)
        return Lifecycle.open(
            make_project(*extra),
            env="local",
            registry_path=registry_file,
            environ=dict(environ or {}),
            **kw,
        )

    return opener


@pytest.fixture
async def lc(open_lc: Any) -> AsyncIterator[Lifecycle]:
    async with open_lc() as runtime:
        yield runtime
