"""Running the function calls of one response: checked arguments, a timeout, events, figures.

Role in the flow: `ToolRounds` hands `ToolRunner.run` the calls of a response with the
answering agent's tools; it returns one `function_call_output` per call, in the order of the
calls. Each call is, in turn:

  1. refused when the session switched the tool off (`refusal`, the seam
     `SessionConfigs.tool_refusal` fills; it emits `tool:refused`): its text goes back, the
     function never runs and no `tool:called` is emitted;
  2. answered with an error when the agent has no implementation for it (`tool:failed`,
     reason `no_implementation`);
  3. answered with an error when its arguments are not a JSON object or break the tool's
     `parameters` schema (`tool:failed`, reason `bad_arguments`; the function never runs);
  4. run (`tool:called`), with its arguments as keyword arguments: an async function awaited, a
     sync one in a worker thread, each within its timeout (the tool's `timeout`, default 30 s).
     Its result goes back as text (a string as is, anything else as JSON), cut at
     `MAX_OUTPUT_CHARS`: `tool:completed`. An exception or a timeout goes back as an error
     text the model can read: `tool:failed` with reason `error` or `timeout`.

Every event carries `session_id`, `agent`, `tool` and `call_id` (`runner serve` counts them by
name). Calls of one response run concurrently when the response allows parallel calls, else one
after another (at most `MAX_PARALLEL` at once). Each run call is a figure of subject
("tool", name) in the monitor (time, error).

Invariants: a tool's failure never fails the turn (it becomes the output); a sync function that
outlives its timeout keeps its worker thread until it returns (Python cannot stop a thread).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runner.providers.base import ToolCall, ToolOutput
from runner.runtime.clock import Clock
from runner.runtime.monitoring import PerformanceMonitor
from runner.runtime.tools.catalog import AgentTools, FunctionTool

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_OUTPUT_CHARS", "MAX_PARALLEL", "Refusal", "ToolRunner"]

log = logging.getLogger("runner.runtime")

DEFAULT_TIMEOUT_S = 30.0
"""How long a call may run when its tool sets no `timeout`."""
MAX_OUTPUT_CHARS = 65_536
"""Longest output sent back to the model; a longer result is cut, and says so."""
MAX_PARALLEL = 16
"""Most calls of one response running at once (the rest wait for a free place)."""

Refusal = Callable[[str], str | None]
"""tool name -> the output to send instead of running it (None: it may run)."""

Emit = Callable[[str, Mapping[str, Any]], None]

_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    """The compiled validator of a tool's schema (the catalog keeps each schema object for the
    tool's life: cached by identity, the object held so its id is never reused meanwhile)."""
    entry = _VALIDATORS.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    if len(_VALIDATORS) > 1024:
        _VALIDATORS.clear()
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def _argument_problem(tool: FunctionTool, arguments: Any) -> str | None:
    if not isinstance(arguments, dict):
        return "the arguments must be a JSON object"
    if tool.parameters is None:
        return None
    from jsonschema.exceptions import SchemaError

    try:
        errors = sorted(_validator(tool.parameters).iter_errors(arguments), key=lambda e: e.path)
    except SchemaError as exc:
        return f"the tool's parameters schema is invalid: {exc.message}"
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path)
    return f"{first.message}" + (f" (at {where})" if where else "")


def _as_text(result: Any) -> str:
    text = result if isinstance(result, str) else json.dumps(result, default=str)
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + f" ... [cut at {MAX_OUTPUT_CHARS} characters]"
    return text


class ToolRunner:
    """Runs the calls of one response (see the module docstring)."""

    def __init__(self, *, clock: Clock, emit: Emit, monitor: PerformanceMonitor) -> None:
        self._clock = clock
        self._emit = emit
        self._monitor = monitor

    async def run(
        self,
        calls: Sequence[ToolCall],
        *,
        tools: AgentTools,
        session_id: str,
        agent: str,
        parallel: bool,
        refusal: Refusal | None = None,
    ) -> list[ToolOutput]:
        """One output per call, in the order of `calls`."""

        async def one(call: ToolCall) -> ToolOutput:
            return ToolOutput(
                call.call_id, await self._one(call, tools, session_id, agent, refusal)
            )

        if parallel and len(calls) > 1:
            return list(await asyncio.gather(*(one(c) for c in calls)))
        return [await one(c) for c in calls]

    async def _one(
        self,
        call: ToolCall,
        tools: AgentTools,
        session_id: str,
        agent: str,
        refusal: Refusal | None,
    ) -> str:
        name = call.name
        base = {"session_id": session_id, "agent": agent, "tool": name, "call_id": call.call_id}
        refused = refusal(name) if refusal is not None else None
        if refused is not None:
            return refused
        tool = tools.functions.get(name)
        if tool is None or tool.implementation is None:
            what = "has no implementation in this runtime" if tool else "is not a tool of yours"
            log.warning("agent.%s called %s, which %s", agent, name, what)
            self._emit("tool:failed", {**base, "reason": "no_implementation"})
            return f"Error: the function {name!r} {what}; it was not run."
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            problem: str | None = f"the arguments are not valid JSON ({exc.msg})"
        else:
            problem = _argument_problem(tool, arguments)
        if problem is not None:
            self._emit("tool:failed", {**base, "reason": "bad_arguments", "error": problem})
            return (
                f"Error: bad arguments for {name!r}: {problem}. It was not run; "
                "call it again with valid arguments."
            )
        self._emit("tool:called", base)
        timeout = tool.timeout_s if tool.timeout_s is not None else DEFAULT_TIMEOUT_S
        started = self._clock.monotonic()
        reason = ""
        try:
            output = _as_text(await asyncio.wait_for(self._call(tool, arguments), timeout))
        except TimeoutError:
            reason, output = "timeout", f"Error: {name!r} timed out after {timeout:g} s."
        except Exception as exc:
            log.info(
                "tool %s (agent.%s, session %s) raised", name, agent, session_id, exc_info=True
            )
            reason, output = "error", f"Error: {name!r} failed: {type(exc).__name__}: {exc}"
        ms = (self._clock.monotonic() - started) * 1000.0
        self._monitor.record_turn(
            [("tool", name)], now=self._clock.now(), ms=ms, error=bool(reason), tokens=0
        )
        if reason:
            self._emit("tool:failed", {**base, "reason": reason, "error": output, "ms": ms})
        else:
            self._emit("tool:completed", {**base, "ms": ms})
        return output

    @staticmethod
    async def _call(tool: FunctionTool, arguments: dict[str, Any]) -> Any:
        function = tool.implementation
        assert function is not None
        if inspect.iscoroutinefunction(function):
            return await function(**arguments)
        result = await asyncio.to_thread(function, **arguments)
        if inspect.isawaitable(result):  # a sync callable that returned a coroutine
            return await result
        return result
