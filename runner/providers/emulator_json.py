"""The emulator's wire shapes: error answers, Foundry's JSON bodies and request decoding.

Role in the flow: `emulator_routes` turns store records into Foundry's JSON with these functions
and decodes request bodies and query strings with them; `HttpError` is the one error answer every
emulator module raises.

Invariants: pure functions of their inputs (no store, no I/O). Shapes follow SDK 2.10.0 (see
shared/reference/foundry-protocol.md): list pages carry `data`, `first_id`, `last_id`,
`has_more`, and an empty page has `last_id: null` (the SDK pages until it sees one). A malformed
request raises HttpError 400 before any work is done.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from runner.providers.base import AgentVersion
from runner.providers.local_records import MAX_PAGE, ConversationItem, Order, Page, StoredResponse

__all__ = [
    "HttpError",
    "agent_json",
    "input_text",
    "item_json",
    "message_items",
    "message_text",
    "metadata_field",
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


# ---------------------------------------------------------------- JSON shapes


def version_json(version: AgentVersion) -> dict[str, Any]:
    return {
        "object": "agent.version",
        "id": f"{version.name}:{version.version}",
        "name": version.name,
        "version": version.version,
        "description": version.description,
        "metadata": dict(version.metadata),
        "created_at": version.created_at,
        "definition": dict(version.definition),
        "status": "active",
    }


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
        "status": "completed",
        "role": item.role,
        "content": [content],
    }


def response_json(response: StoredResponse) -> dict[str, Any]:
    return {
        "id": response.id,
        "object": "response",
        "created_at": response.created_at,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": response.instructions,  # filled with the request's structured inputs
        "model": f"{response.agent_name}:{response.agent_version}",
        "agent_reference": {
            "type": "agent_reference",
            "name": response.agent_name,
            "version": response.agent_version,
        },
        "conversation": (
            {"id": response.conversation_id}
            if response.conversation_id and not response.standalone
            else None
        ),
        "output": [
            {
                "type": "function_call",
                "id": item_id.replace("msg_", "fc_", 1),
                "agent_reference": {  # as the service tags each output item (recordings)
                    "type": "agent_reference",
                    "name": response.agent_name,
                    "version": response.agent_version,
                },
                "response_id": response.id,
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }
            for item_id, call in zip(response.call_item_ids, response.tool_calls, strict=True)
        ]
        or [
            {
                "type": "message",
                "id": response.output_item_id or f"msg_{response.id.partition('_')[2]}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": response.text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "usage": {
            "input_tokens": response.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": response.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": response.input_tokens + response.output_tokens,
        },
    }


def page_json(page: Page[Any], convert: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    data = [convert(x) for x in page.items]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,  # null on an empty page ends SDK paging
        "has_more": page.has_more,
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
