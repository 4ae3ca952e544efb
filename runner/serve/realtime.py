"""Socket.io namespace `/agent-lifecycle`: authenticated connections, session rooms, and the
runtime's events delivered to whoever may see them.

Role: the real-time side of `runner serve` (python-socketio, ASGI, on the same port as the
REST API). A client connects with its key or token in `auth: {token}` (or the Authorization
header), then `join-agent-session` / `leave-agent-session` with `{sessionId}`; both are
acknowledged with `{ok: true}` or `{ok: false, error: {code, message}}`.

Who receives what (event names and data are the runtime's own):
  - events of a session (`session:state-changed`, `handoff:*`, `escalation:*`, `human:*`,
    `tool:*`, `lifecycle:session_*`) go to the session's room `session:<id>`;
  - `lifecycle:session_created` also goes to every socket whose identity covers the session's
    workspace (`ws:<workspace>` rooms, `ws:*` for every workspace);
  - operators get their workspaces' `escalation:*` and `human:*` without joining
    (`ops:<workspace>` rooms);
  - events of the whole environment (`performance:alert*`, `resource:warning`, `team:*`) go to
    sockets holding `operator`, `admin` or `metrics:read`, or every workspace (room `env`):
    alerts and pools are per agent, team or pool, never per workspace.
A socket in several of these rooms receives an event once.

Many instances (`redis:` on the Environment, `runner serve --workers N`): rooms live in
python-socketio's `AsyncRedisManager` on the same Redis, so an emit reaches the sockets of
every instance. Each event is emitted by the instance that produced it only (events relayed
from other instances, `Event.origin`, are theirs to emit): every socket receives it once.

Invariants:
  - Joining checks the permission (`chat:access` or `operator`) and the session's workspace;
    another workspace's session is refused exactly like a missing one.
  - Bounded: connections (`max_socket_connections`), rooms per socket, message size
    (`max_socket_message_bytes`, engine.io's buffer); no new connection while draining.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import socketio

from runner.runtime.auth import ADMIN, METRICS_READ, OPERATOR, AuthContext
from runner.runtime.errors import PermissionDeniedError, SessionNotFoundError
from runner.runtime.events import Event
from runner.serve.authn import Unauthenticated
from runner.serve.context import ServeContext
from runner.serve.jwks import JwksUnavailable

__all__ = ["NAMESPACE", "RealtimeLayer"]

log = logging.getLogger("runner.serve.realtime")

NAMESPACE = "/agent-lifecycle"
SESSION_FAMILIES = ("session:", "handoff:", "escalation:", "human:", "tool:", "lifecycle:")
OPERATOR_FAMILIES = ("escalation:", "human:")
ENV_EVENTS = ("performance:alert", "performance:alert-cleared", "resource:warning")
ENV_FAMILIES = ("team:",)


def _refusal(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


class RealtimeLayer:
    def __init__(self, context: ServeContext) -> None:
        self.context = context
        limits = context.limits
        url = context.lc.parts.redis_url
        self.shared = url is not None
        manager = (
            socketio.AsyncRedisManager(url, channel=f"runner:{context.lc.env.name}:socketio")
            if url is not None
            else None
        )
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=manager,
            max_http_buffer_size=limits.max_socket_message_bytes,
            logger=False,
            engineio_logger=False,
        )
        self.identities: dict[str, AuthContext] = {}
        self.rooms: dict[str, set[str]] = {}
        self._offs: list[Callable[[], None]] = []
        self.sio.on("connect", self._connect, namespace=NAMESPACE)
        self.sio.on("disconnect", self._disconnect, namespace=NAMESPACE)
        self.sio.on("join-agent-session", self._join, namespace=NAMESPACE)
        self.sio.on("leave-agent-session", self._leave, namespace=NAMESPACE)

    def asgi(self, other: Any) -> Any:
        return socketio.ASGIApp(self.sio, other_asgi_app=other, socketio_path="socket.io")

    def follow(self) -> None:
        """Start delivering the runtime's events (once)."""
        if not self._offs:
            self._offs.append(self.context.lc.on("*", self._deliver))

    def stop(self) -> None:
        for off in self._offs:
            off()
        self._offs = []

    async def disconnect_all(self) -> None:
        for sid in list(self.identities):
            await self.sio.disconnect(sid, namespace=NAMESPACE)

    # ------------------------------------------------------------ connections

    async def _connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        context = self.context
        if context.draining:
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": "draining", "message": "the server is shutting down"}
            )
        if len(self.identities) >= context.limits.max_socket_connections:
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": "busy", "message": "too many connections; retry shortly"}
            )
        token = _token(auth, environ)
        try:
            identity = await context.authenticator.authenticate(token)
        except Unauthenticated as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": "unauthenticated", "message": str(exc)}
            ) from None
        except JwksUnavailable:
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": "auth_unavailable", "message": "the issuer's keys cannot be fetched"}
            ) from None
        self.identities[sid] = identity
        self.rooms[sid] = set()
        context.metrics.socket_connections.set(len(self.identities))
        every = identity.every_workspace
        workspaces = ["*"] if every else sorted(identity.workspaces)
        operator = OPERATOR in identity.permissions
        for workspace in workspaces:
            await self.sio.enter_room(sid, f"ws:{workspace}", namespace=NAMESPACE)
            if operator:
                await self.sio.enter_room(sid, f"ops:{workspace}", namespace=NAMESPACE)
        if every or not identity.permissions.isdisjoint((OPERATOR, ADMIN, METRICS_READ)):
            await self.sio.enter_room(sid, "env", namespace=NAMESPACE)

    async def _disconnect(self, sid: str, *_: Any) -> None:
        self.identities.pop(sid, None)
        self.rooms.pop(sid, None)
        self.context.metrics.socket_connections.set(len(self.identities))

    # ------------------------------------------------------------ session rooms

    def _session_id(self, data: Any) -> str | None:
        if not isinstance(data, Mapping):
            return None
        value = data.get("sessionId")
        if not isinstance(value, str) or not 0 < len(value) <= 200:
            return None
        return value

    async def _join(self, sid: str, data: Any = None) -> dict[str, Any]:
        identity = self.identities.get(sid)
        session_id = self._session_id(data)
        if identity is None:
            return _refusal("unauthenticated", "connect with a key or token first")
        if session_id is None:
            return _refusal("bad_request", "send {sessionId: <session id>}")
        try:  # the runtime's own check: chat:access or operator, and the session's workspace
            self.context.lc.get_session(session_id, auth=identity)
        except PermissionDeniedError:
            return _refusal("forbidden", "joining a session needs chat:access or operator")
        except SessionNotFoundError:
            return _refusal(
                "not_found", f"session {session_id!r} not found (or not visible to your workspaces)"
            )
        rooms = self.rooms.setdefault(sid, set())
        if session_id not in rooms and len(rooms) >= self.context.limits.max_rooms_per_socket:
            return _refusal("too_many_rooms", "leave a session before joining another")
        rooms.add(session_id)
        await self.sio.enter_room(sid, f"session:{session_id}", namespace=NAMESPACE)
        return {"ok": True, "sessionId": session_id}

    async def _leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        session_id = self._session_id(data)
        if session_id is None:
            return _refusal("bad_request", "send {sessionId: <session id>}")
        self.rooms.get(sid, set()).discard(session_id)
        await self.sio.leave_room(sid, f"session:{session_id}", namespace=NAMESPACE)
        return {"ok": True, "sessionId": session_id}

    # ------------------------------------------------------------ delivering events

    def recipients(self, event: Event) -> list[str]:
        """The rooms `event` goes to (see the module docstring)."""
        name = event.type
        session_id = event.data.get("session_id")
        if isinstance(session_id, str) and name.startswith(SESSION_FAMILIES):
            rooms = [f"session:{session_id}"]
            operators = name.startswith(OPERATOR_FAMILIES)
            created = name == "lifecycle:session_created"
            if operators or created:
                if created:
                    workspace = event.data.get("workspace_id")
                else:
                    row = self.context.lc.session_row(session_id)
                    workspace = None if row is None else row.workspace_id
                prefixes = (["ops"] if operators else []) + (["ws"] if created else [])
                for prefix in prefixes:
                    rooms.append(f"{prefix}:*")
                    if workspace is not None:
                        rooms.append(f"{prefix}:{workspace}")
            return rooms
        if name in ENV_EVENTS or name.startswith(ENV_FAMILIES):
            return ["env"]
        return []

    def _deliver(self, event: Event) -> Awaitable[None] | None:
        """The runtime's callback for every event: a delivery to schedule, or None (no socket
        connected, or nobody may see it) so that quiet servers pay one check per event."""
        if self.shared:
            if event.origin is not None:  # another instance emits it to every socket
                return None
        elif not self.identities:
            return None
        rooms = self.recipients(event)
        if not rooms:
            return None
        return self._emit(event, rooms)

    async def _emit(self, event: Event, rooms: list[str]) -> None:
        try:
            await self.sio.emit(event.type, dict(event.data), to=rooms, namespace=NAMESPACE)
        except Exception:
            log.exception("could not deliver %s to Socket.io clients", event.type)
            return
        self.context.metrics.socket_emits.labels(event.type).inc()


def _token(auth: Any, environ: Mapping[str, Any]) -> str | None:
    if isinstance(auth, Mapping):
        token = auth.get("token")
        if isinstance(token, str) and token:
            return token.removeprefix("Bearer ").strip()
    header = environ.get("HTTP_AUTHORIZATION")
    if isinstance(header, str) and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None
