"""Fixtures every test folder may use.

`chromium`: Debian's /usr/bin/chromium for Playwright (`executable_path`, never a downloaded
browser) and the flags it runs headless with; skips without it (or playwright), unless
RUNNER_REQUIRE_BROWSER=1, when it fails.

`otel_spans`: the OpenTelemetry SDK installed as the global tracer provider for one test, with
an in-memory exporter to read the finished spans back; removed afterwards (what
opentelemetry-test-utils' `reset_trace_globals` does), so every other test runs untraced.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once


@pytest.fixture
def otel_spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
        trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture
def chromium() -> tuple[str, list[str]]:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed"
    else:
        if CHROMIUM.exists():
            return str(CHROMIUM), list(CHROMIUM_FLAGS)
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("RUNNER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"RUNNER_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)
