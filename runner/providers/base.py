"""The provider seam: what plan/apply and the runtime need from a Foundry-like agent service.

Implementations: `local` (embedded SQLite store with Foundry's semantics), `foundry` (the real
azure-ai-projects SDK; the only module that imports `azure.*`). `runner emulator` serves the local
store over Foundry's REST protocol so the foundry provider is tested against a real HTTP server.

Errors are mapped once, here at the boundary: `TransientError` (429, 5xx, connection) may be
retried by the caller, `ProviderError` may not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

MANAGED_BY_KEY = "managed-by"
MANAGED_BY_VALUE = "runner"
ADDRESS_KEY = "runner-address"
ENVIRONMENT_KEY = "runner-env"
HASH_KEY = "runner-hash"
PROJECT_KEY = "runner-project"
"""The runner project that wrote a version (its ownership, like an ApplySet's parent): absent on
versions written before projects existed, which belong to the project whose registry recorded
them."""

# Foundry's rules for an agent version: the service (and the local store, which emulates it)
# refuses a version that breaks them; `runner validate` checks names and metadata ahead.
AGENT_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
"""Agent names: 1-63 letters, digits and '-', not starting or ending in '-'."""
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_DESCRIPTION = 512

# Prompt agents' structured inputs: the definition declares them (`structured_inputs`: name ->
# {description, default_value, schema, required}); `{{name}}` in its instructions is replaced by
# the value a response request carries in its top-level `structured_inputs` object (else the
# declared `default_value`). Foundry's REST spec: `AzureCreateResponseOptions.structured_inputs`.
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
"""A structured-input placeholder in a text: `{{name}}`."""


def placeholder_names(text: str) -> list[str]:
    """The structured inputs `text` refers to, in order of first use."""
    return list(dict.fromkeys(m.group(1) for m in PLACEHOLDER_RE.finditer(text)))


def input_text(value: Any) -> str:
    """How an input value reads in a text: a string as it is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def fill_placeholders(text: str, values: Mapping[str, Any]) -> str:
    """`text` with each `{{name}}` of `values` replaced by its value, in one pass (a value is
    never read again for placeholders); a name not in `values` stays as written."""
    if "{{" not in text:
        return text

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        return input_text(values[name]) if name in values else match.group(0)

    return PLACEHOLDER_RE.sub(value_of, text)


@dataclass(frozen=True)
class AgentVersion:
    """One immutable version of a named agent, as Foundry reports it."""

    name: str
    version: str
    definition: Mapping[str, Any]
    metadata: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    created_at: int = 0

    @property
    def managed(self) -> bool:
        return self.metadata.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE

    @property
    def spec_hash(self) -> str | None:
        return self.metadata.get(HASH_KEY)

    @property
    def project(self) -> str | None:
        """The runner project recorded on this version (None: none recorded)."""
        return self.metadata.get(PROJECT_KEY) or None


@dataclass(frozen=True)
class ToolCall:
    """A `function_call` output item: the model asks the caller to run `name`.

    `arguments` is the JSON text exactly as the model wrote it (it may not parse)."""

    call_id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class ToolOutput:
    """A `function_call_output` input item: the caller's answer to the call `call_id`."""

    call_id: str
    output: str


TextSink = Callable[[str], None]
"""Receives each piece of reply text as it arrives (a streamed response)."""


@dataclass(frozen=True)
class Reply:
    """A response: its message text, or the function calls it asks for (then `text` is '')."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    response_id: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    parallel_tool_calls: bool = True

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ConversationMessage:
    """One message of a conversation as the service keeps it: `user` or `assistant`, its text."""

    role: str
    text: str


class ProviderError(Exception):
    """A request the service refused for good: retrying will not help.

    `code` is the service's error code (e.g. `invalid_parameters`) and `status` its HTTP status,
    when known; both are None for errors raised before any request was sent.
    """

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class NotFoundError(ProviderError):
    pass


class TransientError(ProviderError):
    """429, 5xx or a broken connection: the request may be retried, after `retry_after` s."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


@runtime_checkable
class Provider(Protocol):
    """Agent CRUD plus the two runtime calls. All methods are thread-safe."""

    name: str
    remote: bool

    def list_agents(self) -> list[AgentVersion]:
        """The latest version of every agent (managed or not), in as few requests as possible."""
        ...

    def get_agent(self, name: str) -> AgentVersion | None:
        """The latest version of `name`, or None."""
        ...

    def list_versions(self, name: str) -> list[AgentVersion]:
        """Every version of `name`, oldest first; [] when there is no such agent."""
        ...

    def create_version(
        self,
        name: str,
        *,
        definition: Mapping[str, Any],
        metadata: Mapping[str, str],
        description: str | None = None,
    ) -> AgentVersion: ...

    def delete_agent(self, name: str) -> None:
        """Delete the agent and all its versions; NotFoundError when it does not exist."""
        ...

    def delete_version(self, name: str, version: str) -> None: ...

    def create_conversation(self, *, metadata: Mapping[str, str] | None = None) -> str:
        """A new conversation id."""
        ...

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
        """Send `text` to the agent version in the conversation and return its reply.

        `structured_inputs` fill the version's `{{name}}` placeholders for this request (the
        request's top-level `structured_inputs`; None or empty: none sent). `tool_outputs`
        answer the function calls of `previous_response_id` (the input is then those
        `function_call_output` items, not `text`); with a conversation the request is chained
        by the conversation, else by `previous_response_id` (the service takes one of the two).
        `on_text`: stream the response (`stream: true`) and pass it each text delta as it
        arrives; the Reply returned is the same as without it."""
        ...

    def conversation_messages(
        self, conversation_id: str, *, limit: int = 200
    ) -> list[ConversationMessage]:
        """The conversation's messages, oldest first: at most the latest `limit` of them
        (conversation quality reads them)."""
        ...

    def request_count(self) -> int:
        """How many requests reached the service so far (benchmarks count reads and writes)."""
        ...

    def close(self) -> None: ...
