"""Alerts: fire once per breach, clear when back under, notify channels (real local HTTP and
SMTP receivers), and a failing channel never breaks the session."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from runtime_support import AUTH

from runner.providers.base import Provider, Reply
from runner.runtime.clock import FakeClock


class HttpReceiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append(
                    {"path": self.path, "json": json.loads(self.rfile.read(length))}
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """A tiny SMTP server on the test's event loop (EHLO/HELO, MAIL, RCPT, DATA, QUIT)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 test ESMTP\r\n")
        mail: dict[str, Any] = {"rcpt": []}
        while line := await reader.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                writer.write(b"250 test\r\n")
            elif verb == "MAIL":
                mail["from"] = command
                writer.write(b"250 ok\r\n")
            elif verb == "RCPT":
                mail["rcpt"].append(command)
                writer.write(b"250 ok\r\n")
            elif verb == "DATA":
                writer.write(b"354 go on\r\n")
                await writer.drain()
                data = await reader.readuntil(b"\r\n.\r\n")
                mail["data"] = data.decode()
                self.messages.append(mail)
                mail = {"rcpt": []}
                writer.write(b"250 queued\r\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    async def __aenter__(self) -> SmtpReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
async def smtp_receiver() -> AsyncIterator[SmtpReceiver]:
    async with SmtpReceiver() as receiver:
        yield receiver


def alert_specs(http: str, smtp_port: int) -> str:
    return f"""
apiVersion: runner/v1
kind: Alert
name: chatty-advisor
agent: tech-advisor
metric: turns
condition: above
threshold: 2
window: 1m
severity: critical
notify: [hook, slack-test, mail, broken]
---
apiVersion: runner/v1
kind: Channel
name: hook
type: webhook
url: ${{HOOK_URL}}/hooks/runner
headers: {{X-Token: "${{HOOK_TOKEN:-none}}"}}
---
apiVersion: runner/v1
kind: Channel
name: slack-test
type: slack
url: {http}/slack
---
apiVersion: runner/v1
kind: Channel
name: mail
type: email
to: [leads@contoso.example]
smtp: smtp://127.0.0.1:{smtp_port}
from: runner@contoso.example
---
apiVersion: runner/v1
kind: Channel
name: broken
type: webhook
url: http://127.0.0.1:9/nothing-listens-here
retries: 2
timeout: 1s
"""


async def test_alert_fires_once_clears_and_notifies_every_channel(
    open_lc: Any,
    clock: FakeClock,
    http_receiver: HttpReceiver,
    smtp_receiver: SmtpReceiver,
) -> None:
    environ = {"HOOK_URL": http_receiver.url}
    specs = alert_specs(http_receiver.url, smtp_receiver.port)
    async with open_lc(specs, environ=environ) as lc:
        fired: list[Mapping[str, Any]] = []
        cleared: list[Mapping[str, Any]] = []
        lc.on("performance:alert", lambda e: fired.append(e.data))
        lc.on("performance:alert-cleared", lambda e: cleared.append(e.data))
        session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        for n in range(6):
            reply = await session.send(f"question number {n}")
            assert reply.agent == "tech-advisor"  # the failing channel changes nothing
        assert len(fired) == 1, "one breach, one alert - not one per message"
        assert fired[0]["alert"] == "chatty-advisor" and fired[0]["value"] == 3
        await lc.drain()
        clock.advance(61)
        await lc.sweep()
        assert len(cleared) == 1 and cleared[0]["status"] == "resolved"
        await lc.drain()
        # breach again: fires again, once
        for n in range(3):
            await session.send(f"again {n}")
        assert len(fired) == 2
        await lc.drain()

        hooks = [b for b in http_receiver.bodies if b["path"] == "/hooks/runner"]
        assert [h["json"]["status"] for h in hooks] == ["firing", "resolved", "firing"]
        assert hooks[0]["json"]["alert"] == "chatty-advisor"
        slack = [b for b in http_receiver.bodies if b["path"] == "/slack"]
        assert len(slack) == 3 and "chatty-advisor" in slack[0]["json"]["text"]
        assert len(smtp_receiver.messages) == 3
        assert "leads@contoso.example" in smtp_receiver.messages[0]["rcpt"][0]
        assert "chatty-advisor" in smtp_receiver.messages[0]["data"]
        stats = lc.notifier.stats
        assert stats["broken"]["failed"] == 3 and stats["broken"]["attempts"] == 9
        assert stats["hook"]["sent"] == 3 and stats["hook"]["failed"] == 0
        status = lc.get_system_status()
        assert status["components"]["channels"]["status"] == "degraded"
        assert status["status"] == "critical"  # the critical alert is breached
        assert session.state == "active"


async def test_unset_channel_variable_is_a_counted_failure(open_lc: Any) -> None:
    specs = alert_specs("http://127.0.0.1:9", 9)
    async with open_lc(specs, environ={}) as lc:  # HOOK_URL unset
        session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        for _ in range(3):
            await session.send("hello")
        await lc.drain()
        assert lc.notifier.stats["hook"]["failed"] == 1
        assert "HOOK_URL" in (lc.notifier.stats["hook"]["last_error"] or "")


class SlowProvider:
    """The real local provider whose replies take `seconds` on the fake clock."""

    def __init__(self, inner: Provider, clock: FakeClock, seconds: float) -> None:
        self._inner = inner
        self._clock = clock
        self.seconds = seconds
        self.name = inner.name
        self.remote = inner.remote

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def respond(self, **kwargs: Any) -> Reply:
        self._clock.advance(self.seconds)
        return self._inner.respond(**kwargs)


SLOW_ALERT = """
apiVersion: runner/v1
kind: Alert
name: slow-advisor
agent: tech-advisor
metric: average_response_time
condition: above
threshold: 5000
window: 5m
"""


async def test_response_time_alert_and_insights(
    open_lc: Any, clock: FakeClock, tmp_path: Any
) -> None:
    from runner.providers.local import LocalProvider

    inner = LocalProvider.open(tmp_path / "store" / "local-store.db")
    slow = SlowProvider(inner, clock, 7.0)
    async with open_lc(SLOW_ALERT, provider=slow) as lc:
        fired: list[Any] = []
        lc.on("performance:alert", lambda e: fired.append(e.data))
        session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        await session.send("why is this slow?")
        await session.send("still slow")
        assert [f["alert"] for f in fired] == ["slow-advisor"]
        assert fired[0]["value"] == pytest.approx(7000)
        insights = lc.get_performance_insights("tech-advisor")
        assert insights["figures"]["turns"] == 2
        assert insights["figures"]["average_response_time_ms"] == pytest.approx(7000)
        assert insights["alerts"] == ["slow-advisor"]
        assert any("faster model" in r for r in insights["optimizations"])
        slow.seconds = 0.1
        for _ in range(20):
            await session.send("fast now")
        cleared = [a for a in lc.monitor.alert_states() if a["alert"] == "slow-advisor"]
        assert cleared[0]["breached"] is False and cleared[0]["fired"] == 1
