"""The SQLite registry: applied state per environment, the journal, and the apply lock."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from lock_support import VirtualTime, kill_while_holding

from runner.state.base import AppliedResource, LockTimeoutError
from runner.state.processes import process_alive, process_start_token
from runner.state.sqlite import SqliteRegistry


def team(hash_: str = "h1") -> AppliedResource:
    return AppliedResource(
        address="team.customer-support",
        kind="Team",
        name="customer-support",
        hash=hash_,
        body={"kind": "Team", "url": "${SLACK_WEBHOOK_URL}"},
    )


def test_applied_round_trips_per_environment(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "state.db")
    reg.record_applied("dev", team(), apply_id="a1", action="create")
    agent = AppliedResource(
        address="agent.x",
        kind="Agent",
        name="x",
        hash="h",
        foundry_name="dev-x",
        foundry_version="3",
    )
    reg.record_applied("dev", agent, apply_id="a1", action="create")
    assert set(reg.applied("dev")) == {"team.customer-support", "agent.x"}
    assert reg.applied("prod") == {}
    got = reg.get("dev", "agent.x")
    assert got is not None and got.foundry_version == "3" and got.foundry_name == "dev-x"
    assert got.applied_at > 0
    body = reg.get("dev", "team.customer-support")
    assert body is not None and body.body["url"] == "${SLACK_WEBHOOK_URL}"
    # a second registry object on the same file sees the same state (another process would)
    assert set(SqliteRegistry(tmp_path / "state.db").applied("dev")) == set(reg.applied("dev"))


def test_journal_keeps_every_outcome_in_order(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "state.db")
    reg.record_applied("dev", team("h1"), apply_id="a1", action="create")
    reg.record_failure(
        "dev", "team.customer-support", apply_id="a2", action="update", detail="boom"
    )
    reg.record_applied("dev", team("h2"), apply_id="a3", action="update")
    reg.record_deleted("dev", "team.customer-support", apply_id="a4")
    history = reg.history("dev", "team.customer-support")
    assert [(e.action, e.outcome, e.apply_id) for e in history] == [
        ("create", "ok", "a1"),
        ("update", "failed", "a2"),
        ("update", "ok", "a3"),
        ("delete", "ok", "a4"),
    ]
    assert history[1].detail == "boom"
    assert history[3].hash == "h2"
    assert reg.get("dev", "team.customer-support") is None


def test_the_file_is_at_the_newest_schema_version_whoever_opens_it(tmp_path: Path) -> None:
    """The whole file's schema is numbered migrations (`sqlite_schema`): opening the registry
    applies every one, once, in WAL mode; the runtime's stores find their tables there."""
    from runner.state.schema_sql import LATEST

    SqliteRegistry(tmp_path / "state.db")
    SqliteRegistry(tmp_path / "state.db")
    with sqlite3.connect(tmp_path / "state.db") as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        versions = [r[0] for r in conn.execute("SELECT version FROM runner_migrations")]
    assert {"registry_resources", "registry_locks", "rt_sessions", "rt_hq_items"} <= set(names)
    assert versions == list(range(1, LATEST + 1))
    assert mode == "wal"


def test_concurrent_writers_from_threads_lose_nothing(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "state.db")

    def write(i: int) -> None:
        reg.record_applied(
            "dev",
            AppliedResource(address=f"channel.c{i}", kind="Channel", name=f"c{i}", hash="h"),
            apply_id="a",
            action="create",
        )

    threads = [threading.Thread(target=write, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reg.applied("dev")) == 40


def test_lock_is_exclusive_per_environment_and_names_the_holder(tmp_path: Path) -> None:
    now = [0.0]

    def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    reg = SqliteRegistry(tmp_path / "state.db", clock=lambda: now[0], sleep=fake_sleep)
    with reg.lock("dev", holder="alice@h pid 1", timeout=5):
        with reg.lock("prod", holder="bob@h pid 2", timeout=0):
            pass  # another environment is independent
        with (
            pytest.raises(LockTimeoutError) as err,
            reg.lock("dev", holder="carol@h pid 3", timeout=2.0),
        ):
            pytest.fail("lock taken twice")
        assert "alice@h pid 1" in str(err.value)
        assert now[0] >= 2.0
    with reg.lock("dev", holder="carol@h pid 3", timeout=0):
        assert reg.lock_holder("dev") == "carol@h pid 3"
    assert reg.lock_holder("dev") is None


def test_lock_serialises_threads(tmp_path: Path) -> None:
    reg = SqliteRegistry(tmp_path / "state.db", poll_interval=0.005)
    inside = [0]
    overlaps = [0]
    guard = threading.Lock()

    def work() -> None:
        with reg.lock("dev", holder="t", timeout=30):
            with guard:
                inside[0] += 1
                if inside[0] > 1:
                    overlaps[0] += 1
            threading.Event().wait(0.01)
            with guard:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps[0] == 0


HOLD = """
import sys, time
from runner.state.sqlite import SqliteRegistry
reg = SqliteRegistry(sys.argv[1])
with reg.lock("dev", holder="other@host pid X", timeout=10):
    print("held", flush=True)
    time.sleep(60)
"""


def test_lock_held_by_another_process_then_stale_after_kill(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        reg = SqliteRegistry(db, poll_interval=0.01)
        with (
            pytest.raises(LockTimeoutError, match="other@host pid X"),
            reg.lock("dev", holder="me", timeout=0.2),
        ):
            pass
        proc.kill()
        proc.wait()
        assert not process_alive(proc.pid)
        with reg.lock("dev", holder="me", timeout=1):  # the dead holder's row is stale
            assert reg.lock_holder("dev") == "me"
    finally:
        proc.kill()
        proc.wait()


DIE_HOLDING = """
import sys, time
from runner.state.sqlite import SqliteRegistry
reg = SqliteRegistry(sys.argv[1])
with reg.lock("dev", holder="other@host pid X", timeout=10):
    if sys.argv[2] != "none":
        reg.record_write_started("dev", request_timeout=30.0)
    if sys.argv[2] == "answered":
        reg.record_write_finished("dev")
    print("held", flush=True)
    time.sleep(60)
"""


def kill_holding(db: Path, write: str) -> float:
    """A process that took the lock (and started a write: `none`, `in_flight`, `answered`),
    killed with SIGKILL; returns the wall time just before it started."""
    return kill_while_holding(DIE_HOLDING, str(db), write)


def test_takeover_waits_until_the_dead_holders_write_can_no_longer_land(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    started = kill_holding(db, "in_flight")
    clock = VirtualTime()
    notices: list[str] = []
    reg = SqliteRegistry(db, wall_clock=clock.wall, sleep=clock.sleep, on_notice=notices.append)
    with reg.lock("dev", holder="me", timeout=1):
        # the write was sent after `started`, so it may land until started + 30 s
        assert clock.wall() >= started + 30.0
        assert clock.slept <= 30.0
    assert len(notices) == 1
    assert "other@host pid X" in notices[0] and "no longer running" in notices[0]
    assert "waiting" in notices[0]
    # once waited out, the fence is gone: the next holder does not wait again
    clock.slept = 0.0
    with reg.lock("dev", holder="me again", timeout=1):
        pass
    assert clock.slept == 0.0


@pytest.mark.parametrize("write", ["none", "answered"])
def test_takeover_without_a_write_in_flight_does_not_wait(tmp_path: Path, write: str) -> None:
    db = tmp_path / "state.db"
    kill_holding(db, write)
    clock = VirtualTime()
    notices: list[str] = []
    reg = SqliteRegistry(db, wall_clock=clock.wall, sleep=clock.sleep, on_notice=notices.append)
    with reg.lock("dev", holder="me", timeout=1):
        assert reg.lock_holder("dev") == "me"
    assert clock.slept == 0.0
    assert len(notices) == 1 and "other@host pid X" in notices[0] and "waiting" not in notices[0]


def test_a_holder_killed_while_waiting_passes_the_fence_on(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    started = kill_holding(db, "in_flight")
    # the next holder takes the row over and dies before its wait is over
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE registry_locks SET holder = 'second', pid_started = 'gone'")
        # (same pid as this test, but another start time: a reused pid is a dead holder)
        conn.execute("UPDATE registry_locks SET pid = ?", (os.getpid(),))
    clock = VirtualTime()
    notices: list[str] = []
    reg = SqliteRegistry(db, wall_clock=clock.wall, sleep=clock.sleep, on_notice=notices.append)
    with reg.lock("dev", holder="third", timeout=1):
        assert clock.wall() >= started + 30.0
    assert "second" in notices[0]


def test_a_reused_pid_is_a_dead_holder_but_a_live_one_is_not(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    reg = SqliteRegistry(db, poll_interval=0.001)
    token = process_start_token(os.getpid())
    assert token is not None  # Linux: /proc is there
    with reg.lock("dev", holder="me", timeout=1):
        with pytest.raises(LockTimeoutError, match="me"), reg.lock("dev", holder="x", timeout=0):
            pass
        with sqlite3.connect(db) as conn:  # as if our pid had been another process's
            conn.execute("UPDATE registry_locks SET pid_started = ?", (token + "0",))
        with reg.lock("dev", holder="after reuse", timeout=0):
            assert reg.lock_holder("dev") == "after reuse"


def test_a_registry_file_from_before_the_fence_is_upgraded(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE registry_locks (env TEXT PRIMARY KEY, holder TEXT NOT NULL, "
            "token TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, "
            "acquired_at REAL NOT NULL)"
        )
    reg = SqliteRegistry(db)
    with reg.lock("dev", holder="me", timeout=1):
        reg.record_write_started("dev", request_timeout=5.0)
        assert reg.lock_holder("dev") == "me"


def test_writes_follow_the_path_when_the_state_file_is_replaced(tmp_path: Path) -> None:
    """Writers share a kept connection; a file put in place of the old one gets the next write."""
    path = tmp_path / "state.db"
    reg = SqliteRegistry(path)
    reg.record_applied("dev", team("h1"), apply_id="a1", action="create")
    SqliteRegistry(tmp_path / "fresh.db").close()  # an empty registry file of the same schema
    os.replace(tmp_path / "fresh.db", path)
    reg.record_applied("dev", team("h2"), apply_id="a2", action="update")
    assert SqliteRegistry.open_read_only(path).applied("dev")["team.customer-support"].hash == "h2"
    reg.close()
    reg.record_applied("dev", team("h3"), apply_id="a3", action="update")  # works after close()
    assert reg.applied("dev")["team.customer-support"].hash == "h3"
