"""Taking over a dead holder's apply lock, on SQLite and on PostgreSQL alike.

The dead holder is a real process killed with SIGKILL while it holds `dev`'s lock with a Foundry
write announced in flight (request timeout 30 s). The next apply waits that write out (virtual
wall time) with a notice, whichever backend decides that the holder is gone (SQLite: its pid on
this host; PostgreSQL: the advisory lock released with its connection). An apply interrupted
during that wait leaves the environment free; on PostgreSQL, where the row is not the lock, the
dead holder's fence stays in it for the next holder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lock_support import VirtualTime, kill_while_holding

from runner.state.pg_registry import PostgresRegistry
from runner.state.sqlite import SqliteRegistry

DIE_HOLDING = r"""
import sys, time
from pathlib import Path
from runner.state.backends import StateLocation, open_registry

where = sys.argv[1]
registry = open_registry(
    StateLocation(url=where) if "://" in where else StateLocation(path=Path(where))
)
with registry.lock("dev", holder="gone@ci", timeout=10):
    registry.record_write_started("dev", request_timeout=30.0)
    print("held", flush=True)
    time.sleep(600)
"""


class Interrupted(Exception):
    """What the interrupted apply raises from its sleep (Ctrl-C, a cancelled job)."""


def _kill_holding(backend: Any) -> float:
    """Start the holder, kill it with SIGKILL once it holds the lock; the wall time before."""
    return kill_while_holding(DIE_HOLDING, backend.location.url or str(backend.location.path))


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    """Registries a test opened, closed when it ends."""
    opened: list[Any] = []
    yield opened
    for registry in opened:
        registry.close()


def _until_free(registry: Any) -> None:
    """Wait (bounded) until nobody holds `dev`: a PostgreSQL server lets a closed connection's
    advisory lock go a moment after the client closed it."""
    deadline = time.monotonic() + 30
    while registry.lock_holder("dev") is not None:
        assert time.monotonic() < deadline, registry.lock_holder("dev")
        time.sleep(0.01)


def _registry(
    backend: Any, closing: list[Any], clock: VirtualTime, sleep: Any, notices: list[str]
) -> Any:
    timing = {"wall_clock": clock.wall, "sleep": sleep, "on_notice": notices.append}
    if backend.location.url is not None:
        registry: Any = PostgresRegistry(backend.location.url, **timing)
        _until_free(registry)
    else:
        registry = SqliteRegistry(Path(backend.location.path), **timing)
    closing.append(registry)
    return registry


def test_the_dead_holders_write_is_waited_out_then_the_lock_is_held(
    backend: Any, closing: list[Any]
) -> None:
    started = _kill_holding(backend)
    clock, notices = VirtualTime(), []
    registry = _registry(backend, closing, clock, clock.sleep, notices)
    with registry.lock("dev", holder="me", timeout=5):
        assert clock.wall() >= started + 30.0  # the write it had in flight can no longer land
        assert "me" in (registry.lock_holder("dev") or "")
    assert len(notices) == 1
    assert "'dev' was locked by gone@ci" in notices[0] and "waiting" in notices[0]
    assert registry.lock_holder("dev") is None
    with registry.lock("dev", holder="after", timeout=5):  # the fence was cleared: no wait
        pass
    assert len(notices) == 1


def test_an_apply_interrupted_while_waiting_out_the_fence_leaves_the_lock_free(
    backend: Any, closing: list[Any]
) -> None:
    _kill_holding(backend)
    clock, notices = VirtualTime(), []

    def interrupted(seconds: float) -> None:
        if seconds >= 1.0:  # the fence's wait, not a poll for the lock
            raise Interrupted
        clock.sleep(seconds)

    registry = _registry(backend, closing, clock, interrupted, notices)
    with pytest.raises(Interrupted), registry.lock("dev", holder="me", timeout=5):
        pytest.fail("the block ran before the dead holder's write could no longer land")
    assert "waiting" in notices[0]
    _until_free(registry)  # not held by the interrupted apply
    after: list[str] = []
    following = _registry(backend, closing, clock, clock.sleep, after)
    with following.lock("dev", holder="next", timeout=5):
        assert "next" in (following.lock_holder("dev") or "")
    if backend.name == "postgres":  # the row kept the fence for the next holder
        assert len(after) == 1 and "waiting" in after[0]
