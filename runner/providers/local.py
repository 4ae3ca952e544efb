"""The `local` provider: Foundry's agent semantics in-process, over an embedded SQLite store.

Role in the flow: `build_provider` builds a LocalProvider for a `local` environment; plan/apply
and the runtime talk to it through the same `Provider` Protocol as to real Foundry. The store it
delegates to is `local_store.LocalStore` (agents in `local_agents`, conversations and responses
in `local_conversations`, the deterministic replies and request checks in `local_replies`).

Invariants: the provider adds no semantics of its own: each call counts one request (as a
remote provider would send one) and delegates to the store, which enforces Foundry's rules and
commits before returning. `list_versions` of an unknown agent is empty, as the Protocol says.
A streamed response (`on_text`) hands its reply over word by word (`text_pieces`), after the
store committed it.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from runner.providers.base import (
    AgentVersion,
    ConversationMessage,
    NotFoundError,
    Reply,
    TextSink,
    ToolOutput,
)
from runner.providers.local_store import LocalStore

__all__ = ["LocalProvider", "text_pieces"]

_PIECE = re.compile(r"\s*\S+")


def text_pieces(text: str) -> list[str]:
    """How a local reply streams: word by word, each with the spaces before it."""
    return _PIECE.findall(text) or ([text] if text else [])


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
    def open(cls, path: str | os.PathLike[str], *, read_only: bool = False) -> LocalProvider:
        """A provider on its own store at `path`, closed with the provider; `read_only` (plan)
        creates and writes nothing, and a missing store reads as empty."""
        return cls(LocalStore(path, read_only=read_only), owns_store=True)

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

    def conversation_messages(
        self, conversation_id: str, *, limit: int = 200
    ) -> list[ConversationMessage]:
        self._tick()
        page = self.store.list_items(conversation_id, limit=limit, order="desc")
        latest = [ConversationMessage(i.role, i.content) for i in page.items if i.type == "message"]
        return latest[::-1]

    def respond(
        self,
        *,
        conversation_id: str,
        agent_name: str,
        agent_version: str | None,
        text: str,
        structured_inputs: Mapping[str, Any] | None = None,
        tool_outputs: Sequence[ToolOutput] = (),
        previous_response_id: str | None = None,
        on_text: TextSink | None = None,
    ) -> Reply:
        self._tick()
        reply = self.store.respond(
            conversation_id=conversation_id,
            agent_name=agent_name,
            agent_version=agent_version,
            text=text,
            structured_inputs=structured_inputs,
            tool_outputs=tool_outputs,
            previous_response_id=None if conversation_id else previous_response_id,
        ).reply()
        if on_text is not None:
            for piece in text_pieces(reply.text):
                on_text(piece)
        return reply

    def request_count(self) -> int:
        return self._count

    def close(self) -> None:
        if self._owns_store:
            self.store.close()
