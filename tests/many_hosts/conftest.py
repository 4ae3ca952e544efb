"""Fixtures for many-hosts tests: a private real redis-server per test module, and runtime
processes (tests/many_hosts/worker.py) started as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_server import RedisServer

WORKER = Path(__file__).with_name("worker.py")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """spawn(name, **job) -> a running worker process (worker.py, or `script=`); `.result()` is
    its JSON answer."""
    procs: list[subprocess.Popen[str]] = []

    def start(name: str, *, script: Path = WORKER, **job: Any) -> Any:
        job.setdefault("home", str(tmp_path / name))
        proc = subprocess.Popen(
            [sys.executable, str(script), json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return Worker(proc)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


class Worker:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def line(self, timeout: float = 60.0) -> dict[str, Any]:
        """The next JSON line the worker printed."""
        assert self.proc.stdout is not None
        text = self.proc.stdout.readline()
        if not text:
            self.proc.wait(timeout)
            assert self.proc.stderr is not None
            raise AssertionError(
                f"worker ended ({self.proc.returncode}): {self.proc.stderr.read()}"
            )
        result: dict[str, Any] = json.loads(text)
        return result

    def result(self, timeout: float = 120.0) -> dict[str, Any]:
        out, err = self.proc.communicate("\n", timeout=timeout)
        assert self.proc.returncode == 0, err
        lines = [line for line in out.splitlines() if line.strip()]
        final: dict[str, Any] = json.loads(lines[-1])
        return final
