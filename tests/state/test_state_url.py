"""An Environment's `state:`: checked when the specs load, resolved only when opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.spec.loader import load_project
from runner.state.backends import state_location
from runner.state.pg_database import StateUnavailableError

ENV = """\
apiVersion: runner/v1
kind: Environment
name: dev
default: true
state: {state}
"""


def _env(tmp_path: Path, state: str) -> object:
    (tmp_path / "env.yaml").write_text(ENV.format(state=state))
    result = load_project([tmp_path])
    return result


def test_a_state_that_is_no_url_is_an_error_at_its_line(tmp_path: Path) -> None:
    result: object = _env(tmp_path, "mysql://db/x")
    problems = [p.format() for p in result.problems]  # type: ignore[attr-defined]
    assert any("env.yaml:" in p and "postgresql://" in p for p in problems), problems


def test_a_reference_is_resolved_only_when_the_state_is_opened(tmp_path: Path) -> None:
    result = _env(tmp_path, "${DB_URL}")
    assert not [p for p in result.problems if p.severity == "error"]  # type: ignore[attr-defined]
    env = result.project.environment("dev")  # type: ignore[attr-defined]
    default = tmp_path / "state.db"
    with pytest.raises(StateUnavailableError, match="DB_URL"):
        state_location(env, environ={}, default=default)
    found = state_location(env, environ={"DB_URL": "postgresql://u:pw@h:5432/d"}, default=default)
    assert (
        found.url == "postgresql://u:pw@h:5432/d" and found.described == "postgresql://***@h:5432/d"
    )
    assert state_location(
        env, environ={"DB_URL": "sqlite:///x/s.db"}, default=default
    ).path == Path("x/s.db")
    with pytest.raises(StateUnavailableError) as caught:
        state_location(env, environ={"DB_URL": "mysql://u:pw@h/d"}, default=default)
    assert "pw" not in str(caught.value)


def test_no_state_is_the_sqlite_file(tmp_path: Path) -> None:
    assert state_location(None, default=tmp_path / "s.db").path == tmp_path / "s.db"
