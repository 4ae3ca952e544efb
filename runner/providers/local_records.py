"""The LocalStore's records: its SQLite schema, row types, pages and id encoding.

Role in the flow: the value types the store hands out (`Page`, `Conversation`,
`ConversationItem`, `StoredResponse`) and that the emulator turns into Foundry's JSON, plus the
schema and the helpers that build and decode ids and rows.

Invariants: records are frozen dataclasses (a caller never mutates store state through them).
Ids are unique across processes and roughly time-ordered (`_new_id`); an item or response id
encodes its conversation and sequence number (`_item_id`, `_response_id`, `_split_id`), so a
lookup needs no extra index. Pages hold at most `MAX_PAGE` items.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from runner.providers.base import AgentVersion, Reply

MAX_PAGE = 100

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
