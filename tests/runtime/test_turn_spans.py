"""OpenTelemetry spans read back through the SDK's in-memory exporter: a turn with its provider
call (GenAI attributes), a handoff and the escalation it opens, message content only when
asked; and no cost at all when no SDK is installed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from runtime_support import AUTH

REPO = Path(__file__).resolve().parents[2]


def by_name(finished: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name.startswith(prefix)]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_team_turn_is_a_span_with_its_provider_call_handoff_and_escalation(
    otel_spans: InMemorySpanExporter, open_lc: Any
) -> None:
    async with open_lc() as lc:
        session = await lc.create_agent_session(team="customer-support", auth=AUTH)
        await session.send("Hi, I have a question about my account settings")
        otel_spans.clear()
        reply = await session.send("The dashboard shows an Error every time I log in")
    finished = otel_spans.get_finished_spans()
    (turn,) = by_name(finished, "turn customer-support")
    (call,) = by_name(finished, "invoke_agent ")
    (handoff,) = by_name(finished, "handoff ")
    (opened,) = by_name(finished, "escalation opened")
    assert turn.context is not None and call.context is not None
    assert parent_of(call) == turn.context.span_id
    assert parent_of(handoff) == turn.context.span_id
    assert parent_of(opened) == turn.context.span_id
    assert call.kind == trace.SpanKind.CLIENT
    attributes = dict(call.attributes or {})
    assert attributes["gen_ai.operation.name"] == "invoke_agent"
    assert attributes["gen_ai.system"] == "runner.local"
    assert attributes["gen_ai.agent.name"] == "tech-agent-1" == reply.agent
    assert attributes["gen_ai.agent.id"] == f"{reply.foundry_name}:{reply.agent_version}"
    assert attributes["gen_ai.conversation.id"] == session.conversation_id
    assert attributes["gen_ai.request.model"] == "gpt-4o"  # its template's
    assert attributes["gen_ai.usage.input_tokens"] == reply.input_tokens > 0
    assert attributes["gen_ai.usage.output_tokens"] == reply.output_tokens > 0
    assert handoff.name == "handoff general-agent-1 -> tech-agent-1"
    assert dict(handoff.attributes or {})["runner.handoff.trigger"] == "technical-issue-detected"
    turn_attributes = dict(turn.attributes or {})
    assert turn_attributes["runner.session.id"] == session.id
    assert turn_attributes["runner.turn"] == 2
    assert turn_attributes["gen_ai.agent.name"] == "tech-agent-1"
    # no message text unless asked
    everything = json.dumps([dict(s.attributes or {}) for s in finished])
    assert "dashboard" not in everything


async def test_message_content_is_recorded_only_when_the_environment_asks(
    otel_spans: InMemorySpanExporter, open_lc: Any
) -> None:
    asked = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    async with open_lc(environ=asked) as lc:
        session = await lc.create_agent_session(agent="general-agent-1", auth=AUTH)
        reply = await session.send("Where is my parcel?")
    (call,) = by_name(otel_spans.get_finished_spans(), "invoke_agent ")
    attributes = dict(call.attributes or {})
    sent = json.loads(str(attributes["gen_ai.input.messages"]))
    answered = json.loads(str(attributes["gen_ai.output.messages"]))
    assert sent == [{"role": "user", "parts": [{"type": "text", "content": "Where is my parcel?"}]}]
    assert answered[0]["parts"][0]["content"] == reply.text


def test_without_an_sdk_nothing_imports_opentelemetry(tmp_path: Path) -> None:
    """No SDK, no cost: a whole session runs without OpenTelemetry ever being imported."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(REPO / "tests" / "runtime")!r})
        from runtime_support import AUTH, contract_project
        from runner.runtime.lifecycle import Lifecycle

        ENV = '''
        apiVersion: runner/v1
        kind: Environment
        name: local
        provider: local
        default: true
        data_dir: {tmp_path / "store"}
        '''

        async def main():
            async with Lifecycle.open(
                contract_project(ENV), env="local", registry_path={str(tmp_path / "s.db")!r},
                environ={{}}, background=False,
            ) as lc:
                session = await lc.create_agent_session(agent="general-agent-1", auth=AUTH)
                await session.send("hello")
                assert type(lc.provider).__name__ != "TracedProvider"
            loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
            print(loaded)

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


class FailingProvider:
    """The real local provider, whose replies fail while `failing` is set."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name
        self.remote = inner.remote
        self.failing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def respond(self, **kwargs: Any) -> Any:
        if self.failing:
            raise ConnectionError("the model endpoint hung up")
        return self._inner.respond(**kwargs)


async def test_a_failed_turn_ends_its_spans_with_an_error_and_the_exception(
    otel_spans: InMemorySpanExporter, open_lc: Any, tmp_path: Path
) -> None:
    from runner.providers.local import LocalProvider
    from runner.runtime.errors import TurnFailedError

    provider = FailingProvider(LocalProvider.open(tmp_path / "store" / "local-store.db"))
    async with open_lc(provider=provider) as lc:
        session = await lc.create_agent_session(agent="general-agent-1", auth=AUTH)
        provider.failing = True
        otel_spans.clear()
        try:
            await session.send("Where is my parcel?")
        except TurnFailedError:
            pass
        else:
            raise AssertionError("the turn should have failed")
        provider.failing = False
        await session.send("Where is my parcel now?")  # the next turn is traced as usual
    finished = otel_spans.get_finished_spans()
    failed_turn, good_turn = by_name(finished, "turn ")
    failed_call, good_call = by_name(finished, "invoke_agent ")
    assert failed_turn.status.status_code == trace.StatusCode.ERROR
    assert "TurnFailedError" in str(failed_turn.status.description)
    assert [e.name for e in failed_turn.events] == ["exception"]
    assert failed_call.status.status_code == trace.StatusCode.ERROR
    assert "the model endpoint hung up" in str(failed_call.status.description)
    assert good_turn.status.status_code == good_call.status.status_code == trace.StatusCode.UNSET
    assert failed_turn.context is not None and good_turn.context is not None
    assert parent_of(failed_call) == failed_turn.context.span_id
    assert parent_of(good_call) == good_turn.context.span_id
    assert good_turn.parent is None  # the failed turn's context was detached
