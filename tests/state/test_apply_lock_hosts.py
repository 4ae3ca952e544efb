"""The apply lock across hosts: a PostgreSQL advisory lock, its holder named to those who wait.

Chaos: the holder is another process reporting another hostname (`RUNNER_HOSTNAME`), killed with
SIGKILL while it holds the lock with a Foundry write announced in flight. Before the kill, an
apply waiting for the lock is told who holds it (holder, host, pid, user, since); after it, the
next `runner apply` proceeds at once (PostgreSQL released the lock with the dead connection;
no pid is checked on a host it cannot see), waits out the write fence, and creates every agent
exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pg_support import fresh_schema_url

from runner.providers.local import LocalProvider
from runner.state.base import LockTimeoutError
from runner.state.pg_registry import PostgresRegistry

SPECS = """\
apiVersion: runner/v1
kind: Environment
name: dev
provider: local
default: true
project: lock-test
data_dir: {data_dir}
state: ${{LOCK_STATE_URL}}
---
apiVersion: runner/v1
kind: Agent
name: helper
model: gpt-4o
instructions: You help.
"""

HOLDER = r"""
import sys, time
from pathlib import Path
from runner.state.pg_registry import PostgresRegistry

url, marker = sys.argv[1], Path(sys.argv[2])
registry = PostgresRegistry(url, project="lock-test")  # the same project, another host
with registry.lock("dev", holder="ci-job-7", timeout=5):
    registry.record_write_started("dev", request_timeout=1.0)
    marker.write_text("held")
    time.sleep(600)
"""


def _runner(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_kill_9_the_holder_on_another_host_and_the_next_apply_proceeds(tmp_path: Path) -> None:
    url = fresh_schema_url()
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "all.yaml").write_text(SPECS.format(data_dir=tmp_path / "store"))
    env = {
        **os.environ,
        "LOCK_STATE_URL": url,
        "RUNNER_HOME": str(tmp_path / ".runner"),
        "RUNNER_HOSTNAME": "build-host-2",
    }
    marker = tmp_path / "held"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, str(marker)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    waiting = PostgresRegistry(url, project="lock-test")
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert holder.poll() is None, holder.communicate()[1].decode()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        shown = waiting.lock_holder("dev") or ""
        assert "ci-job-7" in shown and "build-host-2" in shown and f"pid {holder.pid}" in shown
        with (
            pytest.raises(LockTimeoutError) as caught,
            waiting.lock("dev", holder="me", timeout=0.2),
        ):
            pass
        assert "ci-job-7 (host build-host-2" in str(caught.value) and "since" in str(caught.value)
        refused = _runner(
            "apply",
            str(specs),
            "--auto-approve",
            "--lock-timeout",
            "0.3",
            cwd=tmp_path,
            env={**env, "RUNNER_HOSTNAME": "build-host-1"},
        )
        assert refused.returncode == 1, refused.stderr
        assert "build-host-2" in refused.stderr and "Traceback" not in refused.stderr

        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        applied = _runner(
            "apply",
            str(specs),
            "--auto-approve",
            "--lock-timeout",
            "30",
            cwd=tmp_path,
            env={**env, "RUNNER_HOSTNAME": "build-host-1"},
        )
        assert applied.returncode == 0, applied.stderr
        assert "was locked by ci-job-7" in applied.stderr  # the write fence was waited out
        again = _runner("plan", str(specs), "--detailed-exitcode", cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        waiting.close()
    provider = LocalProvider.open(tmp_path / "store" / "local-store.db")
    try:
        assert [v.version for v in provider.list_versions("helper")] == ["1"]  # no duplicate
    finally:
        provider.close()
    registry = PostgresRegistry(url, project="lock-test")
    try:
        record = registry.get("dev", "agent.helper")
        assert record is not None and record.foundry_version == "1"
        assert registry.lock_holder("dev") is None
    finally:
        registry.close()


def test_two_states_in_one_database_lock_independently() -> None:
    """Advisory locks are per database and pg_locks lists every database's: the key carries the
    state's schema, and only this database's locks are read."""
    first, second = PostgresRegistry(fresh_schema_url()), PostgresRegistry(fresh_schema_url())
    try:
        with first.lock("dev", holder="alice", timeout=1.0):
            assert second.lock_holder("dev") is None  # another state (schema) of this database
            with second.lock("dev", holder="bob", timeout=1.0):
                assert "bob" in (second.lock_holder("dev") or "")
                assert "alice" in (first.lock_holder("dev") or "")
        assert first.lock_holder("dev") is None and second.lock_holder("dev") is None
    finally:
        first.close()
        second.close()
