"""Issue 9 findings 6 and 7: a webhook channel never follows a redirect with its credentials
(the redirect is a failed delivery naming the status and the location's host), and credentials
in a URL are scrubbed from every message and log line."""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from runner.errors import UserError, scrub_userinfo
from runner.runtime.monitoring import Notification, Notifier
from runner.spec.models import Channel

SECRET = "Bearer-s3cr3t-77aa"


class _Recorder(http.server.ThreadingHTTPServer):
    def __init__(self, redirect_to: str | None) -> None:
        self.redirect_to = redirect_to
        self.requests: list[tuple[str, dict[str, str]]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Recorder

    def _answer(self) -> None:
        self.server.requests.append((self.command, dict(self.headers.items())))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.server.redirect_to is not None:
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to + "/collect")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[_Recorder, _Recorder]]:
    elsewhere = _Recorder(None)
    # "localhost" names another host than 127.0.0.1 for the redirect's Location
    elsewhere_url = f"http://localhost:{elsewhere.server_address[1]}"
    first = _Recorder(elsewhere_url)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (first, elsewhere)]
    for thread in threads:
        thread.start()
    yield first, elsewhere
    for server in (first, elsewhere):
        server.shutdown()
        server.server_close()


async def test_a_redirect_is_a_failed_delivery_and_carries_no_credentials(
    servers: tuple[_Recorder, _Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    first, elsewhere = servers
    channel = Channel.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Channel",
            "name": "hook",
            "type": "webhook",
            "url": first.url + "/hook",
            "headers": {"Authorization": "${HOOK_TOKEN}"},
            "retries": 1,
        }
    )
    notifier = Notifier(channels={"hook": channel}, environ={"HOOK_TOKEN": SECRET}, backoff=0.0)
    caplog.set_level(logging.DEBUG, logger="runner")
    notifier.notify(["hook"], Notification(summary="alert fired", body={"x": 1}))
    await notifier.drain()

    assert [method for method, _ in first.requests] == ["POST", "POST"]  # one per attempt
    assert first.requests[0][1]["Authorization"] == SECRET
    assert elsewhere.requests == []  # before: a GET carrying the Authorization header
    stats = notifier.stats["hook"]
    assert (stats["sent"], stats["failed"]) == (0, 1)
    error = stats["last_error"] or ""
    assert "302" in error and "localhost" in error and "not followed" in error
    assert SECRET not in caplog.text


def test_url_credentials_are_scrubbed_from_messages() -> None:
    text = "cannot reach http://user:S3cr3tPW@foundry.example/api/projects/p (refused)"
    assert scrub_userinfo(text) == (
        "cannot reach http://***@foundry.example/api/projects/p (refused)"
    )
    assert "S3cr3tPW" not in str(UserError(text))  # every user-facing error
    assert scrub_userinfo("mail ops@example.com, see https://h/p?x=@y") == (
        "mail ops@example.com, see https://h/p?x=@y"
    )


def test_scrubbing_is_linear_and_still_scrubs_long_credentials() -> None:
    # a run of scheme-like starts before one `://`: quadratic with unbounded runs (seconds at
    # this size), linear now; a password of thousands of characters is still scrubbed
    hostile = "a." * 20_000 + "://" + "b" * 40_000 + " @x"
    assert scrub_userinfo(hostile) == hostile  # no credentials in it: unchanged
    token = "p" * 3_000
    assert scrub_userinfo(f"POST https://user:{token}@hooks.example/x failed") == (
        "POST https://***@hooks.example/x failed"
    )
