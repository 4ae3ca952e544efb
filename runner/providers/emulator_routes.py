"""The emulator's protocol logic: Foundry's REST routes over a LocalStore, per path.

Role in the flow: the HTTP handler in `emulator` asks `Emulator.route` for (family, match,
handler), `Emulator.draw` for the request's fault, then calls the handler with the decoded
query and body and sends the JSON it returns.

Invariants:
- Routes match under any `/api/projects/{project}` prefix, with or without a trailing slash; a
  path that matches with another method is 405, no match is 404.
- `/agents` routes require `api-version` in API_VERSIONS (the versions the service advertises
  and the SDKs send); `/openai/v1` routes carry none.
- A definition that needs a preview feature (workflow, external, a draft) is refused 403
  `preview_feature_required` unless the request's `Foundry-Features` header opts in, as the
  service does (`check_preview_features`, before any work).
- With `float32=True` the definition's `temperature`/`top_p` are stored and echoed as float32
  (0.3 -> 0.30000001192092896), as the service keeps them.
- Every handler commits its write to the store before returning; success is always 200.
- Faults are drawn from one seeded random stream under a lock, in request order, so a run with
  `seed` is repeatable; stats and faults are counted together under the same lock.
"""

from __future__ import annotations

import random
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from runner.providers.base import NotFoundError
from runner.providers.emulator_faults import FaultConfig, RequestStats
from runner.providers.emulator_json import (
    HttpError,
    added_items_json,
    agent_json,
    conversation_json,
    float32_echo,
    item_json,
    message_items,
    metadata_field,
    missing_preview,
    page_json,
    page_limit,
    page_order,
    response_json,
    version_json,
)
from runner.providers.emulator_responses import response_events, response_request
from runner.providers.local_records import StoredResponse
from runner.providers.local_store import LocalStore

__all__ = ["API_VERSIONS", "WRITE_METHODS", "Emulator", "Handler"]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_VERSIONS = frozenset({"v1", "1.0", "2025-05-15-preview", "2025-11-15-preview"})
"""`api-supported-versions` of the recorded service; GA SDKs send `v1`."""

FLOAT32_FIELDS = ("temperature", "top_p")

_PREFIX = r"(?:/api/projects/[^/]+)?"
_SEGMENT = r"([^/]+)"


Handler = Callable[["Emulator", re.Match[str], Mapping[str, str], Any], tuple[int, Any]]


class Emulator:
    """The protocol logic, independent of the HTTP server: (method, path, query, body) -> JSON."""

    def __init__(
        self,
        store: LocalStore,
        *,
        faults: FaultConfig,
        seed: int | None = None,
        record_requests: int = 0,
        float32: bool = False,
    ) -> None:
        faults.check()
        self.store = store
        self.float32 = float32
        self.faults = faults
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stats = RequestStats()
        # The last `record_requests` routed requests (method, path, decoded JSON body), for
        # tests that check what a client sent; off (0) by default.
        self._journal: deque[dict[str, Any]] = deque(maxlen=record_requests or 1)
        self._recording = record_requests > 0
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._register()

    # ---- bookkeeping

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.as_dict()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = RequestStats()
            self._journal.clear()

    def record(self, method: str, path: str, body: Any, features: str | None = None) -> None:
        """Keep a routed request in the journal (when recording), with its `Foundry-Features`."""
        if self._recording:
            entry = {"method": method, "path": path, "body": body, "features": features}
            with self._lock:
                self._journal.append(entry)

    def recorded(self) -> list[dict[str, Any]]:
        """The recorded requests, oldest first (`record_requests` of the newest)."""
        with self._lock:
            return list(self._journal)

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

    @staticmethod
    def check_preview_features(
        method: str, family: str, body: Any, features_header: str | None
    ) -> None:
        """403 `preview_feature_required` for an agents POST whose definition needs a preview
        opt-in the `Foundry-Features` header does not carry (`emulator_json.missing_preview`)."""
        if method == "POST" and family == "agents":
            missing_preview(body, features_header)

    # ---- agents

    def _list_agents(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        page = self.store.list_latest(
            limit=page_limit(q),
            order=page_order(q, "desc"),
            after=q.get("after"),
            before=q.get("before"),
            kind=q.get("kind"),
        )
        return 200, page_json(page, agent_json)

    def _get_agent(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        name = unquote(m.group(1))
        latest = self.store.latest_version(name)
        if latest is None:
            raise HttpError(404, "not_found", f"Agent {name} doesn't exist")  # as recorded
        return 200, agent_json(latest)

    def _delete_agent(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        name = unquote(m.group(1))
        try:
            self.store.delete_agent(name)
        except NotFoundError:
            raise HttpError(404, "not_found", "Agent not found") from None  # as recorded
        return 200, {"object": "agent.deleted", "name": name, "deleted": True}

    def _list_versions(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        page = self.store.list_versions(
            unquote(m.group(1)),
            limit=page_limit(q),
            order=page_order(q, "desc"),
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
        if self.float32:
            definition = {
                k: float32_echo(v) if k in FLOAT32_FIELDS else v for k, v in definition.items()
            }
        version = self.store.create_version(
            name,
            definition=definition,
            metadata=metadata_field(body.get("metadata")),
            description=description,
        )
        return 200, version_json(version, created=True)

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
            raise HttpError(404, "not_found", f"Agent {name} with version {number} not found")
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
            metadata=metadata_field(body.get("metadata")), items=message_items(body.get("items"))
        )
        return 200, conversation_json(conversation)

    def _get_conv(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        conversation = self.store.get_conversation(unquote(m.group(1)))
        if conversation is None:
            raise HttpError(404, "not_found", f"Conversation '{m.group(1)}' not found")
        return 200, conversation_json(conversation)

    def _delete_conv(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        conversation_id = unquote(m.group(1))
        self.store.delete_conversation(conversation_id)
        return 200, {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    def _add_items(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        items = self.store.add_items(
            unquote(m.group(1)),
            message_items(body.get("items") if isinstance(body, dict) else None),
        )
        return 200, added_items_json(items)

    def _list_items(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        page = self.store.list_items(
            unquote(m.group(1)),
            limit=page_limit(q),
            order=page_order(q, "desc"),
            after=q.get("after"),
        )
        return 200, page_json(page, item_json)

    def _create_response(
        self, m: re.Match[str], q: Mapping[str, str], body: Any
    ) -> tuple[int, Any]:
        request = response_request(body)
        response = self.store.respond(
            conversation_id=request.conversation,
            agent_name=request.agent_name,
            agent_version=request.agent_version,
            text=request.text,
            structured_inputs=request.structured_inputs,
            tool_outputs=request.tool_outputs,
            previous_response_id=request.previous_response_id,
        )
        answer = self._response_body(response)
        return 200, response_events(answer) if request.stream else answer

    def _response_body(self, response: StoredResponse) -> dict[str, Any]:
        """The response's JSON, with its agent version's model, tools and sampling."""
        agent = self.store.get_version(response.agent_name, response.agent_version)
        return response_json(response, agent)

    def _get_response(self, m: re.Match[str], q: Mapping[str, str], body: Any) -> tuple[int, Any]:
        response = self.store.get_response(unquote(m.group(1)))
        if response is None:
            raise HttpError(404, "not_found", f"Response '{m.group(1)}' not found")
        return 200, self._response_body(response)
