"""The local store's agents: named agents with immutable, numbered versions, as Foundry keeps them.

Role in the flow: the agent half of `LocalStore`. `LocalProvider` (plan/apply and the runtime)
and the emulator's `/agents` routes create, read, list and delete versions here through the
store; `Conversations.respond` asks `resolve_version` which version answers.

Invariants (mirroring Foundry's agents API, api-version v1):
- An agent is keyed by its name (`AGENT_NAME_RE`). Versions are immutable and numbered per name
  "1", "2", ...; a number is never reused, not even after the version or the whole agent was
  deleted (the `agents` row keeps the counter and outlives the agent: `latest` is NULL then).
- Metadata and description belong to a version and follow Foundry's limits
  (`runner.providers.base`); a violation is `ProviderError(code="invalid_parameters",
  status=400)`, as Foundry answers, and nothing is written.
- Deleting the last remaining version deletes the agent (an agent always has a latest version).
- Listings are in creation order (`seq`); an agent recreated after deletion moves to the end.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from runner.providers.base import MAX_DESCRIPTION, AgentVersion
from runner.providers.local_database import StoreDatabase, fetch_page
from runner.providers.local_inputs import check_definition
from runner.providers.local_records import Order, Page, parse_version
from runner.providers.local_replies import (
    check_agent_name,
    check_metadata,
    invalid_parameters,
    not_found,
)

__all__ = ["AGENTS_SCHEMA", "AgentVersions", "resolve_version"]

AGENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    last_version INTEGER NOT NULL,
    latest INTEGER,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS agents_seq ON agents(seq);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    description TEXT,
    metadata TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
"""

_VERSION_COLUMNS = "v.name, v.version, v.created_at, v.description, v.metadata, v.definition"


def _version_from_row(row: Sequence[Any]) -> AgentVersion:
    name, version, created_at, description, metadata, definition = row[:6]
    return AgentVersion(
        name=name,
        version=str(version),
        definition=json.loads(definition),
        metadata=json.loads(metadata),
        description=description,
        created_at=created_at,
    )


def resolve_version(tx: sqlite3.Connection, name: str, version: str | None) -> str:
    """The number of version `version` of agent `name` (its latest when None), read in `tx`;
    NotFoundError when there is no such agent or version."""
    if version is None:
        row = tx.execute("SELECT latest FROM agents WHERE name = ?", (name,)).fetchone()
        if row is None or row[0] is None:
            raise not_found(f"agent {name!r} not found")
        return str(row[0])
    number = parse_version(version)
    if (
        number is None
        or tx.execute(
            "SELECT 1 FROM versions WHERE name = ? AND version = ?", (name, number)
        ).fetchone()
        is None
    ):
        raise not_found(f"version {version!r} of agent {name!r} not found")
    return str(number)


class AgentVersions:
    """Foundry's agents and their versions, in the store's `agents` and `versions` tables."""

    def __init__(self, database: StoreDatabase) -> None:
        self._db = database

    def create_version(
        self,
        name: str,
        *,
        definition: Mapping[str, Any],
        metadata: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> AgentVersion:
        """Append a new immutable version to `name` (creating the agent), numbered next."""
        check_agent_name(name)
        metadata = dict(metadata or {})
        check_metadata(metadata)
        if description is not None and not isinstance(description, str):
            raise invalid_parameters("description must be a string")
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise invalid_parameters(
                f"description is {len(description)} characters; at most {MAX_DESCRIPTION}"
            )
        if not isinstance(definition, Mapping):
            raise invalid_parameters("definition must be an object")
        check_definition(definition)
        try:
            definition_json = json.dumps(dict(definition), separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise invalid_parameters(f"definition is not JSON: {exc}") from None
        metadata_json = json.dumps(metadata, separators=(",", ":"))
        now = int(time.time())
        with self._db.write() as tx:
            row = tx.execute(
                "SELECT last_version, latest FROM agents WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                number = 1
                seq = tx.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM agents").fetchone()[0]
                tx.execute(
                    "INSERT INTO agents (name, seq, last_version, latest, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, seq, number, number, now),
                )
            else:
                number = row[0] + 1
                if row[1] is None:  # recreated after deletion: it moves to the end of lists
                    seq = tx.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM agents").fetchone()[0]
                    tx.execute(
                        "UPDATE agents SET last_version = ?, latest = ?, seq = ?, created_at = ? "
                        "WHERE name = ?",
                        (number, number, seq, now, name),
                    )
                else:
                    tx.execute(
                        "UPDATE agents SET last_version = ?, latest = ? WHERE name = ?",
                        (number, number, name),
                    )
            tx.execute(
                "INSERT INTO versions (name, version, created_at, description, metadata, "
                "definition) VALUES (?, ?, ?, ?, ?, ?)",
                (name, number, now, description, metadata_json, definition_json),
            )
        return AgentVersion(
            name=name,
            version=str(number),
            definition=json.loads(definition_json),
            metadata=metadata,
            description=description,
            created_at=now,
        )

    def get_version(self, name: str, version: str) -> AgentVersion | None:
        number = parse_version(version)
        if number is None:
            return None
        row = (
            self._db.connection()
            .execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE v.name = ? AND v.version = ?",
                (name, number),
            )
            .fetchone()
        )
        return None if row is None else _version_from_row(row)

    def latest_version(self, name: str) -> AgentVersion | None:
        row = (
            self._db.connection()
            .execute(
                f"SELECT {_VERSION_COLUMNS} FROM agents a JOIN versions v "
                "ON v.name = a.name AND v.version = a.latest WHERE a.name = ?",
                (name,),
            )
            .fetchone()
        )
        return None if row is None else _version_from_row(row)

    def list_latest(
        self,
        *,
        limit: int | None = None,
        order: Order = "asc",
        after: str | None = None,
        before: str | None = None,
        kind: str | None = None,
    ) -> Page[AgentVersion]:
        """The latest version of every agent, by creation order; cursors are agent names."""
        conn = self._db.connection()
        where = ["a.latest IS NOT NULL"]
        params: list[Any] = []
        for cursor, forward in ((after, True), (before, False)):
            if cursor is None:
                continue
            row = conn.execute("SELECT seq FROM agents WHERE name = ?", (cursor,)).fetchone()
            if row is None:
                return Page([], False)
            op = ">" if forward == (order == "asc") else "<"
            where.append(f"a.seq {op} ?")
            params.append(row[0])
        if kind is not None:
            where.append("json_extract(v.definition, '$.kind') = ?")
            params.append(kind)
        sql = (
            f"SELECT {_VERSION_COLUMNS} FROM agents a JOIN versions v "
            "ON v.name = a.name AND v.version = a.latest "
            f"WHERE {' AND '.join(where)} ORDER BY a.seq {'ASC' if order == 'asc' else 'DESC'}"
        )
        return fetch_page(conn, sql, params, limit, _version_from_row)

    def list_versions(
        self,
        name: str,
        *,
        limit: int | None = None,
        order: Order = "asc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[AgentVersion]:
        """Versions of `name` by number; NotFoundError when there is no such agent.

        Cursors are version ids (`name:version`) or bare version numbers.
        """
        conn = self._db.connection()
        row = conn.execute("SELECT latest FROM agents WHERE name = ?", (name,)).fetchone()
        if row is None or row[0] is None:
            raise not_found(f"agent {name!r} not found")
        where = ["v.name = ?"]
        params: list[Any] = [name]
        for cursor, forward in ((after, True), (before, False)):
            if cursor is None:
                continue
            number = parse_version(cursor.rpartition(":")[2])
            if number is None:
                raise invalid_parameters(f"invalid cursor {cursor!r}")
            op = ">" if forward == (order == "asc") else "<"
            where.append(f"v.version {op} ?")
            params.append(number)
        sql = (
            f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE {' AND '.join(where)} "
            f"ORDER BY v.version {'ASC' if order == 'asc' else 'DESC'}"
        )
        return fetch_page(conn, sql, params, limit, _version_from_row)

    def delete_agent(self, name: str) -> None:
        """Delete the agent and all its versions (its version counter is kept)."""
        with self._db.write() as tx:
            row = tx.execute("SELECT latest FROM agents WHERE name = ?", (name,)).fetchone()
            if row is None or row[0] is None:
                raise not_found(f"agent {name!r} not found")
            tx.execute("DELETE FROM versions WHERE name = ?", (name,))
            tx.execute("UPDATE agents SET latest = NULL WHERE name = ?", (name,))

    def delete_version(self, name: str, version: str) -> None:
        """Delete one version; deleting the last one deletes the agent."""
        number = parse_version(version)
        with self._db.write() as tx:
            deleted = (
                number is not None
                and tx.execute(
                    "DELETE FROM versions WHERE name = ? AND version = ?", (name, number)
                ).rowcount
                == 1
            )
            if not deleted:
                raise not_found(f"version {version!r} of agent {name!r} not found")
            tx.execute(
                "UPDATE agents SET latest = "
                "(SELECT MAX(version) FROM versions WHERE name = ?) WHERE name = ?",
                (name, name),
            )
