"""`runner chat`: a scripted conversation piped into it, with a handoff, through the runtime.

The session runs on the local provider (the default environment of the repository's specs); the
transcript shows each reply with the agent that answered, the handoff as it happens, and the end
of input ending the session with reason `user_ended` (also what the registry records).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

SPECS = Path(__file__).resolve().parents[2] / "specs"


def _chat(cwd: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("RUNNER_HOME", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "runner", "chat", *args],
        cwd=cwd,
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_piped_conversation_with_a_handoff(tmp_path: Path) -> None:
    shutil.copytree(SPECS, tmp_path / "specs")
    applied = subprocess.run(
        [sys.executable, "-m", "runner", "apply", "--auto-approve"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr
    done = _chat(
        tmp_path,
        "--team",
        "service-desk",
        stdin="Hello there\n\nI am locked out of my account, my password expired\nthanks\n",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    replies = [line.split(":", 1)[0] for line in lines if not line.startswith("-- ")]
    assert replies == ["triage-agent", "access-agent", "access-agent"]  # blank line skipped
    assert lines[-1] == "-- session active -> ended (user_ended)"
    handoff = lines.index("-- handoff: triage-agent -> access-agent (account-access)")
    first_access = next(i for i, line in enumerate(lines) if line.startswith("access-agent:"))
    assert handoff < first_access  # shown as it happens, before the new agent answers
    assert "[triage-agent v1] Hello there" in lines[handoff - 1]
    session_id = next(line.split()[2] for line in lines if line.startswith("-- session sess_"))
    with sqlite3.connect(tmp_path / ".runner" / "state.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        table = next(t for t in tables if "session" in t and "config" not in t)
        columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        reason_column = next(c for c in columns if "reason" in c)
        row = db.execute(
            f"SELECT state, {reason_column} FROM {table} WHERE id = ?", (session_id,)
        ).fetchone()
    assert tuple(row) == ("ended", "user_ended")


def test_chat_needs_an_agent_or_a_team(tmp_path: Path) -> None:
    shutil.copytree(SPECS, tmp_path / "specs")
    done = _chat(tmp_path, stdin="")
    assert done.returncode == 2
    assert "one of the arguments --agent --team is required" in done.stderr


def test_an_unknown_agent_is_one_line(tmp_path: Path) -> None:
    shutil.copytree(SPECS, tmp_path / "specs")
    done = _chat(tmp_path, "--agent", "nobody", stdin="hi\n")
    assert done.returncode == 1, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "nobody" in done.stderr
    assert "Traceback" not in done.stderr


def test_escalations_show_as_they_happen_and_no_notify_holds_channels_back(
    tmp_path: Path,
) -> None:
    shutil.copytree(SPECS, tmp_path / "specs")
    done = _chat(
        tmp_path,
        "--team",
        "service-desk",
        "--no-notify",
        stdin="there is an outage, everyone is offline\n",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "-- escalation:opened level 1 to network" in lines
    assert any(line.startswith("-- would notify ops-webhook: [escalation]") for line in lines)
    assert any(line.startswith("network-agent: ") for line in lines)
    assert "delivery failed" not in done.stderr  # nothing was sent
