"""LocalStore: Foundry's agents, conversations and responses, persisted in one SQLite file.

Role in the flow: the store behind the `local` provider (the default for development, tests
and `runner test`) and the store that `runner emulator` serves over Foundry's REST protocol.
plan/apply and the runtime reach it through `LocalProvider` (in `local`), which implements the
same `Provider` Protocol as to real Foundry.

Invariants (mirroring Foundry's agents API, api-version v1):
- An agent is keyed by its name (`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`). Versions are
  immutable and numbered per name "1", "2", ...; a number is never reused, not even after the
  version or the whole agent was deleted (the counter row outlives the agent).
- Metadata (str -> str, at most 16 pairs, key <= 64 chars, value <= 512) and description
  (<= 512) belong to a version. Violations are `ProviderError(code="invalid_parameters",
  status=400)`, as Foundry answers.
- Deleting the last remaining version deletes the agent (an agent always has a latest version).
- Every write is one SQLite transaction, committed before the call returns (WAL journal,
  synchronous=NORMAL: durable across process crashes). Writers take the lock up front
  (`BEGIN IMMEDIATE`), so concurrent `create_version` calls from threads or processes are
  serialised and never hand out the same number; `busy_timeout` makes other processes wait.
- Each thread uses its own connection; in-process writers also share a lock, which is cheaper
  than SQLite's sleeping busy handler when threads contend.
- Replies are deterministic and call no model: `[<agent> v<version>] <echo of the message>`,
  with tokens estimated from word counts (input = words of the conversation so far plus the
  message, output = words of the reply), so token budgets can be tested.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from runner.providers.base import AgentVersion, ProviderError, TransientError
from runner.providers.local_records import (
    _NO_AGENT,
    _SCHEMA,
    _VERSION_COLUMNS,
    Conversation,
    ConversationItem,
    Order,
    Page,
    StoredResponse,
    _Connection,
    _item_id,
    _new_id,
    _parse_version,
    _response_id,
    _split_id,
    _version_from_row,
)
from runner.providers.local_replies import (
    MAX_DESCRIPTION,
    check_agent_name,
    check_metadata,
    compute_reply,
    count_words,
    invalid_parameters,
    not_found,
)
from runner.sqlitefile import prepare_database


class LocalStore:
    """Foundry's agents, conversations and responses, persisted in one SQLite file.

    Thread-safe and safe across processes sharing the file. `close()` closes every connection
    this object opened; using the store afterwards raises ProviderError. A writer still blocked
    after `busy_timeout_ms` gets TransientError (code `busy`).

    `synchronous="NORMAL"` (the default) makes each commit durable against a crash of any
    process; `"FULL"` also against power loss, at about 20x the cost per write (an fsync each).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = 30_000,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_ms / 1000
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self._closed = False
        conn = self._conn()
        prepare_database(conn, "")  # WAL, race-safe; the schema below also sets user_version
        with self._write() as tx:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    tx.execute(statement)
            tx.execute("PRAGMA user_version=1")

    # ------------------------------------------------------------------ plumbing

    def _conn(self) -> sqlite3.Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise ProviderError(f"the local store {self.path} is closed")
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
            cached_statements=256,
        )
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
        with self._connections_lock:
            self._connections.add(conn)
        self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the write lock from the start; committed on exit."""
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # busy beyond busy_timeout: another writer
                raise TransientError(
                    f"the local store {self.path} is busy: {exc}", code="busy"
                ) from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ agents

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
        try:
            definition_json = json.dumps(dict(definition), separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise invalid_parameters(f"definition is not JSON: {exc}") from None
        metadata_json = json.dumps(metadata, separators=(",", ":"))
        now = int(time.time())
        with self._write() as tx:
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
        number = _parse_version(version)
        if number is None:
            return None
        row = (
            self._conn()
            .execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE v.name = ? AND v.version = ?",
                (name, number),
            )
            .fetchone()
        )
        return None if row is None else _version_from_row(row)

    def latest_version(self, name: str) -> AgentVersion | None:
        row = (
            self._conn()
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
        conn = self._conn()
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
        return self._page(conn, sql, params, limit, _version_from_row)

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
        conn = self._conn()
        row = conn.execute("SELECT latest FROM agents WHERE name = ?", (name,)).fetchone()
        if row is None or row[0] is None:
            raise not_found(f"agent {name!r} not found")
        where = ["v.name = ?"]
        params: list[Any] = [name]
        for cursor, forward in ((after, True), (before, False)):
            if cursor is None:
                continue
            number = _parse_version(cursor.rpartition(":")[2])
            if number is None:
                raise invalid_parameters(f"invalid cursor {cursor!r}")
            op = ">" if forward == (order == "asc") else "<"
            where.append(f"v.version {op} ?")
            params.append(number)
        sql = (
            f"SELECT {_VERSION_COLUMNS} FROM versions v WHERE {' AND '.join(where)} "
            f"ORDER BY v.version {'ASC' if order == 'asc' else 'DESC'}"
        )
        return self._page(conn, sql, params, limit, _version_from_row)

    @staticmethod
    def _page(
        conn: sqlite3.Connection,
        sql: str,
        params: list[Any],
        limit: int | None,
        convert: Any,
    ) -> Page[Any]:
        if limit is not None:
            sql += " LIMIT ?"
            params = [*params, limit + 1]
        rows = conn.execute(sql, params).fetchall()
        has_more = limit is not None and len(rows) > limit
        if has_more:
            rows = rows[:limit]
        return Page([convert(r) for r in rows], has_more)

    def delete_agent(self, name: str) -> None:
        """Delete the agent and all its versions (its version counter is kept)."""
        with self._write() as tx:
            row = tx.execute("SELECT latest FROM agents WHERE name = ?", (name,)).fetchone()
            if row is None or row[0] is None:
                raise not_found(f"agent {name!r} not found")
            tx.execute("DELETE FROM versions WHERE name = ?", (name,))
            tx.execute("UPDATE agents SET latest = NULL WHERE name = ?", (name,))

    def delete_version(self, name: str, version: str) -> None:
        """Delete one version; deleting the last one deletes the agent."""
        number = _parse_version(version)
        with self._write() as tx:
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

    # ------------------------------------------------------------------ conversations
    #
    # A conversation's items live in one clustered B-tree keyed (conversation_id, seq), and each
    # item carries the running word count of the conversation, so a turn writes one place and
    # reads its context in O(log n). Item and response ids encode (conversation, seq).

    def create_conversation(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        items: Sequence[tuple[str, str]] = (),
    ) -> Conversation:
        """A new conversation, optionally seeded with `(role, text)` message items."""
        metadata = dict(metadata or {})
        check_metadata(metadata)
        conversation = Conversation(_new_id("conv"), int(time.time()), metadata)
        with self._write() as tx:
            tx.execute(
                "INSERT INTO conversations (id, created_at, metadata) VALUES (?, ?, ?)",
                (
                    conversation.id,
                    conversation.created_at,
                    json.dumps(metadata, separators=(",", ":")),
                ),
            )
            if items:
                self._append_items(tx, conversation.id, (0, 0), items, conversation.created_at)
        return conversation

    @staticmethod
    def _last_item(tx: sqlite3.Connection, conversation_id: str) -> tuple[int, int]:
        """(seq, running word count) of the last item; NotFoundError for no conversation."""
        row = tx.execute(
            "SELECT i.seq, i.words_total FROM conversations c LEFT JOIN items i "
            "ON i.conversation_id = c.id WHERE c.id = ? ORDER BY i.seq DESC LIMIT 1",
            (conversation_id,),
        ).fetchone()
        if row is None:
            raise not_found(f"conversation {conversation_id!r} not found")
        return (row[0] or 0, row[1] or 0)

    @staticmethod
    def _append_items(
        tx: sqlite3.Connection,
        conversation_id: str,
        last: tuple[int, int],
        items: Sequence[tuple[str, str]],
        now: int,
    ) -> list[ConversationItem]:
        seq, words = last
        rows = []
        made = []
        for role, text in items:
            seq += 1
            words += count_words(text)
            rows.append((conversation_id, seq, role, text, now, words))
            made.append(
                ConversationItem(
                    _item_id(conversation_id, seq), conversation_id, "message", role, text, now
                )
            )
        tx.executemany(
            "INSERT INTO items (conversation_id, seq, role, content, created_at, words_total) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        return made

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = (
            self._conn()
            .execute(
                "SELECT id, created_at, metadata FROM conversations WHERE id = ?",
                (conversation_id,),
            )
            .fetchone()
        )
        return None if row is None else Conversation(row[0], row[1], json.loads(row[2]))

    def add_items(
        self, conversation_id: str, items: Sequence[tuple[str, str]]
    ) -> list[ConversationItem]:
        """Append `(role, text)` message items; NotFoundError for an unknown conversation."""
        now = int(time.time())
        with self._write() as tx:
            last = self._last_item(tx, conversation_id)
            return self._append_items(tx, conversation_id, last, items, now) if items else []

    def list_items(
        self,
        conversation_id: str,
        *,
        limit: int | None = None,
        order: Order = "asc",
        after: str | None = None,
    ) -> Page[ConversationItem]:
        """Items of a conversation by position; the cursor is an item id."""
        conn = self._conn()
        if self.get_conversation(conversation_id) is None:
            raise not_found(f"conversation {conversation_id!r} not found")
        where = ["conversation_id = ?"]
        params: list[Any] = [conversation_id]
        if after is not None:
            split = _split_id(after)
            if split is None or split[0] != conversation_id:
                raise invalid_parameters(f"invalid cursor {after!r}")
            where.append("seq > ?" if order == "asc" else "seq < ?")
            params.append(split[1])
        sql = (
            "SELECT conversation_id, seq, role, content, created_at FROM items "
            f"WHERE {' AND '.join(where)} ORDER BY seq {'ASC' if order == 'asc' else 'DESC'}"
        )

        def convert(row: Sequence[Any]) -> ConversationItem:
            conv, seq, role, content, created_at = row
            return ConversationItem(_item_id(conv, seq), conv, "message", role, content, created_at)

        return self._page(conn, sql, params, limit, convert)

    def delete_conversation(self, conversation_id: str) -> None:
        with self._write() as tx:
            if (
                tx.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount
                != 1
            ):
                raise not_found(f"conversation {conversation_id!r} not found")
            tx.execute("DELETE FROM items WHERE conversation_id = ?", (conversation_id,))

    # ------------------------------------------------------------------ responses

    def respond(
        self,
        *,
        conversation_id: str | None,
        agent_name: str,
        agent_version: str | None,
        text: str,
    ) -> StoredResponse:
        """Answer `text` as the agent version (latest when None); record both turns.

        NotFoundError for an unknown agent, version or conversation (nothing is written then).
        Without a conversation the response stands alone (input tokens = the message's words).
        """
        now = int(time.time())
        with self._write() as tx:
            if agent_version is None:
                row = tx.execute(
                    "SELECT latest FROM agents WHERE name = ?", (agent_name,)
                ).fetchone()
                if row is None or row[0] is None:
                    raise not_found(f"agent {agent_name!r} not found")
                version = str(row[0])
            else:
                number = _parse_version(agent_version)
                if (
                    number is None
                    or tx.execute(
                        "SELECT 1 FROM versions WHERE name = ? AND version = ?",
                        (agent_name, number),
                    ).fetchone()
                    is None
                ):
                    raise not_found(f"version {agent_version!r} of agent {agent_name!r} not found")
                version = str(number)
            reply = compute_reply(agent_name, version, text)
            in_words = count_words(text)
            out_words = count_words(reply)
            if conversation_id is None:
                response = StoredResponse(
                    _new_id("resp"), None, agent_name, version, reply, in_words, out_words, now
                )
                tx.execute(
                    "INSERT INTO responses (id, agent_name, agent_version, text, input_tokens, "
                    "output_tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (response.id, agent_name, version, reply, in_words, out_words, now),
                )
                return response
            seq, words = self._last_item(tx, conversation_id)
            input_tokens = words + in_words
            tx.executemany(
                "INSERT INTO items (conversation_id, seq, role, content, created_at, "
                "words_total, agent_name, agent_version, input_tokens, output_tokens) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (conversation_id, seq + 1, "user", text, now, input_tokens, *_NO_AGENT),
                    (
                        conversation_id,
                        seq + 2,
                        "assistant",
                        reply,
                        now,
                        input_tokens + out_words,
                        agent_name,
                        version,
                        input_tokens,
                        out_words,
                    ),
                ),
            )
        return StoredResponse(
            id=_response_id(conversation_id, seq + 2),
            conversation_id=conversation_id,
            agent_name=agent_name,
            agent_version=version,
            text=reply,
            input_tokens=input_tokens,
            output_tokens=out_words,
            created_at=now,
            input_item_id=_item_id(conversation_id, seq + 1),
            output_item_id=_item_id(conversation_id, seq + 2),
        )

    def get_response(self, response_id: str) -> StoredResponse | None:
        conn = self._conn()
        split = _split_id(response_id) if response_id.startswith("resp_") else None
        if split is not None:
            conversation_id, seq = split
            row = conn.execute(
                "SELECT agent_name, agent_version, content, input_tokens, output_tokens, "
                "created_at FROM items WHERE conversation_id = ? AND seq = ? "
                "AND agent_name IS NOT NULL",
                (conversation_id, seq),
            ).fetchone()
            if row is None:
                return None
            name, version, text, input_tokens, output_tokens, created_at = row
            return StoredResponse(
                response_id,
                conversation_id,
                name,
                version,
                text,
                input_tokens,
                output_tokens,
                created_at,
                _item_id(conversation_id, seq - 1),
                _item_id(conversation_id, seq),
            )
        row = conn.execute(
            "SELECT id, agent_name, agent_version, text, input_tokens, output_tokens, "
            "created_at FROM responses WHERE id = ?",
            (response_id,),
        ).fetchone()
        return None if row is None else StoredResponse(row[0], None, *row[1:])
