"""FoundryProvider on the real azure-ai-projects SDK, against the emulator over HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.providers import build_provider
from runner.providers.base import NotFoundError, Provider, ProviderError, TransientError
from runner.providers.emulator import EmulatorHandle
from runner.providers.foundry import FoundryProvider
from runner.providers.foundry_wire import retry_after_seconds
from runner.providers.local import LocalProvider
from runner.spec.models import Environment

DEFINITION = {"kind": "prompt", "model": "gpt-4o", "instructions": "be brief"}


def test_agent_crud_maps_directly(emulator: EmulatorHandle, foundry: FoundryProvider) -> None:
    assert isinstance(foundry, Provider)
    assert (foundry.name, foundry.remote) == ("foundry", True)
    first = foundry.create_version(
        "tech-agent-1", definition=DEFINITION, metadata={"managed-by": "runner"}, description="d"
    )
    second = foundry.create_version("tech-agent-1", definition=DEFINITION, metadata={})
    assert (first.version, second.version) == ("1", "2")
    assert first.managed and first.definition == DEFINITION and first.description == "d"
    assert first.created_at > 0
    assert foundry.get_agent("tech-agent-1") == second
    assert foundry.get_agent("nope") is None
    assert [v.version for v in foundry.list_versions("tech-agent-1")] == ["1", "2"]
    assert foundry.list_versions("nope") == []
    assert foundry.list_agents() == [second]
    # the provider sees exactly what the local store holds
    assert foundry.list_agents() == LocalProvider(emulator.store).list_agents()

    foundry.delete_version("tech-agent-1", "1")
    assert [v.version for v in foundry.list_versions("tech-agent-1")] == ["2"]
    foundry.delete_agent("tech-agent-1")
    assert foundry.get_agent("tech-agent-1") is None


def test_404_is_not_found_error(foundry: FoundryProvider) -> None:
    with pytest.raises(NotFoundError) as info:
        foundry.delete_agent("nope")
    assert (info.value.status, info.value.code) == (404, "not_found")
    with pytest.raises(NotFoundError):
        foundry.delete_version("nope", "1")


def test_400_is_a_provider_error_with_the_service_code(foundry: FoundryProvider) -> None:
    with pytest.raises(ProviderError) as info:
        foundry.create_version("bad_name", definition=DEFINITION, metadata={})
    assert not isinstance(info.value, TransientError)
    assert (info.value.status, info.value.code) == (400, "invalid_parameters")
    assert "alphanumeric" in str(info.value)
    with pytest.raises(ProviderError) as too_many:
        foundry.create_version(
            "a", definition=DEFINITION, metadata={str(i): "v" for i in range(17)}
        )
    assert too_many.value.code == "invalid_parameters"


def test_429_is_transient_with_retry_after_and_the_sdk_does_not_retry(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    emulator = make_emulator(fail_rate=1.0, fail_statuses=(429,), retry_after_ms=250)
    provider = FoundryProvider(emulator.endpoint, timeout=10)
    try:
        with pytest.raises(TransientError) as info:
            provider.create_version("a", definition=DEFINITION, metadata={})
        assert (info.value.status, info.value.code) == (429, "rate_limit_exceeded")
        assert info.value.retry_after == pytest.approx(0.25)
        with pytest.raises(TransientError):
            provider.get_agent("a")  # GETs are not retried by the SDK either
        with pytest.raises(TransientError) as runtime:
            provider.create_conversation()
        assert runtime.value.retry_after == pytest.approx(0.25)
        assert emulator.stats()["requests"] == 3 == provider.request_count()
    finally:
        provider.close()
    assert emulator.store.latest_version("a") is None


def test_503_is_transient_without_retry_after(make_emulator: Callable[..., EmulatorHandle]) -> None:
    emulator = make_emulator(fail_rate=1.0, fail_statuses=(503,))
    provider = FoundryProvider(emulator.endpoint, timeout=10)
    try:
        with pytest.raises(TransientError) as info:
            provider.list_agents()
        assert (info.value.status, info.value.retry_after) == (503, None)
    finally:
        provider.close()


def test_injected_failures_change_nothing_until_they_stop(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    emulator = make_emulator(fail_rate=1.0)
    provider = FoundryProvider(emulator.endpoint, timeout=10)
    try:
        for _ in range(5):
            with pytest.raises(TransientError):
                provider.create_version("a", definition=DEFINITION, metadata={})
        assert emulator.store.list_latest().items == []
        emulator.configure(fail_rate=0.0)
        assert provider.create_version("a", definition=DEFINITION, metadata={}).version == "1"
    finally:
        provider.close()


def test_a_lost_create_is_done_although_the_caller_sees_a_transient_error(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    emulator = make_emulator(lost_response_rate=1.0)
    provider = FoundryProvider(emulator.endpoint, timeout=10)
    try:
        with pytest.raises(TransientError):
            provider.create_version("a", definition=DEFINITION, metadata={"runner-hash": "h1"})
        # the executor's dedupe: the version is there, findable by its hash
        latest = provider.get_agent("a")
        assert latest is not None and latest.spec_hash == "h1"
        emulator.configure(lost_response_mode="drop")
        with pytest.raises(TransientError) as dropped:
            provider.create_version("a", definition=DEFINITION, metadata={"runner-hash": "h2"})
        assert dropped.value.code == "connection"
        assert provider.get_agent("a").spec_hash == "h2"  # type: ignore[union-attr]
    finally:
        provider.close()


def test_a_refused_connection_is_transient(make_emulator: Callable[..., EmulatorHandle]) -> None:
    emulator = make_emulator()
    provider = FoundryProvider(emulator.endpoint, timeout=5)
    emulator.stop()
    try:
        with pytest.raises(TransientError) as info:
            provider.list_agents()
        assert info.value.code == "connection"
        with pytest.raises(TransientError):
            provider.create_conversation()
    finally:
        provider.close()


def test_conversations_and_replies_name_agent_and_version(
    emulator: EmulatorHandle, foundry: FoundryProvider
) -> None:
    foundry.create_version("tech-agent-1", definition=DEFINITION, metadata={})
    foundry.create_version("tech-agent-1", definition=DEFINITION, metadata={})
    conversation = foundry.create_conversation(metadata={"session": "s1"})
    reply = foundry.respond(
        conversation_id=conversation,
        agent_name="tech-agent-1",
        agent_version="1",
        text="my printer is on fire",
    )
    assert reply.text == "[tech-agent-1 v1] my printer is on fire"
    assert (reply.input_tokens, reply.output_tokens) == (5, 7)
    latest = foundry.respond(
        conversation_id=conversation, agent_name="tech-agent-1", agent_version=None, text="ok"
    )
    assert latest.text == "[tech-agent-1 v2] ok"
    assert latest.input_tokens == 5 + 7 + 1
    assert latest.response_id.startswith("resp_")
    # the same reply as the in-process local provider gives
    local = LocalProvider(emulator.store)
    other = local.create_conversation()
    same = local.respond(
        conversation_id=other,
        agent_name="tech-agent-1",
        agent_version="1",
        text="my printer is on fire",
    )
    assert same.text == reply.text
    with pytest.raises(NotFoundError):
        foundry.respond(
            conversation_id=conversation, agent_name="ghost", agent_version=None, text="x"
        )
    with pytest.raises(NotFoundError):
        foundry.respond(
            conversation_id="conv_missing", agent_name="tech-agent-1", agent_version=None, text="x"
        )


def test_request_count_of_a_noop_listing_of_250_agents(
    emulator: EmulatorHandle, foundry: FoundryProvider
) -> None:
    for i in range(250):
        emulator.store.create_version(f"agent-{i:03d}", definition=DEFINITION)
    before = foundry.request_count()
    emulator.reset_stats()

    agents = foundry.list_agents()

    assert [a.name for a in agents] == [f"agent-{i:03d}" for i in range(250)]
    sent = foundry.request_count() - before
    assert 3 <= sent <= 4
    assert sent == emulator.stats()["requests"]


def test_request_count_is_exact_across_both_clients(
    emulator: EmulatorHandle, foundry: FoundryProvider
) -> None:
    foundry.create_version("a", definition=DEFINITION, metadata={})  # 1
    foundry.get_agent("missing")  # 1 (a 404 is still a request)
    conversation = foundry.create_conversation()  # 1
    foundry.respond(conversation_id=conversation, agent_name="a", agent_version=None, text="x")  # 1
    assert foundry.request_count() == 4 == emulator.stats()["requests"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://example.com/api/projects/p1",
        "http://10.0.0.5:8080/api/projects/p1",
        "http://[fe80::1]/x",
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused(endpoint: str) -> None:
    with pytest.raises(ProviderError, match="use https") as info:
        FoundryProvider(endpoint)
    assert info.value.code == "configuration"


@pytest.mark.parametrize("endpoint", ["ftp://x/y", "not a url", "https://"])
def test_malformed_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(ProviderError, match="not a URL"):
        FoundryProvider(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:9/api/projects/p1",
        "http://127.1.2.3:9/api/projects/p1",
        "http://localhost:9/api/projects/p1",
        "http://[::1]:9/api/projects/p1",
    ],
)
def test_plain_http_on_loopback_is_accepted(endpoint: str) -> None:
    FoundryProvider(endpoint).close()


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"Retry-After": "2", "retry-after-ms": "150"}) == 0.15
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"x-ms-retry-after-ms": "40"}) == 0.04
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def _environment(**fields: object) -> Environment:
    return Environment.model_validate(
        {"apiVersion": "runner/v1", "kind": "Environment", "name": "dev", **fields}
    )


def test_build_provider_local_uses_the_data_dir(tmp_path: Path) -> None:
    provider = build_provider(_environment(provider="local", data_dir=str(tmp_path / "d")))
    try:
        assert isinstance(provider, LocalProvider)
        provider.create_version("a", definition=DEFINITION, metadata={})
    finally:
        provider.close()
    assert (tmp_path / "d" / "local-store.db").exists()


def test_build_provider_foundry_resolves_the_endpoint_when_built(
    emulator: EmulatorHandle,
) -> None:
    env = _environment(provider="foundry", endpoint="${FOUNDRY_ENDPOINT}")
    provider = build_provider(env, environ={"FOUNDRY_ENDPOINT": emulator.endpoint})
    try:
        assert isinstance(provider, FoundryProvider)
        assert provider.list_agents() == []
    finally:
        provider.close()
    fallback = _environment(provider="foundry", endpoint=f"${{UNSET_URL:-{emulator.endpoint}}}")
    build_provider(fallback, environ={}).close()


def test_build_provider_names_the_environment_and_the_missing_variable() -> None:
    env = _environment(provider="foundry", endpoint="https://${ACCOUNT}.services.ai.azure.com/x")
    with pytest.raises(ProviderError) as info:
        build_provider(env, environ={})
    assert "'dev'" in str(info.value) and "ACCOUNT" in str(info.value)
    assert info.value.code == "configuration"


def test_importing_providers_does_not_import_azure() -> None:
    code = (
        "import sys, runner.providers, runner.providers.local, runner.providers.emulator;"
        "bad = sorted(m for m in sys.modules if m.startswith(('azure', 'openai')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_concurrent_creates_through_the_emulator_never_reuse_a_number(
    foundry: FoundryProvider,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        versions = list(
            pool.map(
                lambda _: (
                    foundry.create_version("shared", definition=DEFINITION, metadata={}).version
                ),
                range(40),
            )
        )
    assert sorted(versions, key=int) == [str(i) for i in range(1, 41)]


def test_a_conversations_messages_read_back_through_the_sdk_as_the_local_store_holds_them(
    emulator: EmulatorHandle, foundry: FoundryProvider
) -> None:
    foundry.create_version("tech-agent-1", definition=DEFINITION, metadata={})
    conversation = foundry.create_conversation()
    for text in ("my printer is on fire", "it is out now", "thanks"):
        foundry.respond(
            conversation_id=conversation, agent_name="tech-agent-1", agent_version="1", text=text
        )
    messages = foundry.conversation_messages(conversation)
    assert [(m.role, m.text) for m in messages] == [
        ("user", "my printer is on fire"),
        ("assistant", "[tech-agent-1 v1] my printer is on fire"),
        ("user", "it is out now"),
        ("assistant", "[tech-agent-1 v1] it is out now"),
        ("user", "thanks"),
        ("assistant", "[tech-agent-1 v1] thanks"),
    ]
    assert foundry.conversation_messages(conversation, limit=2) == messages[-2:]
    assert LocalProvider(emulator.store).conversation_messages(conversation) == messages
    with pytest.raises(NotFoundError):
        foundry.conversation_messages("conv_missing")


def test_the_proxy_environment_is_honoured_though_read_once(
    emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a proxy on a port nothing listens on: calls through it fail to connect
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)  # the lower-case one would win
    proxied = FoundryProvider(emulator.endpoint, timeout=5)
    try:
        with pytest.raises(TransientError) as info:
            proxied.list_agents()
        assert info.value.code == "connection"
    finally:
        proxied.close()
    # NO_PROXY naming the endpoint's host bypasses it, as requests' own reading did
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = FoundryProvider(emulator.endpoint, timeout=5)
    try:
        assert direct.list_agents() == []
    finally:
        direct.close()
