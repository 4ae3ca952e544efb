"""Events across instances through a real Redis: an `lc.on` subscriber of one runtime receives
each event another runtime produced, once; `runner serve` instances share Socket.io rooms
(python-socketio's Redis manager), and `runner serve --workers N` runs N processes on one
port, refusing N > 1 without `redis:`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
from runtime_support import AUTH, contract_project
from serve_support import make_specs
from worker import ENV

from runner import Lifecycle
from runner.runtime.events import Event

API = "/api/agent-lifecycle"
NS = "/agent-lifecycle"


async def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_subscriber_receives_another_instances_events_once(
    tmp_path: Path, redis_server: Any
) -> None:
    def project(name: str) -> Any:
        return contract_project(
            ENV.format(data_dir=tmp_path / name) + f"redis: {redis_server.url}\n"
        )

    seen_a: list[Event] = []
    seen_b: list[Event] = []
    async with (
        Lifecycle.open(project("a"), env="local", registry_path=tmp_path / "a.db", environ={}) as a,
        Lifecycle.open(project("b"), env="local", registry_path=tmp_path / "b.db", environ={}) as b,
    ):
        a.on("lifecycle:session_created", seen_a.append)
        b.on("lifecycle:*", seen_b.append)
        internal: list[Event] = []  # a part of B's runtime acts on B's own events only
        b.parts.events.on("lifecycle:*", internal.append)
        session = await a.create_agent_session(agent="tech-advisor", auth=AUTH)
        await wait_until(lambda: len(seen_b) >= 1)
        await session.end("done")
        await wait_until(lambda: len(seen_b) >= 2)
        await asyncio.sleep(0.3)  # anything delivered twice would have arrived by now
        assert [e.type for e in seen_b] == ["lifecycle:session_created", "lifecycle:session_ended"]
        assert all(e.data["session_id"] == session.id for e in seen_b)
        assert {e.origin for e in seen_b} == {a.parts.relay.instance}  # type: ignore[union-attr]
        assert [e.origin for e in seen_a] == [None]  # A's own event, delivered once, locally
        assert internal == []
        other = await b.create_agent_session(agent="tech-advisor", auth=AUTH)
        await wait_until(lambda: len(seen_a) >= 2)
        await asyncio.sleep(0.3)
        assert [e.data["session_id"] for e in seen_a] == [session.id, other.id]
        assert len([e for e in seen_b if e.type == "lifecycle:session_created"]) == 2


def _specs(tmp_path: Path, redis_line: str) -> Path:
    specs = make_specs(tmp_path)
    env = specs / "environments.yaml"
    env.write_text(env.read_text() + redis_line + "\n")
    return specs


def _serve(specs: Path, *args: str, home: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", str(specs), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=specs.parent,
        env={**os.environ, "RUNNER_HOME": str(specs.parent / home), **env},
    )


def _banner(process: subprocess.Popen[str]) -> tuple[str, str]:
    assert process.stdout is not None
    first = process.stdout.readline()
    process.stdout.readline()
    key_line = process.stdout.readline()
    url = first.split()[2]
    return url, key_line.rsplit(" ", 1)[1].strip()


def _healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + API + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became healthy")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_workers_without_redis_is_a_usage_error(tmp_path: Path) -> None:
    specs = make_specs(tmp_path)
    process = _serve(specs, "--workers", "2", home=".runner", env={})
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "--workers 2" in err and "redis:" in err and "Traceback" not in err


async def _socket(url: str, key: str, events: list[tuple[str, Any]]) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)

    async def record(event: str, data: Any = None) -> None:
        events.append((event, data))

    client.on("*", record, namespace=NS)
    await client.connect(
        url, namespaces=[NS], auth={"token": key}, transports=["websocket"], wait_timeout=10
    )
    return client


async def test_a_socket_on_one_instance_receives_events_made_on_another(
    tmp_path: Path, redis_server: Any, processes: list[subprocess.Popen[str]]
) -> None:
    specs = _specs(tmp_path, "redis: ${RUNNER_TEST_REDIS}")
    env = {"RUNNER_TEST_REDIS": redis_server.url}
    first = _serve(specs, home="a", env=env)
    processes.append(first)
    url_a, key_a = _banner(first)
    second = _serve(specs, home="b", env=env)
    processes.append(second)
    url_b, key_b = _banner(second)
    _healthy(url_a), _healthy(url_b)
    events: list[tuple[str, Any]] = []
    client = await _socket(url_a, key_a, events)
    try:
        async with httpx.AsyncClient() as http:
            made = await http.post(
                url_b + API + "/sessions",
                json={"team": "service-desk"},
                headers={"Authorization": f"Bearer {key_b}"},
            )
        assert made.status_code == 201, made.text
        sid = made.json()["id"]
        await wait_until(lambda: any(e == "lifecycle:session_created" for e, _ in events))
        await asyncio.sleep(0.5)
        created = [d for e, d in events if e == "lifecycle:session_created"]
        assert [d["session_id"] for d in created] == [sid]  # once
    finally:
        await client.disconnect()
    for process in processes:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert redis_server.url not in err


async def test_workers_serve_one_port_and_every_socket_gets_each_event_once(
    tmp_path: Path, redis_server: Any, processes: list[subprocess.Popen[str]]
) -> None:
    specs = _specs(tmp_path, f"redis: {redis_server.url}")
    parent = _serve(specs, "--workers", "2", home=".runner", env={})
    processes.append(parent)
    url, key = _banner(parent)
    _healthy(url)
    auth = {"Authorization": f"Bearer {key}"}
    events: list[tuple[str, Any]] = []
    clients = [await _socket(url, key, events) for _ in range(2)]
    try:
        made = []
        for _ in range(8):  # a new connection each time: the kernel picks the worker
            reply = httpx.post(url + API + "/sessions", json={"team": "service-desk"}, headers=auth)
            assert reply.status_code == 201, reply.text
            made.append(reply.json()["id"])
        await wait_until(
            lambda: len([e for e, _ in events if e == "lifecycle:session_created"]) >= 16
        )
        await asyncio.sleep(0.5)
        created = sorted(d["session_id"] for e, d in events if e == "lifecycle:session_created")
        assert created == sorted(made * 2)  # two sockets, each session once on each
    finally:
        for client in clients:
            await client.disconnect()
    parent.send_signal(signal.SIGTERM)
    _out, err = parent.communicate(timeout=90)
    assert parent.returncode == 0, err
    assert "every worker drained" in err and "Traceback" not in err
