"""The REST API through a real HTTP client against a real server: sessions, messages (JSON
and server-sent events), the status codes of the issue, workspaces and permissions."""

from __future__ import annotations

import json
from typing import Any

import httpx
from serve_support import API, KEYS, LiveServer, headers, new_session, send


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert "Traceback" not in response.text
    error: dict[str, Any] = body["error"]
    return error


def test_health_needs_no_token_and_holds_no_workspace_data(live: LiveServer) -> None:
    session = new_session(live)
    response = httpx.get(live.url + API + "/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert set(body) == {"status", "components", "active_sessions", "uptime_s"}
    text = response.text
    assert "it-helpdesk" not in text and session["id"] not in text
    assert not any(key in text for key in KEYS.values())


def test_credentials_are_required_and_checked(live: LiveServer) -> None:
    for sent in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": "Basic eDp5"}):
        response = httpx.get(live.url + API + "/sessions", headers=sent)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert error_of(response)["code"] == "unauthenticated"
        assert "not-a-key" not in response.text


def test_a_session_from_create_to_end(live: LiveServer) -> None:
    with live.client("APP_KEY") as client:
        created = client.post("/sessions", json={"team": "service-desk", "priority": "high"})
        assert created.status_code == 201
        session = created.json()
        assert created.headers["location"] == f"{API}/sessions/{session['id']}"
        assert session["state"] == "active" and session["team"] == "service-desk"
        assert session["agent"] == "triage-agent" and session["workspace_id"] == "it-helpdesk"
        assert session["conversation_id"] and session["turns"] == 0

        reply = client.post(
            f"/sessions/{session['id']}/messages",
            json={"text": "I typed my password wrong and now I am locked out"},
        ).json()
        assert reply["agent"] == "access-agent"
        assert reply["handoffs"] == [
            {
                "from": "triage-agent",
                "to": "access-agent",
                "trigger": "account-access",
                "reason": reply["handoffs"][0]["reason"],
                "queued_for_s": None,
            }
        ]
        assert reply["input_tokens"] > 0 and reply["output_tokens"] > 0
        assert reply["total_tokens"] == reply["input_tokens"] + reply["output_tokens"]

        listed = client.get("/sessions").json()["sessions"]
        assert session["id"] in {s["id"] for s in listed}
        fetched = client.get(f"/sessions/{session['id']}").json()
        assert fetched["turns"] == 1 and fetched["agent"] == "access-agent"

        assert client.post(f"/sessions/{session['id']}/pause").json()["state"] == "paused"
        paused = client.post(f"/sessions/{session['id']}/messages", json={"text": "hello?"})
        assert paused.status_code == 409 and error_of(paused)["code"] == "session_state"
        assert client.post(f"/sessions/{session['id']}/resume").json()["state"] == "active"

        ended = client.post(f"/sessions/{session['id']}/end", json={"reason": "resolved"})
        assert ended.json()["state"] == "ended" and ended.json()["reason"] == "resolved"
        after = client.post(f"/sessions/{session['id']}/messages", json={"text": "one more"})
        assert after.status_code == 409


def test_server_sent_events_carry_the_reply_then_done(live: LiveServer) -> None:
    session = new_session(live)
    with (
        live.client("APP_KEY") as client,
        client.stream(
            "POST",
            f"/sessions/{session['id']}/messages",
            json={"text": "hello there"},
            headers={"Accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = [block.split("\n") for block in text.strip().split("\n\n")]
    assert [lines[0] for lines in events] == ["event: reply", "event: done"]
    reply = json.loads(events[0][1].removeprefix("data: "))
    assert reply["session_id"] == session["id"] and reply["agent"] == "triage-agent"
    assert "hello there" in reply["text"]
    assert json.loads(events[1][1].removeprefix("data: ")) == {
        "session_id": session["id"],
        "state": "active",
    }


def test_another_workspaces_session_looks_missing(live: LiveServer) -> None:
    mine = new_session(live)
    with live.client("OTHER_KEY") as other:
        for method, path in [
            ("GET", f"/sessions/{mine['id']}"),
            ("GET", f"/sessions/{mine['id']}/transcript"),
            ("POST", f"/sessions/{mine['id']}/end"),
            ("POST", f"/sessions/{mine['id']}/claim"),
            ("POST", f"/sessions/{mine['id']}/escalation/approve"),
        ]:
            response = other.request(method, path)
            assert response.status_code == 404, (path, response.text)
        missing = other.get("/sessions/sess_does_not_exist")
        assert missing.status_code == 404
        assert (
            error_of(missing)["message"].replace("sess_does_not_exist", mine["id"])
            == (error_of(other.get(f"/sessions/{mine['id']}"))["message"])
        )
        team = other.post("/sessions", json={"team": "service-desk"})
        assert team.status_code == 404 and error_of(team)["code"] == "not_found"
        assert mine["id"] not in other.get("/sessions").text


def test_permissions_are_checked_before_anything_is_looked_up(live: LiveServer) -> None:
    session = new_session(live)
    with live.client("APP_KEY") as app:
        for path in ("/human-queue", "/escalations", "/metrics", "/agents/stats"):
            response = app.get(path)
            assert response.status_code == 403, path
            assert error_of(response)["code"] == "forbidden"
        assert app.post(f"/sessions/{session['id']}/claim").status_code == 403
        assert app.post("/sessions/sess_nope/claim").status_code == 403
        assert app.post("/reload").status_code == 403
    with live.client("METRICS_KEY") as metrics:
        assert metrics.post("/sessions", json={"team": "service-desk"}).status_code == 403
        analytics = metrics.get("/metrics").json()
        assert set(analytics) == {"sessions", "performance", "resources", "costs", "health"}
        assert "triage-agent" in metrics.get("/agents/stats").json()["agents"]
        assert metrics.get("/agents/triage-agent/insights").json()["agent"] == "triage-agent"
        assert metrics.get("/agents/no-such-agent/insights").status_code == 404


def test_several_workspaces_must_say_which(live: LiveServer) -> None:
    with live.client("MULTI_KEY") as multi:
        response = multi.post("/sessions", json={"agent": "incident-summarizer"})
        assert response.status_code == 422 and error_of(response)["code"] == "workspace_required"
        made = multi.post(
            "/sessions", json={"agent": "incident-summarizer", "workspace_id": "other-ws"}
        )
        assert made.status_code == 201 and made.json()["workspace_id"] == "other-ws"
        elsewhere = multi.post("/sessions", json={"team": "service-desk", "workspace_id": "x"})
        assert elsewhere.status_code == 404
        assert multi.post(f"/sessions/{made.json()['id']}/end").status_code == 200


def test_bad_bodies_are_422_and_big_ones_413(live: LiveServer) -> None:
    session = new_session(live)
    with live.client("APP_KEY") as client:
        for body in (
            {},
            {"agent": "a", "team": "b"},
            {"team": "service-desk", "max_turns": 0},
            {"team": "service-desk", "surprise": 1},
            {"team": "service-desk", "priority": "whenever"},
        ):
            response = client.post("/sessions", json=body)
            assert response.status_code == 422, body
            assert error_of(response)["code"] == "invalid_request"
        long_text = client.post(f"/sessions/{session['id']}/messages", json={"text": "x" * 16_001})
        assert long_text.status_code == 422
        not_json = client.post(
            f"/sessions/{session['id']}/messages",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert not_json.status_code == 422
        huge = client.post(f"/sessions/{session['id']}/messages", json={"text": "y" * 300_000})
        assert huge.status_code == 413 and error_of(huge)["code"] == "body_too_large"
        assert client.get("/no/such/route").status_code == 404
        assert error_of(client.get("/no/such/route"))["code"] == "not_found"


def test_a_full_pool_is_429(live: LiveServer) -> None:
    made = [new_session(live, agent="incident-summarizer") for _ in range(2)]
    with live.client("APP_KEY") as client:
        refused = client.post("/sessions", json={"agent": "incident-summarizer"})
        assert refused.status_code == 429 and error_of(refused)["code"] == "pool_limit"
        assert "back-office" in error_of(refused)["message"]
        for session in made:
            client.post(f"/sessions/{session['id']}/end")
        assert client.post("/sessions", json={"agent": "incident-summarizer"}).status_code == 201


def test_operators_approve_claim_answer_and_hand_back(live: LiveServer) -> None:
    session = new_session(live)
    sid = session["id"]
    for _ in range(11):
        reply = send(live, sid, "I still have a question about my request")
    assert reply["escalation"]["status"] == "pending_approval"
    with live.client("OPS_KEY") as ops:
        pending = ops.get("/escalations").json()["escalations"]
        assert sid in {e["session_id"] for e in pending}
        approved = ops.post(f"/sessions/{sid}/escalation/approve").json()
        assert approved["escalation"]["status"] == "approved"
        assert approved["escalation"]["decided_by"] == "dana"
        again = ops.post(f"/sessions/{sid}/escalation/approve")
        assert again.status_code == 409
        queue = ops.get("/human-queue").json()["items"]
        assert sid in {i["session_id"] for i in queue}
        assert ops.post(f"/sessions/{sid}/answer", json={"text": "not yet"}).status_code == 409
        claimed = ops.post(f"/sessions/{sid}/claim").json()
        assert claimed["claimed_by"] == "dana"
        send(live, sid, "Is anyone there?")
        answered = ops.post(f"/sessions/{sid}/answer", json={"text": "Dana here, looking now"})
        assert answered.json()["author"] == "dana"
        entries = ops.get(f"/sessions/{sid}/transcript").json()["entries"]
        assert [(e["role"], e["text"]) for e in entries][-2:] == [
            ("user", "Is anyone there?"),
            ("operator", "Dana here, looking now"),
        ]
        back = ops.post(f"/sessions/{sid}/hand-back").json()
        assert back["agent"] == "triage-agent"
        assert ops.get(f"/sessions/{sid}").json()["state"] == "active"


def test_requested_handoff_and_availability(live: LiveServer) -> None:
    session = new_session(live)
    with live.client("OPS_KEY") as ops:
        done = ops.post(
            f"/sessions/{session['id']}/handoff",
            json={"target_specialization": "hardware", "reason": "the dock", "urgency": "high"},
        ).json()
        assert done == {
            "session_id": session["id"],
            "status": "completed",
            "from": "triage-agent",
            "to": "hardware-agent",
            "escalation": None,
        }
        put = ops.put(
            "/teams/service-desk/members/network-agent/availability", json={"status": "busy"}
        )
        assert put.json() == {"team": "service-desk", "agent": "network-agent", "status": "busy"}
        bad = ops.put(
            "/teams/service-desk/members/network-agent/availability", json={"status": "x"}
        )
        assert bad.status_code == 422
    with live.client("OTHER_KEY") as other:
        hidden = other.put(
            "/teams/service-desk/members/network-agent/availability", json={"status": "busy"}
        )
        assert hidden.status_code == 404
    with live.client("APP_KEY") as app:
        assert (
            app.post(
                f"/sessions/{session['id']}/handoff",
                json={"target_specialization": "hardware", "reason": "x"},
            ).status_code
            == 403
        )


def test_admin_reload_keeps_live_sessions(live: LiveServer) -> None:
    session = new_session(live)
    with httpx.Client(base_url=live.url + API, headers=headers("ADMIN_KEY")) as admin:
        response = admin.post("/reload")
        assert response.status_code == 200 and response.json()["reloaded"] is True
        assert admin.get(f"/sessions/{session['id']}").json()["state"] == "active"
    assert send(live, session["id"], "still here?")["agent"] == "triage-agent"


def test_preferences_and_features_are_checked_and_the_configuration_shown(
    live: LiveServer,
) -> None:
    with live.client("APP_KEY") as client:
        for body, code, words in (
            (
                {"agent": "triage-agent", "preferences": {"formality": "rude"}},
                "invalid_preferences",
                "allowed values",
            ),
            (
                {"agent": "triage-agent", "preferences": {"colour": "red"}},
                "invalid_preferences",
                "unknown preference 'colour'",
            ),
            (
                {"agent": "access-agent", "features": {"nope": True}},
                "invalid_features",
                "unknown feature 'nope'",
            ),
        ):
            refused = client.post("/sessions", json=body)
            assert refused.status_code == 422, refused.text
            error = error_of(refused)
            assert error["code"] == code and words in error["message"], error
        not_a_bool = client.post(
            "/sessions", json={"agent": "access-agent", "features": {"self_service_unlock": "yes"}}
        )
        assert not_a_bool.status_code == 422

        created = client.post(
            "/sessions",
            json={
                "agent": "access-agent",
                "preferences": {"language": "German"},
                "features": {"self_service_unlock": False},
            },
        )
        assert created.status_code == 201, created.text
        session = created.json()
        expected = {
            "workspace": "it-helpdesk",
            "overlay": "it-helpdesk",
            "preferences": {"formality": "casual", "language": "German"},
            "features": {"self_service_unlock": False},
            "disabled_tools": {"access-agent": ["unlock_account"]},
        }
        assert session["configuration"] == expected
        assert session["preferences"] == {"language": "German"}
        assert session["features"] == {"self_service_unlock": False}
        reply = client.post(f"/sessions/{session['id']}/messages", json={"text": "locked out"})
        assert "Write in a casual tone, in German." in reply.json()["text"]
        assert client.get(f"/sessions/{session['id']}").json()["configuration"] == expected
