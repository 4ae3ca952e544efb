"""The local provider's deterministic replies and Foundry's request checks.

Role in the flow: the pure functions the LocalStore (and so the emulator) applies before a write
and when answering a message: agent name and metadata validation, the error shapes Foundry
answers with (Foundry's limits themselves live in `runner.providers.base`), and the echo reply
with its word-count token estimate.

Invariants: no I/O and no state; a reply is a pure function of (agent, version, message), so
tests and benchmarks can predict it. Violations raise `ProviderError(code="invalid_parameters",
status=400)`, as Foundry answers.
"""

from __future__ import annotations

from collections.abc import Mapping

from runner.providers.base import (
    AGENT_NAME_RE,
    MAX_METADATA_KEY,
    MAX_METADATA_PAIRS,
    MAX_METADATA_VALUE,
    NotFoundError,
    ProviderError,
)

__all__ = [
    "ECHO_WORDS",
    "check_agent_name",
    "check_metadata",
    "compute_reply",
    "count_words",
    "invalid_parameters",
    "not_found",
]

ECHO_WORDS = 12
"""How many words of the message a local reply echoes."""


def invalid_parameters(message: str) -> ProviderError:
    """The error Foundry answers a malformed request with (HTTP 400, `invalid_parameters`)."""
    return ProviderError(message, code="invalid_parameters", status=400)


def not_found(message: str) -> NotFoundError:
    """The error Foundry answers a request for a missing object with (HTTP 404)."""
    return NotFoundError(message, code="not_found", status=404)


def check_agent_name(name: str) -> None:
    """Refuse a name Foundry refuses (`AGENT_NAME_RE`), as Foundry answers."""
    if not isinstance(name, str) or not AGENT_NAME_RE.match(name):
        raise invalid_parameters(
            f"invalid agent name {name!r}: must start and end with alphanumeric characters, "
            "can contain hyphens in the middle, and must not exceed 63 characters"
        )


def check_metadata(metadata: Mapping[str, str]) -> None:
    """Refuse metadata beyond Foundry's limits (pairs, key and value lengths, string values)."""
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
    """The token estimate of a text: its whitespace-separated words."""
    return len(text.split())


def compute_reply(agent_name: str, agent_version: str, text: str) -> str:
    """The deterministic local reply: names the agent and version, echoes the message's start."""
    words = text.split()
    echo = " ".join(words[:ECHO_WORDS]) if words else "(empty message)"
    if len(words) > ECHO_WORDS:
        echo += " ..."
    return f"[{agent_name} v{agent_version}] {echo}"
