"""Fixtures of the serve tests: one live server per test module (see serve_support)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_support import LiveServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("serve")).start()
    yield server
    server.stop()
