"""Shutting down and the command line: a drain lets the turn in flight finish while new
sessions get 503, state is flushed; `runner serve` prints a generated key on loopback, refuses
a non-loopback host without auth (exit 2), exits 0 on SIGTERM, and `--watch` reloads specs
into the running runtime without dropping a session."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import API, LiveServer, make_specs

from runner.providers.local import LocalProvider


class SlowProvider(LocalProvider):
    """The real local provider, answering after a delay (time is what this test controls)."""

    remote = True  # so the runtime calls it in a thread

    def respond(self, **kwargs: Any) -> Any:
        time.sleep(0.8)
        return super().respond(**kwargs)


def test_a_drain_finishes_the_turn_in_flight_and_refuses_new_work(tmp_path: Path) -> None:
    store = tmp_path / "slow-store.db"
    live = LiveServer(tmp_path, provider=SlowProvider.open(store)).start()
    with live.client("APP_KEY") as client:
        sid = client.post("/sessions", json={"team": "service-desk"}).json()["id"]
        answered: dict[str, Any] = {}

        def slow_turn() -> None:
            with live.client("APP_KEY") as other:
                answered["reply"] = other.post(
                    f"/sessions/{sid}/messages", json={"text": "slow question"}
                )

        turn = threading.Thread(target=slow_turn)
        turn.start()
        time.sleep(0.3)  # the turn is in flight
        live.loop.call_soon_threadsafe(live.server.request_stop)
        time.sleep(0.1)
        refused = client.post("/sessions", json={"team": "service-desk"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
        assert refused.headers["retry-after"]
        health = httpx.get(live.url + API + "/health")
        assert health.status_code == 503 and health.json()["status"] == "draining"
        turn.join(10)
    assert answered["reply"].status_code == 200
    assert answered["reply"].json()["turn"] == 1
    live.thread.join(30)
    assert not live.thread.is_alive()
    with sqlite3.connect(tmp_path / "state.db") as db:
        turns = db.execute("SELECT turns FROM rt_sessions WHERE id = ?", (sid,)).fetchone()[0]
    assert turns == 1  # flushed on close


def _serve(specs: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", str(specs), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=specs.parent,
        env={**os.environ, "RUNNER_HOME": str(specs.parent / ".runner"), **(env or {})},
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str, Path]]:
    specs = make_specs(tmp_path)
    process = _serve(specs, "--watch")
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        process.stdout.readline()
        key_line = process.stdout.readline()
        process.stdout.readline()
        url = first.split()[2]
        key = key_line.rsplit(" ", 1)[1].strip()
        yield process, url, key, specs
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_prints_a_key_and_exits_0_on_sigterm(
    served: tuple[subprocess.Popen[str], str, str, Path],
) -> None:
    process, url, key, specs = served
    assert url.startswith("http://127.0.0.1:")
    assert len(key) >= 32
    auth = {"Authorization": f"Bearer {key}"}
    made = httpx.post(url + API + "/sessions", json={"team": "service-desk"}, headers=auth)
    assert made.status_code == 201
    assert (
        httpx.get(url + API + "/sessions", headers={"Authorization": "Bearer x"}).status_code == 401
    )

    # --watch: a new handoff keyword reaches the running runtime; the session lives on
    team = specs / "teams" / "service-desk.yaml"
    team.write_text(team.read_text().replace("keywords: [password,", "keywords: [badge, password,"))
    sid = made.json()["id"]
    deadline = time.monotonic() + 20
    while True:
        probe = httpx.post(url + API + "/sessions", json={"team": "service-desk"}, headers=auth)
        assert probe.status_code == 201, probe.text
        reply = httpx.post(
            url + API + f"/sessions/{probe.json()['id']}/messages",
            json={"text": "my badge stopped working"},
            headers=auth,
        ).json()
        if reply["agent"] == "access-agent" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert reply["agent"] == "access-agent"
    assert httpx.get(url + API + f"/sessions/{sid}", headers=auth).json()["state"] == "active"

    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err and key not in err


def test_a_public_host_without_auth_is_refused(tmp_path: Path) -> None:
    specs = make_specs(tmp_path)
    process = _serve(specs, "--host", "0.0.0.0")
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "loopback" in err and "auth" in err and "Traceback" not in err
