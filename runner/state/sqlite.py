"""The Registry Protocol on SQLite: what runner last applied per environment, its journal, its lock.

Role in the flow: the planner reads `applied(env)`; the executor writes each outcome the moment
it happens (`record_*`) and holds the environment's lock for a whole apply (`lock`), announcing
its remote writes in it (`record_write_started`/`record_write_finished`: the executor's
`WriteFence`); the runtime reads bodies of teams, pools, alerts and channels. The same file holds
the runtime's own tables (prefixed `rt_`, written only by the runtime's stores); the schema of
the whole file is `sqlite_schema`'s numbered migrations, applied by whichever store opens first.

The registry is the applied state (the `registry_resources` table, here) composed with the parts
that keep their own tables in the same file:
  `sqlite_database`  the file: a connection per call, write transactions that queue;
  `sqlite_journal`   the journal of every outcome, appended in the transaction of its change;
  `sqlite_lock`      the apply lock per environment, dead-holder takeover and the write fence.
SQL stays in these modules: another backend (PostgreSQL) implements the same Protocol.

Invariants:
  - WAL mode and a busy timeout: readers never block the writer, writers queue instead of
    failing. Every write is one transaction. One idle connection stays open for the registry's
    life: closing the *last* connection checkpoints the WAL with an fsync (~5 ms a write
    otherwise, ~0.2 ms with it).
  - `record_applied`/`record_deleted`/`record_failure` change the resource row and append the
    journal entry in the same transaction: the journal never disagrees with the state.
  - Bodies are stored as written (`${VAR}` references), never resolved values.
  - Each environment is owned by one runner project (`registry_projects`): `claim_project`
    records it in one transaction (check, then insert), and refuses another project with
    nothing changed; records from before projects are adopted by the first claim.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from runner.state.base import (
    AppliedResource,
    JournalAction,
    JournalEntry,
    ProjectMismatchError,
)
from runner.state.errors import StateFileError, state_file_errors
from runner.state.sqlite_database import RegistryDatabase
from runner.state.sqlite_journal import append_entry, read_history
from runner.state.sqlite_lock import SqliteApplyLock

__all__ = ["SqliteRegistry"]


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
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._wall_clock = wall_clock
        self._db = RegistryDatabase(self.path, busy_timeout_ms=busy_timeout_ms, read_only=read_only)
        self._locks = SqliteApplyLock(
            self._db,
            clock=clock,
            wall_clock=wall_clock,
            sleep=sleep,
            poll_interval=poll_interval,
            on_notice=on_notice,
        )
        self._keeper: sqlite3.Connection | None = None
        if read_only:
            return
        with state_file_errors(self.path):
            self._keeper = sqlite3.connect(self.path, check_same_thread=False)
            self._keeper.execute("SELECT 1 FROM registry_locks LIMIT 1").fetchall()

    @classmethod
    def open_read_only(cls, path: str | Path) -> SqliteRegistry:
        """The registry at `path` for reading only (`runner plan`): creates no file or folder and
        writes nothing; a missing file reads as an empty registry."""
        return cls(path, read_only=True)

    def _readable(self) -> bool:
        """False for a read-only registry whose file does not exist (it reads as empty)."""
        return not self.read_only or self._db.exists

    # ------------------------------------------------------------ reads

    def _resource(self, row: tuple[object, ...]) -> AppliedResource:
        try:
            return self._decode(row)
        except (ValueError, TypeError) as exc:  # a bit flipped inside a record
            raise StateFileError(
                self.path,
                f"{self.path}: the state file is corrupt (a record does not decode: {exc}); "
                "restore it from a backup, or move it aside to start afresh",
            ) from exc

    @staticmethod
    def _decode(row: tuple[object, ...]) -> AppliedResource:
        address, kind, name, hash_, body, fname, fversion, applied_at = row
        decoded = json.loads(str(body))
        if not isinstance(decoded, dict):
            raise TypeError(f"the body of {address} is not a JSON object")
        return AppliedResource(
            address=str(address),
            kind=str(kind),
            name=str(name),
            hash=str(hash_),
            body=decoded,
            foundry_name=None if fname is None else str(fname),
            foundry_version=None if fversion is None else str(fversion),
            applied_at=float(applied_at),  # type: ignore[arg-type]
        )

    _COLUMNS = "address, kind, name, hash, body, foundry_name, foundry_version, applied_at"

    def applied(self, env: str) -> dict[str, AppliedResource]:
        if not self._readable():
            return {}
        with self._db.connect() as conn:
            rows = conn.execute(
                f"SELECT {self._COLUMNS} FROM registry_resources WHERE env = ? ORDER BY address",
                (env,),
            ).fetchall()
        return {str(row[0]): self._resource(row) for row in rows}

    def get(self, env: str, address: str) -> AppliedResource | None:
        if not self._readable():
            return None
        with self._db.connect() as conn:
            row = conn.execute(
                f"SELECT {self._COLUMNS} FROM registry_resources WHERE env = ? AND address = ?",
                (env, address),
            ).fetchone()
        return None if row is None else self._resource(row)

    def environments(self) -> list[str]:
        """Every environment the registry holds resources or journal entries for."""
        if not self._readable():
            return []
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT env FROM registry_resources UNION SELECT env FROM registry_journal "
                "ORDER BY env"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def history(self, env: str, address: str) -> list[JournalEntry]:
        if not self._readable():
            return []
        with self._db.connect() as conn:
            return read_history(conn, env, address)

    # ------------------------------------------------------------ ownership by project

    def project_of(self, env: str) -> str | None:
        """The runner project that applied `env` through this registry (None: none recorded)."""
        if not self._readable():
            return None
        with self._db.connect() as conn:
            try:
                row = conn.execute(
                    "SELECT project FROM registry_projects WHERE env = ?", (env,)
                ).fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # a file from before projects, read-only
                    return None
                raise
        return None if row is None else str(row[0])

    def check_project(self, env: str, project: str) -> None:
        """ProjectMismatchError when `env` here was applied by another project than `project`."""
        recorded = self.project_of(env)
        if project and recorded is not None and recorded != project:
            raise ProjectMismatchError(env, recorded=recorded, project=project, where=self.path)

    def claim_project(self, env: str, project: str) -> None:
        """Record `project` as the owner of `env` here (adopting records made before projects
        existed); ProjectMismatchError, with nothing changed, when another project owns it."""
        if not project:
            return
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT project FROM registry_projects WHERE env = ?", (env,)
            ).fetchone()
            if row is not None and str(row[0]) != project:
                raise ProjectMismatchError(
                    env, recorded=str(row[0]), project=project, where=self.path
                )
            if row is None:
                conn.execute(
                    "INSERT INTO registry_projects (env, project, claimed_at) VALUES (?, ?, ?)",
                    (env, project, self._wall_clock()),
                )

    # ------------------------------------------------------------ writes

    def record_applied(
        self, env: str, resource: AppliedResource, *, apply_id: str, action: JournalAction
    ) -> None:
        applied_at = resource.applied_at or self._wall_clock()
        body = json.dumps(dict(resource.body), sort_keys=True, ensure_ascii=False)
        with self._db.write() as conn:
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
            append_entry(
                conn,
                env,
                resource.address,
                action=action,
                outcome="ok",
                hash_=resource.hash,
                version=resource.foundry_version,
                apply_id=apply_id,
                at=self._wall_clock(),
            )

    def record_deleted(self, env: str, address: str, *, apply_id: str) -> None:
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT hash, foundry_version FROM registry_resources "
                "WHERE env = ? AND address = ?",
                (env, address),
            ).fetchone()
            conn.execute(
                "DELETE FROM registry_resources WHERE env = ? AND address = ?", (env, address)
            )
            append_entry(
                conn,
                env,
                address,
                action="delete",
                outcome="ok",
                hash_=None if row is None else row[0],
                version=None if row is None else row[1],
                apply_id=apply_id,
                at=self._wall_clock(),
            )

    def record_version_removed(
        self, env: str, address: str, *, version: str, apply_id: str
    ) -> None:
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT hash FROM registry_resources WHERE env = ? AND address = ?",
                (env, address),
            ).fetchone()
            append_entry(
                conn,
                env,
                address,
                action="delete_version",
                outcome="ok",
                hash_=None if row is None else row[0],
                version=version,
                apply_id=apply_id,
                at=self._wall_clock(),
            )

    def record_failure(
        self, env: str, address: str, *, apply_id: str, action: JournalAction, detail: str
    ) -> None:
        with self._db.write() as conn:
            append_entry(
                conn,
                env,
                address,
                action=action,
                outcome="failed",
                hash_=None,
                version=None,
                apply_id=apply_id,
                at=self._wall_clock(),
                detail=detail,
            )

    # ------------------------------------------------------------ the apply lock (sqlite_lock)

    def lock(self, env: str, *, holder: str, timeout: float) -> AbstractContextManager[None]:
        """Hold `env`'s apply lock for the block; LockTimeoutError naming the holder.

        Taking over from a dead holder first waits out its write fence (`sqlite_lock`)."""
        return self._locks.hold(env, holder=holder, timeout=timeout)

    def lock_holder(self, env: str) -> str | None:
        return self._locks.holder(env)

    def record_write_started(self, env: str, *, request_timeout: float) -> None:
        """Note in the held lock row that a remote write is about to be sent; a no-op when this
        object does not hold `env`'s lock."""
        self._locks.write_started(env, request_timeout=request_timeout)

    def record_write_finished(self, env: str) -> None:
        """Note that a write's answer arrived: it has landed (or was refused) for good."""
        self._locks.write_finished(env)

    def close(self) -> None:
        """Release the idle connection and the kept writer (reads live for one call); reads and
        writes still work after it, only slower."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.close()
        self._db.close()
