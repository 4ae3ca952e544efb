"""Unreadable input under `runner watch --apply` (issue 9, finding 2): an error, never a deletion.

A folder or file that can no longer be read used to drop out of the specs, and its agents were
destroyed. Root reads everything, so the watch runs as `nobody` with every capability dropped
(`setpriv`), in a world-writable project folder of its own.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from watch_support import Workspace, agent_yaml, make_workspace

from runner.providers.local import LocalProvider

pytestmark = pytest.mark.skipif(
    shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs root and setpriv"
)
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]


@pytest.fixture
def shared() -> Iterator[Workspace]:
    root = Path(tempfile.mkdtemp(prefix="runner-watch-"))
    root.chmod(0o777)
    ws = make_workspace(root)
    ws.store.mkdir()
    for path in [ws.specs, ws.store, *ws.specs.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    try:
        yield ws
    finally:
        shutil.rmtree(root, ignore_errors=True)


def live(ws: Workspace) -> dict[str, str | None]:
    provider = LocalProvider.open(ws.store / "local-store.db", read_only=True)
    try:
        return {a.name: a.description for a in provider.list_agents()}
    finally:
        provider.close()


class Lines:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def next(self, timeout: float = 20.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                assert line, "watch ended"
                document: dict[str, Any] = json.loads(line)
                return document
        raise AssertionError("no outcome in time")

    def until(self, event: str) -> dict[str, Any]:
        while True:
            document = self.next()
            if document["event"] == event:
                return document


@pytest.mark.parametrize("unreadable", ["agents", "agents/billing.yaml"])
def test_a_folder_or_file_made_unreadable_under_watch_apply_deletes_nothing(
    shared: Workspace, unreadable: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_HOME"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = ["watch", "specs", "--apply", "--format", "json"]
    proc = subprocess.Popen(
        [*AS_NOBODY, sys.executable, "-m", "runner", *command],
        cwd=shared.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = Lines(proc)
    target = shared.specs / unreadable
    try:
        assert lines.next()["event"] == "applied"
        before = live(shared)
        assert set(before) == {"triage", "billing"}

        target.chmod(0)
        invalid = lines.until("invalid")
        assert any(e["code"] == "file.read" for e in invalid["errors"]), invalid
        assert live(shared) == before

        target.chmod(0o777 if target.is_dir() else 0o666)
        shared.write("agents/billing.yaml", agent_yaml("billing", "readable again"))
        lines.until("applied")
        assert live(shared) == {"triage": "first contact", "billing": "readable again"}
    finally:
        target.chmod(0o777 if target.is_dir() else 0o666)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    assert "Traceback" not in stderr
