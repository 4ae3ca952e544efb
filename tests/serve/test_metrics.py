"""`/metrics` read by prometheus-client's own text parser: names and units by convention,
figures that follow what happened, bounded labels (never a session id)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from serve_support import LiveServer, new_session, send

LOCKED_OUT = "I typed my password wrong and now I am locked out"


def scrape(live: LiveServer) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = httpx.get(live.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


def test_metrics_follow_sessions_turns_handoffs_and_requests(live: LiveServer) -> None:
    before = scrape(live)
    session = new_session(live)
    send(live, session["id"], LOCKED_OUT)
    send(live, session["id"], "thanks")
    after = scrape(live)

    assert (
        value(after, "runner_sessions_created_total")
        - value(before, "runner_sessions_created_total")
        == 1
    )
    assert value(after, "runner_sessions", state="active") >= 1
    turns = value(after, "runner_turns_total", agent="access-agent", team="service-desk")
    assert (
        turns - value(before, "runner_turns_total", agent="access-agent", team="service-desk") == 2
    )
    assert (
        value(
            after, "runner_response_time_seconds_count", agent="access-agent", team="service-desk"
        )
        >= 2
    )
    assert value(after, "runner_tokens_total", direction="output") > 0
    assert (
        value(after, "runner_handoffs_total", from_agent="triage-agent", to_agent="access-agent")
        >= 1
    )
    assert (
        value(
            after,
            "runner_http_requests_total",
            method="POST",
            route="/api/agent-lifecycle/sessions/{session_id}/messages",
            status="200",
        )
        >= 2
    )
    assert value(after, "runner_pool_sessions_limit", pool="desk-agents") == 40
    assert value(after, "runner_alert_firing", alert="slow-triage", severity="warning") == 0
    assert value(after, "runner_health_status", status="healthy") == 1


def test_metric_names_and_labels_are_bounded(live: LiveServer) -> None:
    session = new_session(live)
    send(live, session["id"], "hello")
    httpx.get(live.url + f"/api/agent-lifecycle/sessions/{session['id']}")
    text = httpx.get(live.url + "/metrics").text
    assert session["id"] not in text and "it-helpdesk" not in text
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("runner_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
        for sample in family.samples:
            assert "session" not in "".join(sample.labels), sample
            route = sample.labels.get("route")
            assert route is None or route == "unmatched" or route.startswith("/"), route
