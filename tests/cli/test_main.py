"""The CLI edge: usage exits 2; internal errors exit 3 with one line and a logged traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli import main as cli_main


def run_cli(
    *args: str, env_extra: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_unknown_verb_is_a_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_verb_is_a_usage_error() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_internal_error_prints_one_line_logs_traceback_and_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Boom:
        @staticmethod
        def add_arguments(parser: object) -> None:
            return None

        @staticmethod
        def run(args: object) -> int:
            raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setenv("RUNNER_LOG_DIR", str(tmp_path))
    monkeypatch.setattr(cli_main, "_load", lambda verb: Boom)
    code = cli_main.main(["validate"])
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1
    assert err.startswith("runner: internal error: RuntimeError: kaboom (traceback in ")
    logs = list(tmp_path.glob("runner-crash-*.log"))
    assert len(logs) == 1
    assert "Traceback (most recent call last)" in logs[0].read_text()
    assert "second line" in logs[0].read_text()


def test_user_error_prints_message_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.errors import UserError

    class Refuses:
        @staticmethod
        def add_arguments(parser: object) -> None:
            return None

        @staticmethod
        def run(args: object) -> int:
            raise UserError("environment 'prod' is protected: pass --allow-delete", exit_code=1)

    monkeypatch.setattr(cli_main, "_load", lambda verb: Refuses)
    assert cli_main.main(["apply"]) == 1
    assert capsys.readouterr().err == (
        "runner: error: environment 'prod' is protected: pass --allow-delete\n"
    )
