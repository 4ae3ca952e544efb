"""Issue 9 finding 10: the emulator's HTTP layer is bounded, tested with raw sockets.

Found: a 100 MB body accepted, `Content-Length: -1` hanging a thread, `Content-Length: abc`
printing a traceback, 300 half-open connections holding 300 threads, and any address bound.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.cli.main import main
from runner.providers.emulator import EmulatorHandle, serve_emulator
from runner.providers.emulator_http import is_loopback

LIST = (
    b"GET /api/projects/p1/agents?api-version=v1 HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n"
)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with serve_emulator(data_dir=tmp_path, max_body=1024 * 1024) as handle:
        yield handle


def exchange(handle: EmulatorHandle, data: bytes, *, timeout: float = 20) -> bytes:
    """Send `data`, then read until the server closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", handle.port)) as sock:
        sock.settimeout(timeout)
        sock.sendall(data)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
        return out


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def post(length: str, body: bytes = b"") -> bytes:
    return (
        b"POST /api/projects/p1/agents?api-version=v1 HTTP/1.1\r\nHost: e\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + length.encode() + b"\r\n\r\n" + body
    )


def test_a_body_over_the_limit_is_413_without_reading_it(
    emulator: EmulatorHandle, capfd: pytest.CaptureFixture[str]
) -> None:
    answer = exchange(emulator, post(str(100 * 1024 * 1024), b"{" * 65536))
    assert status(answer) == 413
    assert b"request_too_large" in answer and b"Connection: close" in answer
    assert status(exchange(emulator, LIST)) == 200
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", " ", "+5", "0x10", "١٢"])
def test_a_bad_content_length_is_400_with_no_traceback(
    emulator: EmulatorHandle, length: str, capfd: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    answer = exchange(emulator, post(length))
    assert status(answer) == 400, answer
    assert b"invalid Content-Length" in answer
    assert time.monotonic() - started < 15  # answered, not left waiting for a body
    assert "Traceback" not in capfd.readouterr().err


def test_conflicting_content_lengths_and_chunked_bodies_are_refused(
    emulator: EmulatorHandle,
) -> None:
    two = post("2", b"{}").replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n", 1)
    assert status(exchange(emulator, two)) == 400
    chunked = (
        b"POST /api/projects/p1/agents?api-version=v1 HTTP/1.1\r\nHost: e\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    )
    assert status(exchange(emulator, chunked)) == 411


def test_a_body_that_never_arrives_frees_its_connection(tmp_path: Path) -> None:
    with serve_emulator(data_dir=tmp_path, request_timeout=0.5, read_timeout=0.5) as handle:
        started = time.monotonic()
        answer = exchange(handle, post("10", b"{"))  # 9 bytes short, then silence
        assert status(answer) == 408
        assert time.monotonic() - started < 15
        assert status(exchange(handle, LIST)) == 200


def test_a_request_dripping_in_is_cut_at_its_deadline(tmp_path: Path) -> None:
    with serve_emulator(data_dir=tmp_path, request_timeout=1.0, read_timeout=5.0) as handle:
        sock = socket.create_connection(("127.0.0.1", handle.port))
        sock.settimeout(20)
        started = time.monotonic()
        closed = False
        for byte in b"GET /api/projects/p1/agents?api-version=v1 HTTP/1.1\r\nHost: e\r\n":
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.2)  # each byte well within read_timeout: only the deadline cuts it
            if time.monotonic() - started > 12:
                break
        if not closed:
            try:
                closed = sock.recv(1024) == b""
            except OSError:
                closed = True
        sock.close()
        assert closed, "a dripping request kept its connection past its deadline"


def test_an_idle_connection_is_closed(tmp_path: Path) -> None:
    with (
        serve_emulator(data_dir=tmp_path, idle_timeout=0.5) as handle,
        socket.create_connection(("127.0.0.1", handle.port)) as sock,
    ):
        sock.settimeout(20)
        assert sock.recv(1024) == b""  # closed by the server, not by our timeout


def test_300_half_open_connections_do_not_hold_300_threads(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with serve_emulator(data_dir=tmp_path, max_connections=32, request_timeout=60) as handle:
        before = threading.active_count()
        socks = []
        try:
            for _ in range(300):
                sock = socket.create_connection(("127.0.0.1", handle.port))
                sock.sendall(b"GET /api/projects/p1/agents HTTP/1.1\r\n")  # never finished
                socks.append(sock)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # every connection accepted: served or refused
                time.sleep(0.2)
                if threading.active_count() - before >= 32:
                    break
            time.sleep(0.5)
            assert threading.active_count() - before <= 32
            # one more is answered at once (503), not queued behind the half-open ones
            answer = exchange(handle, LIST)
            assert status(answer) == 503 and b"Retry-After: 1" in answer
        finally:
            for sock in socks:
                sock.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and threading.active_count() > before:
            time.sleep(0.1)
        assert threading.active_count() <= before
        assert status(exchange(handle, LIST)) == 200
    assert "Traceback" not in capfd.readouterr().err


def test_loopback_names() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert is_loopback("localhost") and is_loopback("127.3.4.5")
    assert not is_loopback("0.0.0.0") and not is_loopback("::")
    assert not is_loopback("10.1.2.3")


def test_a_remote_bind_needs_allow_remote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="--allow-remote"):
        serve_emulator(data_dir=tmp_path, host="0.0.0.0")
    code = main(["emulator", "--host", "0.0.0.0", "--port", "0", "--data", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "not a loopback address" in err and "--allow-remote" in err
    assert "Traceback" not in err
    assert not (tmp_path / "local-store.db").exists()  # nothing was opened


def test_allow_remote_binds_the_wildcard_address(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "emulator",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--allow-remote",
            "--data",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[1].startswith("endpoint: http://")
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
