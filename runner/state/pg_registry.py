"""The Registry Protocol on PostgreSQL: applied state, journal and apply lock shared by many hosts.

Role in the flow: what `runner.state.sqlite.SqliteRegistry` is for one host, for any number of
hosts: an Environment's `state: postgresql://...` makes the CLI's plan/apply/history and the
runtime read and write here (`runner.state.backends`). The apply lock is an advisory lock
(`pg_lock`); the journal is appended in the transaction of the change it records.

Invariants: as the SQLite registry's. `record_applied`/`record_deleted`/`record_failure` change
the resource row and append the journal entry in one transaction; bodies are stored as written
(`${VAR}` references); `data_version()` moves whenever anyone (any host) journals a change, so
a runtime re-reads applied agents only then.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from runner.state.base import AppliedResource, JournalAction, JournalEntry, ProjectMismatchError
from runner.state.pg_database import PgDatabase
from runner.state.pg_lock import PgApplyLock

__all__ = ["PostgresRegistry"]

_COLUMNS = "address, kind, name, hash, body, foundry_name, foundry_version, applied_at"


def _resource(row: tuple[Any, ...]) -> AppliedResource:
    address, kind, name, hash_, body, fname, fversion, applied_at = row
    return AppliedResource(
        address=str(address),
        kind=str(kind),
        name=str(name),
        hash=str(hash_),
        body=json.loads(str(body)),
        foundry_name=None if fname is None else str(fname),
        foundry_version=None if fversion is None else str(fversion),
        applied_at=float(applied_at),
    )


class PostgresRegistry:
    """The Registry Protocol on a PostgreSQL database (`db` may be shared with the runtime's
    stores; `close` closes it when this registry opened it, or was told it owns it)."""

    def __init__(
        self,
        db: PgDatabase | str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.05,
        on_notice: Callable[[str], None] | None = None,
        owns_database: bool = False,
        project: str = "",
    ) -> None:
        self._owns = isinstance(db, str) or owns_database
        self._db = PgDatabase(db, project=project) if isinstance(db, str) else db
        self._key = self._db.env_key
        self.where = self._db.where
        self._wall_clock = wall_clock
        self._locks = PgApplyLock(
            self._db,
            clock=clock,
            wall_clock=wall_clock,
            sleep=sleep,
            poll_interval=poll_interval,
            on_notice=on_notice,
        )

    # ------------------------------------------------------------ reads

    def applied(self, env: str) -> dict[str, AppliedResource]:
        with self._db.connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM registry_resources WHERE env = %s ORDER BY address",
                (self._key(env),),
            ).fetchall()
        return {str(row[0]): _resource(row) for row in rows}

    def get(self, env: str, address: str) -> AppliedResource | None:
        with self._db.connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM registry_resources WHERE env = %s AND address = %s",
                (self._key(env), address),
            ).fetchone()
        return None if row is None else _resource(row)

    def environments(self) -> list[str]:
        """Every environment of this project the registry holds resources or journal entries
        for (another project's environments in a shared database are not listed)."""
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT env FROM registry_resources UNION SELECT env FROM registry_journal "
                "ORDER BY env"
            ).fetchall()
        keys = [str(r[0]) for r in rows]
        return sorted(self._db.env_name(k) for k in keys if self._db.owns_key(k))

    def history(self, env: str, address: str) -> list[JournalEntry]:
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT env, address, action, outcome, hash, foundry_version, at, apply_id, "
                "detail FROM registry_journal WHERE env = %s AND address = %s ORDER BY id",
                (self._key(env), address),
            ).fetchall()
        return [JournalEntry(env, *r[1:]) for r in rows]

    def data_version(self) -> int:
        """Moves whenever anyone journals a change (every registry write does)."""
        with self._db.connect() as conn:
            row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM registry_journal").fetchone()
        return 0 if row is None else int(row[0])

    # ------------------------------------------------------------ ownership by project

    def project_of(self, env: str) -> str | None:
        """The runner project that applied `env` through this registry (None: none recorded)."""
        with self._db.connect() as conn:
            row = conn.execute(
                "SELECT project FROM registry_projects WHERE env = %s", (self._key(env),)
            ).fetchone()
        return None if row is None else str(row[0])

    def check_project(self, env: str, project: str) -> None:
        """ProjectMismatchError when `env` here was applied by another project than `project`."""
        recorded = self.project_of(env)
        if project and recorded is not None and recorded != project:
            raise ProjectMismatchError(env, recorded=recorded, project=project, where=self.where)

    def claim_project(self, env: str, project: str) -> None:
        """Record `project` as the owner of `env` (adopting records made before projects);
        ProjectMismatchError, with nothing changed, when another project owns it. Two hosts
        claiming at once: one insert wins, the other reads the winner."""
        if not project:
            return
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO registry_projects (env, project, claimed_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (env) DO NOTHING",
                (self._key(env), project, self._wall_clock()),
            )
            row = conn.execute(
                "SELECT project FROM registry_projects WHERE env = %s", (self._key(env),)
            ).fetchone()
            if row is not None and str(row[0]) != project:
                raise ProjectMismatchError(
                    env, recorded=str(row[0]), project=project, where=self.where
                )

    # ------------------------------------------------------------ writes

    @staticmethod
    def _journal(
        conn: Any,
        key: str,
        address: str,
        *,
        action: str,
        outcome: str,
        hash_: str | None,
        version: str | None,
        at: float,
        apply_id: str,
        detail: str = "",
    ) -> None:
        conn.execute(
            "INSERT INTO registry_journal (env, address, action, outcome, hash, foundry_version, "
            "at, apply_id, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (key, address, action, outcome, hash_, version, at, apply_id, detail),
        )

    def record_applied(
        self, env: str, resource: AppliedResource, *, apply_id: str, action: JournalAction
    ) -> None:
        applied_at = resource.applied_at or self._wall_clock()
        body = json.dumps(dict(resource.body), sort_keys=True, ensure_ascii=False)
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO registry_resources (env, address, kind, name, hash, body, "
                "foundry_name, foundry_version, applied_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (env, address) DO UPDATE SET kind = excluded.kind, "
                "name = excluded.name, hash = excluded.hash, body = excluded.body, "
                "foundry_name = excluded.foundry_name, "
                "foundry_version = excluded.foundry_version, applied_at = excluded.applied_at",
                (
                    self._key(env),
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
                self._key(env),
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
                "DELETE FROM registry_resources WHERE env = %s AND address = %s "
                "RETURNING hash, foundry_version",
                (self._key(env), address),
            ).fetchone()
            self._journal(
                conn,
                self._key(env),
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
                "SELECT hash FROM registry_resources WHERE env = %s AND address = %s",
                (self._key(env), address),
            ).fetchone()
            self._journal(
                conn,
                self._key(env),
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
            self._journal(
                conn,
                self._key(env),
                address,
                action=action,
                outcome="failed",
                hash_=None,
                version=None,
                apply_id=apply_id,
                at=self._wall_clock(),
                detail=detail,
            )

    # ------------------------------------------------------------ the apply lock (pg_lock)

    def lock(self, env: str, *, holder: str, timeout: float) -> AbstractContextManager[None]:
        """Hold `env`'s apply lock (an advisory lock) for the block; LockTimeoutError naming the
        holder, its host, pid, user and since when."""
        return self._locks.hold(self._key(env), holder=holder, timeout=timeout)

    def lock_holder(self, env: str) -> str | None:
        return self._locks.holder(self._key(env))

    def record_write_started(self, env: str, *, request_timeout: float) -> None:
        self._locks.write_started(self._key(env), request_timeout=request_timeout)

    def record_write_finished(self, env: str) -> None:
        self._locks.write_finished(self._key(env))

    def close(self) -> None:
        if self._owns:
            self._db.close()
