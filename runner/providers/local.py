"""The `local` provider: an embedded store with Foundry's agent semantics, persisted in SQLite.

Role in the flow: the default provider for development, tests and `runner test`; the store that
`runner emulator` serves over Foundry's REST protocol. plan/apply and the runtime talk to it
through the same `Provider` Protocol as to real Foundry.

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
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from runner.providers.base import (
    AgentVersion,
    NotFoundError,
    ProviderError,
    Reply,
    TransientError,
)
from runner.sqlitefile import prepare_database

AGENT_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_DESCRIPTION = 512
MAX_PAGE = 100
ECHO_WORDS = 12

Order = Literal["asc", "desc"]
T = TypeVar("T")

_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    metadata TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    words_total INTEGER NOT NULL,
    agent_name TEXT,
    agent_version TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    agent_name TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    text TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
"""

_NO_AGENT = (None, None, None, None)  # a user item has no agent or tokens
_VERSION_COLUMNS = "v.name, v.version, v.created_at, v.description, v.metadata, v.definition"


def invalid_parameters(message: str) -> ProviderError:
    """The error Foundry answers a malformed request with (HTTP 400, `invalid_parameters`)."""
    return ProviderError(message, code="invalid_parameters", status=400)


def not_found(message: str) -> NotFoundError:
    return NotFoundError(message, code="not_found", status=404)


def check_agent_name(name: str) -> None:
    if not isinstance(name, str) or not AGENT_NAME_RE.match(name):
        raise invalid_parameters(
            f"invalid agent name {name!r}: must start and end with alphanumeric characters, "
            "can contain hyphens in the middle, and must not exceed 63 characters"
        )


def check_metadata(metadata: Mapping[str, str]) -> None:
    if len(metadata) > MAX_METADATA_PAIRS:
        raise invalid_parameters(
            f"metadata has {len(metadata)} pairs; at most {MAX_METADATA_PAIRS} are allowed"
        )
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise invalid_parameters(f"metadata {key!r}: keys and values must be strings")
        if len(key) > MAX_METADATA_KEY:
            raise invalid_parameters(
                f"metadata key {key[:20]!r}... is {len(key)} characters; "
                f"at most {MAX_METADATA_KEY} are allowed"
            )
        if len(value) > MAX_METADATA_VALUE:
            raise invalid_parameters(
                f"metadata value of {key!r} is {len(value)} characters; "
                f"at most {MAX_METADATA_VALUE} are allowed"
            )


def count_words(text: str) -> int:
    return len(text.split())


def compute_reply(agent_name: str, agent_version: str, text: str) -> str:
    """The deterministic local reply: names the agent and version, echoes the message's start."""
    words = text.split()
    echo = " ".join(words[:ECHO_WORDS]) if words else "(empty message)"
    if len(words) > ECHO_WORDS:
        echo += " ..."
    return f"[{agent_name} v{agent_version}] {echo}"


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; `has_more` says whether a further page exists."""

    items: list[T]
    has_more: bool = False


@dataclass(frozen=True)
class Conversation:
    id: str
    created_at: int
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConversationItem:
    id: str
    conversation_id: str
    type: str
    role: str
    content: str
    created_at: int


@dataclass(frozen=True)
class StoredResponse:
    id: str
    conversation_id: str | None
    agent_name: str
    agent_version: str
    text: str
    input_tokens: int
    output_tokens: int
    created_at: int
    input_item_id: str | None = None
    output_item_id: str | None = None

    def reply(self) -> Reply:
        return Reply(
            text=self.text,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            response_id=self.id,
        )


class _Connection(sqlite3.Connection):
    """A plain connection that can be weakly referenced (the base class cannot)."""


def _new_id(prefix: str) -> str:
    """Unique across processes and roughly time-ordered, so inserts append to the B-tree."""
    return f"{prefix}_{time.time_ns():016x}{os.urandom(4).hex()}"


def _item_id(conversation_id: str, seq: int) -> str:
    return f"msg_{conversation_id.partition('_')[2]}_{seq}"


def _response_id(conversation_id: str, seq: int) -> str:
    return f"resp_{conversation_id.partition('_')[2]}_{seq}"


def _split_id(item_id: str) -> tuple[str, int] | None:
    """(conversation id, seq) encoded in an item or response id, or None."""
    _prefix, _, rest = item_id.partition("_")
    body, _, seq = rest.rpartition("_")
    return (f"conv_{body}", int(seq)) if body and seq.isdigit() else None


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


def _parse_version(version: str | int) -> int | None:
    text = str(version)
    return int(text) if text.isdigit() else None


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


class LocalProvider:
    """The Provider Protocol served in-process by a LocalStore (no network, no model)."""

    name = "local"
    remote = False

    def __init__(self, store: LocalStore, *, owns_store: bool = False) -> None:
        self.store = store
        self._owns_store = owns_store
        self._count_lock = threading.Lock()
        self._count = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> LocalProvider:
        """A provider on its own store at `path`, closed with the provider."""
        return cls(LocalStore(path), owns_store=True)

    def _tick(self) -> None:
        with self._count_lock:
            self._count += 1

    def list_agents(self) -> list[AgentVersion]:
        self._tick()
        return self.store.list_latest().items

    def get_agent(self, name: str) -> AgentVersion | None:
        self._tick()
        return self.store.latest_version(name)

    def list_versions(self, name: str) -> list[AgentVersion]:
        self._tick()
        try:
            return self.store.list_versions(name).items
        except NotFoundError:
            return []

    def create_version(
        self,
        name: str,
        *,
        definition: Mapping[str, Any],
        metadata: Mapping[str, str],
        description: str | None = None,
    ) -> AgentVersion:
        self._tick()
        return self.store.create_version(
            name, definition=definition, metadata=metadata, description=description
        )

    def delete_agent(self, name: str) -> None:
        self._tick()
        self.store.delete_agent(name)

    def delete_version(self, name: str, version: str) -> None:
        self._tick()
        self.store.delete_version(name, version)

    def create_conversation(self, *, metadata: Mapping[str, str] | None = None) -> str:
        self._tick()
        return self.store.create_conversation(metadata=metadata).id

    def respond(
        self, *, conversation_id: str, agent_name: str, agent_version: str | None, text: str
    ) -> Reply:
        self._tick()
        return self.store.respond(
            conversation_id=conversation_id,
            agent_name=agent_name,
            agent_version=agent_version,
            text=text,
        ).reply()

    def request_count(self) -> int:
        return self._count

    def close(self) -> None:
        if self._owns_store:
            self.store.close()
