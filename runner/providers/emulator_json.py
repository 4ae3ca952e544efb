"""The emulator's wire shapes: error answers, Foundry's JSON bodies and request decoding.

Role in the flow: `emulator_routes` turns store records into Foundry's JSON with these functions
and decodes request bodies and query strings with them; `HttpError` is the one error answer every
emulator module raises.

Invariants: pure functions of their inputs (no store, no I/O). Shapes follow the recorded
service (shared/reference/foundry-protocol.md section 11, tests/providers/recordings/): versions
carry `description: ""` when none was given and keys in the service's order; errors are
`{"error": {"code", "message", "type", "details": [], "additionalInfo": {"request_id"}}}` with
`type` `invalid_request_error` for 400/403 and `error` otherwise; list pages carry `data`,
`first_id`, `last_id`, `has_more`, and an empty page has no `first_id`/`last_id` (the SDK
pages until it sees none); response output items carry `agent_reference` and `response_id`,
and the response's `model` is the agent's model deployment. A malformed request raises
HttpError 400 before any work is done.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from runner.providers.base import AgentVersion
from runner.providers.local_records import (
    MAX_PAGE,
    Conversation,
    ConversationItem,
    Order,
    Page,
    StoredResponse,
)

__all__ = [
    "PREVIEW_FEATURES",
    "HttpError",
    "added_items_json",
    "agent_json",
    "conversation_json",
    "error_json",
    "float32_echo",
    "input_text",
    "item_json",
    "message_items",
    "message_text",
    "metadata_field",
    "missing_preview",
    "page_json",
    "page_limit",
    "page_order",
    "response_json",
    "version_json",
]


class HttpError(Exception):
    """An error answer: status, service error code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    @property
    def type(self) -> str:
        """The error `type` the service sends: `invalid_request_error` for a refused request
        (400, 403: recorded), `error` otherwise (404: recorded)."""
        return "invalid_request_error" if self.status in (400, 403) else "error"


def error_json(error: HttpError, request_id: str) -> dict[str, Any]:
    """The service's error body for `error` (keys in the recorded order)."""
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.status == 400:
        body["param"] = ""
    body.update(type=error.type, details=[], additionalInfo={"request_id": request_id})
    return {"error": body}


# ---------------------------------------------------------------- JSON shapes

PREVIEW_FEATURES: dict[str, tuple[str, str]] = {
    "workflow": ("WorkflowAgents=V1Preview", "Workflow agents"),
    "external": ("ExternalAgents=V1Preview", "External agents"),
    "draft": ("DraftAgents=V1Preview", "Draft agents"),
}
"""What needs which `Foundry-Features` opt-in: definition kinds, and `draft: true`."""


def float32_echo(value: Any) -> Any:
    """A number as a float32 store gives it back (0.3 -> 0.30000001192092896); anything else
    (a bool, a string, a number beyond float32) unchanged."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        return struct.unpack("<f", struct.pack("<f", float(value)))[0]
    except OverflowError:
        return value


def version_json(version: AgentVersion, *, created: bool = False) -> dict[str, Any]:
    """An `agent.version` as the service sends it: `metadata` first, `description` "" when
    none, `kind` first in the definition and `type` first in each tool; reads (not the answer to
    a create, as recorded) add the agent's `agent_guid`, here a UUID derived from its name."""
    definition = _key_first(version.definition, "kind")
    if isinstance(definition.get("tools"), list):
        definition["tools"] = [
            _key_first(t, "type") if isinstance(t, Mapping) else t for t in definition["tools"]
        ]
    shown: dict[str, Any] = {
        "metadata": dict(version.metadata),
        "object": "agent.version",
        "id": f"{version.name}:{version.version}",
        "name": version.name,
        "version": version.version,
        "description": version.description or "",
        "created_at": version.created_at,
        "definition": definition,
        "status": "active",
    }
    if not created:
        shown["agent_guid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"runner-emulator:{version.name}"))
    return shown


def _key_first(value: Mapping[str, Any], key: str) -> dict[str, Any]:
    out = dict(value)
    return {key: out.pop(key), **out} if key in out else out


def agent_json(latest: AgentVersion) -> dict[str, Any]:
    return {
        "object": "agent",
        "id": latest.name,
        "name": latest.name,
        "versions": {"latest": version_json(latest)},
    }


def item_json(item: ConversationItem) -> dict[str, Any]:
    if item.type in ("function_call", "function_call_output"):
        # the store keeps the item's fields as JSON in its content (local_calls)
        prefix = "fc_" if item.type == "function_call" else "fco_"  # the service's id prefixes
        item_id = item.id.replace("msg_", prefix, 1)
        return {"type": item.type, "id": item_id, **json.loads(item.content), "status": "completed"}
    part = "input_text" if item.role == "user" else "output_text"
    content: dict[str, Any] = {"type": part, "text": item.content}
    if part == "output_text":
        content["annotations"] = []
    return {
        "type": item.type,
        "id": item.id,
        "role": item.role,
        "content": [content],
        "status": "completed",
    }


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "object": "conversation",
        "metadata": dict(conversation.metadata),
        "created_at": conversation.created_at,
    }


def response_json(response: StoredResponse, agent: AgentVersion | None = None) -> dict[str, Any]:
    """A `response` as the service sends it (recorded key order): `model`, `tools`,
    `temperature`, `top_p` and `instructions` come from the agent version's definition (`agent`),
    and every output item names the agent version and the response."""
    definition: Mapping[str, Any] = agent.definition if agent is not None else {}
    reference = {
        "type": "agent_reference",
        "name": response.agent_name,
        "version": response.agent_version,
    }
    instructions = response.instructions  # filled with the request's structured inputs
    if instructions is None:
        instructions = definition.get("instructions")
    message = {
        "type": "message",
        "id": response.output_item_id or f"msg_{response.id.partition('_')[2]}",
        "agent_reference": dict(reference),
        "response_id": response.id,
        "role": "assistant",
        "content": [
            {"type": "output_text", "text": response.text, "annotations": [], "logprobs": []}
        ],
        "status": "completed",
    }
    body: dict[str, Any] = {
        "metadata": {},
        "top_logprobs": 0,
        "temperature": definition.get("temperature", 1),
        "top_p": definition.get("top_p", 1),
        "service_tier": "default",
        "model": definition.get("model", response.agent_name),  # the model deployment
        "reasoning": {"effort": "none"},
        "background": False,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tools": [
            _key_first(t, "type") if isinstance(t, Mapping) else t
            for t in definition.get("tools") or ()
        ],
        "tool_choice": definition.get("tool_choice", "auto"),
        "truncation": "disabled",
        "id": response.id,
        "object": "response",
        "status": "completed",
        "created_at": response.created_at,
        "completed_at": response.created_at,
        "error": None,
        "incomplete_details": None,
        "output": [
            {
                "type": "function_call",
                "id": item_id.replace("msg_", "fc_", 1),
                "agent_reference": dict(reference),  # as the service tags each output item
                "response_id": response.id,
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
            for item_id, call in zip(response.call_item_ids, response.tool_calls, strict=True)
        ]
        or [message],
        "instructions": instructions,
        "usage": {
            "input_tokens": response.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": response.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": response.input_tokens + response.output_tokens,
        },
        "parallel_tool_calls": True,
    }
    if response.conversation_id and not response.standalone:
        body["conversation"] = {"id": response.conversation_id}  # no key when standalone
    body["agent_reference"] = reference
    return body


def page_json(page: Page[Any], convert: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """A listing page as the service sends it; an empty page has no `first_id`/`last_id` (the
    SDK pages until `last_id` is missing or null)."""
    data = [convert(x) for x in page.items]
    if not data:
        return {"data": [], "has_more": page.has_more, "object": "list"}
    return {
        "data": data,
        "first_id": data[0]["id"],
        "last_id": data[-1]["id"],
        "has_more": page.has_more,
        "object": "list",
    }


def added_items_json(items: list[ConversationItem]) -> dict[str, Any]:
    """The answer to adding items to a conversation (the recorded key order)."""
    data = [item_json(x) for x in items]
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


# ---------------------------------------------------------------- request decoding


def message_text(content: Any) -> str:
    """The text of a message `content`: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    raise HttpError(400, "invalid_request_error", "message content must be a string or a list")


def message_items(items: Any) -> list[tuple[str, str]]:
    """`(role, text)` of each message item of a request; only message items are emulated."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise HttpError(400, "invalid_request_error", "'items' must be a list")
    out = []
    for item in items:
        if not isinstance(item, dict) or item.get("type", "message") != "message":
            raise HttpError(400, "invalid_request_error", "only message items are emulated")
        out.append((str(item.get("role", "user")), message_text(item.get("content", ""))))
    return out


def input_text(value: Any) -> str:
    """The text of a response request's `input`: a string, or message items joined by lines."""
    if isinstance(value, str):
        return value
    return "\n".join(text for _, text in message_items(value))


def missing_preview(body: Any, features_header: str | None) -> None:
    """HttpError 403 `preview_feature_required` (the recorded answer) when an agent definition
    needs a preview opt-in (workflow, external, `draft: true`) that `features_header` (the
    request's `Foundry-Features`) does not carry."""
    if not isinstance(body, dict):
        return
    definition = body.get("definition")
    needed = []
    if isinstance(definition, dict) and definition.get("kind") in PREVIEW_FEATURES:
        needed.append(PREVIEW_FEATURES[str(definition["kind"])])
    if body.get("draft") is True:
        needed.append(PREVIEW_FEATURES["draft"])
    given = {part.strip().lower() for part in (features_header or "").split(",")}
    for flag, label in needed:
        if flag.lower() not in given:
            raise HttpError(
                403,
                "preview_feature_required",
                f"{label} is in preview. This operation requires the following opt-in "
                f"preview feature(s): {flag}. Include the 'Foundry-Features: {flag}' header "
                "in your request.",
            )


def metadata_field(value: Any) -> dict[str, str] | None:
    """A request's `metadata` object (checked against Foundry's limits by the store)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise HttpError(400, "invalid_parameters", "'metadata' must be an object")
    return value


def page_limit(query: Mapping[str, str]) -> int:
    """The `limit` query parameter: 1 to MAX_PAGE, 20 when absent."""
    raw = query.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise HttpError(400, "invalid_parameters", f"limit must be 1-{MAX_PAGE}, not {raw!r}")
    return int(raw)


def page_order(query: Mapping[str, str], default: Order) -> Order:
    """The `order` query parameter (asc or desc), `default` when absent."""
    raw = query.get("order", default)
    if raw not in ("asc", "desc"):
        raise HttpError(400, "invalid_parameters", f"order must be asc or desc, not {raw!r}")
    return "asc" if raw == "asc" else "desc"
