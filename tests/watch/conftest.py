"""Fixtures for the watch tests: a real spec folder in tmp_path, the real local provider and
SQLite registry (under `RUNNER_HOME`), and a real `SpecWatcher` running in a thread.

Nothing is mocked. "Eventually" is a poll with a generous timeout, never an absolute time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from watch_support import TIMEOUT, Running, Workspace, make_workspace

from runner.watch import ReloadEngine, SpecWatcher


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / ".runner"))
    return make_workspace(tmp_path)


@pytest.fixture
def run_watcher() -> Iterator[Callable[..., Running]]:
    started: list[tuple[Running, threading.Thread]] = []

    def start(ws: Workspace, **engine_kw: Any) -> Running:
        engine_kw.setdefault("apply", True)
        engine = ReloadEngine([ws.specs], **engine_kw)
        box: list[Running] = []
        watcher = SpecWatcher(engine, on_outcome=lambda o: box[0].outcomes.put(o))
        running = Running(engine, watcher)
        box.append(running)
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        started.append((running, thread))
        first = running.next()  # the initial load: the watcher is armed from here on
        assert first.event in ("applied", "planned", "unchanged"), first
        return running

    yield start
    for running, thread in started:
        running.watcher.stop()
        thread.join(timeout=TIMEOUT)
        running.engine.close()
        assert not thread.is_alive()
