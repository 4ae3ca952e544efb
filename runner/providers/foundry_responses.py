"""What the foundry provider sends to and reads from `POST /openai/v1/responses`.

Role in the flow: `FoundryProvider.respond` builds its request with `response_request` and turns
what comes back into a `Reply` with `reply_of` (a response object) or `read_stream` (the events
of a streamed one). Pure functions over the openai client's objects, read by attribute, so this
module imports neither openai nor the Azure SDK.

Wire facts (shared/reference/foundry-protocol.md, section 11, and the recordings in
tests/providers/recordings/): a turn is `{"conversation", "input": text, "agent_reference"}`;
function outputs go back as `input: [{"type": "function_call_output", "call_id", "output"}]`
chained by the `conversation` when there is one (the service refuses `previous_response_id`
together with `conversation`), else by `previous_response_id`. A response asking for functions
has `function_call` output items (`call_id`, `name`, `arguments` as JSON text) and no message.
A stream is server-sent events from `response.created` to `response.completed`; text arrives in
`response.output_text.delta` events.

Invariants: a stream that ends without `response.completed`, or with `response.failed`,
`response.incomplete` or `error`, is a ProviderError naming what the service said (never an
empty reply).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from runner.providers.base import ProviderError, Reply, TextSink, ToolCall, ToolOutput

__all__ = ["read_stream", "reply_of", "response_request"]


def response_request(
    *,
    conversation_id: str | None,
    agent_name: str,
    agent_version: str | None,
    text: str,
    structured_inputs: Mapping[str, Any] | None,
    tool_outputs: Sequence[ToolOutput],
    previous_response_id: str | None,
) -> dict[str, Any]:
    """The keyword arguments of `openai.responses.create` for one request."""
    reference: dict[str, str] = {"type": "agent_reference", "name": agent_name}
    if agent_version is not None:
        reference["version"] = agent_version
    extra: dict[str, Any] = {"agent_reference": reference}
    if structured_inputs:
        # top-level, next to agent_reference (AzureCreateResponseOptions.structured_inputs)
        extra["structured_inputs"] = dict(structured_inputs)
    kwargs: dict[str, Any] = {"extra_body": extra}
    if conversation_id:
        kwargs["conversation"] = conversation_id
    elif previous_response_id:
        kwargs["previous_response_id"] = previous_response_id
    if tool_outputs:
        kwargs["input"] = [
            {"type": "function_call_output", "call_id": o.call_id, "output": o.output}
            for o in tool_outputs
        ]
    else:
        kwargs["input"] = text
    return kwargs


def _calls(output: Iterable[Any]) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(
            call_id=str(item.call_id),
            name=str(item.name),
            arguments=str(getattr(item, "arguments", None) or "{}"),
        )
        for item in output
        if getattr(item, "type", None) == "function_call"
    )


def reply_of(response: Any) -> Reply:
    """A Reply from a Responses API `Response` (message text, or the function calls)."""
    usage = getattr(response, "usage", None)
    calls = _calls(getattr(response, "output", None) or ())
    parallel = getattr(response, "parallel_tool_calls", True)
    return Reply(
        text="" if calls else (response.output_text or ""),
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        response_id=str(response.id),
        tool_calls=calls,
        parallel_tool_calls=True if parallel is None else bool(parallel),
    )


def _failure(event: Any) -> str:
    response = getattr(event, "response", None)
    error = getattr(response, "error", None) or getattr(event, "error", None)
    if error is None and getattr(event, "message", None):
        return str(event.message)
    message = getattr(error, "message", None) if error is not None else None
    details = getattr(response, "incomplete_details", None)
    reason = getattr(details, "reason", None) if details is not None else None
    return str(message or reason or "no reason given")


def read_stream(events: Iterable[Any], on_text: TextSink) -> Reply:
    """Pass each text delta to `on_text` as it arrives; the Reply of `response.completed`."""
    for event in events:
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            on_text(str(event.delta))
        elif kind == "response.completed":
            return reply_of(event.response)
        elif kind in ("response.failed", "response.incomplete", "error"):
            raise ProviderError(f"the streamed response ended with {kind}: {_failure(event)}")
    raise ProviderError("the streamed response ended without response.completed")
