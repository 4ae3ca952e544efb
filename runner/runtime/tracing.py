"""The runtime's spans: a turn, the provider call inside it, and the handoffs, escalations and
tool calls its events announce.

Role: the composition root (`runner.runtime.assembly`) asks `tracing_active()` once when the
runtime opens; when an OpenTelemetry SDK is installed it gives the turn path a `TracedProvider`
(an `invoke_agent` client span per provider call, with the GenAI attributes) and subscribes
`EventSpans` to the event bus. `Turns.send` opens the turn span (`turn_span`) around each turn,
so the provider, handoff, escalation and tool spans of that turn are its children.

Invariants:
  - With no SDK nothing here is built and a turn pays one `sys.modules` lookup.
  - Message text goes into spans only when content recording is on
    (`runner.telemetry.content_recording`); ids, names, models and token counts always do.
  - A span started by one event and ended by another (a handoff answered, a tool call completed)
    is ended at the latest when the turn that opened it ends: nothing stays open.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from runner import telemetry
from runner.providers.base import Provider, Reply
from runner.runtime.events import Event, EventBus
from runner.state.sessions import SessionRow

__all__ = ["EventSpans", "TracedProvider", "end_turn", "tracing_active", "turn_span"]


def tracing_active() -> bool:
    """Whether an OpenTelemetry SDK records spans now (asked once when the runtime opens)."""
    return telemetry.tracer() is not None


def provider_system(provider: Provider) -> str:
    """`gen_ai.provider.name` / `gen_ai.system`: Foundry's name, or runner's own for the others."""
    return "azure.ai.foundry" if provider.name == "foundry" else f"runner.{provider.name}"


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


class TracedProvider:
    """A provider whose `respond` is an `invoke_agent` span; every other call goes through.

    `describe(foundry_name)` answers the agent's spec name and model (the composition root reads
    them from what was applied)."""

    def __init__(
        self,
        inner: Provider,
        *,
        describe: Callable[[str], tuple[str, str | None]],
        record_content: bool,
    ) -> None:
        self._inner = inner
        self._describe = describe
        self._record_content = record_content
        self._system = provider_system(inner)
        self.name = inner.name
        self.remote = inner.remote

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._inner, attribute)

    def respond(self, **kwargs: Any) -> Reply:
        foundry_name = str(kwargs.get("agent_name", ""))
        version = kwargs.get("agent_version")
        spec_name, model = self._describe(foundry_name)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.system": self._system,
            "gen_ai.request.model": model,
            "gen_ai.agent.name": spec_name,
            "gen_ai.agent.id": f"{foundry_name}:{version}" if version else foundry_name,
            "gen_ai.conversation.id": kwargs.get("conversation_id"),
        }
        if self._record_content:
            attributes["gen_ai.input.messages"] = _messages("user", str(kwargs.get("text", "")))
        # a leaf: started, not made current (no context switch to pay for)
        span = telemetry.start_span(f"invoke_agent {spec_name}", attributes, kind="client")
        try:
            reply: Reply = self._inner.respond(**kwargs)
        except Exception as exc:
            telemetry.end_span(span, error=f"{type(exc).__name__}: {exc}")
            raise
        done: dict[str, Any] = {
            "gen_ai.usage.input_tokens": reply.input_tokens,
            "gen_ai.usage.output_tokens": reply.output_tokens,
            "gen_ai.response.id": reply.response_id or None,
        }
        if self._record_content:
            done["gen_ai.output.messages"] = _messages("assistant", reply.text)
        telemetry.end_span(span, done)
        return reply


def turn_span(row: SessionRow) -> telemetry.span:
    """The span of one turn of a session (its parent: the caller's, e.g. a serve request), as a
    context manager: `with turn_span(row) as span:`."""
    attributes = {  # few: each attribute is a measurable share of a span's cost
        "runner.session.id": row.id,
        "runner.turn": row.turns + 1,
        "gen_ai.conversation.id": row.conversation_id,
    }
    return telemetry.span(f"turn {row.target}", attributes)


def end_turn(span: Any | None, reply: Any) -> None:
    """What the turn came to: who answered, the session's state afterwards, the cost (tokens
    are on the provider call's span)."""
    telemetry.annotate(
        span,
        {
            "gen_ai.agent.name": getattr(reply, "agent", None),
            "runner.session.state": getattr(reply, "state", None),
            "runner.cost": getattr(reply, "cost", None),
        },
    )


_OPEN_LIMIT = 10_000  # spans waiting for their closing event, at most (then the oldest ends)


class EventSpans:
    """Spans made from the runtime's events, as children of the turn that emits them:

    - `handoff:initiated` opens `handoff <from> -> <to>`, ended by `handoff:completed`/`failed`;
    - `tool:called` opens `execute_tool <tool>`, ended by `tool:completed`/`tool:failed`;
    - each `escalation:*` event is a short span `escalation <event>` (an escalation can wait
      hours for a person: its life is the sequence of these, not one span).
    """

    def __init__(self) -> None:
        self._open: dict[tuple[str, ...], Any] = {}

    def subscribe(self, events: EventBus) -> Callable[[], None]:
        offs = [
            events.on("handoff:*", self._handoff),
            events.on("tool:*", self._tool),
            events.on("escalation:*", self._escalation),
        ]

        def off() -> None:
            for unsubscribe in offs:
                unsubscribe()

        return off

    def _start(self, key: tuple[str, ...], name: str, attributes: Mapping[str, Any]) -> None:
        span = telemetry.start_span(name, attributes)
        if span is None:
            return
        if len(self._open) >= _OPEN_LIMIT:
            oldest = next(iter(self._open))
            self._open.pop(oldest).end()
        previous = self._open.pop(key, None)
        if previous is not None:
            previous.end()
        self._open[key] = span

    def _end(self, key: tuple[str, ...], error: str | None = None) -> None:
        telemetry.end_span(self._open.pop(key, None), error=error)

    def _handoff(self, event: Event) -> None:
        data = event.data
        source, target = str(data.get("from", "")), str(data.get("to", ""))
        key = ("handoff", str(data.get("session_id", "")), source, target)
        if event.type == "handoff:initiated":
            self._start(
                key,
                f"handoff {source} -> {target}",
                {
                    "runner.session.id": data.get("session_id"),
                    "runner.handoff.from": source,
                    "runner.handoff.to": target,
                    "runner.handoff.trigger": data.get("trigger"),
                    "runner.handoff.reason": data.get("reason"),
                },
            )
        else:
            error = str(data.get("error")) if event.type == "handoff:failed" else None
            self._end(key, error)

    def _tool(self, event: Event) -> None:
        data = event.data
        call = str(data.get("call_id") or data.get("tool", ""))
        key = ("tool", str(data.get("session_id", "")), call)
        if event.type == "tool:called":
            tool = str(data.get("tool", ""))
            self._start(
                key,
                f"execute_tool {tool}",
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": tool,
                    "gen_ai.tool.call.id": data.get("call_id"),
                    "gen_ai.tool.type": "function",
                    "gen_ai.agent.name": data.get("agent"),
                    "runner.session.id": data.get("session_id"),
                },
            )
        elif event.type in ("tool:completed", "tool:failed"):
            error = str(data.get("error", "failed")) if event.type == "tool:failed" else None
            self._end(key, error)

    def _escalation(self, event: Event) -> None:
        data = event.data
        attributes = {
            "runner.session.id": data.get("session_id"),
            "runner.escalation.level": data.get("level"),
            "runner.escalation.target": data.get("target"),
        }
        span = telemetry.start_span(event.type.replace(":", " ", 1), attributes)
        if span is not None:
            span.end()

    def end_all(self) -> None:
        """End every span still waiting for its closing event (the runtime closes)."""
        while self._open:
            _, span = self._open.popitem()
            span.end()
