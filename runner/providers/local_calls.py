"""Function-call items in the local store's conversations: how they are kept and checked.

Role in the flow: `local_conversations.Conversations.respond` keeps a response's `function_call`
items and the `function_call_output` items answering them in the conversation's `items` table
(the item's `role` column holds its type, its `content` the item's fields as JSON), and asks
here which calls are still unanswered and whether a request's outputs answer them, as the
service checks: every output must answer a call of the conversation's pending response, and
every pending call must be answered before the conversation goes on.

Invariants: a conversation has pending calls only when its last item is a `function_call`
(outputs answer all of a response's calls at once, and the model answers them with a new item),
so the turn path pays for the check only then. Refusals are 400 `invalid_request_error` with the
service's wording, and nothing is written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from runner.providers.base import ProviderError, ToolCall, ToolOutput
from runner.providers.local_tools import MAX_CALLS

__all__ = [
    "CALL_ROLE",
    "OUTPUT_ROLE",
    "call_content",
    "invalid_request",
    "match_outputs",
    "output_content",
    "parse_call",
    "pending_calls",
    "response_calls",
]

CALL_ROLE = "function_call"
OUTPUT_ROLE = "function_call_output"


def invalid_request(message: str) -> ProviderError:
    """The error the Responses API answers a request it cannot take with (HTTP 400)."""
    return ProviderError(message, code="invalid_request_error", status=400)


def call_content(call: ToolCall) -> str:
    return json.dumps(
        {"call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        separators=(",", ":"),
    )


def output_content(output: ToolOutput) -> str:
    return json.dumps({"call_id": output.call_id, "output": output.output}, separators=(",", ":"))


def parse_call(content: str) -> ToolCall:
    data = json.loads(content)
    return ToolCall(str(data["call_id"]), str(data["name"]), str(data["arguments"]))


def pending_calls(tx: sqlite3.Connection, conversation_id: str) -> list[ToolCall]:
    """The calls of the conversation's latest response that no output answered yet."""
    rows = tx.execute(
        "SELECT role, content FROM items WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?",
        (conversation_id, 2 * MAX_CALLS + 1),
    ).fetchall()
    answered: set[str] = set()
    calls: list[ToolCall] = []
    for role, content in rows:
        if role == OUTPUT_ROLE:
            answered.add(str(json.loads(content)["call_id"]))
        elif role == CALL_ROLE:
            call = parse_call(content)
            if call.call_id not in answered:
                calls.append(call)
        else:
            break
    calls.reverse()
    return calls


def match_outputs(
    pending: Sequence[ToolCall], outputs: Sequence[ToolOutput]
) -> list[tuple[ToolCall, str]]:
    """(call, output) for each output, in the order given; refuses an output that answers no
    pending call, a call answered twice, and a pending call left unanswered."""
    by_id = {call.call_id: call for call in pending}
    answered: list[tuple[ToolCall, str]] = []
    seen: set[str] = set()
    for output in outputs:
        call = by_id.get(output.call_id)
        if call is None or output.call_id in seen:
            raise invalid_request(
                f"No tool call found for function call output with call_id {output.call_id}."
            )
        seen.add(output.call_id)
        answered.append((call, output.output))
    for call in pending:
        if call.call_id not in seen:
            raise invalid_request(f"No tool output found for function call {call.call_id}.")
    return answered


def response_calls(
    conn: sqlite3.Connection, conversation_id: str, seq: int
) -> list[tuple[int, ToolCall]]:
    """(seq, call) of the function calls of the response whose last item is `seq`."""
    rows = conn.execute(
        "SELECT seq, role, content FROM items WHERE conversation_id = ? AND seq <= ? "
        "ORDER BY seq DESC LIMIT ?",
        (conversation_id, seq, MAX_CALLS),
    ).fetchall()
    calls: list[tuple[int, ToolCall]] = []
    for item_seq, role, content in rows:
        if role != CALL_ROLE:
            break
        calls.append((item_seq, parse_call(content)))
    calls.reverse()
    return calls
