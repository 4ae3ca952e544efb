"""What `runner apply`/`destroy` print: plain lines for logs, a progress bar only on a terminal,
and a destroy that asks to destroy."""

from __future__ import annotations

import io

import pytest

from runner.apply.executor import Progress
from runner.apply.ops_run import OpOutcome
from runner.cli.apply import ProgressPrinter
from tests.apply.conftest import Project


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(printer: ProgressPrinter) -> None:
    printer(Progress(1, 2, OpOutcome("agent.a", "create", "ok", foundry_version="1"), 0.4))
    printer(Progress(2, 2, OpOutcome("agent.b", "update", "failed", detail="boom"), 1.2))


def test_without_a_terminal_only_plain_lines_are_written() -> None:
    out, err = io.StringIO(), io.StringIO()
    run(ProgressPrinter(out, err))
    assert out.getvalue() == "agent.a: create done (version 1)\nagent.b: update FAILED: boom\n"
    assert err.getvalue() == ""


def test_on_a_terminal_the_bar_never_shares_a_line_with_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    screen = Terminal()  # stdout and stderr on one terminal, as in an interactive shell
    run(ProgressPrinter(screen, screen))
    shown = screen.getvalue()
    assert "1/2" in shown and "2/2" in shown
    # every op line starts on a clean line: the bar before it was erased
    for line in ("agent.a: create done", "agent.b: update FAILED"):
        before = shown[: shown.index(line)]
        assert before == "" or before.endswith(("\n", "\r\033[K"))
    assert shown.endswith("\n")


def test_a_dumb_terminal_gets_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    out, err = io.StringIO(), Terminal()
    run(ProgressPrinter(out, err))
    assert err.getvalue() == ""


def test_destroy_asks_to_destroy(project: Project) -> None:
    assert project.cli("apply", "specs", "--env", "emu", "--auto-approve").returncode == 0
    refused = project.cli("destroy", "specs", "--env", "emu")
    assert refused.returncode != 0
    assert "--auto-approve to destroy these resources" in refused.stderr
    assert "apply these changes" not in refused.stderr
