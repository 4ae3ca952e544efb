"""A request to `runner serve` carrying a W3C `traceparent` is one trace: the server span of the
request, the session turn inside it and the provider call inside that (SDK in-memory exporter)."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from serve_support import LiveServer, new_session, send

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def test_a_message_request_carries_its_turn_and_provider_spans(
    otel_spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    live = LiveServer(tmp_path).start()  # opened with the SDK installed
    try:
        session = new_session(live)
        otel_spans.clear()
        with live.client("APP_KEY") as client:
            response = client.post(
                f"/sessions/{session['id']}/messages",
                json={"text": "My laptop shows an error"},
                headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
            )
        assert response.status_code == 200, response.text
        send(live, session["id"], "untraced caller: a trace of its own")
    finally:
        live.stop()
    finished = otel_spans.get_finished_spans()
    ours = [
        s for s in finished if s.context is not None and f"{s.context.trace_id:032x}" == TRACE_ID
    ]
    names = {s.name: s for s in ours}
    server = names["POST /api/agent-lifecycle/sessions/{session_id}/messages"]
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CALLER_SPAN
    (turn,) = [s for s in ours if s.name.startswith("turn ")]
    (call,) = [s for s in ours if s.name.startswith("invoke_agent ")]
    assert server.context is not None and turn.context is not None
    assert turn.parent is not None and turn.parent.span_id == server.context.span_id
    assert call.parent is not None and call.parent.span_id == turn.context.span_id
    assert dict(server.attributes or {})["http.response.status_code"] == 200
    # the second request, with no traceparent, started a trace of its own
    turns = [s for s in finished if s.name.startswith("turn ")]
    assert len(turns) == 2 and len({s.context.trace_id for s in turns if s.context}) == 2
