"""Many processes opening the same fresh SQLite files at once all succeed.

Eight runtimes starting together (tests/runtime: get_or_create_agent from eight processes) open
the registry, the session store, the human queue and the local store on files nobody created
yet. Creating the schema in autocommit could fail at once with "database is locked" (WAL's
SQLITE_BUSY_SNAPSHOT), without waiting on the busy timeout: `runner.sqlitefile` takes the write
lock up front and retries. Here twelve processes open twenty fresh files each, in the same order,
so their openings collide.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

OPENER = r"""
import sys, time
from pathlib import Path
from runner.state.sqlite import SqliteRegistry
from runner.state.sessions_sqlite import SqliteSessionStore
from runner.state.operators_sqlite import SqliteOperatorStore
from runner.providers.local_store import LocalStore

root, go = Path(sys.argv[1]), Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
for i in range(20):
    folder = root / f"db{i}"
    registry = SqliteRegistry(folder / "state.db")
    sessions = SqliteSessionStore(folder / "state.db")
    queue = SqliteOperatorStore(folder / "state.db")
    store = LocalStore(folder / "local-store.db")
    registry.close(); sessions.close(); queue.close(); store.close()
print("ok")
"""


def test_twelve_processes_open_the_same_fresh_files_together(tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(tmp_path), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(12)
    ]
    time.sleep(0.5)  # let every interpreter reach the start line
    go.write_text("go")
    outcomes = [proc.communicate(timeout=120) for proc in procs]
    failures = [err for out, err in outcomes if out.strip() != "ok"]
    assert failures == []
