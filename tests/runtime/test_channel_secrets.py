"""A channel's resolved secrets never reach a log line or the channel's stats, even when the
exception a delivery raised quotes them (urllib's "unknown url type" error quotes the whole URL)."""

from __future__ import annotations

import logging

import pytest

from runner.runtime.monitoring import Notification, Notifier
from runner.spec.models import Channel

SECRET = "T0KEN-s3cr3t-9f2c"


async def test_a_failed_delivery_logs_no_resolved_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = Channel.model_validate(
        {
            "apiVersion": "runner/v1",
            "kind": "Channel",
            "name": "ops-webhook",
            "type": "webhook",
            "url": "${OPS_HOOK}",
            "retries": 2,
        }
    )
    # a URL missing its ':' -> ValueError("unknown url type: 'http//hooks.example/T0KEN-...'")
    environ = {"OPS_HOOK": f"http//hooks.example/{SECRET}"}
    notifier = Notifier(channels={"ops-webhook": channel}, environ=environ, backoff=0.0)
    caplog.set_level(logging.DEBUG, logger="runner")
    notifier.notify(["ops-webhook"], Notification(summary="alert fired", body={"x": 1}))
    await notifier.drain()

    stats = notifier.stats["ops-webhook"]
    assert (stats["attempts"], stats["failed"], stats["sent"]) == (3, 1, 0)
    assert "unknown url type" in (stats["last_error"] or "")
    attempt_lines = [r for r in caplog.records if "attempt" in r.getMessage()]
    assert len(attempt_lines) == 3
    assert SECRET not in caplog.text
    assert SECRET not in (stats["last_error"] or "")
    assert "${OPS_HOOK}" in caplog.text  # the reference, as written, stands in for the value
