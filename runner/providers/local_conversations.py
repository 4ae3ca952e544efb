"""The local store's conversations and responses: messages in, deterministic replies out.

Role in the flow: the conversation half of `LocalStore`. The runtime's sessions reach it through
`LocalProvider.create_conversation`/`respond`; the emulator serves it as
`/openai/v1/conversations` and `/openai/v1/responses`.

Invariants:
- A conversation's items live in one clustered B-tree keyed (conversation_id, seq), and each item
  carries the running word count of the conversation, so a turn writes one place and reads its
  context in O(log n). Item and response ids encode (conversation, seq) (`local_records`), so a
  lookup needs no extra index.
- No model is called: a reply is `[<agent> v<version>] <echo of the message>`
  (`local_replies.compute_reply`), with tokens estimated from word counts (input = words of the
  conversation so far plus the message, output = words of the reply), so token budgets can be
  tested. A version with structured inputs answers with the request's values put into its
  instructions (`local_inputs`), and the reply ends `[session: <the instruction lines that
  hold an input, filled>]`, so what a session's preferences change shows offline.
- `respond` writes the user item and the reply item in one transaction, after the agent version
  was found in it; an unknown agent, version or conversation is NotFoundError and writes nothing.
  A response without a conversation stands alone (its own table; input tokens = the message's
  words).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from runner.providers.base import fill_placeholders
from runner.providers.local_agents import resolve_version
from runner.providers.local_database import StoreDatabase, fetch_page
from runner.providers.local_inputs import InputsDefinition, resolve_inputs, session_lines
from runner.providers.local_records import (
    Conversation,
    ConversationItem,
    Order,
    Page,
    StoredResponse,
    make_item_id,
    make_response_id,
    new_id,
    split_id,
)
from runner.providers.local_replies import (
    check_metadata,
    compute_reply,
    count_words,
    invalid_parameters,
    not_found,
)

__all__ = ["CONVERSATIONS_SCHEMA", "Conversations"]

CONVERSATIONS_SCHEMA = """
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
_INPUTS_CACHE = 4096


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
                make_item_id(conversation_id, seq), conversation_id, "message", role, text, now
            )
        )
    tx.executemany(
        "INSERT INTO items (conversation_id, seq, role, content, created_at, words_total) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    return made


class Conversations:
    """Conversations, their items and the responses in them, in the store's tables."""

    def __init__(self, database: StoreDatabase) -> None:
        self._db = database
        # (agent, version) -> its structured inputs: versions are immutable, numbers never reused
        self._inputs: dict[tuple[str, str], InputsDefinition | None] = {}
        self._fills: dict[Any, tuple[str | None, str]] = {}

    def _filled(
        self,
        declared: InputsDefinition | None,
        name: str,
        version: str,
        supplied: Mapping[str, Any] | None,
    ) -> tuple[str | None, str]:
        """(the instructions filled, the reply's session lines) for one request: computed once
        per distinct (version, inputs), as a session sends the same inputs every turn."""
        try:
            key: Any = (
                name,
                version,
                frozenset((k, type(v), v) for k, v in (supplied or {}).items()),
            )
        except TypeError:  # a list or an object value: not cached
            key = None
        found = self._fills.get(key) if key is not None else None
        if found is not None:
            return found
        values = resolve_inputs(declared, supplied)
        result: tuple[str | None, str] = (None, "")
        if declared is not None:
            result = (
                fill_placeholders(declared.instructions, values),
                session_lines(declared.instructions, values),
            )
        if key is not None:
            if len(self._fills) >= _INPUTS_CACHE:
                self._fills.clear()
            self._fills[key] = result
        return result

    def _inputs_of(
        self, tx: sqlite3.Connection, name: str, version: str
    ) -> InputsDefinition | None:
        key = (name, version)
        if key in self._inputs:
            return self._inputs[key]
        row = tx.execute(
            "SELECT definition FROM versions WHERE name = ? AND version = ?", (name, int(version))
        ).fetchone()
        found = InputsDefinition.of(json.loads(row[0])) if row is not None else None
        if len(self._inputs) >= _INPUTS_CACHE:
            self._inputs.clear()
        self._inputs[key] = found
        return found

    # ------------------------------------------------------------------ conversations

    def create_conversation(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        items: Sequence[tuple[str, str]] = (),
    ) -> Conversation:
        """A new conversation, optionally seeded with `(role, text)` message items."""
        metadata = dict(metadata or {})
        check_metadata(metadata)
        conversation = Conversation(new_id("conv"), int(time.time()), metadata)
        with self._db.write() as tx:
            tx.execute(
                "INSERT INTO conversations (id, created_at, metadata) VALUES (?, ?, ?)",
                (
                    conversation.id,
                    conversation.created_at,
                    json.dumps(metadata, separators=(",", ":")),
                ),
            )
            if items:
                _append_items(tx, conversation.id, (0, 0), items, conversation.created_at)
        return conversation

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = (
            self._db.connection()
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
        with self._db.write() as tx:
            last = _last_item(tx, conversation_id)
            return _append_items(tx, conversation_id, last, items, now) if items else []

    def list_items(
        self,
        conversation_id: str,
        *,
        limit: int | None = None,
        order: Order = "asc",
        after: str | None = None,
    ) -> Page[ConversationItem]:
        """Items of a conversation by position; the cursor is an item id."""
        conn = self._db.connection()
        if self.get_conversation(conversation_id) is None:
            raise not_found(f"conversation {conversation_id!r} not found")
        where = ["conversation_id = ?"]
        params: list[Any] = [conversation_id]
        if after is not None:
            split = split_id(after)
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
            return ConversationItem(
                make_item_id(conv, seq), conv, "message", role, content, created_at
            )

        return fetch_page(conn, sql, params, limit, convert)

    def delete_conversation(self, conversation_id: str) -> None:
        with self._db.write() as tx:
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
        structured_inputs: Mapping[str, Any] | None = None,
    ) -> StoredResponse:
        """Answer `text` as the agent version (latest when None); record both turns.

        NotFoundError for an unknown agent, version or conversation (nothing is written then).
        Without a conversation the response stands alone (input tokens = the message's words).
        `structured_inputs` fill the version's `{{name}}` placeholders (ProviderError 400
        `invalid_payload` for an undeclared name or a missing required one).
        """
        now = int(time.time())
        instructions: str | None = None
        with self._db.write() as tx:
            version = resolve_version(tx, agent_name, agent_version)
            reply = compute_reply(agent_name, version, text)
            declared = self._inputs_of(tx, agent_name, version)
            if declared is not None or structured_inputs:
                instructions, shown = self._filled(declared, agent_name, version, structured_inputs)
                if shown:
                    reply += f" [session: {shown}]"
            in_words = count_words(text)
            out_words = count_words(reply)
            if conversation_id is None:
                response = StoredResponse(
                    new_id("resp"),
                    None,
                    agent_name,
                    version,
                    reply,
                    in_words,
                    out_words,
                    now,
                    instructions=instructions,
                )
                tx.execute(
                    "INSERT INTO responses (id, agent_name, agent_version, text, input_tokens, "
                    "output_tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (response.id, agent_name, version, reply, in_words, out_words, now),
                )
                return response
            seq, words = _last_item(tx, conversation_id)
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
            id=make_response_id(conversation_id, seq + 2),
            conversation_id=conversation_id,
            agent_name=agent_name,
            agent_version=version,
            text=reply,
            input_tokens=input_tokens,
            output_tokens=out_words,
            created_at=now,
            input_item_id=make_item_id(conversation_id, seq + 1),
            output_item_id=make_item_id(conversation_id, seq + 2),
            instructions=instructions,
        )

    def get_response(self, response_id: str) -> StoredResponse | None:
        conn = self._db.connection()
        split = split_id(response_id) if response_id.startswith("resp_") else None
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
                make_item_id(conversation_id, seq - 1),
                make_item_id(conversation_id, seq),
            )
        row = conn.execute(
            "SELECT id, agent_name, agent_version, text, input_tokens, output_tokens, "
            "created_at FROM responses WHERE id = ?",
            (response_id,),
        ).fetchone()
        return None if row is None else StoredResponse(row[0], None, *row[1:])
