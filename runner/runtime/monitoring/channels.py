"""Notification delivery: webhook and Slack by HTTP POST (JSON), email by SMTP.

Role: the alert relay (`runner.runtime.monitoring.relay`) and the escalation desk
(`runner.runtime.operators`) call `Notifier.notify(channel_names, message)` when an alert
fires or clears and when an escalation level opens.
Delivery runs in the background (an asyncio task per channel, the blocking I/O in a worker
thread), with `retries` further attempts and exponential backoff, so a session never waits for,
nor fails because of, a channel.

Invariants:
  - `${VAR}` values of a Channel are resolved at delivery time (`runner.spec.secrets`), never
    stored resolved; an unset variable is a failed delivery like any other.
  - A failure is logged (secret values and URL credentials redacted) and counted per channel in
    `stats`; it never raises out of `notify`. `drain()` waits for deliveries in flight.
  - A redirect is never followed: it would carry the channel's headers (an `Authorization`
    with a resolved secret) to another place. It is a failed delivery naming the status and the
    host it pointed to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, TypedDict
from urllib.parse import unquote, urlsplit

from runner.errors import scrub_userinfo
from runner.spec.models import Channel, parse_duration

__all__ = [
    "ChannelStats",
    "Notification",
    "Notifier",
    "RecordingNotifier",
    "RedirectRefusedError",
    "deliver",
]

log = logging.getLogger("runner.runtime.channels")


class ChannelStats(TypedDict):
    sent: int
    failed: int
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class Notification:
    """What an alert says: a one-line summary plus the structured body posted to webhooks."""

    summary: str
    body: Mapping[str, Any]


class RedirectRefusedError(OSError):
    """The channel's endpoint answered with a redirect, which is not followed."""


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        host = urlsplit(newurl).hostname or "?"
        raise RedirectRefusedError(
            f"HTTP {code} redirect to {host}: not followed (it would carry the channel's "
            "headers there); point the channel at the final URL"
        )


_OPENER = urllib.request.build_opener(_RefuseRedirects)


def _post_json(
    url: str, payload: Mapping[str, Any], headers: Mapping[str, str], timeout: float
) -> None:
    data = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    for key, value in headers.items():
        request.add_header(key, value)
    with _OPENER.open(request, timeout=timeout) as response:
        status = response.status
        if status >= 300:
            host = urlsplit(url).hostname or "?"
            raise OSError(f"HTTP {status} from {host}")


def _send_email(channel: Channel, note: Notification, timeout: float) -> None:
    smtp_url = channel.smtp or "smtp://localhost:25"
    parts = urlsplit(smtp_url if "://" in smtp_url else f"smtp://{smtp_url}")
    host = parts.hostname or "localhost"
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    msg = EmailMessage()
    msg["From"] = channel.sender or "runner@localhost"
    msg["To"] = ", ".join(channel.to or [])
    msg["Subject"] = note.summary
    msg.set_content(json.dumps(note.body, indent=2, sort_keys=True))
    client: smtplib.SMTP = (
        smtplib.SMTP_SSL(host, port, timeout=timeout)
        if secure
        else smtplib.SMTP(host, port, timeout=timeout)
    )
    with client:
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(msg)


def deliver(channel: Channel, note: Notification) -> None:
    """One blocking delivery attempt through `channel` (already resolved)."""
    timeout = parse_duration(channel.timeout)
    if channel.type == "email":
        _send_email(channel, note, timeout)
        return
    assert channel.url is not None
    if channel.type == "slack":
        payload: Mapping[str, Any] = {"text": note.summary, "runner": dict(note.body)}
    else:
        payload = note.body
    _post_json(channel.url, payload, channel.headers, timeout)


class Notifier:
    """Delivers notifications to the declared channels in the background, with retries."""

    def __init__(
        self,
        *,
        channels: Mapping[str, Channel],
        environ: Mapping[str, str],
        backoff: float = 0.5,
        on_failure: Callable[[str, str], None] | None = None,
    ) -> None:
        self._channels = dict(channels)
        self._environ = environ
        self.backoff = backoff
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats: dict[str, ChannelStats] = {}

    def configure(self, channels: Mapping[str, Channel]) -> None:
        self._channels = dict(channels)

    def _stats(self, name: str) -> ChannelStats:
        stats = self.stats.get(name)
        if stats is None:
            stats = self.stats[name] = {"sent": 0, "failed": 0, "attempts": 0, "last_error": None}
        return stats

    def notify(self, channel_names: list[str], note: Notification) -> None:
        """Start delivering `note` to each channel in the background; returns at once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("no event loop: notification %r not delivered", note.summary)
            return
        for name in channel_names:
            task = loop.create_task(self._deliver(name, note))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, name: str, note: Notification) -> None:
        stats = self._stats(name)
        channel = self._channels.get(name)
        if channel is None:
            self._fail(name, stats, f"channel.{name} is not declared")
            return
        from runner.spec.secrets import redact, referenced_values, resolve_model

        # Every message below is scrubbed of the values this channel's references resolve to:
        # an exception may quote them (urllib's "unknown url type" quotes the whole URL).
        secrets = referenced_values(channel.model_dump(mode="json"), self._environ)
        try:
            resolved = resolve_model(channel, self._environ, address=f"channel.{name}")
        except Exception as exc:
            self._fail(name, stats, scrub_userinfo(redact(str(exc), secrets)))
            return
        error = ""
        for attempt in range(channel.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * (2 ** (attempt - 1)))
            stats["attempts"] += 1
            try:
                await asyncio.to_thread(deliver, resolved, note)
            except Exception as exc:
                error = scrub_userinfo(redact(f"{type(exc).__name__}: {exc}", secrets))
                log.info("channel.%s attempt %d failed: %s", name, attempt + 1, error)
                continue
            stats["sent"] += 1
            return
        self._fail(name, stats, error)

    def _fail(self, name: str, stats: ChannelStats, error: str) -> None:
        """Count and log a failed delivery; `error` is already scrubbed of secret values."""
        stats["failed"] += 1
        stats["last_error"] = error
        log.warning("channel.%s: delivery failed: %s", name, error)
        if self._on_failure is not None:
            self._on_failure(name, error)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, *, timeout: float = 5.0) -> None:
        if not self._tasks:
            return
        try:
            await asyncio.wait_for(self.drain(), timeout)
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()


class RecordingNotifier(Notifier):
    """Records what would be delivered and delivers nothing: `runner test` scenarios and
    benchmarks measure the runtime, never a real channel."""

    def __init__(self) -> None:
        super().__init__(channels={}, environ={})
        self.sent: list[tuple[str, str]] = []

    def notify(self, channel_names: list[str], note: Notification) -> None:
        for name in channel_names:
            self.sent.append((name, note.summary))
