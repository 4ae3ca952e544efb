"""The local store's responses: messages (or tool outputs) in, deterministic answers out.

Role in the flow: the response half of `LocalStore`. The runtime's sessions reach it through
`LocalProvider.respond`; the emulator serves it as `/openai/v1/responses`.

Invariants:
- No model is called: a reply is `[<agent> v<version>] <echo of the message>`
  (`local_replies.compute_reply`), with tokens estimated from word counts (input = words of the
  conversation so far plus the new input, output = words of the answer), so token budgets can
  be tested. A version with structured inputs answers with the request's values put into its
  instructions (`local_inputs`), and the reply ends `[session: <the instruction lines that
  hold an input, filled>]`, so what a session's preferences change shows offline.
- A message (or outputs) that mentions `@tool` of the version's function tools is answered with
  function calls instead (`local_tools`); outputs answer the conversation's pending calls
  (`local_calls`) and are answered with a message naming each output, or further calls.
- `respond` writes the input items and the answer items in one transaction, after the agent
  version was found in it; an unknown agent, version or conversation is NotFoundError, a refused
  request ProviderError 400, and neither writes anything. A response without a conversation
  stands alone (its own table; input tokens = the message's words), unless it calls tools: its
  items then go into a conversation of their own, so outputs can follow by
  `previous_response_id` (as the service allows); its JSON still names no conversation.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.providers.base import ToolCall, ToolOutput, fill_placeholders
from runner.providers.local_agents import resolve_version
from runner.providers.local_calls import (
    CALL_ROLE,
    OUTPUT_ROLE,
    call_content,
    invalid_request,
    match_outputs,
    output_content,
    pending_calls,
    response_calls,
)
from runner.providers.local_conversations import insert_conversation, last_item
from runner.providers.local_database import StoreDatabase
from runner.providers.local_inputs import InputsDefinition, resolve_inputs, session_lines
from runner.providers.local_records import (
    StoredResponse,
    make_item_id,
    make_response_id,
    new_id,
    split_id,
)
from runner.providers.local_replies import compute_reply, count_words, not_found
from runner.providers.local_tools import (
    call_id_for,
    function_tool_names,
    outputs_reply,
    requested_calls,
)

__all__ = ["Responses"]

_NO_AGENT = (None, None, None, None)  # an input item has no agent or tokens
_INSERT_ITEMS = (
    "INSERT INTO items (conversation_id, seq, role, content, created_at, words_total, "
    "agent_name, agent_version, input_tokens, output_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CACHE = 4096


class Responses:
    """Responses in the store's conversations (and standalone ones), see the module docstring."""

    def __init__(self, database: StoreDatabase) -> None:
        self._db = database
        # (agent, version) -> its structured inputs and function tools: versions are immutable,
        # numbers never reused
        self._traits: dict[tuple[str, str], tuple[InputsDefinition | None, frozenset[str]]] = {}
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
            if len(self._fills) >= _CACHE:
                self._fills.clear()
            self._fills[key] = result
        return result

    def _traits_of(
        self, tx: sqlite3.Connection, name: str, version: str
    ) -> tuple[InputsDefinition | None, frozenset[str]]:
        """The version's structured inputs and the names of its function tools."""
        key = (name, version)
        found = self._traits.get(key)
        if found is not None:
            return found
        row = tx.execute(
            "SELECT definition FROM versions WHERE name = ? AND version = ?", (name, int(version))
        ).fetchone()
        definition = json.loads(row[0]) if row is not None else {}
        found = (InputsDefinition.of(definition), function_tool_names(definition))
        if len(self._traits) >= _CACHE:
            self._traits.clear()
        self._traits[key] = found
        return found

    def respond(
        self,
        *,
        conversation_id: str | None,
        agent_name: str,
        agent_version: str | None,
        text: str,
        structured_inputs: Mapping[str, Any] | None = None,
        tool_outputs: Sequence[ToolOutput] = (),
        previous_response_id: str | None = None,
    ) -> StoredResponse:
        """Answer `text` (or `tool_outputs`) as the agent version (latest when None); record
        every item.

        NotFoundError for an unknown agent, version or conversation (nothing is written then).
        Without a conversation the response stands alone (input tokens = the message's words),
        unless `previous_response_id` names a response of a conversation: it continues there.
        `structured_inputs` fill the version's `{{name}}` placeholders (ProviderError 400
        `invalid_payload` for an undeclared name or a missing required one). The answer is a
        message, or function calls when the input asks for tools (`local_tools`); outputs
        must answer exactly the pending calls (`local_calls`).
        """
        standalone = conversation_id is None  # the request named no conversation
        if conversation_id is None and previous_response_id is not None:
            split = split_id(previous_response_id)
            if split is not None:
                conversation_id = split[0]
            elif self.get_response(previous_response_id) is None:
                raise not_found(f"response {previous_response_id!r} not found")
            # else: it follows a standalone response, and stands alone too
        if tool_outputs and conversation_id is None:
            raise invalid_request("function_call_output items need 'previous_response_id'")
        now = int(time.time())
        instructions: str | None = None
        with self._db.write() as tx:
            version = resolve_version(tx, agent_name, agent_version)
            declared, tools = self._traits_of(tx, agent_name, version)
            suffix = ""
            if declared is not None or structured_inputs:
                instructions, shown = self._filled(declared, agent_name, version, structured_inputs)
                if shown:
                    suffix = f" [session: {shown}]"
            if conversation_id is None and requested_calls(text, tools):
                # calls outside a conversation: kept in one of their own, so the outputs can
                # follow by previous_response_id (the response still names no conversation)
                conversation_id = insert_conversation(tx, {}, now).id
            if conversation_id is None:
                reply = compute_reply(agent_name, version, text) + suffix
                in_words = count_words(text)
                out_words = count_words(reply)
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
            seq, words, last_role = last_item(tx, conversation_id)
            if not tool_outputs and last_role != CALL_ROLE and not requested_calls(text, tools):
                # the common turn: a message in, a message out (two items, one statement)
                reply = compute_reply(agent_name, version, text) + suffix
                input_tokens = words + count_words(text)
                out_words = count_words(reply)
                answer = (agent_name, version, input_tokens, out_words)
                tx.executemany(
                    _INSERT_ITEMS,
                    (
                        (conversation_id, seq + 1, "user", text, now, input_tokens, *_NO_AGENT),
                        (conversation_id, seq + 2, "assistant", reply, now, *_total(answer)),
                    ),
                )
                return StoredResponse(
                    standalone=standalone,
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
            return _with_calls(
                tx,
                _Turn(conversation_id, agent_name, version, now, suffix, instructions, standalone),
                (seq, words, last_role),
                text,
                tool_outputs,
                tools,
            )

    def get_response(self, response_id: str) -> StoredResponse | None:
        conn = self._db.connection()
        split = split_id(response_id) if response_id.startswith("resp_") else None
        if split is not None:
            conversation_id, seq = split
            row = conn.execute(
                "SELECT agent_name, agent_version, content, input_tokens, output_tokens, "
                "created_at, role FROM items WHERE conversation_id = ? AND seq = ? "
                "AND agent_name IS NOT NULL",
                (conversation_id, seq),
            ).fetchone()
            if row is None:
                return None
            name, version, text, input_tokens, output_tokens, created_at, role = row
            if role == CALL_ROLE:
                found = response_calls(conn, conversation_id, seq)
                return StoredResponse(
                    response_id,
                    conversation_id,
                    name,
                    version,
                    "",
                    input_tokens,
                    sum(count_words(c.arguments) for _, c in found),
                    created_at,
                    None,
                    make_item_id(conversation_id, seq),
                    tool_calls=tuple(c for _, c in found),
                    call_item_ids=tuple(make_item_id(conversation_id, s) for s, _ in found),
                )
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


def _total(answer: tuple[str, str, int, int]) -> tuple[Any, ...]:
    """The words_total of an answer item, then its agent, version and tokens."""
    return (answer[2] + answer[3], *answer)


@dataclass(frozen=True)
class _Turn:
    conversation_id: str
    agent_name: str
    version: str
    now: int
    suffix: str
    instructions: str | None
    standalone: bool


def _with_calls(
    tx: sqlite3.Connection,
    turn: _Turn,
    last: tuple[int, int, str | None],
    text: str,
    tool_outputs: Sequence[ToolOutput],
    tools: frozenset[str],
) -> StoredResponse:
    """A turn with function calls or outputs in it: the outputs checked against the pending
    calls, then the answer (calls, or a message naming each output)."""
    conversation_id, agent_name, version = turn.conversation_id, turn.agent_name, turn.version
    now, suffix, instructions = turn.now, turn.suffix, turn.instructions
    seq, words, last_role = last
    pending = pending_calls(tx, conversation_id) if last_role == CALL_ROLE else []
    answered: list[tuple[ToolCall, str]] = []
    if tool_outputs:
        answered = match_outputs(pending, tool_outputs)
        inputs = [(OUTPUT_ROLE, output_content(o)) for o in tool_outputs]
        said = "\n".join(o.output for o in tool_outputs)
    else:
        if pending:
            raise invalid_request(f"No tool output found for function call {pending[0].call_id}.")
        inputs = [("user", text)]
        said = text
    asked = requested_calls(said, tools)
    last_seq = seq + len(inputs) + max(1, len(asked))
    response_id = make_response_id(conversation_id, last_seq)
    calls = tuple(
        ToolCall(call_id_for(response_id, i), name, arguments)
        for i, (name, arguments) in enumerate(asked)
    )
    reply = ""
    if not calls:
        prefix = f"[{agent_name} v{version}]"
        if answered:
            reply = outputs_reply(prefix, answered) + suffix
        else:
            reply = compute_reply(agent_name, version, text) + suffix
    rows: list[tuple[Any, ...]] = []
    for role, content in inputs:
        seq += 1
        words += count_words(content if role == "user" else said)
        rows.append((conversation_id, seq, role, content, now, words, *_NO_AGENT))
    input_tokens = words
    answer = [(CALL_ROLE, call_content(c), count_words(c.arguments)) for c in calls] or [
        ("assistant", reply, count_words(reply))
    ]
    for role, content, count in answer:
        seq += 1
        words += count
        agent = (agent_name, version, input_tokens, count)
        rows.append((conversation_id, seq, role, content, now, words, *agent))
    tx.executemany(_INSERT_ITEMS, rows)
    first_input = last_seq - len(answer) - len(inputs) + 1
    return StoredResponse(
        standalone=turn.standalone,
        id=response_id,
        conversation_id=conversation_id,
        agent_name=agent_name,
        agent_version=version,
        text=reply,
        input_tokens=input_tokens,
        output_tokens=words - input_tokens,
        created_at=now,
        input_item_id=make_item_id(conversation_id, first_input),
        output_item_id=make_item_id(conversation_id, last_seq),
        instructions=instructions,
        tool_calls=calls,
        call_item_ids=tuple(
            make_item_id(conversation_id, last_seq - len(calls) + 1 + i) for i in range(len(calls))
        ),
    )
