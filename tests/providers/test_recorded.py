"""The emulator held to recorded traffic of the real service, key by key.

Each test replays requests transcribed in `recordings/` (every exchange names its source: the
public Azure SDK test recordings, see recordings/README.md) against `runner emulator` over HTTP,
and compares the answer with the recorded body: the same keys in the same order at every level,
the same values, except for values only the service could know (ids it minted, timestamps,
request ids, model text and token counts), which must still have the recorded JSON type.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runner.providers.base import ProviderError
from runner.providers.emulator import EmulatorHandle
from runner.providers.foundry import FoundryProvider

RECORDINGS = Path(__file__).parent / "recordings"

# Keys of a later service build than some recordings (agents_crud_dotnet.json and
# list_agents.json show `status: active` on every version and `agent_guid` on reads); the
# emulator follows the later build.
LATER_BUILD_KEYS = ("status", "agent_guid")

# Values only the service could know: compared by JSON type, not by value.
MINTED = frozenset(
    {
        "id",
        "created_at",
        "completed_at",
        "request_id",
        "response_id",
        "first_id",
        "last_id",
        "agent_guid",
    }
)


def recording(name: str) -> list[dict[str, Any]]:
    exchanges: list[dict[str, Any]] = json.loads((RECORDINGS / name).read_text(encoding="utf-8"))
    assert all(e["source"].startswith("Azure/azure-sdk-assets/") for e in exchanges)
    return exchanges


def json_type(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    return "number" if isinstance(value, int | float) else type(value).__name__


def assert_like(
    recorded: Any, ours: Any, *, loose: frozenset[str] = frozenset(), path: str = "$"
) -> None:
    """`ours` has the recorded keys, in order, and values (by type for MINTED and `loose`)."""
    if isinstance(recorded, dict):
        assert isinstance(ours, dict), f"{path}: expected an object, got {ours!r}"
        keys = [k for k in ours if k in recorded or k not in LATER_BUILD_KEYS]
        assert keys == list(recorded), f"{path}: keys {list(ours)} != {list(recorded)}"
        for key, value in recorded.items():
            sub = f"{path}.{key}"
            if key in MINTED or key in loose:
                assert json_type(ours[key]) == json_type(value), f"{sub}: {ours[key]!r}"
            else:
                assert_like(value, ours[key], loose=loose, path=sub)
        return
    if isinstance(recorded, list):
        assert isinstance(ours, list) and len(ours) == len(recorded), f"{path}: {ours!r}"
        for index, (a, b) in enumerate(zip(recorded, ours, strict=True)):
            assert_like(a, b, loose=loose, path=f"{path}[{index}]")
        return
    assert ours == recorded and json_type(ours) == json_type(recorded), f"{path}: {ours!r}"


def call(
    emulator: EmulatorHandle,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        emulator.endpoint + path, data=data, method=method, headers=headers or {}
    )
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def replay(emulator: EmulatorHandle, exchange: dict[str, Any], **swap: str) -> tuple[int, Any]:
    """Send the recorded request (ids the service minted swapped for ours)."""
    request = exchange["request"]
    path, body = request["path"], json.dumps(request["body"])
    for theirs, mine in swap.items():
        path, body = path.replace(theirs, mine), body.replace(theirs, mine)
    return call(emulator, request["method"], path, json.loads(body), request["headers"])


def test_agent_crud_answers_like_the_service(emulator: EmulatorHandle) -> None:
    """create_version x3, get, get_version x2, list_versions (2, then the empty page), delete
    agent, delete version: python/.../test_agents_crud.json entries 0-9."""
    for exchange in recording("agents_crud.json"):
        status, body = replay(emulator, exchange)
        assert status == exchange["response"]["status"]
        assert_like(exchange["response"]["body"], body, loose=frozenset({"status"}))


def test_a_later_service_build_adds_status_and_agent_guid(emulator: EmulatorHandle) -> None:
    """metadata round trip, `status: active`, `agent_guid` on reads (not on the create):
    net/.../TestAgentCRUD.json entries 1 and 4-5."""
    exchanges = recording("agents_crud_dotnet.json")
    for exchange in (exchanges[0], *exchanges[3:6]):
        status, body = replay(emulator, exchange)
        assert status == 200
        assert_like(exchange["response"]["body"], body)
    assert "agent_guid" not in replay(emulator, exchanges[3])[1]


def test_a_kind_filtered_listing_answers_like_the_service(emulator: EmulatorHandle) -> None:
    """`GET /agents?kind=workflow`, newest first: net/.../TestAgentCRUD(False).json entry 6. The
    two workflow agents are created first (oldest first) with their recorded definitions."""
    exchange = recording("list_agents.json")[0]
    recorded = exchange["response"]["body"]
    header = {"Foundry-Features": exchange["request"]["headers"]["Foundry-Features"]}
    for agent in reversed(recorded["data"]):
        latest = agent["versions"]["latest"]
        body = {"definition": latest["definition"]}
        status, _ = call(
            emulator, "POST", f"/agents/{agent['name']}/versions?api-version=v1", body, header
        )
        assert status == 200
    call(
        emulator,
        "POST",
        "/agents/not-a-workflow/versions?api-version=v1",
        {"definition": {"kind": "prompt", "model": "m"}},
    )
    status, body = replay(emulator, exchange)
    assert status == 200
    assert_like(recorded, body)


def test_errors_have_the_recorded_code_type_and_message(emulator: EmulatorHandle) -> None:
    """404 not_found (get agent, delete agent, get version) and 403 preview_feature_required:
    net/.../ErrorsGiveGoodExceptionMessages.json, TestAgentCRUD.json entries 0 and 7,
    python/.../test_agent_create_version_exception...allow_preview_not_set.json."""
    for exchange in recording("errors.json")[:4]:
        status, body = replay(emulator, exchange)
        assert status == exchange["response"]["status"]
        assert_like(exchange["response"]["body"], body)


def test_a_refused_payload_is_an_invalid_request_error(emulator: EmulatorHandle) -> None:
    """400 invalid_payload, `param: ""`, for a template naming an undeclared structured input:
    python/...[sample_agent_structured_inputs_tool_resources] entry 1 (the emulator's message
    says what is wrong; the service's does not)."""
    exchange = recording("structured_inputs.json")[4]
    status, body = replay(emulator, exchange)
    assert status == 400
    assert_like(exchange["response"]["body"], body, loose=frozenset({"message"}))


def test_workflow_with_the_preview_header_is_accepted(emulator: EmulatorHandle) -> None:
    """python/.../test_workflow_agent_creation_with_tracing...json entries 0-1."""
    for exchange in recording("workflow_preview.json"):
        status, body = replay(emulator, exchange)
        assert status == 200
        assert_like(exchange["response"]["body"], body)


def test_conversation_items_answer_like_the_service(emulator: EmulatorHandle) -> None:
    """create, add two items, list: python/.../test_conversation_items_crud.json entries 0-1, 3."""
    exchanges = recording("conversations.json")
    status, created = replay(emulator, exchanges[0])
    assert status == 200
    assert_like(exchanges[0]["response"]["body"], created)
    theirs = exchanges[0]["response"]["body"]["id"]
    status, added = replay(emulator, exchanges[1], **{theirs: created["id"]})
    assert status == 200
    assert_like(exchanges[1]["response"]["body"], added)
    status, listed = replay(emulator, exchanges[3], **{theirs: created["id"]})
    assert status == 200
    assert_like(exchanges[3]["response"]["body"], listed)


def test_a_response_answers_like_the_service(emulator: EmulatorHandle) -> None:
    """The agent of python/.../test_function_tool_with_conversation.json (entry 0) answers in a
    conversation (entry 1); its reply has the shape of the recorded final message (entry 5):
    `model` the deployment, the agent's tools, instructions and temperature, and output items
    naming the agent version and the response. (Entry 5 answers a function_call_output; here a
    plain message, which a model answers the same way.)"""
    exchanges = recording("function_tool_conversation.json")
    status, agent = replay(emulator, exchanges[0])
    assert status == 200
    assert_like(exchanges[0]["response"]["body"], agent)
    status, conversation = replay(emulator, exchanges[1])
    assert status == 200
    recorded = exchanges[5]["response"]["body"]
    body = {
        "conversation": conversation["id"],
        "input": "Hello there",
        "agent_reference": {"name": agent["name"], "type": "agent_reference"},
    }
    status, response = call(emulator, "POST", "/openai/v1/responses", body)
    assert status == 200
    loose = frozenset({"text", "top_p", "input_tokens", "output_tokens", "total_tokens"})
    assert_like(recorded, response, loose=loose)
    item = response["output"][0]
    assert item["response_id"] == response["id"]
    assert item["agent_reference"] == response["agent_reference"]
    assert response["conversation"] == {"id": conversation["id"]}


# ---------------------------------------------------------------- the provider reads replies


class _Replay(BaseHTTPRequestHandler):
    """Answers every POST /openai/v1/responses with one recorded body."""

    body: dict[str, Any] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = json.dumps(type(self).body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def replay_server() -> Iterator[tuple[str, type[_Replay]]]:
    handler = type("Handler", (_Replay,), {"body": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/projects/p1", handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        (4, "Here\u2019s a 10\u00d710 multiplication chart"),  # code_interpreter_call + message
        (7, ""),  # mcp_list_tools + mcp_approval_request, no message
    ],
)
def test_server_side_tool_items_never_break_reply_parsing(
    replay_server: tuple[str, type[_Replay]], entry: int, text: str
) -> None:
    """python/...[sample_agent_code_interpreter] and [sample_agent_mcp] responses."""
    endpoint, handler = replay_server
    recorded = recording("builtin_tools.json")[entry]["response"]["body"]
    handler.body = recorded
    provider = FoundryProvider(endpoint, timeout=10)
    try:
        reply = provider.respond(
            conversation_id="conv_1", agent_name="MyAgent", agent_version=None, text="hi"
        )
    finally:
        provider.close()
    assert reply.text.startswith(text)
    assert reply.response_id == recorded["id"]
    assert reply.output_tokens == recorded["usage"]["output_tokens"]


# ---------------------------------------------------------------- preview features


WORKFLOW = {
    "kind": "workflow",
    "workflow": "kind: workflow\ntrigger:\n  kind: OnConversationStart\n",
}


def test_preview_features_are_sent_and_a_refusal_names_the_field(
    emulator: EmulatorHandle,
) -> None:
    plain = FoundryProvider(emulator.endpoint, timeout=10)
    opted_in = FoundryProvider(
        emulator.endpoint, timeout=10, preview_features=["WorkflowAgents=V1Preview"]
    )
    try:
        with pytest.raises(ProviderError) as refused:
            plain.create_version("flow", definition=WORKFLOW, metadata={})
        assert refused.value.code == "preview_feature_required"
        assert refused.value.status == 403
        assert "preview_features: [WorkflowAgents=V1Preview]" in str(refused.value)
        assert "allow_preview" not in str(refused.value)  # the SDK's hint is not runner's
        created = opted_in.create_version("flow", definition=WORKFLOW, metadata={})
        assert created.definition["kind"] == "workflow"
        assert [a.name for a in opted_in.list_agents()] == ["flow"]
    finally:
        plain.close()
        opted_in.close()


def test_preview_features_go_on_every_agent_and_openai_call(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    emulator = make_emulator(record_requests=20)
    flags = ["WorkflowAgents=V1Preview", "DraftAgents=V1Preview"]
    provider = FoundryProvider(emulator.endpoint, timeout=10, preview_features=flags)
    try:
        provider.create_version("a1", definition={"kind": "prompt", "model": "m"}, metadata={})
        provider.list_agents()
        conversation = provider.create_conversation()
        provider.respond(
            conversation_id=conversation, agent_name="a1", agent_version=None, text="hi"
        )
    finally:
        provider.close()
    sent = emulator.requests()
    assert len(sent) == 5  # create, list (a page, then the empty one), conversation, response
    assert {r["features"] for r in sent} == {",".join(flags)}


def test_a_draft_needs_its_own_opt_in(emulator: EmulatorHandle) -> None:
    body = {"definition": {"kind": "prompt", "model": "gpt-4o"}, "draft": True}
    path = "/agents/drafty/versions?api-version=v1"
    status, refused = call(emulator, "POST", path, body)
    assert status == 403
    assert refused["error"]["code"] == "preview_feature_required"
    assert "DraftAgents=V1Preview" in refused["error"]["message"]
    status, _ = call(emulator, "POST", path, body, {"Foundry-Features": "DraftAgents=V1Preview"})
    assert status == 200


@pytest.mark.parametrize("version", ["v1", "1.0", "2025-05-15-preview", "2025-11-15-preview"])
def test_the_advertised_api_versions_are_accepted(emulator: EmulatorHandle, version: str) -> None:
    assert call(emulator, "GET", f"/agents?api-version={version}")[0] == 200


def test_other_and_future_server_side_items_never_break_reply_parsing(
    replay_server: tuple[str, type[_Replay]],
) -> None:
    """Not recorded: web_search_call, file_search_call and mcp_call in OpenAI's Responses shapes,
    and an item type no client knows yet, around the recorded message."""
    endpoint, handler = replay_server
    recorded = recording("builtin_tools.json")[4]["response"]["body"]
    message = recorded["output"][1]
    extra = {"agent_reference": message["agent_reference"], "response_id": recorded["id"]}
    handler.body = {
        **recorded,
        "output": [
            {
                "type": "web_search_call",
                "id": "ws_1",
                **extra,
                "status": "completed",
                "action": {"type": "search", "query": "weather"},
            },
            {
                "type": "file_search_call",
                "id": "fs_1",
                **extra,
                "status": "completed",
                "queries": ["manual"],
                "results": None,
            },
            {
                "type": "mcp_call",
                "id": "mcp_1",
                **extra,
                "server_label": "docs",
                "name": "fetch",
                "arguments": "{}",
                "output": "ok",
                "error": None,
            },
            {"type": "some_future_call", "id": "fut_1", **extra, "status": "completed"},
            message,
        ],
    }
    provider = FoundryProvider(endpoint, timeout=10)
    try:
        reply = provider.respond(
            conversation_id="conv_1", agent_name="MyAgent", agent_version=None, text="hi"
        )
    finally:
        provider.close()
    assert reply.text == message["content"][0]["text"]
