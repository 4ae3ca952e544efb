"""A real `runner serve` for the tests (the fixtures are in conftest.py): uvicorn on a
random loopback port, in a thread with its own event loop, over the example project
(`specs/`, team service-desk) copied to a temp folder with a local store and registry of its
own.

Every client in these tests is a real network peer (httpx, python-socketio, Node's
socket.io-client, Chromium). `LiveServer.call(fn)` runs `fn(lc)` on the server's loop for the
few set-ups that are not what the tests are about (e.g. eleven messages to reach an escalation).
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx

from runner import Lifecycle
from runner.serve.app import ServeApp, build_app
from runner.serve.authn import Authenticator
from runner.serve.context import ServeContext, ServeLimits
from runner.serve.server import DrainingServer, bind, make_server, serve_forever
from runner.spec.models.auth import AuthConfig

REPO = Path(__file__).resolve().parents[2]
API = "/api/agent-lifecycle"

KEYS = {
    "APP_KEY": "app-key-0123456789abcdef",
    "OPS_KEY": "ops-key-0123456789abcdef",
    "OTHER_KEY": "other-key-0123456789abcdef",
    "ADMIN_KEY": "admin-key-0123456789abcdef",
    "METRICS_KEY": "metrics-key-0123456789abcdef",
    "MULTI_KEY": "multi-key-0123456789abcdef",
}
AUTH = AuthConfig.model_validate(
    {
        "api_keys": [
            {
                "name": "support-app",
                "key": "${APP_KEY}",
                "workspaces": ["it-helpdesk"],
                "permissions": ["chat:access"],
            },
            {
                "name": "dana",
                "key": "${OPS_KEY}",
                "workspaces": ["it-helpdesk"],
                "permissions": ["chat:access", "operator"],
            },
            {
                "name": "other-team",
                "key": "${OTHER_KEY}",
                "workspaces": ["other-ws"],
                "permissions": ["chat:access", "operator"],
            },
            {
                "name": "root",
                "key": "${ADMIN_KEY}",
                "workspaces": ["*"],
                "permissions": ["chat:access", "operator", "admin", "metrics:read"],
            },
            {
                "name": "grafana",
                "key": "${METRICS_KEY}",
                "workspaces": ["it-helpdesk"],
                "permissions": ["metrics:read"],
            },
            {
                "name": "two-desks",
                "key": "${MULTI_KEY}",
                "workspaces": ["it-helpdesk", "other-ws"],
                "permissions": ["chat:access"],
            },
        ]
    }
)

LOCAL_ENV = """apiVersion: runner/v1
kind: Environment
name: local
provider: local
default: true
data_dir: {data_dir}
"""

# A second team in another workspace, so that a socket can be refused a session with handoffs.
OTHER_TEAM = """apiVersion: runner/v1
kind: Team
name: other-desk
workspace: other-ws
members:
  - agent: triage-agent
    role: primary
    specialization: triage
    handoff_triggers:
      - name: account-access
        when: {keywords: [password, locked out]}
        target: account_access
  - agent: access-agent
    role: specialist
    specialization: account_access
"""


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[key]}"}


def make_specs(root: Path) -> Path:
    """The example project with a local environment in `root` and a second team."""
    specs = root / "specs"
    shutil.copytree(REPO / "specs", specs)
    (specs / "environments.yaml").write_text(LOCAL_ENV.format(data_dir=root / "store"))
    (specs / "teams" / "other-desk.yaml").write_text(OTHER_TEAM)
    return specs


class LiveServer:
    def __init__(
        self,
        root: Path,
        *,
        auth: AuthConfig | None = AUTH,
        limits: ServeLimits | None = None,
        provider: Any = None,
    ) -> None:
        self.root = root
        self.specs = make_specs(root)
        self.auth = auth
        self.limits = limits
        self.provider = provider
        self.generated_key: str | None = None
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="live-server", daemon=True)
        self.lc: Lifecycle
        self.app: ServeApp
        self.server: DrainingServer
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        if not self._ready.wait(60) or self._failed is not None:
            raise RuntimeError(f"the server did not start: {self._failed!r}")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:
            self._failed = exc
            self._ready.set()

    async def _main(self) -> None:
        self.lc = await Lifecycle.open(
            self.specs,
            env="local",
            registry_path=self.root / "state.db",
            provider=self.provider,
            environ={},
            notify_backoff=0.01,
        )
        if self.auth is None:
            authenticator, self.generated_key = Authenticator.generated()
        else:
            authenticator = Authenticator.from_config(self.auth, KEYS)
        context = ServeContext(
            self.lc, authenticator, limits=self.limits, spec_paths=[self.specs], env_name="local"
        )
        self.app = build_app(context)
        self.server = make_server(self.app, host="127.0.0.1", port=0)
        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        self.server.config.port = self.port
        serving = asyncio.ensure_future(serve_forever(self.server, sockets=[sock]))
        while not self.server.started and not serving.done():
            await asyncio.sleep(0.01)
        self._ready.set()
        try:
            await serving
        finally:
            await self.lc.close()
            sock.close()

    def call(self, fn: Callable[[Lifecycle], Awaitable[Any]], timeout: float = 30) -> Any:
        """Run `fn(lc)` on the server's loop and return its result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(fn(self.lc), self.loop)
        return future.result(timeout)

    def stop(self, timeout: float = 30) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.request_stop)
            self.thread.join(timeout)

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + API, headers=headers(key) if key else {}, timeout=30
        )


def new_session(live: LiveServer, key: str = "APP_KEY", **body: Any) -> dict[str, Any]:
    body = body or {"team": "service-desk"}
    with live.client(key) as client:
        response = client.post("/sessions", json=body)
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def send(live: LiveServer, session_id: str, text: str, key: str = "APP_KEY") -> dict[str, Any]:
    with live.client(key) as client:
        response = client.post(f"/sessions/{session_id}/messages", json={"text": text})
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply
