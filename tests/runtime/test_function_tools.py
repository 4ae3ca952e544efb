"""Function tools run by the runtime, end to end: the foundry provider (the real azure-ai-projects
SDK and openai client over HTTP) against `runner emulator`, whose local model calls `@tool`s.

A turn whose agent has two function tools calls both and returns the final message with the
tool events; a failing tool, a bad argument, a timeout, a missing implementation and the round
limit each end as the README documents; the implementation never reaches Foundry; a bad
implementation path is refused when the runtime opens, at its spec position; streamed turns
hand over text as it arrives."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.providers.emulator import EmulatorHandle, serve_emulator
from runner.runtime.errors import ToolImplementationError, ToolRoundLimitError
from runner.runtime.lifecycle import Lifecycle

AUTH = {"user_id": "u1", "workspace_id": "w1", "permissions": ["chat:access"]}

SPECS = """\
apiVersion: runner/v1
kind: Environment
name: emu
provider: foundry
endpoint: ${EMU_ENDPOINT}
---
apiVersion: runner/v1
kind: Agent
name: desk
model: gpt-4o-mini
instructions: You help employees.
max_tool_rounds: 3
tools:
  - type: function
    name: lookup_account
    description: Account status of an employee
    implementation: "desk_tools:lookup_account"
    strict: true
    parameters:
      type: object
      properties: {employee_id: {type: string, pattern: "^E[0-9]+$"}}
      required: [employee_id]
      additionalProperties: false
  - type: function
    name: open_ticket
    implementation: "desk_tools:open_ticket"
    parameters:
      type: object
      properties: {summary: {type: string}}
      required: [summary]
  - type: function
    name: flaky
    implementation: "desk_tools:flaky"
    parameters: {type: object}
  - type: function
    name: slow
    implementation: "desk_tools:slow"
    timeout: 50ms
    parameters: {type: object}
  - type: function
    name: again
    implementation: "desk_tools:again"
    parameters: {type: object}
  - type: function
    name: unwritten
    parameters: {type: object}
"""

TOOLS = """\
import asyncio

CALLS = []


def lookup_account(employee_id):
    CALLS.append(("lookup_account", employee_id))
    return {"employee_id": employee_id, "locked": True}


async def open_ticket(summary):
    CALLS.append(("open_ticket", summary))
    await asyncio.sleep(0)
    return f"ticket T-1 opened: {summary}"


def flaky():
    CALLS.append(("flaky",))
    raise RuntimeError("the directory is down")


async def slow():
    await asyncio.sleep(5)


def again():
    CALLS.append(("again",))
    return "not done yet: @again"
"""


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with serve_emulator(data_dir=tmp_path / "emu", record_requests=200) as handle:
        yield handle


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    # a module of its own name per test: imported next to the specs, not from sys.path
    name = f"desk_tools_{abs(hash(str(tmp_path))) % 10**8}"
    (folder / f"{name}.py").write_text(TOOLS)
    (folder / "agents.yaml").write_text(SPECS.replace("desk_tools:", f"{name}:"))
    monkeypatch.setattr("sys.dont_write_bytecode", True)
    return folder


def open_lc(project: Path, emulator: EmulatorHandle, tmp_path: Path) -> Any:
    return Lifecycle.open(
        project,
        env="emu",
        registry_path=tmp_path / "state.db",
        environ={"EMU_ENDPOINT": emulator.endpoint},
        background=False,
    )


def calls_module(project: Path) -> Any:
    import sys

    [path] = project.glob("desk_tools_*.py")
    return sys.modules[path.stem]


async def test_a_turn_calls_both_tools_and_answers_with_the_message(
    project: Path, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async with open_lc(project, emulator, tmp_path) as lc:
        seen: list[Any] = []
        lc.on("tool:*", seen.append)
        session = await lc.create_agent_session(agent="desk", auth=AUTH)
        first = await lc.send(session.id, "hello", auth=AUTH)
        reply = await session.send(
            'I am locked out: @lookup_account{"employee_id": "E12345"} and '
            '@open_ticket{"summary": "locked out"}'
        )
        assert reply.text == (
            '[desk v1] lookup_account -> {"employee_id": "E12345", "locked": true} / '
            "open_ticket -> ticket T-1 opened: locked out"
        )
        assert sorted(calls_module(project).CALLS) == [  # run concurrently: any order
            ("lookup_account", "E12345"),
            ("open_ticket", "locked out"),
        ]
        types = [(e.type, e.data["tool"]) for e in seen]
        assert sorted(types) == sorted(
            [
                ("tool:called", "lookup_account"),
                ("tool:called", "open_ticket"),
                ("tool:completed", "lookup_account"),
                ("tool:completed", "open_ticket"),
            ]
        )
        for event in seen:
            assert event.data["session_id"] == session.id
            assert event.data["agent"] == "desk"
            assert event.data["call_id"].startswith("call_")
        # two requests (the calls, then the outputs): usage is summed over both
        assert reply.input_tokens > first.input_tokens
        bodies = [r["body"] for r in emulator.requests() if r["path"].endswith("/responses")]
        outputs = bodies[-1]["input"]
        assert [o["type"] for o in outputs] == ["function_call_output"] * 2
        assert bodies[-1]["conversation"] == bodies[-2]["conversation"]
        assert "previous_response_id" not in bodies[-1]  # chained by the conversation
        # per-tool figures in the monitor
        tools = lc.get_system_analytics()["performance"]["tools"]
        assert tools["lookup_account"]["turns"] == 1 and tools["open_ticket"]["errors"] == 0
        # runner-only keys never reach Foundry
        created = [r["body"] for r in emulator.requests() if r["path"].endswith("/versions")]
        assert created and all(
            "implementation" not in t and "timeout" not in t
            for body in created
            for t in body["definition"]["tools"]
        )


async def test_failures_go_back_to_the_model_as_text_and_are_reported(
    project: Path, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async with open_lc(project, emulator, tmp_path) as lc:
        failed: list[Any] = []
        called: list[Any] = []
        lc.on("tool:failed", failed.append)
        lc.on("tool:called", called.append)
        session = await lc.create_agent_session(agent="desk", auth=AUTH)

        reply = await session.send("try @flaky")
        assert "flaky -> Error: 'flaky' failed: RuntimeError: the directory is down" in reply.text
        assert [(e.data["tool"], e.data["reason"]) for e in failed] == [("flaky", "error")]

        failed.clear()
        called.clear()
        reply = await session.send('check @lookup_account{"employee_id": "nobody"}')
        assert "lookup_account -> Error: bad arguments for 'lookup_account'" in reply.text
        assert "does not match" in reply.text
        assert [(e.data["tool"], e.data["reason"]) for e in failed] == [
            ("lookup_account", "bad_arguments")
        ]
        assert called == []  # never run
        assert ("lookup_account", "nobody") not in calls_module(project).CALLS

        failed.clear()
        reply = await session.send('broken @lookup_account{"employee_id": E1}')
        assert "the arguments are not valid JSON" in reply.text
        assert [e.data["reason"] for e in failed] == ["bad_arguments"]

        failed.clear()
        reply = await session.send("wait for @slow")
        assert "slow -> Error: 'slow' timed out after 0.05 s." in reply.text
        assert [e.data["reason"] for e in failed] == ["timeout"]

        failed.clear()
        reply = await session.send("use @unwritten")
        assert "unwritten -> Error: the function 'unwritten' has no implementation" in reply.text
        assert [e.data["reason"] for e in failed] == ["no_implementation"]
        assert session.row.state == "active"


async def test_the_round_limit_ends_the_turn_with_an_error_and_the_session_goes_on(
    project: Path, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async with open_lc(project, emulator, tmp_path) as lc:
        session = await lc.create_agent_session(agent="desk", auth=AUTH)
        with pytest.raises(ToolRoundLimitError) as caught:
            await session.send("loop @again")
        assert "still asked for again after 3 tool rounds (max_tool_rounds 3)" in str(caught.value)
        assert calls_module(project).CALLS.count(("again",)) == 3
        # the pending call was answered: the conversation takes the next message
        reply = await session.send("thanks")
        assert reply.text == "[desk v1] thanks"
        # streamed, the same: tool events, no text of the closing request, then the error
        chunks: list[Any] = []
        with pytest.raises(ToolRoundLimitError):
            async for chunk in session.stream("loop @again"):
                chunks.append(chunk)
        assert {c.type for c in chunks} == {"tool"}
        assert (await session.send("ok")).text == "[desk v1] ok"


async def test_register_tool_overrides_the_spec_sync_or_async(
    project: Path, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async with open_lc(project, emulator, tmp_path) as lc:
        lc.register_tool("lookup_account", lambda employee_id: f"registered {employee_id}")

        async def ticket(summary: str) -> dict[str, str]:
            return {"id": "T-9", "summary": summary}

        lc.register_tool("open_ticket", ticket)
        session = await lc.create_agent_session(agent="desk", auth=AUTH)
        reply = await session.send(
            '@lookup_account{"employee_id": "E7"} @open_ticket{"summary": "x"}'
        )
        assert reply.text == (
            '[desk v1] lookup_account -> registered E7 / open_ticket -> {"id": "T-9", '
            '"summary": "x"}'
        )


async def test_a_streamed_turn_hands_over_text_and_tool_events_then_the_reply(
    project: Path, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async with open_lc(project, emulator, tmp_path) as lc:
        session = await lc.create_agent_session(agent="desk", auth=AUTH)
        chunks = [c async for c in session.stream('@lookup_account{"employee_id": "E1"} please')]
        kinds = [c.type for c in chunks]
        assert kinds[-1] == "reply" and kinds.count("reply") == 1
        assert kinds.index("tool") < kinds.index("text")  # the tool ran before the answer
        reply = chunks[-1].reply
        assert reply is not None
        text = "".join(c.text for c in chunks if c.type == "text")
        assert text == reply.text and kinds.count("text") > 3
        bodies = [r["body"] for r in emulator.requests() if r["path"].endswith("/responses")]
        assert bodies[-1]["stream"] is True and bodies[-2]["stream"] is True
        plain = [c async for c in lc.stream(session.id, "and now plain", auth=AUTH)]
        assert "".join(c.text for c in plain if c.type == "text") == "[desk v1] and now plain"


async def test_a_bad_implementation_path_is_refused_at_open_naming_its_position(
    project: Path, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    specs = project / "agents.yaml"
    specs.write_text(
        re.sub(r'"desk_tools_\d+:open_ticket"', '"no_such_module.sub:fn"', specs.read_text())
    )
    with pytest.raises(ToolImplementationError) as caught:
        async with open_lc(project, emulator, tmp_path):
            pass
    message = str(caught.value)
    line = next(i for i, t in enumerate(specs.read_text().splitlines(), 1) if "no_such" in t)
    assert message.startswith(f"{specs}:{line}:")
    assert "agent.desk tool 'open_ticket'" in message
    assert "no module named 'no_such_module'" in message


async def test_parallel_calls_run_concurrently(
    project: Path, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async with open_lc(project, emulator, tmp_path) as lc:
        running = 0
        most = 0

        async def tracked(**_: Any) -> str:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.05)
            running -= 1
            return "ok"

        lc.register_tool("open_ticket", tracked)
        session = await lc.create_agent_session(agent="desk", auth=AUTH)
        message = " ".join(f'@open_ticket{{"summary": "{i}"}}' for i in range(4))
        reply = await session.send(message)
        assert reply.text.count("open_ticket -> ok") == 4
        assert most == 4


async def test_an_agent_defined_in_code_runs_registered_tools(
    project: Path, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    async with open_lc(project, emulator, tmp_path) as lc:
        lc.register_tool("ping", lambda: "pong")
        await lc.get_or_create_agent(
            "coded",
            model="gpt-4o-mini",
            instructions="You answer pings.",
            tools=[{"type": "function", "name": "ping", "parameters": {"type": "object"}}],
        )
        session = await lc.create_agent_session(agent="coded", auth=AUTH)
        assert (await session.send("@ping")).text == "[coded v1] ping -> pong"
