"""The local store's conversations and their items.

Role in the flow: the conversation half of `LocalStore` (responses are `local_responses`). The
runtime's sessions reach it through `LocalProvider.create_conversation`; the emulator serves it
as `/openai/v1/conversations`.

Invariants:
- A conversation's items live in one clustered B-tree keyed (conversation_id, seq), and each item
  carries the running word count of the conversation, so a turn writes one place and reads its
  context in O(log n). Item and response ids encode (conversation, seq) (`local_records`), so a
  lookup needs no extra index.
- An item's `role` column is its role for a message (`user`, `assistant`) and its type for a
  function call or output (`local_calls`); listing gives each its type.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from runner.providers.local_calls import CALL_ROLE, OUTPUT_ROLE
from runner.providers.local_database import StoreDatabase, fetch_page
from runner.providers.local_records import (
    Conversation,
    ConversationItem,
    Order,
    Page,
    make_item_id,
    new_id,
    split_id,
)
from runner.providers.local_replies import (
    check_metadata,
    count_words,
    invalid_parameters,
    not_found,
)

__all__ = ["CONVERSATIONS_SCHEMA", "Conversations", "insert_conversation", "last_item"]

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


def last_item(tx: sqlite3.Connection, conversation_id: str) -> tuple[int, int, str | None]:
    """(seq, running word count, role) of the last item; NotFoundError for no conversation."""
    row = tx.execute(
        "SELECT i.seq, i.words_total, i.role FROM conversations c LEFT JOIN items i "
        "ON i.conversation_id = c.id WHERE c.id = ? ORDER BY i.seq DESC LIMIT 1",
        (conversation_id,),
    ).fetchone()
    if row is None:
        raise not_found(f"conversation {conversation_id!r} not found")
    return (row[0] or 0, row[1] or 0, row[2])


def _append_items(
    tx: sqlite3.Connection,
    conversation_id: str,
    last: tuple[int, int, str | None],
    items: Sequence[tuple[str, str]],
    now: int,
) -> list[ConversationItem]:
    seq, words, _role = last
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


def insert_conversation(
    tx: sqlite3.Connection, metadata: Mapping[str, str], now: int
) -> Conversation:
    """A new, empty conversation row (in the caller's transaction)."""
    conversation = Conversation(new_id("conv"), now, dict(metadata))
    tx.execute(
        "INSERT INTO conversations (id, created_at, metadata) VALUES (?, ?, ?)",
        (conversation.id, now, json.dumps(dict(metadata), separators=(",", ":"))),
    )
    return conversation


class Conversations:
    """Conversations, their items and the responses in them, in the store's tables."""

    def __init__(self, database: StoreDatabase) -> None:
        self._db = database

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
        with self._db.write() as tx:
            conversation = insert_conversation(tx, metadata, int(time.time()))
            if items:
                _append_items(tx, conversation.id, (0, 0, None), items, conversation.created_at)
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
            last = last_item(tx, conversation_id)
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
            kind = role if role in (CALL_ROLE, OUTPUT_ROLE) else "message"
            return ConversationItem(make_item_id(conv, seq), conv, kind, role, content, created_at)

        return fetch_page(conn, sql, params, limit, convert)

    def delete_conversation(self, conversation_id: str) -> None:
        with self._db.write() as tx:
            if (
                tx.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount
                != 1
            ):
                raise not_found(f"conversation {conversation_id!r} not found")
            tx.execute("DELETE FROM items WHERE conversation_id = ?", (conversation_id,))
