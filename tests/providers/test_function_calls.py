"""Function calls and streaming in the local store and the emulator, held to recorded traffic.

The local model calls `@tool{json}` mentions of the version's function tools; the emulator
answers with `function_call` items shaped like the service's (tests/providers/recordings/
function_tool_*.json), takes `function_call_output` items chained by conversation or
`previous_response_id`, refuses what the service refuses with its wording, and streams
server-sent events in the recorded order (responses_stream_*.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.providers.base import ProviderError, ToolOutput
from runner.providers.emulator import EmulatorHandle
from runner.providers.foundry import FoundryProvider
from runner.providers.local_store import LocalStore
from runner.providers.local_tools import requested_calls

RECORDINGS = Path(__file__).parent / "recordings"

TOOLS = [
    {
        "type": "function",
        "name": "get_horoscope",
        "parameters": {
            "type": "object",
            "properties": {"sign": {"type": "string"}},
            "required": ["sign"],
        },
        "strict": True,
    },
    {"type": "function", "name": "get_time", "parameters": {"type": "object"}},
]


def recording(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((RECORDINGS / f"{name}.json").read_text())
    return data


def make_agent(foundry: FoundryProvider, name: str = "MyAgent") -> str:
    definition = {"kind": "prompt", "model": "m", "instructions": "hi", "tools": TOOLS}
    return foundry.create_version(name, definition=definition, metadata={}).version


def post(emulator: EmulatorHandle, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{emulator.endpoint}{path}", json=body, timeout=10)


def test_the_mention_syntax() -> None:
    tools = frozenset({"get_time", "get_horoscope"})
    assert requested_calls("no mention of get_time", tools) == []
    assert requested_calls("mail me@get_time.example", tools) == []
    assert requested_calls("@other{} @get_time", tools) == [("get_time", "{}")]
    assert requested_calls('@get_horoscope {"sign": "Leo"} @get_time', tools) == [
        ("get_horoscope", '{"sign": "Leo"}'),
        ("get_time", "{}"),
    ]
    assert requested_calls('@get_horoscope{"sign": Leo} rest', tools) == [
        ("get_horoscope", '{"sign": Leo}')  # not JSON: kept as written, up to the first '}'
    ]


def test_a_function_call_item_has_the_recorded_keys(
    emulator: EmulatorHandle, foundry: FoundryProvider
) -> None:
    make_agent(foundry)
    conversation = foundry.create_conversation()
    answer = post(
        emulator,
        "/openai/v1/responses",
        {
            "conversation": conversation,
            "input": 'What is my horoscope? @get_horoscope{"sign": "Aquarius"}',
            "agent_reference": {"name": "MyAgent", "type": "agent_reference"},
        },
    ).json()
    recorded = recording("function_tool_conversation")[2]["response"]["body"]["output"][0]
    [item] = answer["output"]
    assert list(item) == list(recorded)  # same keys, same order
    assert item["type"] == "function_call" and item["status"] == "completed"
    assert item["name"] == "get_horoscope" and json.loads(item["arguments"]) == {"sign": "Aquarius"}
    assert item["response_id"] == answer["id"]
    assert item["agent_reference"] == {"type": "agent_reference", "name": "MyAgent", "version": "1"}


def test_outputs_chained_by_previous_response_id_get_the_message(
    emulator: EmulatorHandle, foundry: FoundryProvider
) -> None:
    version = make_agent(foundry)
    conversation = foundry.create_conversation()
    first = foundry.respond(
        conversation_id=conversation,
        agent_name="MyAgent",
        agent_version=version,
        text='@get_horoscope{"sign": "Leo"} @get_time',
    )
    assert [c.name for c in first.tool_calls] == ["get_horoscope", "get_time"]
    assert first.text == ""
    # the recorded second request: input items chained by previous_response_id, no conversation
    body = recording("function_tool_previous_response")[2]["request"]["body"]
    body = {
        **body,
        "input": [
            {"type": "function_call_output", "call_id": c.call_id, "output": f"out {c.name}"}
            for c in first.tool_calls
        ],
        "previous_response_id": first.response_id,
    }
    answer = post(emulator, "/openai/v1/responses", body).json()
    [message] = answer["output"]
    assert message["type"] == "message"
    assert message["content"][0]["text"] == (
        "[MyAgent v1] get_horoscope -> out get_horoscope / get_time -> out get_time"
    )
    items = httpx.get(
        f"{emulator.endpoint}/openai/v1/conversations/{conversation}/items?order=asc", timeout=10
    ).json()["data"]
    assert [i["type"] for i in items] == [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "message",
    ]
    recorded_items = recording("function_tool_conversation")[6]["response"]["body"]["data"]
    for kind, prefix in (("function_call_output", "fco_"), ("function_call", "fc_")):
        recorded = next(i for i in recorded_items if i["type"] == kind)
        mine = next(i for i in items if i["type"] == kind)
        wanted = set(recorded) - {"partition_key", "created_by"}  # service internals
        assert set(mine) == wanted and mine["id"].startswith(prefix)


def test_what_the_service_refuses(emulator: EmulatorHandle, foundry: FoundryProvider) -> None:
    version = make_agent(foundry)
    conversation = foundry.create_conversation()
    reference = {"name": "MyAgent", "type": "agent_reference"}
    both = post(
        emulator,
        "/openai/v1/responses",
        {
            "conversation": conversation,
            "previous_response_id": "resp_x",
            "input": "hi",
            "agent_reference": reference,
        },
    )
    assert both.status_code == 400
    assert "Mutually exclusive parameters" in both.json()["error"]["message"]
    first = foundry.respond(
        conversation_id=conversation, agent_name="MyAgent", agent_version=version, text="@get_time"
    )
    with pytest.raises(ProviderError) as pending:
        foundry.respond(
            conversation_id=conversation, agent_name="MyAgent", agent_version=version, text="hi"
        )
    assert f"No tool output found for function call {first.tool_calls[0].call_id}." in str(
        pending.value
    )
    with pytest.raises(ProviderError) as unknown:
        foundry.respond(
            conversation_id=conversation,
            agent_name="MyAgent",
            agent_version=version,
            text="",
            tool_outputs=[ToolOutput("call_nope", "x")],
            previous_response_id=first.response_id,
        )
    assert "No tool call found for function call output with call_id call_nope." in str(
        unknown.value
    )
    assert unknown.value.status == 400


def _names(events: list[str]) -> list[str]:
    """Event names with runs of the same delta event folded into one."""
    folded: list[str] = []
    for name in events:
        if not (folded and folded[-1] == name and name.endswith(".delta")):
            folded.append(name)
    return folded


def _sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_streams_follow_the_recorded_event_order(
    emulator: EmulatorHandle, foundry: FoundryProvider
) -> None:
    make_agent(foundry)
    conversation = foundry.create_conversation()
    reference = {"name": "MyAgent", "type": "agent_reference"}
    message = post(
        emulator,
        "/openai/v1/responses",
        {
            "conversation": conversation,
            "input": "tell me",
            "stream": True,
            "agent_reference": reference,
        },
    )
    assert message.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = _sse(message.text)
    recorded = [e["event"] for e in recording("responses_stream_message")[1]["response"]["body"]]
    assert _names([name for name, _ in events]) == _names(recorded)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert all(data["type"] == name for name, data in events)
    deltas = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
    assert (
        deltas
        == "[MyAgent v1] tell me"
        == events[-1][1]["response"]["output"][0]["content"][0]["text"]
    )

    call = post(
        emulator,
        "/openai/v1/responses",
        {
            "conversation": conversation,
            "input": '@get_horoscope{"sign": "Leo"}',
            "stream": True,
            "agent_reference": reference,
        },
    )
    events = _sse(call.text)
    recorded = [
        e["event"] for e in recording("responses_stream_function_call")[0]["response"]["body"]
    ]
    assert _names([name for name, _ in events]) == _names(recorded)
    done = next(d for n, d in events if n == "response.function_call_arguments.done")
    assert json.loads(done["arguments"]) == {"sign": "Leo"}


def test_the_provider_streams_text_pieces_over_the_sdk(foundry: FoundryProvider) -> None:
    version = make_agent(foundry)
    conversation = foundry.create_conversation()
    pieces: list[str] = []
    reply = foundry.respond(
        conversation_id=conversation,
        agent_name="MyAgent",
        agent_version=version,
        text="stream these words please",
        on_text=pieces.append,
    )
    assert len(pieces) > 3 and "".join(pieces) == reply.text
    assert reply.text == "[MyAgent v1] stream these words please"
    assert reply.input_tokens > 0 and reply.response_id.startswith("resp_")


def test_the_local_store_keeps_calls_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with LocalStore(path) as store:
        store.create_version(
            "a", definition={"kind": "prompt", "model": "m", "tools": TOOLS}, metadata={}
        )
        conversation = store.create_conversation().id
        first = store.respond(
            conversation_id=conversation, agent_name="a", agent_version=None, text="@get_time"
        )
    with LocalStore(path) as store:
        again = store.get_response(first.id)
        assert again is not None and again.tool_calls == first.tool_calls
        answer = store.respond(
            conversation_id=conversation,
            agent_name="a",
            agent_version=None,
            text="",
            tool_outputs=[ToolOutput(first.tool_calls[0].call_id, "12:00")],
        )
        assert answer.text == "[a v1] get_time -> 12:00"
        assert answer.input_tokens > first.input_tokens


def test_the_recorded_flow_without_a_conversation(
    emulator: EmulatorHandle, foundry: FoundryProvider
) -> None:
    """function_tool_previous_response.json: a response with no conversation asks for a call;
    the output follows by previous_response_id alone."""
    make_agent(foundry)
    flow = recording("function_tool_previous_response")
    first_body = {**flow[1]["request"]["body"]}
    first_body["input"] += ' @get_horoscope{"sign": "Aquarius"}'  # the offline model's cue
    first = post(emulator, "/openai/v1/responses", first_body).json()
    assert "conversation" not in first  # as recorded for a standalone response
    [call] = first["output"]
    assert call["type"] == "function_call" and call["name"] == "get_horoscope"
    second_body = {
        **flow[2]["request"]["body"],
        "previous_response_id": first["id"],
        "input": [
            {
                "type": "function_call_output",
                "call_id": call["call_id"],
                "output": flow[2]["request"]["body"]["input"][0]["output"],
            }
        ],
    }
    second = post(emulator, "/openai/v1/responses", second_body).json()
    assert "conversation" not in second
    [message] = second["output"]
    assert message["content"][0]["text"].startswith("[MyAgent v1] get_horoscope -> {")


def test_previous_response_id_of_a_plain_standalone_response_is_accepted(
    emulator: EmulatorHandle, foundry: FoundryProvider
) -> None:
    make_agent(foundry)
    reference = {"name": "MyAgent", "type": "agent_reference"}
    first = post(emulator, "/openai/v1/responses", {"input": "hi", "agent_reference": reference})
    second = post(
        emulator,
        "/openai/v1/responses",
        {
            "input": "again",
            "previous_response_id": first.json()["id"],
            "agent_reference": reference,
        },
    )
    assert second.status_code == 200
    assert second.json()["output"][0]["content"][0]["text"] == "[MyAgent v1] again"
    missing = post(
        emulator,
        "/openai/v1/responses",
        {"input": "x", "previous_response_id": "resp_nope", "agent_reference": reference},
    )
    assert missing.status_code == 404
