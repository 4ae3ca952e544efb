"""The LocalStore's records: the values it hands out, pages, and how its ids are made.

Role in the flow: the value types the store returns (`Page`, `Conversation`,
`ConversationItem`, `StoredResponse`), which `LocalProvider` turns into a `Reply` and the
emulator into Foundry's JSON, and the ids and version numbers the store's tables use.

Invariants: records are frozen dataclasses (a caller never mutates store state through them).
Ids are unique across processes and roughly time-ordered (`new_id`); an item or response id
encodes its conversation and sequence number (`make_item_id`, `make_response_id`, `split_id`),
so a lookup needs no extra index. A listing page holds at most `MAX_PAGE` items (the emulator's
`limit`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from runner.providers.base import Reply, ToolCall

__all__ = [
    "MAX_PAGE",
    "Conversation",
    "ConversationItem",
    "Order",
    "Page",
    "StoredResponse",
    "make_item_id",
    "make_response_id",
    "new_id",
    "parse_version",
    "split_id",
]

MAX_PAGE = 100

Order = Literal["asc", "desc"]
T = TypeVar("T")


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
    instructions: str | None = None  # filled with the request's structured inputs
    # A response asking for function calls: its calls and their item ids (then `text` is '').
    tool_calls: tuple[ToolCall, ...] = ()
    call_item_ids: tuple[str, ...] = ()
    standalone: bool = False  # the request named no conversation (chained, if at all, by id)

    def reply(self) -> Reply:
        return Reply(
            text=self.text,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            response_id=self.id,
            tool_calls=self.tool_calls,
        )


def new_id(prefix: str) -> str:
    """Unique across processes and roughly time-ordered, so inserts append to the B-tree."""
    return f"{prefix}_{time.time_ns():016x}{os.urandom(4).hex()}"


def make_item_id(conversation_id: str, seq: int) -> str:
    """The id of item number `seq` of a conversation."""
    return f"msg_{conversation_id.partition('_')[2]}_{seq}"


def make_response_id(conversation_id: str, seq: int) -> str:
    """The id of the response whose reply is item number `seq` of a conversation."""
    return f"resp_{conversation_id.partition('_')[2]}_{seq}"


def split_id(item_id: str) -> tuple[str, int] | None:
    """(conversation id, seq) encoded in an item or response id, or None."""
    _prefix, _, rest = item_id.partition("_")
    body, _, seq = rest.rpartition("_")
    return (f"conv_{body}", int(seq)) if body and seq.isdigit() else None


def parse_version(version: str | int) -> int | None:
    """A version number ("3" or 3) as an int; None for anything else."""
    text = str(version)
    return int(text) if text.isdigit() else None
