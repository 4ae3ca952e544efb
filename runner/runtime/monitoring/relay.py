"""Alerts and channel failures as the runtime reports them: events, and notifications.

Role: the monitor's `on_alert` callback (`AlertRelay.on_alert`): a firing or resolved alert
becomes a `performance:alert` / `performance:alert-cleared` event and, when the alert has
`notify` channels, a notification through the runtime's notifier. `channel_failures` is the
notifier's `on_failure` callback: a failed delivery becomes a `channel:delivery-failed` event.

Invariant: nothing here waits for a channel (the notifier delivers in the background) or
raises out of a callback's caller.
"""

from __future__ import annotations

from collections.abc import Callable

from runner.runtime.events import EventBus
from runner.runtime.monitoring.channels import Notification, Notifier
from runner.runtime.monitoring.monitor import AlertStatus
from runner.spec.models import Alert

__all__ = ["AlertRelay", "channel_failures"]


def channel_failures(events: EventBus) -> Callable[[str, str], None]:
    """The notifier's `on_failure`: `channel:delivery-failed` with the (scrubbed) error."""

    def failed(channel: str, error: str) -> None:
        events.emit("channel:delivery-failed", {"channel": channel, "error": error})

    return failed


class AlertRelay:
    """Turns the monitor's alert changes into events and notifications."""

    def __init__(self, *, env: str, events: EventBus, notifier: Notifier) -> None:
        self._env = env
        self._events = events
        self._notifier = notifier

    def on_alert(self, alert: Alert, value: float | None, status: AlertStatus) -> None:
        env = self._env
        kind = "agent" if alert.agent else "team" if alert.team else "pool"
        subject = f"{kind}.{alert.agent or alert.team or alert.pool}"
        data = {
            "alert": alert.name,
            "subject": subject,
            "metric": alert.metric,
            "condition": alert.condition,
            "threshold": alert.threshold,
            "value": value,
            "severity": alert.severity,
            "window": alert.window,
            "status": status,
            "env": env,
        }
        firing = status == "firing"
        self._events.emit("performance:alert" if firing else "performance:alert-cleared", data)
        if alert.notify:
            shown = "n/a" if value is None else f"{value:g}"
            verb = "FIRING" if firing else "resolved"
            summary = (
                f"[{alert.severity}] {verb}: alert.{alert.name} on {subject}: {alert.metric} "
                f"{shown} {alert.condition} {alert.threshold:g} (env {env})"
            )
            self._notifier.notify(list(alert.notify), Notification(summary=summary, body=data))
