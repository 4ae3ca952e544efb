"""The emulator's `POST /openai/v1/responses`: the request decoded, the answer as JSON or SSE.

Role in the flow: `emulator_routes.Emulator._create_response` decodes the body with
`response_request` (message input or `function_call_output` items, the chain by `conversation`
or `previous_response_id`, `structured_inputs`, `stream`), has the store answer, and returns the
response JSON (`emulator_json.response_json`) or, for `stream: true`, an `EventStream` the HTTP
face sends as server-sent events (`text/event-stream`, `event: <type>` + `data: <JSON>` per
event, no `[DONE]` line), in the order the service sends them (tests/providers/recordings/
responses_stream_*.json): `response.created`, `response.in_progress`, per output item
`response.output_item.added`, its content (`response.content_part.added`,
`response.output_text.delta` word by word, `response.output_text.done`,
`response.content_part.done`, or `response.function_call_arguments.delta`/`.done`),
`response.output_item.done`, then `response.completed` with the whole response.

Invariants: a malformed request is HttpError 400 before the store is touched; `conversation`
together with `previous_response_id` is refused, as the service refuses it; every event carries
a `sequence_number` counting from 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from runner.providers.base import ToolOutput
from runner.providers.emulator_json import HttpError, message_text

__all__ = ["EventStream", "ResponseRequest", "response_events", "response_request"]

_PIECE = re.compile(r"\s*\S+")


@dataclass(frozen=True)
class ResponseRequest:
    """A decoded `POST /openai/v1/responses` body."""

    agent_name: str
    agent_version: str | None
    conversation: str | None
    previous_response_id: str | None
    text: str
    tool_outputs: tuple[ToolOutput, ...] = ()
    structured_inputs: dict[str, Any] | None = None
    stream: bool = False


@dataclass(frozen=True)
class EventStream:
    """Server-sent events to send, in order: (event name, data)."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _input(value: Any) -> tuple[str, tuple[ToolOutput, ...]]:
    if value is None or isinstance(value, str):
        return value or "", ()
    if not isinstance(value, list):
        raise HttpError(400, "invalid_request_error", "'input' must be a string or a list")
    texts: list[str] = []
    outputs: list[ToolOutput] = []
    for item in value:
        if not isinstance(item, dict):
            raise HttpError(400, "invalid_request_error", "each 'input' item must be an object")
        kind = item.get("type", "message")
        if kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str) or not isinstance(output, str):
                raise HttpError(
                    400,
                    "invalid_request_error",
                    "a function_call_output item needs 'call_id' and 'output' (strings)",
                )
            outputs.append(ToolOutput(call_id, output))
        elif kind == "message":
            texts.append(message_text(item.get("content", "")))
        else:
            raise HttpError(
                400, "invalid_request_error", f"input items of type {kind!r} are not emulated"
            )
    return "\n".join(texts), tuple(outputs)


def response_request(body: Any) -> ResponseRequest:
    """Decode a response request; HttpError 400 for what the service would refuse."""
    if not isinstance(body, dict):
        raise HttpError(400, "invalid_request_error", "the request body must be an object")
    reference = body.get("agent_reference") or body.get("agent")
    if not isinstance(reference, dict) or not isinstance(reference.get("name"), str):
        raise HttpError(400, "invalid_request_error", "'agent_reference' with a 'name' is required")
    conversation = body.get("conversation")
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    if conversation is not None and not isinstance(conversation, str):
        raise HttpError(400, "invalid_request_error", "'conversation' must be an id")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise HttpError(400, "invalid_request_error", "'previous_response_id' must be an id")
    if conversation and previous:
        raise HttpError(
            400,
            "invalid_request_error",
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
        )
    inputs = body.get("structured_inputs")
    if inputs is not None and not isinstance(inputs, dict):
        raise HttpError(400, "invalid_payload", "'structured_inputs' must be an object")
    text, outputs = _input(body.get("input"))
    version = reference.get("version")
    return ResponseRequest(
        agent_name=reference["name"],
        agent_version=None if version is None else str(version),
        conversation=conversation,
        previous_response_id=previous,
        text=text,
        tool_outputs=outputs,
        structured_inputs=inputs,
        stream=bool(body.get("stream")),
    )


def _item_events(index: int, item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The events of one output item, from `output_item.added` to `output_item.done`."""
    item_id = item["id"]
    events: list[tuple[str, dict[str, Any]]] = []
    if item.get("type") == "function_call":
        arguments = str(item.get("arguments", ""))
        events.append(
            (
                "response.output_item.added",
                {"output_index": index, "item": {**item, "status": "in_progress", "arguments": ""}},
            )
        )
        for piece in _PIECE.findall(arguments) or [arguments]:
            events.append(
                (
                    "response.function_call_arguments.delta",
                    {"item_id": item_id, "output_index": index, "delta": piece},
                )
            )
        events.append(
            (
                "response.function_call_arguments.done",
                {"item_id": item_id, "output_index": index, "arguments": arguments},
            )
        )
    else:
        part = dict(item["content"][0])
        text = str(part.get("text", ""))
        started = {**item, "status": "in_progress", "content": []}
        events.append(("response.output_item.added", {"output_index": index, "item": started}))
        at = {"item_id": item_id, "output_index": index, "content_index": 0}
        events.append(("response.content_part.added", {**at, "part": {**part, "text": ""}}))
        for piece in _PIECE.findall(text):
            events.append(("response.output_text.delta", {**at, "delta": piece, "logprobs": []}))
        events.append(("response.output_text.done", {**at, "text": text, "logprobs": []}))
        events.append(("response.content_part.done", {**at, "part": part}))
    events.append(("response.output_item.done", {"output_index": index, "item": item}))
    return events


def response_events(response: dict[str, Any]) -> EventStream:
    """The SSE events of a finished response (its JSON), as the service streams them."""
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": pending}),
        ("response.in_progress", {"response": pending}),
    ]
    for index, item in enumerate(response.get("output") or ()):
        events.extend(_item_events(index, item))
    events.append(("response.completed", {"response": response}))
    return EventStream(
        [
            (name, {"type": name, **data, "sequence_number": n})
            for n, (name, data) in enumerate(events)
        ]
    )
