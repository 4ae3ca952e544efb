"""Fixtures for provider tests: a running emulator (real HTTP on 127.0.0.1, ephemeral port),
the foundry provider pointed at it, and a raw azure-ai-projects client for protocol checks.

Other test folders can start one the same way: `with serve_emulator(data_dir=tmp_path) as em:`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.providers.emulator import EmulatorHandle, serve_emulator
from runner.providers.foundry import FoundryProvider


@pytest.fixture
def make_emulator(tmp_path: Path) -> Iterator[Callable[..., EmulatorHandle]]:
    """Start emulators with options (`make_emulator(fail_rate=1.0, seed=3)`); all stop after."""
    handles: list[EmulatorHandle] = []

    def make(**options: Any) -> EmulatorHandle:
        options.setdefault("data_dir", tmp_path / f"emulator-{len(handles)}")
        handle = serve_emulator(**options)
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        handle.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return make_emulator()


@pytest.fixture
def foundry(emulator: EmulatorHandle) -> Iterator[FoundryProvider]:
    provider = FoundryProvider(emulator.endpoint, timeout=10)
    yield provider
    provider.close()


class _StaticCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("test-token", int(time.time()) + 3600)


def raw_client(endpoint: str) -> Any:
    """The real AIProjectClient as the protocol sheet (section 6, method 1) points it at http."""
    from azure.ai.projects import AIProjectClient
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class AllowHttp(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            request.context["enforce_https"] = False

    return AIProjectClient(
        endpoint=endpoint,
        credential=_StaticCredential(),
        per_call_policies=[AllowHttp()],
        retry_total=0,
    )


@pytest.fixture
def sdk(emulator: EmulatorHandle) -> Iterator[Any]:
    client = raw_client(emulator.endpoint)
    yield client
    client.close()


@pytest.fixture
def make_sdk() -> Iterator[Callable[[str], Any]]:
    """Raw AIProjectClients on given endpoints; all closed after the test."""
    clients: list[Any] = []

    def make(endpoint: str) -> Any:
        clients.append(raw_client(endpoint))
        return clients[-1]

    yield make
    for client in clients:
        client.close()
