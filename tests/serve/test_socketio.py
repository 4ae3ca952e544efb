"""Socket.io `/agent-lifecycle` with python-socketio's AsyncClient as a real network peer:
authentication, session rooms with acknowledgements, who receives which event."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio
from serve_support import KEYS, LiveServer, new_session, send

NS = "/agent-lifecycle"
LOCKED_OUT = "I typed my password wrong and now I am locked out"


class Peer:
    """A connected client that records every event it receives."""

    def __init__(self, live: LiveServer, key: str | None) -> None:
        self.live = live
        self.key = key
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []

        @self.client.on("*", namespace=NS)
        async def record(event: str, data: Any = None) -> None:
            self.events.append((event, data))

    async def __aenter__(self) -> Peer:
        auth = {"token": KEYS[self.key]} if self.key else None
        await self.client.connect(
            self.live.url, namespaces=[NS], auth=auth, transports=["websocket"], wait_timeout=10
        )
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.client.disconnect()

    async def join(self, session_id: Any) -> Any:
        return await self.client.call(
            "join-agent-session", {"sessionId": session_id}, namespace=NS, timeout=10
        )

    async def wait_for(self, event: str, session_id: str, timeout: float = 5) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for name, data in self.events:
                if name == event and data.get("session_id") == session_id:
                    return dict(data)
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {event} for {session_id}; saw {self.events}")

    def names_for(self, session_id: str) -> list[str]:
        return [
            n for n, d in self.events if isinstance(d, dict) and d.get("session_id") == session_id
        ]


async def test_a_connection_needs_a_valid_token(live: LiveServer) -> None:
    for auth in (None, {"token": "wrong-key-wrong-key"}):
        client = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError) as refused:
            await client.connect(
                live.url, namespaces=[NS], auth=auth, transports=["websocket"], wait_timeout=5
            )
        assert "wrong-key" not in str(refused.value)
    header = socketio.AsyncClient(reconnection=False)
    await header.connect(
        live.url,
        namespaces=[NS],
        headers={"Authorization": f"Bearer {KEYS['APP_KEY']}"},
        transports=["websocket"],
        wait_timeout=5,
    )
    assert header.connected
    await header.disconnect()


async def test_joined_session_events_arrive_and_others_do_not(live: LiveServer) -> None:
    mine = await asyncio.to_thread(new_session, live)
    theirs = await asyncio.to_thread(new_session, live, "OTHER_KEY", team="other-desk")
    async with Peer(live, "APP_KEY") as peer:
        assert await peer.join(mine["id"]) == {"ok": True, "sessionId": mine["id"]}
        refused = await peer.join(theirs["id"])
        missing = await peer.join("sess_does_not_exist")
        assert refused["ok"] is False and refused["error"]["code"] == "not_found"
        assert refused["error"]["message"].replace(theirs["id"], "X") == missing["error"][
            "message"
        ].replace("sess_does_not_exist", "X")
        assert (await peer.join(None))["error"]["code"] == "bad_request"

        await asyncio.to_thread(send, live, theirs["id"], LOCKED_OUT, "OTHER_KEY")
        await asyncio.to_thread(send, live, mine["id"], LOCKED_OUT)
        handoff = await peer.wait_for("handoff:initiated", mine["id"])
        assert handoff["from"] == "triage-agent" and handoff["to"] == "access-agent"
        await peer.wait_for("handoff:completed", mine["id"])
        await asyncio.sleep(0.2)
        assert peer.names_for(theirs["id"]) == []

        left = await peer.client.call(
            "leave-agent-session", {"sessionId": mine["id"]}, namespace=NS, timeout=5
        )
        assert left == {"ok": True, "sessionId": mine["id"]}
        before = len(peer.names_for(mine["id"]))
        await asyncio.to_thread(send, live, mine["id"], "thanks")
        await asyncio.to_thread(live.client("APP_KEY").post, f"/sessions/{mine['id']}/pause")
        await asyncio.sleep(0.3)
        assert len(peer.names_for(mine["id"])) == before


async def test_operators_get_their_workspaces_escalations_without_joining(
    live: LiveServer,
) -> None:
    mine = await asyncio.to_thread(new_session, live)
    async with (
        Peer(live, "OPS_KEY") as ops,
        Peer(live, "OTHER_KEY") as other,
        Peer(live, "APP_KEY") as app,
    ):
        for _ in range(11):
            await asyncio.to_thread(send, live, mine["id"], "I still have a question")
        opened = await ops.wait_for("escalation:pending_approval", mine["id"])
        assert opened["level"] == 2
        created = [d for n, d in ops.events if n == "lifecycle:session_created"]
        await asyncio.sleep(0.2)
        assert other.names_for(mine["id"]) == []  # another workspace's operator
        assert app.names_for(mine["id"]) == []  # chat access only: nothing without joining
        assert created == []  # created before these sockets connected


async def test_session_created_reaches_sockets_covering_its_workspace(live: LiveServer) -> None:
    async with Peer(live, "APP_KEY") as app, Peer(live, "OTHER_KEY") as other:
        made = await asyncio.to_thread(new_session, live)
        created = await app.wait_for("lifecycle:session_created", made["id"])
        assert created["workspace_id"] == "it-helpdesk"
        await asyncio.sleep(0.2)
        assert other.names_for(made["id"]) == []
