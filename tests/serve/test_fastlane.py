"""The fast lane (runner.serve.fastlane) answers exactly as FastAPI does: the same requests,
through a real HTTP client, once with the lane and once with FastAPI alone, give the same
status, headers and body; and the lane does serve the routes of a session's lifecycle.

Also the server's one-write transport: what a response writes in one pass of the loop leaves
as one write, a close flushes first."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serve_support import API, LiveServer, headers, new_session

from runner.serve.server import OneWriteTransport

VOLATILE = {"date", "content-length"}


def answer(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    kept = {k: v for k, v in response.headers.items() if k not in VOLATILE}
    return response.status_code, kept, response.content


def same_but_ids(found: tuple[int, dict[str, str], bytes]) -> tuple[Any, ...]:
    """An answer with every generated session or conversation id replaced by one word."""
    ids = re.compile(rb"(sess|conv)_[0-9a-zA-Z]+")
    status, kept, body = found
    text = {k: ids.sub(b"<id>", v.encode()).decode() for k, v in kept.items()}
    return status, text, ids.sub(b"<id>", body)


@pytest.fixture
def both(live: LiveServer) -> Iterator[Any]:
    """`both(method, path, **kw)`: the answer with the lane and the answer without it."""

    def ask(method: str, path: str, **kw: Any) -> tuple[Any, Any]:
        with httpx.Client(base_url=live.url + API, timeout=30) as client:
            served = live.app.lane.served
            fast = client.request(method, path, **kw)
            live.app.lane.enabled = False
            try:
                plain = client.request(method, path, **kw)
            finally:
                live.app.lane.enabled = True
            took = live.app.lane.served - served
        return (answer(fast), took), answer(plain)

    yield ask
    live.app.lane.enabled = True


def test_the_lifecycle_routes_are_compiled(live: LiveServer) -> None:
    compiled = set(live.app.lane.compiled())
    for route in (
        "POST /sessions",
        "GET /sessions/{session_id}",
        "POST /sessions/{session_id}/messages",
        "POST /sessions/{session_id}/pause",
        "POST /sessions/{session_id}/resume",
        "POST /sessions/{session_id}/end",
    ):
        method, path = route.split(" ")
        assert f"{method} {API}{path}" in compiled


def test_reads_answer_the_same(live: LiveServer, both: Any) -> None:
    sid = new_session(live)["id"]
    app = headers("APP_KEY")
    for path in (f"/sessions/{sid}", f"/sessions/{sid}/transcript"):
        (fast, took), plain = both("GET", path, headers=app)
        assert took == 1 and fast == plain
        assert fast[0] == 200


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("POST", "/sessions", {"json": {"team": "service-desk"}}),  # no credentials
        ("POST", "/sessions", {"json": {"team": "x"}, "headers": {"Authorization": "Bearer no"}}),
        ("POST", "/sessions", {"json": {"team": "x"}, "headers": {"Authorization": "Basic eDp5"}}),
        ("POST", "/sessions", {"json": {"team": "service-desk"}, "key": "METRICS_KEY"}),  # 403
        ("POST", "/sessions", {"json": {"team": "no-such-team"}, "key": "APP_KEY"}),  # 404
        ("POST", "/sessions", {"json": {"team": 3}, "key": "APP_KEY"}),  # 422
        ("POST", "/sessions", {"json": [1, 2], "key": "APP_KEY"}),
        ("POST", "/sessions", {"content": b"{not json", "key": "APP_KEY", "json_type": True}),
        # JSON without a Content-Type: refused by recent FastAPI, accepted by the floor's (0.110)
        (
            "POST",
            "/sessions",
            {"content": b'{"team": "service-desk"}', "key": "APP_KEY", "either": True},
        ),
        ("POST", "/sessions", {"key": "APP_KEY"}),  # no body
        ("POST", "/sessions/nope/messages", {"json": {"text": "hi"}, "key": "APP_KEY"}),  # 404
        ("POST", "/sessions/nope/messages", {"json": {"txt": "hi"}, "key": "APP_KEY"}),  # 422
        ("POST", "/sessions/nope/end", {"key": "APP_KEY"}),
        ("POST", "/sessions/nope/end", {"json": {"reason": 5}, "key": "APP_KEY"}),
        ("GET", "/sessions/nope", {"key": "OTHER_KEY"}),
        ("DELETE", "/sessions/nope", {"key": "APP_KEY"}),  # 405
        ("GET", "/no/such/route", {"key": "APP_KEY"}),  # 404
        ("PUT", "/teams/service-desk/members/access-agent/availability", {"key": "APP_KEY"}),
    ],
)
def test_refusals_answer_the_same(
    live: LiveServer, both: Any, method: str, path: str, kw: dict[str, Any]
) -> None:
    kw = dict(kw)
    key = kw.pop("key", None)
    sent = dict(kw.pop("headers", {}))
    if key:
        sent.update(headers(key))
    if kw.pop("json_type", False):
        sent["Content-Type"] = "application/json"
    either = kw.pop("either", False)
    (fast, _), plain = both(method, path, headers=sent, **kw)
    if either and plain[0] == 201:  # accepted by this FastAPI: the same but for the new ids
        assert fast[0] == 201
        fast, plain = same_but_ids(fast), same_but_ids(plain)
    assert fast == plain
    assert fast[0] >= 400 or (either and fast[0] == 201)
    assert b"Traceback" not in fast[2]


def test_a_refused_state_change_answers_the_same(live: LiveServer, both: Any) -> None:
    sid = new_session(live)["id"]
    app = headers("APP_KEY")
    with live.client("APP_KEY") as client:
        assert client.post(f"/sessions/{sid}/end", json={"reason": "resolved"}).status_code == 200
    (fast, took), plain = both(
        "POST", f"/sessions/{sid}/messages", json={"text": "hi"}, headers=app
    )
    assert took == 1 and fast == plain and fast[0] == 409


def test_a_lifecycle_through_the_lane_is_the_api_s_lifecycle(live: LiveServer) -> None:
    served = live.app.lane.served
    with live.client("APP_KEY") as client:
        created = client.post("/sessions", json={"team": "service-desk"})
        assert created.status_code == 201
        assert created.headers["location"] == f"{API}/sessions/{created.json()['id']}"
        sid = created.json()["id"]
        reply = client.post(
            f"/sessions/{sid}/messages",
            json={"text": "I typed my password wrong and now I am locked out"},
        ).json()
        assert reply["agent"] == "access-agent" and reply["handoffs"][0]["from"] == "triage-agent"
        streamed = client.post(
            f"/sessions/{sid}/messages",
            json={"text": "thanks"},
            headers={"Accept": "text/event-stream"},
        )
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert streamed.text.startswith("event: reply\n") and "event: done\n" in streamed.text
        ended = client.post(f"/sessions/{sid}/end", json={"reason": "resolved"})
        assert ended.status_code == 200 and ended.json()["state"] == "ended"
    assert live.app.lane.served - served == 4


class _Recording:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_one_write_transport_joins_a_pass_of_the_loop() -> None:
    async def run() -> None:
        inner = _Recording()
        transport = OneWriteTransport(inner)  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"body")
        assert inner.writes == []
        await asyncio.sleep(0)
        assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        transport.write(b"more")
        await asyncio.sleep(0)
        assert inner.writes[-1] == b"more"  # a later chunk leaves on its own pass
        transport.write(b"last")
        transport.close()  # flushes before closing
        assert inner.writes[-1] == b"last" and inner.closed
        assert transport.get_extra_info("peername") == "info:peername"

    asyncio.run(run())


def test_an_unexpected_error_is_a_500_naming_an_incident_either_way(
    live: LiveServer, both: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = new_session(live)["id"]

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a secret detail of the failure")

    monkeypatch.setattr(live.lc, "transcript", broken)
    (fast, took), plain = both("GET", f"/sessions/{sid}/transcript", headers=headers("APP_KEY"))
    assert took == 1
    for status, sent, body in (fast, plain):
        assert status == 500 and sent["content-type"] == "application/json"
        error = json.loads(body)["error"]
        assert error["code"] == "internal" and "incident" in error["message"]
        assert b"secret detail" not in body and b"Traceback" not in body


def test_a_streamed_body_over_the_limit_is_the_same_413(live: LiveServer, both: Any) -> None:
    sid = new_session(live)["id"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the edge counts while reading
        yield b'{"text": "'
        for _ in range(40):
            yield b"x" * 8192
        yield b'"}'

    sent = {**headers("APP_KEY"), "Content-Type": "application/json"}
    with httpx.Client(base_url=live.url + API, timeout=30) as client:
        fast = client.post(f"/sessions/{sid}/messages", content=chunks(), headers=sent)
        live.app.lane.enabled = False
        try:
            plain = client.post(f"/sessions/{sid}/messages", content=chunks(), headers=sent)
        finally:
            live.app.lane.enabled = True
    assert answer(fast) == answer(plain)
    assert fast.status_code == 413 and fast.json()["error"]["code"] == "body_too_large"
