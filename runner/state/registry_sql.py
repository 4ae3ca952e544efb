"""The registry written once over SQL: applied state, journal, project ownership, in one flow.

Role in the flow: `SqlRegistry` is the `runner.state.base.Registry` Protocol for both databases.
Here, once: every statement on `registry_resources`, `registry_journal` and `registry_projects`
(written with `?` placeholders, put in the backend's `SqlDialect` when the registry is made),
how a row becomes an `AppliedResource` or a `JournalEntry`, and each write's transaction (the
change and its journal entry together). A backend subclass (`runner.state.sqlite.SqliteRegistry`,
`runner.state.pg_registry.PostgresRegistry`) gives only what truly differs: the database it
reads and writes through (a `RegistryConnections`: SQLite's file, PostgreSQL's pool), its apply
lock (`sqlite_lock`, `pg_lock`), how it stores environment names (`EnvKeys`: PostgreSQL's
`PROJECT#ENV` in a shared database) and what it does with what it cannot read.

Invariants:
  - `record_applied`/`record_deleted`/`record_failure`/`record_version_removed` change the
    resource row (when they do) and append the journal entry in one write transaction: the
    journal never disagrees with the state. Entries are only ever appended, in id order.
  - Bodies are stored as written (`${VAR}` references, JSON with sorted keys), never resolved.
  - `claim_project` inserts the claim unless one is there, then reads the owner back, in one
    transaction: two claimants at once, one wins and the other reads the winner; a refusal
    (`ProjectMismatchError`) rolls back, so nothing changed.
  - Rows of environments that are not the registry's own (`EnvKeys.owns_sql`) are not listed.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from runner.state.apply_lock import ApplyLock
from runner.state.base import AppliedResource, JournalAction, JournalEntry, ProjectMismatchError
from runner.state.sql_dialect import EnvKeys, SqlConnection, SqlDialect

__all__ = ["RegistryConnections", "SqlRegistry"]

_RESOURCE = "address, kind, name, hash, body, foundry_name, foundry_version, applied_at"
_ENTRY = "env, address, action, outcome, hash, foundry_version, at, apply_id, detail"


class RegistryConnections(Protocol):
    """What a registry reads and writes through: `RegistryDatabase` (SQLite) and `PgDatabase`."""

    def connect(self) -> AbstractContextManager[SqlConnection]:
        """A connection for one call (autocommit)."""
        ...

    def write(self) -> AbstractContextManager[SqlConnection]:
        """One write transaction: committed on exit, rolled back on an exception."""
        ...


class _Statements:
    """Every statement of the registry, in one dialect, with its ownership condition."""

    def __init__(self, dialect: SqlDialect, owns: str) -> None:
        sql = dialect.sql
        self.applied = sql(
            f"SELECT {_RESOURCE} FROM registry_resources WHERE env = ? ORDER BY address"
        )
        self.get = sql(f"SELECT {_RESOURCE} FROM registry_resources WHERE env = ? AND address = ?")
        self.upsert = sql(
            f"INSERT INTO registry_resources (env, {_RESOURCE}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (env, address) DO UPDATE SET kind = excluded.kind, "
            "name = excluded.name, hash = excluded.hash, body = excluded.body, "
            "foundry_name = excluded.foundry_name, "
            "foundry_version = excluded.foundry_version, applied_at = excluded.applied_at"
        )
        self.delete = sql(
            "DELETE FROM registry_resources WHERE env = ? AND address = ? "
            "RETURNING hash, foundry_version"
        )
        self.hash = sql("SELECT hash FROM registry_resources WHERE env = ? AND address = ?")
        self.append = sql(
            f"INSERT INTO registry_journal ({_ENTRY}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self.history = sql(
            f"SELECT {_ENTRY} FROM registry_journal WHERE env = ? AND address = ? ORDER BY id"
        )
        # `owns` is in the dialect already: spliced after `sql`
        self.environments = (
            f"SELECT env FROM registry_resources WHERE {owns} "
            f"UNION SELECT env FROM registry_journal WHERE {owns} ORDER BY env"
        )
        self.project = sql("SELECT project FROM registry_projects WHERE env = ?")
        self.claim = sql(
            "INSERT INTO registry_projects (env, project, claimed_at) VALUES (?, ?, ?) "
            "ON CONFLICT (env) DO NOTHING"
        )


class SqlRegistry(ABC):
    """The registry over one database (module docstring); a subclass gives the database, the
    apply lock, the environment keys and where the database is (named in refusals)."""

    def __init__(
        self,
        db: RegistryConnections,
        *,
        dialect: SqlDialect,
        keys: EnvKeys,
        locks: ApplyLock[Any],
        where: object,
        wall_clock: Callable[[], float],
    ) -> None:
        self._connections = db
        self._keys = keys
        self._locks = locks
        self._where = where
        self._wall_clock = wall_clock
        owns, params = keys.owns_sql()
        self._owns_params = (*params, *params)  # `environments` asks each of its two tables
        self._sql = _Statements(dialect, owns)

    # ------------------------------------------------------------ what a backend may change

    @abstractmethod
    def close(self) -> None:
        """Let go of what the registry opened (not a database it was given)."""

    def _readable(self) -> bool:
        """False when there is nothing to read (a read-only SQLite file that does not exist):
        reads answer empty."""
        return True

    def _resource(self, row: Sequence[Any]) -> AppliedResource:
        """A `registry_resources` row as the resource it records (a backend may say what a
        row that does not decode means)."""
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
            applied_at=float(applied_at),
        )

    # ------------------------------------------------------------ reads

    def applied(self, env: str) -> dict[str, AppliedResource]:
        if not self._readable():
            return {}
        with self._connections.connect() as conn:
            rows = conn.execute(self._sql.applied, (self._keys.env_key(env),)).fetchall()
        return {str(row[0]): self._resource(row) for row in rows}

    def get(self, env: str, address: str) -> AppliedResource | None:
        if not self._readable():
            return None
        with self._connections.connect() as conn:
            row = conn.execute(self._sql.get, (self._keys.env_key(env), address)).fetchone()
        return None if row is None else self._resource(row)

    def environments(self) -> list[str]:
        """Every environment of the registry's own with resources or journal entries (another
        project's environments in a shared database are not listed)."""
        if not self._readable():
            return []
        with self._connections.connect() as conn:
            rows = conn.execute(self._sql.environments, self._owns_params).fetchall()
        return sorted(self._keys.env_name(str(r[0])) for r in rows)

    def history(self, env: str, address: str) -> list[JournalEntry]:
        """Every journal entry of `address` in `env`, oldest first."""
        if not self._readable():
            return []
        with self._connections.connect() as conn:
            rows = conn.execute(self._sql.history, (self._keys.env_key(env), address)).fetchall()
        return [JournalEntry(env, *r[1:]) for r in rows]

    # ------------------------------------------------------------ ownership by project

    def project_of(self, env: str) -> str | None:
        """The runner project that applied `env` through this registry (None: none recorded)."""
        if not self._readable():
            return None
        with self._connections.connect() as conn:
            row = conn.execute(self._sql.project, (self._keys.env_key(env),)).fetchone()
        return None if row is None else str(row[0])

    def check_project(self, env: str, project: str) -> None:
        """ProjectMismatchError when `env` here was applied by another project than `project`."""
        recorded = self.project_of(env)
        if project and recorded is not None and recorded != project:
            raise ProjectMismatchError(env, recorded=recorded, project=project, where=self._where)

    def claim_project(self, env: str, project: str) -> None:
        """Record `project` as the owner of `env` (adopting records made before projects);
        ProjectMismatchError, with nothing changed, when another project owns it."""
        if not project:
            return
        key = self._keys.env_key(env)
        with self._connections.write() as tx:
            tx.execute(self._sql.claim, (key, project, self._wall_clock()))
            row = tx.execute(self._sql.project, (key,)).fetchone()
            if row is not None and str(row[0]) != project:
                raise ProjectMismatchError(
                    env, recorded=str(row[0]), project=project, where=self._where
                )

    # ------------------------------------------------------------ writes

    def _append(
        self,
        tx: SqlConnection,
        key: str,
        address: str,
        action: str,
        *,
        hash_: str | None,
        version: str | None,
        apply_id: str,
        outcome: str = "ok",
        detail: str = "",
    ) -> None:
        """Journal one outcome, inside the transaction `tx` of the change it records."""
        at = self._wall_clock()
        entry = (key, address, action, outcome, hash_, version, at, apply_id, detail)
        tx.execute(self._sql.append, entry)

    def record_applied(
        self, env: str, resource: AppliedResource, *, apply_id: str, action: JournalAction
    ) -> None:
        """Store `resource` as applied and journal it, in one transaction."""
        key = self._keys.env_key(env)
        applied_at = resource.applied_at or self._wall_clock()
        body = json.dumps(dict(resource.body), sort_keys=True, ensure_ascii=False)
        r = resource
        row = (key, r.address, r.kind, r.name, r.hash, body, r.foundry_name, r.foundry_version)
        with self._connections.write() as tx:
            tx.execute(self._sql.upsert, (*row, applied_at))
            self._append(
                tx,
                key,
                r.address,
                action,
                hash_=r.hash,
                version=r.foundry_version,
                apply_id=apply_id,
            )

    def record_deleted(self, env: str, address: str, *, apply_id: str) -> None:
        key = self._keys.env_key(env)
        with self._connections.write() as tx:
            gone = tx.execute(self._sql.delete, (key, address)).fetchone()
            hash_, version = (None, None) if gone is None else (gone[0], gone[1])
            self._append(
                tx, key, address, "delete", hash_=hash_, version=version, apply_id=apply_id
            )

    def record_version_removed(
        self, env: str, address: str, *, version: str, apply_id: str
    ) -> None:
        """Journal the removal of one surplus Foundry version; what is recorded as applied
        does not change."""
        key = self._keys.env_key(env)
        with self._connections.write() as tx:
            row = tx.execute(self._sql.hash, (key, address)).fetchone()
            hash_ = None if row is None else row[0]
            self._append(
                tx,
                key,
                address,
                "delete_version",
                hash_=hash_,
                version=version,
                apply_id=apply_id,
            )

    def record_failure(
        self, env: str, address: str, *, apply_id: str, action: JournalAction, detail: str
    ) -> None:
        key = self._keys.env_key(env)
        with self._connections.write() as tx:
            self._append(
                tx,
                key,
                address,
                action,
                hash_=None,
                version=None,
                apply_id=apply_id,
                outcome="failed",
                detail=detail,
            )

    # ------------------------------------------------------------ the apply lock

    def lock(self, env: str, *, holder: str, timeout: float) -> AbstractContextManager[None]:
        """Hold `env`'s apply lock for the block; LockTimeoutError naming the holder.

        Taking over from a dead holder first waits out its write fence (`apply_lock`)."""
        return self._locks.hold(self._keys.env_key(env), holder=holder, timeout=timeout)

    def lock_holder(self, env: str) -> str | None:
        return self._locks.holder(self._keys.env_key(env))

    def record_write_started(self, env: str, *, request_timeout: float) -> None:
        """Note in the held lock row that a remote write is about to be sent; a no-op when this
        object does not hold `env`'s lock."""
        self._locks.write_started(self._keys.env_key(env), request_timeout=request_timeout)

    def record_write_finished(self, env: str) -> None:
        """Note that a write's answer arrived: it has landed (or was refused) for good."""
        self._locks.write_finished(self._keys.env_key(env))
