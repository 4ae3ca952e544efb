"""SQLite registry: what runner last applied per environment, the journal, and the apply lock.

Role in the flow: the planner reads `applied(env)`; the executor writes each outcome the moment
it happens (`record_*`); the runtime reads bodies of teams, pools, alerts and channels. The same
file holds the runtime's own tables (prefixed `rt_`, owned by the runtime); this module never
creates a table with that prefix.

Invariants:
  - WAL mode and a busy timeout: readers never block the writer, writers queue instead of
    failing. Every write is one transaction; a connection is opened per call, so the registry is
    safe to share across threads and processes. One idle connection stays open for the
    registry's life: closing the *last* connection checkpoints the WAL with an fsync (~5 ms a
    write otherwise, ~0.2 ms with it).
  - `record_applied`/`record_deleted`/`record_failure` change the resource row and append the
    journal entry in the same transaction: the journal never disagrees with the state.
  - Bodies are stored as written (`${VAR}` references), never resolved values.
  - The lock is a row per environment, taken with `BEGIN IMMEDIATE` (one writer decides at a
    time). A row whose holder process is dead on this host is stale and taken over; "dead" also
    covers a reused pid, told apart by the process start time (boot id + /proc/<pid>/stat field
    22) stored in the row. Waiting is bounded by `timeout`, then `LockTimeoutError` names the
    holder. Clock, wall clock and sleep are injected.
  - Write fence. A killed holder's last Foundry request may still be on the wire and land after
    the next apply has looked (create_version is not idempotent: that would be a duplicate
    version). So the holder records each remote write in its row before sending it
    (`record_write_started`: when, and its request timeout) and when an answer arrives
    (`record_write_finished`). Taking over a dead holder's row waits, before `lock` yields,
    until `last_write_started_at + request_timeout` has passed (0 when no write was in flight),
    with a one-line notice through `on_notice`. The fence is inherited by the new row until the
    wait is over, so a holder killed during its own wait passes it on.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from runner.sqlitefile import prepare_database
from runner.state.base import (
    AppliedResource,
    JournalAction,
    JournalEntry,
    LockTimeoutError,
)

__all__ = ["SqliteRegistry", "Takeover", "process_alive", "process_start_token"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registry_resources (
    env TEXT NOT NULL,
    address TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    foundry_name TEXT,
    foundry_version TEXT,
    applied_at REAL NOT NULL,
    PRIMARY KEY (env, address)
);
CREATE TABLE IF NOT EXISTS registry_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    env TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed')),
    hash TEXT,
    foundry_version TEXT,
    at REAL NOT NULL,
    apply_id TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS registry_journal_address ON registry_journal (env, address, id);
CREATE TABLE IF NOT EXISTS registry_locks (
    env TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at REAL NOT NULL
);
"""

# Columns added to registry_locks after the first release (ALTER TABLE on older files).
_LOCK_COLUMNS = {
    "pid_started": "TEXT",
    "last_write_started_at": "REAL",
    "request_timeout": "REAL NOT NULL DEFAULT 0",
    "writes_in_flight": "INTEGER NOT NULL DEFAULT 0",
}


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_token(pid: int) -> str | None:
    """What tells process `pid` from a later process reusing its number: the boot id and the
    start time in clock ticks since boot (/proc/<pid>/stat field 22). None where /proc is not
    available (then a live pid is trusted as is)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # fields from the 3rd on follow the parenthesised command name (which may hold spaces)
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20:
        return None
    return f"{_boot_id()}:{fields[19]}"


def process_alive(pid: int, *, start_token: str | None = None) -> bool:
    """Whether process `pid` runs on this host (a zombie counts as dead). With `start_token`
    (from `process_start_token` when the pid was recorded), a pid now held by another process
    counts as dead too."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # the state letter follows the parenthesised command name
    if stat.rpartition(")")[2].split()[:1] == ["Z"]:
        return False
    return start_token is None or process_start_token(pid) in (None, start_token)


@dataclass(frozen=True)
class Takeover:
    """A lock taken over from a dead holder, and until when its last write may still land."""

    env: str
    dead_holder: str
    fence_until: float | None  # wall-clock time; None: no write was in flight

    def wait_seconds(self, now: float) -> float:
        return 0.0 if self.fence_until is None else max(0.0, self.fence_until - now)


class SqliteRegistry:
    """The Registry Protocol on one SQLite file (created, with its folder, on first use)."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.05,
        busy_timeout_ms: int = 30_000,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._poll = poll_interval
        self._busy_timeout_ms = busy_timeout_ms
        self._on_notice = on_notice
        self._write_lock = threading.Lock()
        self._held: dict[str, str] = {}  # env -> token of the lock this object holds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            prepare_database(conn, _SCHEMA)
        self._add_lock_columns()
        self._keeper: sqlite3.Connection | None = sqlite3.connect(
            self.path, check_same_thread=False
        )
        self._keeper.execute("SELECT 1 FROM registry_locks LIMIT 1").fetchall()

    def _add_lock_columns(self) -> None:
        """Bring a registry_locks table made by an older runner up to date (race-safe)."""
        with self._connect() as conn:
            have = {str(r[1]) for r in conn.execute("PRAGMA table_info(registry_locks)")}
        if have.issuperset(_LOCK_COLUMNS):
            return
        with self._write() as conn:
            have = {str(r[1]) for r in conn.execute("PRAGMA table_info(registry_locks)")}
            for column, declaration in _LOCK_COLUMNS.items():
                if column not in have:
                    conn.execute(f"ALTER TABLE registry_locks ADD COLUMN {column} {declaration}")

    # ------------------------------------------------------------ connections

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None
        )
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (`BEGIN IMMEDIATE`) so it cannot deadlock.

        In-process writers also queue on a threading lock: cheaper than SQLite's sleeping busy
        handler when the executor's threads record outcomes at the same moment.
        """
        with self._write_lock, self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------ reads

    @staticmethod
    def _resource(row: tuple[object, ...]) -> AppliedResource:
        address, kind, name, hash_, body, fname, fversion, applied_at = row
        return AppliedResource(
            address=str(address),
            kind=str(kind),
            name=str(name),
            hash=str(hash_),
            body=json.loads(str(body)),
            foundry_name=None if fname is None else str(fname),
            foundry_version=None if fversion is None else str(fversion),
            applied_at=float(applied_at),  # type: ignore[arg-type]
        )

    _COLUMNS = "address, kind, name, hash, body, foundry_name, foundry_version, applied_at"

    def applied(self, env: str) -> dict[str, AppliedResource]:
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {self._COLUMNS} FROM registry_resources WHERE env = ? ORDER BY address",
                (env,),
            ).fetchall()
        return {str(row[0]): self._resource(row) for row in rows}

    def get(self, env: str, address: str) -> AppliedResource | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {self._COLUMNS} FROM registry_resources WHERE env = ? AND address = ?",
                (env, address),
            ).fetchone()
        return None if row is None else self._resource(row)

    def environments(self) -> list[str]:
        """Every environment the registry holds resources or journal entries for."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT env FROM registry_resources UNION SELECT env FROM registry_journal "
                "ORDER BY env"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def history(self, env: str, address: str) -> list[JournalEntry]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT env, address, action, outcome, hash, foundry_version, at, apply_id, "
                "detail FROM registry_journal WHERE env = ? AND address = ? ORDER BY id",
                (env, address),
            ).fetchall()
        return [
            JournalEntry(
                env=r[0],
                address=r[1],
                action=r[2],
                outcome=r[3],
                hash=r[4],
                foundry_version=r[5],
                at=r[6],
                apply_id=r[7],
                detail=r[8],
            )
            for r in rows
        ]

    # ------------------------------------------------------------ writes

    def _journal(
        self,
        conn: sqlite3.Connection,
        env: str,
        address: str,
        *,
        action: str,
        outcome: str,
        hash_: str | None,
        version: str | None,
        apply_id: str,
        detail: str = "",
    ) -> None:
        conn.execute(
            "INSERT INTO registry_journal (env, address, action, outcome, hash, foundry_version, "
            "at, apply_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (env, address, action, outcome, hash_, version, self._wall_clock(), apply_id, detail),
        )

    def record_applied(
        self, env: str, resource: AppliedResource, *, apply_id: str, action: JournalAction
    ) -> None:
        applied_at = resource.applied_at or self._wall_clock()
        body = json.dumps(dict(resource.body), sort_keys=True, ensure_ascii=False)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO registry_resources (env, address, kind, name, hash, body, "
                "foundry_name, foundry_version, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (env, address) DO UPDATE SET kind = excluded.kind, "
                "name = excluded.name, hash = excluded.hash, body = excluded.body, "
                "foundry_name = excluded.foundry_name, "
                "foundry_version = excluded.foundry_version, applied_at = excluded.applied_at",
                (
                    env,
                    resource.address,
                    resource.kind,
                    resource.name,
                    resource.hash,
                    body,
                    resource.foundry_name,
                    resource.foundry_version,
                    applied_at,
                ),
            )
            self._journal(
                conn,
                env,
                resource.address,
                action=action,
                outcome="ok",
                hash_=resource.hash,
                version=resource.foundry_version,
                apply_id=apply_id,
            )

    def record_deleted(self, env: str, address: str, *, apply_id: str) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT hash, foundry_version FROM registry_resources "
                "WHERE env = ? AND address = ?",
                (env, address),
            ).fetchone()
            conn.execute(
                "DELETE FROM registry_resources WHERE env = ? AND address = ?", (env, address)
            )
            self._journal(
                conn,
                env,
                address,
                action="delete",
                outcome="ok",
                hash_=None if row is None else row[0],
                version=None if row is None else row[1],
                apply_id=apply_id,
            )

    def record_version_removed(
        self, env: str, address: str, *, version: str, apply_id: str
    ) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT hash FROM registry_resources WHERE env = ? AND address = ?",
                (env, address),
            ).fetchone()
            self._journal(
                conn,
                env,
                address,
                action="delete_version",
                outcome="ok",
                hash_=None if row is None else row[0],
                version=version,
                apply_id=apply_id,
            )

    def record_failure(
        self, env: str, address: str, *, apply_id: str, action: JournalAction, detail: str
    ) -> None:
        with self._write() as conn:
            self._journal(
                conn,
                env,
                address,
                action=action,
                outcome="failed",
                hash_=None,
                version=None,
                apply_id=apply_id,
                detail=detail,
            )

    # ------------------------------------------------------------ the apply lock

    def _try_acquire(self, env: str, *, holder: str, token: str) -> str | Takeover | None:
        """Take the lock: None, or a `Takeover` when a dead holder's row was replaced; else the
        current (live) holder's description."""
        host = socket.gethostname()
        pid = os.getpid()
        takeover: Takeover | None = None
        fence: tuple[object, object, object] = (None, 0.0, 0)
        with self._write() as conn:
            row = conn.execute(
                "SELECT holder, host, pid, pid_started, last_write_started_at, request_timeout, "
                "writes_in_flight FROM registry_locks WHERE env = ?",
                (env,),
            ).fetchone()
            if row is not None:
                current, lock_host, lock_pid = str(row[0]), str(row[1]), int(row[2])
                started = None if row[3] is None else str(row[3])
                if lock_host != host or process_alive(lock_pid, start_token=started):
                    return current
                write_started, request_timeout, in_flight = row[4], float(row[5] or 0), row[6]
                fence_until = None
                if in_flight and write_started is not None:
                    fence_until = float(write_started) + request_timeout
                    fence = (write_started, request_timeout, in_flight)
                takeover = Takeover(env, current, fence_until)
                conn.execute("DELETE FROM registry_locks WHERE env = ?", (env,))
            conn.execute(
                "INSERT INTO registry_locks (env, holder, token, host, pid, acquired_at, "
                "pid_started, last_write_started_at, request_timeout, writes_in_flight) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    env,
                    holder,
                    token,
                    host,
                    pid,
                    self._wall_clock(),
                    process_start_token(pid),
                    *fence,
                ),
            )
        return takeover

    def lock_holder(self, env: str) -> str | None:
        with self._connect() as conn:
            row = conn.execute("SELECT holder FROM registry_locks WHERE env = ?", (env,)).fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def lock(self, env: str, *, holder: str, timeout: float) -> Iterator[None]:
        """Hold `env`'s apply lock for the block; LockTimeoutError naming the holder.

        Taking over from a dead holder first waits out its write fence (module docstring)."""
        token = uuid.uuid4().hex
        started = self._clock()
        while True:
            current = self._try_acquire(env, holder=holder, token=token)
            if not isinstance(current, str):
                break
            waited = self._clock() - started
            if waited >= timeout:
                raise LockTimeoutError(env, current, waited)
            self._sleep(min(self._poll, max(timeout - waited, 0.0)) or self._poll)
        try:
            if current is not None:
                self._wait_out(current, token=token)
            self._held[env] = token
            yield
        finally:
            self._held.pop(env, None)
            with self._write() as conn:
                conn.execute("DELETE FROM registry_locks WHERE env = ? AND token = ?", (env, token))

    def _wait_out(self, takeover: Takeover, *, token: str) -> None:
        """Sleep until the dead holder's last write can no longer land, then drop its fence."""
        wait = takeover.wait_seconds(self._wall_clock())
        if self._on_notice is not None:
            if wait > 0:
                self._on_notice(
                    f"runner: environment {takeover.env!r} was locked by {takeover.dead_holder}, "
                    f"which is no longer running; waiting {wait:.1f}s for a Foundry write it "
                    "had in flight to land before changing anything"
                )
            else:
                self._on_notice(
                    f"runner: environment {takeover.env!r} was locked by {takeover.dead_holder}, "
                    "which is no longer running; taking the lock over"
                )
        while wait > 0:
            self._sleep(wait)
            wait = takeover.wait_seconds(self._wall_clock())
        if takeover.fence_until is not None:
            with self._write() as conn:
                conn.execute(
                    "UPDATE registry_locks SET last_write_started_at = NULL, request_timeout = 0, "
                    "writes_in_flight = 0 WHERE env = ? AND token = ?",
                    (takeover.env, token),
                )

    # ------------------------------------------------------------ the write fence

    def record_write_started(self, env: str, *, request_timeout: float) -> None:
        """Note in the held lock row that a remote write is about to be sent (see the module
        docstring); a no-op when this object does not hold `env`'s lock."""
        token = self._held.get(env)
        if token is None:
            return
        with self._write() as conn:
            conn.execute(
                "UPDATE registry_locks SET last_write_started_at = ?, "
                "request_timeout = MAX(request_timeout, ?), "
                "writes_in_flight = writes_in_flight + 1 WHERE env = ? AND token = ?",
                (self._wall_clock(), float(request_timeout), env, token),
            )

    def record_write_finished(self, env: str) -> None:
        """Note that a write's answer arrived: it has landed (or was refused) for good."""
        token = self._held.get(env)
        if token is None:
            return
        with self._write() as conn:
            conn.execute(
                "UPDATE registry_locks SET writes_in_flight = MAX(writes_in_flight - 1, 0) "
                "WHERE env = ? AND token = ?",
                (env, token),
            )

    def close(self) -> None:
        """Release the idle connection (the others live for one call); reads and writes still
        work after it, only slower."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.close()
