"""Function tools in traces: each run call is an `execute_tool <tool>` span of its turn (GenAI
attributes, the call id), a failing one carries its error, and the turn's provider calls (one
per round) are its siblings."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from runtime_support import AUTH

AGENT = """
apiVersion: runner/v1
kind: Agent
name: clerk
model: gpt-4o-mini
instructions: You file things.
tools:
  - type: function
    name: file_it
    parameters: {type: object, properties: {what: {type: string}}, required: [what]}
  - type: function
    name: shred_it
    parameters: {type: object}
"""


def named(finished: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name.startswith(prefix)]


async def test_each_run_call_is_an_execute_tool_span_of_its_turn(
    otel_spans: InMemorySpanExporter, open_lc: Any
) -> None:
    async with open_lc(AGENT) as lc:
        lc.register_tool("file_it", lambda what: f"filed {what}")

        def shred() -> str:
            raise OSError("jammed")

        lc.register_tool("shred_it", shred)
        session = await lc.create_agent_session(agent="clerk", auth=AUTH)
        otel_spans.clear()
        await session.send('@file_it{"what": "invoice"} @shred_it')
    finished = otel_spans.get_finished_spans()
    (turn,) = named(finished, "turn clerk")
    calls = named(finished, "invoke_agent ")
    (filed,) = named(finished, "execute_tool file_it")
    (shredded,) = named(finished, "execute_tool shred_it")
    assert turn.context is not None
    assert len(calls) == 2  # the calls, then the outputs
    for span in (*calls, filed, shredded):
        assert span.parent is not None and span.parent.span_id == turn.context.span_id
    attributes = dict(filed.attributes or {})
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["gen_ai.tool.name"] == "file_it"
    assert str(attributes["gen_ai.tool.call.id"]).startswith("call_")
    assert filed.status.status_code != StatusCode.ERROR
    assert shredded.status.status_code == StatusCode.ERROR
    assert "jammed" in (shredded.status.description or "")
