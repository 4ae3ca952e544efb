"""The local model's function calls: when a message asks for a tool, and what it answers after.

Role in the flow: `local_conversations.Conversations.respond` (and so the emulator) asks
`requested_calls` whether a user message, or the outputs sent back for earlier calls, ask for
function tools of the answering version, and `outputs_reply` for the message that answers
outputs. No model is called: the rule is a pure function of the text, so Scenarios and tests
can predict every call.

The rule (documented in the README, "Function tools"): `@name` where `name` is a `function` tool
of the agent version calls it; a JSON object right after the name (`@lookup_account{"employee_id":
"E1"}`, spaces allowed before the `{`) is its arguments as written, even when it does not parse
(so a bad argument can be tested); without one the arguments are `{}`. Each mention is one call,
in the order written (at most `MAX_CALLS` per response); several mentions are parallel calls in
one response. An `@name` that is not a function tool of the version is plain text. After
outputs come back, the same rule reads the outputs' text: an output that mentions `@name` makes
the model call again (so a round limit can be tested); otherwise the model answers with a
message listing each tool and its output.

Invariants: no I/O, no state; call ids are derived from the response's position
(`call_id_for`), so a replay answers with the same ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.providers.base import ToolCall

__all__ = [
    "MAX_CALLS",
    "MAX_OUTPUT_SHOWN",
    "call_id_for",
    "function_tool_names",
    "outputs_reply",
    "requested_calls",
]

MAX_CALLS = 16
"""Most function calls one local response makes."""
MAX_OUTPUT_SHOWN = 200
"""Longest part of one tool output the local reply repeats."""
_MAX_ARGUMENTS = 16_384

_MENTION = re.compile(r"(?<![\w@])@([A-Za-z_][A-Za-z0-9_-]{0,63})\b")
_DECODER = json.JSONDecoder()


def function_tool_names(definition: Mapping[str, Any]) -> frozenset[str]:
    """The names of the `function` tools of a version's definition."""
    tools = definition.get("tools")
    if not isinstance(tools, list):
        return frozenset()
    return frozenset(
        str(t["name"])
        for t in tools
        if isinstance(t, Mapping) and t.get("type") == "function" and isinstance(t.get("name"), str)
    )


def _arguments(text: str, start: int) -> str:
    """The JSON object written right after a mention (as written), or `{}`."""
    at = start
    while at < len(text) and text[at] in " \t":
        at += 1
    if at >= len(text) or text[at] != "{":
        return "{}"
    window = text[at : at + _MAX_ARGUMENTS]
    try:
        _value, end = _DECODER.raw_decode(window)
    except ValueError:
        close = window.find("}")  # not JSON: up to the first '}', as the model "wrote" it
        return window[: close + 1] if close >= 0 else window
    return window[:end]


def requested_calls(text: str, tools: frozenset[str]) -> list[tuple[str, str]]:
    """(tool name, arguments JSON text) for each `@tool` mention in `text`, in order."""
    if not tools or "@" not in text:
        return []
    calls: list[tuple[str, str]] = []
    for match in _MENTION.finditer(text):
        name = match.group(1)
        if name in tools:
            calls.append((name, _arguments(text, match.end())))
            if len(calls) >= MAX_CALLS:
                break
    return calls


def call_id_for(response_id: str, index: int) -> str:
    """The id of the `index`-th call of a response (stable: derived from the response id)."""
    return f"call_{response_id.partition('_')[2]}_{index}"


def outputs_reply(prefix: str, answered: Sequence[tuple[ToolCall, str]]) -> str:
    """The message answering tool outputs: `<prefix> <tool> -> <output>` per call, ` / `-joined."""
    parts = []
    for call, output in answered:
        shown = " ".join(output.split())
        if len(shown) > MAX_OUTPUT_SHOWN:
            shown = shown[: MAX_OUTPUT_SHOWN - 3] + "..."
        parts.append(f"{call.name} -> {shown}")
    return f"{prefix} {' / '.join(parts)}"
