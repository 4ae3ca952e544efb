"""`runner emulator`: a LocalStore served over Foundry's agents REST protocol (api-version v1).

Role in the flow: the foundry provider, the real azure-ai-projects SDK and the openai client are
tested against this HTTP server instead of Azure; benchmarks count the requests runner sends
(`GET /_emulator/stats`). It speaks the protocol as SDK 2.10.0 does (see
shared/reference/foundry-protocol.md): routes under any `/api/projects/{project}` prefix, 200 on
every success, errors as `{"error": {"code", "message"}}`, list pages with `data`, `first_id`,
`last_id`, `has_more`, and an empty page with `last_id: null` (the SDK pages until it sees one).
`/openai/v1/conversations` and `/openai/v1/responses` answer with the local provider's
deterministic reply and its word-count usage.

Invariants:
- Every write is committed to the store before any byte of the response is sent.
- Injected faults are decided per request from one seeded random stream, so a run with `seed`
  is repeatable given the same request order. `fail_rate`: the request is answered 429 (with
  `Retry-After` and `retry-after-ms`) or 503 *without doing the work*. `lost_response_rate`: a
  write is done and committed, then its response is lost (503, or the connection is dropped),
  as when a reply is lost on the way back.
- Stats and reset endpoints (`/_emulator/...`) are neither counted nor faulted.
"""

from __future__ import annotations

import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from runner.providers.base import AgentVersion, NotFoundError, ProviderError
from runner.providers.local import MAX_PAGE, ConversationItem, LocalStore, Page, StoredResponse

LostResponseMode = Literal["503", "drop"]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_VERSIONS = frozenset({"v1"})

_PREFIX = r"(?:/api/projects/[^/]+)?"
_SEGMENT = r"([^/]+)"


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


@dataclass
class FaultConfig:
    """What the emulator injects; changeable while it runs (`EmulatorHandle.configure`)."""

    latency_ms: float = 0.0
    fail_rate: float = 0.0
    lost_response_rate: float = 0.0
    fail_statuses: tuple[int, ...] = (429, 503)
    retry_after_ms: int = 0
    lost_response_mode: LostResponseMode = "503"

    def check(self) -> None:
        for label, rate in (
            ("fail_rate", self.fail_rate),
            ("lost_response_rate", self.lost_response_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{label} must be between 0 and 1, not {rate}")
        if self.latency_ms < 0 or self.retry_after_ms < 0:
            raise ValueError("latency_ms and retry_after_ms must not be negative")
        if not self.fail_statuses or any(
            s not in (429, 500, 502, 503, 504) for s in self.fail_statuses
        ):
            raise ValueError("fail_statuses must be among 429, 500, 502, 503, 504")


@dataclass
class _Stats:
    by_method: Counter[str] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)
    reads: int = 0
    writes: int = 0
    injected_failures: int = 0
    lost_responses: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.reads + self.writes,
            "reads": self.reads,
            "writes": self.writes,
            "by_method": dict(sorted(self.by_method.items())),
            "by_route": dict(sorted(self.by_route.items())),
            "injected_failures": self.injected_failures,
            "lost_responses": self.lost_responses,
        }


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
        "instructions": None,
        "model": f"{response.agent_name}:{response.agent_version}",
        "agent_reference": {
            "type": "agent_reference",
            "name": response.agent_name,
            "version": response.agent_version,
        },
        "conversation": {"id": response.conversation_id} if response.conversation_id else None,
        "output": [
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


def _text_of(content: Any) -> str:
    """The text of a message `content`: a string or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    raise HttpError(400, "invalid_request_error", "message content must be a string or a list")


def _messages(items: Any) -> list[tuple[str, str]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise HttpError(400, "invalid_request_error", "'items' must be a list")
    out = []
    for item in items:
        if not isinstance(item, dict) or item.get("type", "message") != "message":
            raise HttpError(400, "invalid_request_error", "only message items are emulated")
        out.append((str(item.get("role", "user")), _text_of(item.get("content", ""))))
    return out


def _input_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "\n".join(text for _, text in _messages(value))


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise HttpError(400, "invalid_parameters", "'metadata' must be an object")
    return value


def _limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise HttpError(400, "invalid_parameters", f"limit must be 1-{MAX_PAGE}, not {raw!r}")
    return int(raw)


def _order(query: Mapping[str, str], default: Literal["asc", "desc"]) -> Literal["asc", "desc"]:
    raw = query.get("order", default)
    if raw not in ("asc", "desc"):
        raise HttpError(400, "invalid_parameters", f"order must be asc or desc, not {raw!r}")
    return "asc" if raw == "asc" else "desc"


# ---------------------------------------------------------------- routes

Handler = Callable[["Emulator", re.Match[str], Mapping[str, str], Any], tuple[int, Any]]


class Emulator:
    """The protocol logic, independent of the HTTP server: (method, path, query, body) -> JSON."""

    def __init__(self, store: LocalStore, *, faults: FaultConfig, seed: int | None = None) -> None:
        faults.check()
        self.store = store
        self.faults = faults
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stats = _Stats()
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._register()

    # ---- bookkeeping

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.as_dict()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = _Stats()

    def draw(self, method: str, route: str) -> tuple[int | None, bool]:
        """Count the request and decide its fault: (failure status or None, lose response?)."""
        with self._lock:
            stats = self._stats
            stats.by_method[method] += 1
            stats.by_route[route] += 1
            if method in WRITE_METHODS:
                stats.writes += 1
            else:
                stats.reads += 1
            fail_draw, lost_draw, status_draw = (self._random.random() for _ in range(3))
            failure = None
            if fail_draw < self.faults.fail_rate:
                statuses = self.faults.fail_statuses
                failure = statuses[int(status_draw * len(statuses)) % len(statuses)]
                stats.injected_failures += 1
                return failure, False
            lost = method in WRITE_METHODS and lost_draw < self.faults.lost_response_rate
            if lost:
                stats.lost_responses += 1
            return None, lost

    # ---- routing

    def _register(self) -> None:
        agents = _PREFIX + "/agents"
        openai = _PREFIX + "/openai/v1"
        table: list[tuple[str, str, str, Handler]] = [
            ("GET", agents, "agents", Emulator._list_agents),
            ("POST", agents, "agents", Emulator._create_agent),
            ("GET", f"{agents}/{_SEGMENT}", "agents", Emulator._get_agent),
            ("DELETE", f"{agents}/{_SEGMENT}", "agents", Emulator._delete_agent),
            ("GET", f"{agents}/{_SEGMENT}/versions", "agents", Emulator._list_versions),
            ("POST", f"{agents}/{_SEGMENT}/versions", "agents", Emulator._create_version),
            ("GET", f"{agents}/{_SEGMENT}/versions/{_SEGMENT}", "agents", Emulator._get_version),
            (
                "DELETE",
                f"{agents}/{_SEGMENT}/versions/{_SEGMENT}",
                "agents",
                Emulator._delete_version,
            ),
            ("POST", f"{openai}/conversations", "conversations", Emulator._create_conversation),
            ("GET", f"{openai}/conversations/{_SEGMENT}", "conversations", Emulator._get_conv),
            (
                "DELETE",
                f"{openai}/conversations/{_SEGMENT}",
                "conversations",
                Emulator._delete_conv,
            ),
            (
                "POST",
                f"{openai}/conversations/{_SEGMENT}/items",
                "conversations",
                Emulator._add_items,
            ),
            (
                "GET",
                f"{openai}/conversations/{_SEGMENT}/items",
                "conversations",
                Emulator._list_items,
            ),
            ("POST", f"{openai}/responses", "responses", Emulator._create_response),
            ("GET", f"{openai}/responses/{_SEGMENT}", "responses", Emulator._get_response),
        ]
        self._routes = [(m, re.compile(p + "/?$"), r, h) for m, p, r, h in table]

    def route(self, method: str, path: str) -> tuple[str, re.Match[str], Handler]:
        """(route family, match, handler); HttpError 404/405 when nothing matches."""
        allowed = False
        for route_method, pattern, family, handler in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            if route_method == method:
                return family, match, handler
            allowed = True
        if allowed:
            raise HttpError(405, "method_not_allowed", f"{method} is not supported on {path}")
        raise HttpError(404, "not_found", f"no such route: {method} {path}")

    @staticmethod
    def check_api_version(family: str, query: Mapping[str, str]) -> None:
        if family != "agents":
            return  # /openai/v1 routes carry no api-version
        version = query.get("api-version")
        if version not in API_VERSIONS:
            raise HttpError(
                400,
                "invalid_api_version",
                f"api-version must be one of {sorted(API_VERSIONS)}, not {version!r}",
            )

    # ---- agents

    def _list_agents(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        page = self.store.list_latest(
            limit=_limit(q),
            order=_order(q, "desc"),
            after=q.get("after"),
            before=q.get("before"),
            kind=q.get("kind"),
        )
        return 200, page_json(page, agent_json)

    def _get_agent(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        name = unquote(m.group(1))
        latest = self.store.latest_version(name)
        if latest is None:
            raise HttpError(404, "not_found", f"Agent '{name}' not found")
        return 200, agent_json(latest)

    def _delete_agent(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        name = unquote(m.group(1))
        self.store.delete_agent(name)
        return 200, {"object": "agent.deleted", "name": name, "deleted": True}

    def _list_versions(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        page = self.store.list_versions(
            unquote(m.group(1)),
            limit=_limit(q),
            order=_order(q, "desc"),
            after=q.get("after"),
            before=q.get("before"),
        )
        return 200, page_json(page, version_json)

    def _create_from_body(self, name: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise HttpError(400, "invalid_parameters", "the request body must be a JSON object")
        definition = body.get("definition")
        if not isinstance(definition, dict):
            raise HttpError(400, "invalid_parameters", "'definition' is required (an object)")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise HttpError(400, "invalid_parameters", "'description' must be a string")
        version = self.store.create_version(
            name,
            definition=definition,
            metadata=_metadata(body.get("metadata")),
            description=description,
        )
        return 200, version_json(version)

    def _create_version(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        return self._create_from_body(unquote(m.group(1)), body)

    def _create_agent(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        """REST createAgent (not in SDK 2.10): a new agent or a new version of one."""
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str):
            raise HttpError(400, "invalid_parameters", "'name' is required")
        self._create_from_body(name, body)
        latest = self.store.latest_version(name)
        assert latest is not None
        return 200, agent_json(latest)

    def _get_version(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        name, number = unquote(m.group(1)), unquote(m.group(2))
        version = self.store.get_version(name, number)
        if version is None:
            raise HttpError(404, "not_found", f"Version '{number}' of agent '{name}' not found")
        return 200, version_json(version)

    def _delete_version(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        name, number = unquote(m.group(1)), unquote(m.group(2))
        self.store.delete_version(name, number)
        return 200, {
            "object": "agent.version.deleted",
            "name": name,
            "version": number,
            "deleted": True,
        }

    # ---- conversations and responses

    def _create_conversation(
        self, m: re.Match[str], q: Mapping[str, str], body: Any
    ) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        conversation = self.store.create_conversation(
            metadata=_metadata(body.get("metadata")), items=_messages(body.get("items"))
        )
        return 200, {
            "id": conversation.id,
            "object": "conversation",
            "created_at": conversation.created_at,
            "metadata": dict(conversation.metadata),
        }

    def _get_conv(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        conversation = self.store.get_conversation(unquote(m.group(1)))
        if conversation is None:
            raise HttpError(404, "not_found", f"Conversation '{m.group(1)}' not found")
        return 200, {
            "id": conversation.id,
            "object": "conversation",
            "created_at": conversation.created_at,
            "metadata": dict(conversation.metadata),
        }

    def _delete_conv(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        conversation_id = unquote(m.group(1))
        self.store.delete_conversation(conversation_id)
        return 200, {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    def _add_items(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        items = self.store.add_items(
            unquote(m.group(1)), _messages(body.get("items") if isinstance(body, dict) else None)
        )
        return 200, page_json(Page(items, False), item_json)

    def _list_items(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        page = self.store.list_items(
            unquote(m.group(1)), limit=_limit(q), order=_order(q, "desc"), after=q.get("after")
        )
        return 200, page_json(page, item_json)

    def _create_response(
        self, m: re.Match[str], q: Mapping[str, str], body: Any
    ) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise HttpError(400, "invalid_request_error", "the request body must be an object")
        if body.get("stream"):
            raise HttpError(400, "invalid_request_error", "streaming is not emulated")
        reference = body.get("agent_reference") or body.get("agent")
        if not isinstance(reference, dict) or not isinstance(reference.get("name"), str):
            raise HttpError(
                400, "invalid_request_error", "'agent_reference' with a 'name' is required"
            )
        conversation = body.get("conversation")
        if isinstance(conversation, dict):
            conversation = conversation.get("id")
        if conversation is not None and not isinstance(conversation, str):
            raise HttpError(400, "invalid_request_error", "'conversation' must be an id")
        version = reference.get("version")
        response = self.store.respond(
            conversation_id=conversation,
            agent_name=reference["name"],
            agent_version=None if version is None else str(version),
            text=_input_text(body.get("input", "")),
        )
        return 200, response_json(response)

    def _get_response(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        response = self.store.get_response(unquote(m.group(1)))
        if response is None:
            raise HttpError(404, "not_found", f"Response '{m.group(1)}' not found")
        return 200, response_json(response)


# ---------------------------------------------------------------- HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Emulator


class _Server6(_Server):
    address_family = socket.AF_INET6


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "runner-emulator/1"
    timeout = 120  # idle keep-alive connections end eventually
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: benchmarks send thousands of requests

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", self.headers.get("x-ms-client-request-id", ""))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: HttpError) -> None:
        body = {"error": {"code": error.code, "message": error.message, "type": error.code}}
        self._send(error.status, body, error.headers)

    def _handle(self, method: str) -> None:
        emulator = self.server.emulator
        split = urlsplit(self.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path.endswith("/_emulator/stats") and method == "GET":
            self._send(200, emulator.stats())
            return
        if path.endswith("/_emulator/reset-stats") and method == "POST":
            emulator.reset_stats()
            self._send(200, {"reset": True})
            return
        try:
            family, match, handler = emulator.route(method, path)
        except HttpError as exc:
            self._send_error(exc)
            return
        failure, lost = emulator.draw(method, family)
        faults = emulator.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if failure is not None:
            self._send_error(_injected(failure, faults.retry_after_ms))
            return
        try:
            emulator.check_api_version(family, query)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise HttpError(400, "invalid_request_error", "the body is not JSON") from None
            status, payload = handler(emulator, match, query, body)
        except HttpError as exc:
            self._send_error(exc)
            return
        except NotFoundError as exc:
            self._send_error(HttpError(404, exc.code or "not_found", str(exc)))
            return
        except ProviderError as exc:
            self._send_error(
                HttpError(exc.status or 400, exc.code or "invalid_parameters", str(exc))
            )
            return
        if lost:  # the work is committed; the answer never arrives
            if faults.lost_response_mode == "drop":
                self.close_connection = True
                return
            self._send_error(HttpError(503, "service_unavailable", "the response was lost"))
            return
        self._send(status, payload)


def _injected(status: int, retry_after_ms: int) -> HttpError:
    if status == 429:
        return HttpError(
            429,
            "rate_limit_exceeded",
            "Rate limit exceeded (injected by runner emulator)",
            headers={
                "Retry-After": str(math.ceil(retry_after_ms / 1000)),
                "retry-after-ms": str(retry_after_ms),
            },
        )
    return HttpError(
        status,
        "service_unavailable" if status == 503 else "internal_error",
        f"{HTTPStatus(status).phrase} (injected by runner emulator)",
    )


# ---------------------------------------------------------------- running it


class EmulatorHandle:
    """A running emulator: `.endpoint` for FoundryProvider/AIProjectClient, `.stop()` to end."""

    def __init__(
        self, server: _Server, thread: threading.Thread, *, project: str, owns_store: bool
    ) -> None:
        self._server = server
        self._thread = thread
        self._owns_store = owns_store
        host, port = server.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else str(host)
        if ":" in shown:
            shown = f"[{shown}]"
        self.port = int(port)
        self.base_url = f"http://{shown}:{self.port}"
        self.endpoint = f"{self.base_url}/api/projects/{project}"
        self.emulator = server.emulator
        self.store = server.emulator.store

    def stats(self) -> dict[str, Any]:
        """Requests so far: `requests`, `reads`, `writes`, `by_method`, `by_route`, faults."""
        return self.emulator.stats()

    def reset_stats(self) -> None:
        self.emulator.reset_stats()

    def configure(self, **changes: Any) -> None:
        """Change fault settings while running, e.g. `configure(fail_rate=1.0)`."""
        faults = self.emulator.faults
        updated = FaultConfig(**{**faults.__dict__, **changes})
        updated.check()
        self.emulator.faults = updated

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        if self._owns_store:
            self.store.close()

    def wait(self) -> None:
        """Block until the server stops (used by the CLI, which serves until Ctrl-C)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_emulator(
    *,
    data_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    latency_ms: float = 0,
    fail_rate: float = 0,
    lost_response_rate: float = 0,
    seed: int | None = None,
    fail_statuses: Sequence[int] = (429, 503),
    retry_after_ms: int = 0,
    lost_response_mode: LostResponseMode = "503",
    project: str = "p1",
) -> EmulatorHandle:
    """Start the emulator on a background thread over the store in `data_dir`.

    `port=0` picks a free port. Use as a context manager; the store file is
    `data_dir/local-store.db` (the same file a `local` environment with that data_dir uses).
    """
    from runner.paths import local_store_path

    faults = FaultConfig(
        latency_ms=latency_ms,
        fail_rate=fail_rate,
        lost_response_rate=lost_response_rate,
        fail_statuses=tuple(fail_statuses),
        retry_after_ms=retry_after_ms,
        lost_response_mode=lost_response_mode,
    )
    faults.check()
    store = LocalStore(local_store_path(str(data_dir)))
    try:
        server_class = _Server6 if ":" in host else _Server
        server = server_class((host, port), _RequestHandler)
    except OSError:
        store.close()
        raise
    server.emulator = Emulator(store, faults=faults, seed=seed)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.name = f"runner-emulator-{server.server_address[1]}"
    thread.start()
    return EmulatorHandle(server, thread, project=project, owns_store=True)
