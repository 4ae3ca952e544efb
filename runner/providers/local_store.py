"""LocalStore: Foundry's agents, conversations and responses, persisted in one SQLite file.

Role in the flow: the store behind the `local` provider (the default for development, tests and
`runner test`) and the store that `runner emulator` serves over Foundry's REST protocol.
plan/apply and the runtime reach it through `LocalProvider` (in `local`), which implements the
same `Provider` Protocol as real Foundry; the emulator's routes and the tests call it directly.

A LocalStore is one face over three parts, each in its own module:
  `local_database.StoreDatabase`            the file: per-thread connections, write transactions;
  `local_agents.AgentVersions`              agents and their immutable, numbered versions;
  `local_conversations.Conversations`       conversations, their items, and the deterministic
                                            responses.
Each method here hands the call to the part that owns its tables, unchanged.

Invariants: every write is one SQLite transaction, committed before the call returns (WAL
journal; `synchronous="NORMAL"` is durable across process crashes, `"FULL"` also across power
loss, at about 20x the cost per write). The store is thread-safe and safe across processes
sharing the file; a writer still blocked after `busy_timeout_ms` gets TransientError (code
`busy`). After `close()` using the store raises ProviderError.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runner.providers.base import AgentVersion
from runner.providers.local_agents import AGENTS_SCHEMA, AgentVersions
from runner.providers.local_conversations import CONVERSATIONS_SCHEMA, Conversations
from runner.providers.local_database import StoreDatabase, Synchronous
from runner.providers.local_records import (
    Conversation,
    ConversationItem,
    Order,
    Page,
    StoredResponse,
)

__all__ = ["LocalStore"]


class LocalStore:
    """Foundry's agents, conversations and responses in one SQLite file (module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = 30_000,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        self.path = Path(path)
        self._database = StoreDatabase(
            self.path,
            busy_timeout_ms=busy_timeout_ms,
            synchronous=synchronous,
            schema=AGENTS_SCHEMA + CONVERSATIONS_SCHEMA,
        )
        self._agents = AgentVersions(self._database)
        self._conversations = Conversations(self._database)

    def close(self) -> None:
        """Close every connection this store opened; using it afterwards raises ProviderError."""
        self._database.close()

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
        return self._agents.create_version(
            name, definition=definition, metadata=metadata, description=description
        )

    def get_version(self, name: str, version: str) -> AgentVersion | None:
        return self._agents.get_version(name, version)

    def latest_version(self, name: str) -> AgentVersion | None:
        return self._agents.latest_version(name)

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
        return self._agents.list_latest(
            limit=limit, order=order, after=after, before=before, kind=kind
        )

    def list_versions(
        self,
        name: str,
        *,
        limit: int | None = None,
        order: Order = "asc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[AgentVersion]:
        """Versions of `name` by number; NotFoundError when there is no such agent."""
        return self._agents.list_versions(
            name, limit=limit, order=order, after=after, before=before
        )

    def delete_agent(self, name: str) -> None:
        """Delete the agent and all its versions (its version counter is kept)."""
        self._agents.delete_agent(name)

    def delete_version(self, name: str, version: str) -> None:
        """Delete one version; deleting the last one deletes the agent."""
        self._agents.delete_version(name, version)

    # ------------------------------------------------------------------ conversations

    def create_conversation(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        items: Sequence[tuple[str, str]] = (),
    ) -> Conversation:
        """A new conversation, optionally seeded with `(role, text)` message items."""
        return self._conversations.create_conversation(metadata=metadata, items=items)

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        return self._conversations.get_conversation(conversation_id)

    def add_items(
        self, conversation_id: str, items: Sequence[tuple[str, str]]
    ) -> list[ConversationItem]:
        """Append `(role, text)` message items; NotFoundError for an unknown conversation."""
        return self._conversations.add_items(conversation_id, items)

    def list_items(
        self,
        conversation_id: str,
        *,
        limit: int | None = None,
        order: Order = "asc",
        after: str | None = None,
    ) -> Page[ConversationItem]:
        """Items of a conversation by position; the cursor is an item id."""
        return self._conversations.list_items(
            conversation_id, limit=limit, order=order, after=after
        )

    def delete_conversation(self, conversation_id: str) -> None:
        self._conversations.delete_conversation(conversation_id)

    # ------------------------------------------------------------------ responses

    def respond(
        self,
        *,
        conversation_id: str | None,
        agent_name: str,
        agent_version: str | None,
        text: str,
    ) -> StoredResponse:
        """Answer `text` as the agent version (latest when None); record both turns."""
        return self._conversations.respond(
            conversation_id=conversation_id,
            agent_name=agent_name,
            agent_version=agent_version,
            text=text,
        )

    def get_response(self, response_id: str) -> StoredResponse | None:
        return self._conversations.get_response(response_id)
