"""OpenTelemetry traces of what runner does, at no cost when nobody collects them.

Role: the layers that do something worth a span (the runtime's turns, provider calls, tool
calls, handoffs and escalations; the executor's apply ops; `runner serve`'s requests) open it
through `span(...)` here; this module is the only one that imports OpenTelemetry.

runner depends on `opentelemetry-api` only. Traces are collected when the application (or
`opentelemetry-instrument`, which reads the standard `OTEL_*` variables) installs an SDK tracer
provider before the runtime opens; runner never configures exporters itself.

Invariants:
  - No SDK, no cost: until someone imports `opentelemetry.trace`, nobody can have installed a
    tracer provider, so `tracer()` answers `None` from `sys.modules` without importing anything;
    with the API's default (proxy / no-op) provider it answers `None` too, and call sites skip
    building attributes.
  - Attributes follow the GenAI semantic conventions (`gen_ai.*`); `None` values are dropped.
  - Message content is never recorded unless asked: an Environment's `telemetry.record_content`
    or `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` (the conventions' switch).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Literal

__all__ = [
    "CONTENT_SWITCH",
    "SpanKind",
    "annotate",
    "attach_remote_parent",
    "content_recording",
    "end_span",
    "span",
    "start_span",
    "tracer",
]

CONTENT_SWITCH = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

SpanKind = Literal["internal", "client", "server"]

_cached: tuple[Any, Any] = (None, None)  # (tracer provider, runner's tracer from it)


def tracer() -> Any | None:
    """The tracer to record with, or None when no SDK tracer provider is installed."""
    global _cached
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if provider is _cached[0]:
        return _cached[1]
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    _cached = (provider, provider.get_tracer("runner"))
    return _cached[1]


def content_recording(setting: bool | None, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether message text may go into spans: the Environment's setting, else the variable."""
    if setting is not None:
        return setting
    return environ.get(CONTENT_SWITCH, "").strip().lower() in ("1", "true", "yes")


def _clean(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    if None in attributes.values():
        return {k: v for k, v in attributes.items() if v is not None}
    return attributes


_kinds: dict[str, Any] = {}  # runner's kind names -> OpenTelemetry's, filled on first use


def _kind(kind: SpanKind) -> Any:
    if not _kinds:
        from opentelemetry.trace import SpanKind as OtelKind

        _kinds.update(internal=OtelKind.INTERNAL, client=OtelKind.CLIENT, server=OtelKind.SERVER)
    return _kinds[kind]


class span:
    """A span around the block (the current span inside it); `as` gives None when not tracing.

    An exception leaving the block is recorded on the span, which ends with an error status.
    (What the API's `start_as_current_span` does, as one plain context manager instead of its
    two nested generator ones: every turn opens one of these, so their cost is on every turn.)
    """

    __slots__ = ("_attributes", "_kind", "_name", "_span", "_token")

    def __init__(
        self, name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = "internal"
    ) -> None:
        self._name = name
        self._attributes = attributes
        self._kind = kind
        self._span: Any = None
        self._token: Any = None

    def __enter__(self) -> Any | None:
        active = tracer()
        if active is None:
            return None
        api = _api()
        current = active.start_span(
            self._name, kind=_kind(self._kind), attributes=_clean(self._attributes or {})
        )
        self._token = api.context.attach(api.set_span_in_context(current))
        self._span = current
        return current

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        current = self._span
        if current is None:
            return
        api = _api()
        if exc is not None:
            current.record_exception(exc)
            current.set_status(api.Status(api.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        api.context.detach(self._token)
        current.end()


class _Api:
    """The OpenTelemetry API names a span needs, imported once (only when tracing)."""

    def __init__(self) -> None:
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode, set_span_in_context

        self.context = context
        self.set_span_in_context = set_span_in_context
        self.Status = Status
        self.StatusCode = StatusCode


@functools.cache
def _api() -> _Api:
    return _Api()


def start_span(
    name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = "internal"
) -> Any | None:
    """A span the caller ends (`span.end()`), child of the current one; None when not tracing.

    For work that starts in one callback and ends in another (a tool call announced by one
    event and completed by the next).
    """
    active = tracer()
    if active is None:
        return None
    return active.start_span(name, kind=_kind(kind), attributes=_clean(attributes or {}))


def annotate(
    current: Any | None, attributes: Mapping[str, Any], *, error: str | None = None
) -> None:
    """Add attributes to a span from `span`/`start_span` (nothing when it is None); `error`
    marks it failed with that description."""
    if current is None:
        return
    current.set_attributes(_clean(attributes))
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        current.set_status(Status(StatusCode.ERROR, error))


def end_span(
    started: Any | None, attributes: Mapping[str, Any] | None = None, *, error: str | None = None
) -> None:
    """End a span from `start_span` (nothing when it is None), with its last attributes; `error`
    marks it failed."""
    if started is None:
        return
    if attributes:
        started.set_attributes(_clean(attributes))
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        started.set_status(Status(StatusCode.ERROR, error))
    started.end()


@contextlib.contextmanager
def attach_remote_parent(headers: Mapping[str, str]) -> Iterator[None]:
    """Make the caller's trace (W3C `traceparent`/`tracestate` headers) the parent of the spans
    opened inside the block; nothing when not tracing or when the headers carry no trace."""
    if tracer() is None or "traceparent" not in headers:
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(dict(headers)))
    try:
        yield
    finally:
        context.detach(token)
