"""The emulator speaks Foundry's agents protocol as the real SDK expects it (no mocks: the real
azure-ai-projects and openai clients talk HTTP to 127.0.0.1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.ai.projects.models import PromptAgentDefinition
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceResponseError

from runner.providers.emulator import EmulatorHandle

DEFINITION = {"kind": "prompt", "model": "gpt-4o", "instructions": "be brief"}


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_list_pages_with_limit_and_the_sdk_stops_on_an_empty_page(
    emulator: EmulatorHandle, sdk: Any
) -> None:
    for i in range(6):
        emulator.store.create_version(f"b{i}", definition=DEFINITION)
    emulator.reset_stats()

    names = [agent.name for agent in sdk.agents.list(limit=2, order="asc")]

    assert names == [f"b{i}" for i in range(6)]
    # three full pages, then the SDK asks once more (after=b5) and gets last_id null
    assert emulator.stats()["by_method"] == {"GET": 4}
    pages = [[a.name for a in page] for page in sdk.agents.list(limit=4, order="desc").by_page()]
    assert pages == [["b5", "b4", "b3", "b2"], ["b1", "b0"], []]


def test_an_empty_page_has_no_cursors_like_the_service(emulator: EmulatorHandle) -> None:
    # recordings/agents_crud.json entry 7: the final page carries no first_id/last_id
    status, body = _get(f"{emulator.endpoint}/agents?api-version=v1")
    assert status == 200
    assert body == {"data": [], "has_more": False, "object": "list"}


def test_create_get_and_list_versions_through_the_sdk(emulator: EmulatorHandle, sdk: Any) -> None:
    first = sdk.agents.create_version(
        "tech-agent-1",
        definition=PromptAgentDefinition(model="gpt-4o", instructions="hi", temperature=0.5),
        metadata={"managed-by": "runner"},
        description="first",
    )
    second = sdk.agents.create_version(
        "tech-agent-1", definition=PromptAgentDefinition(model="gpt-4o", instructions="hello")
    )
    assert (first.version, second.version) == ("1", "2")
    assert first.id == "tech-agent-1:1"
    assert first.metadata == {"managed-by": "runner"}
    assert isinstance(first.definition, PromptAgentDefinition)
    assert first.definition.temperature == 0.5
    assert first.created_at.tzinfo is not None

    agent = sdk.agents.get("tech-agent-1")
    assert agent.name == "tech-agent-1"
    assert agent.versions.latest.version == "2"
    assert agent.versions.latest.definition.instructions == "hello"

    pinned = sdk.agents.get_version("tech-agent-1", "1")
    assert (pinned.description, pinned.definition.instructions) == ("first", "hi")
    versions = [v.version for v in sdk.agents.list_versions("tech-agent-1", order="asc")]
    assert versions == ["1", "2"]
    # what the SDK sent is what the store holds
    stored = emulator.store.get_version("tech-agent-1", "1")
    assert stored is not None
    assert stored.definition == {
        "model": "gpt-4o",
        "instructions": "hi",
        "temperature": 0.5,
        "kind": "prompt",
    }


def test_delete_version_and_agent_through_the_sdk(emulator: EmulatorHandle, sdk: Any) -> None:
    for _ in range(2):
        emulator.store.create_version("a", definition=DEFINITION)
    deleted = sdk.agents.delete_version("a", "1")
    assert (deleted.deleted, deleted.version) == (True, "1")
    assert [v.version for v in emulator.store.list_versions("a").items] == ["2"]
    gone = sdk.agents.delete("a")
    assert (gone.deleted, gone.name) == (True, "a")
    assert emulator.store.latest_version("a") is None


def test_missing_things_are_404_with_an_error_body(sdk: Any) -> None:
    for call in (
        lambda: sdk.agents.get("nope"),
        lambda: sdk.agents.get_version("nope", "1"),
        lambda: sdk.agents.delete("nope"),
        lambda: sdk.agents.delete_version("nope", "1"),
        lambda: list(sdk.agents.list_versions("nope")),
    ):
        with pytest.raises(ResourceNotFoundError) as info:
            call()
        assert info.value.status_code == 404
        assert info.value.error.code == "not_found"


def test_an_invalid_name_is_400_invalid_parameters(emulator: EmulatorHandle, sdk: Any) -> None:
    with pytest.raises(HttpResponseError) as info:
        sdk.agents.create_version("bad_name", definition=PromptAgentDefinition(model="m"))
    assert info.value.status_code == 400
    assert info.value.error.code == "invalid_parameters"
    assert "alphanumeric" in info.value.error.message


def test_api_version_is_required_on_agents_routes(emulator: EmulatorHandle) -> None:
    status, body = _get(f"{emulator.endpoint}/agents")
    assert status == 400
    assert body["error"]["code"] == "invalid_api_version"
    status, body = _get(f"{emulator.endpoint}/agents?api-version=v1&limit=101")
    assert (status, body["error"]["code"]) == (400, "invalid_parameters")


def test_unknown_routes_are_404_and_wrong_methods_405(emulator: EmulatorHandle) -> None:
    status, body = _get(f"{emulator.endpoint}/nothing-here?api-version=v1")
    assert (status, body["error"]["code"]) == (404, "not_found")
    request = urllib.request.Request(
        f"{emulator.endpoint}/agents/a/versions/1?api-version=v1", method="POST", data=b"{}"
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 405


def test_any_project_prefix_and_no_prefix_reach_the_same_store(emulator: EmulatorHandle) -> None:
    emulator.store.create_version("a", definition=DEFINITION)
    for prefix in ("/api/projects/other", ""):
        status, body = _get(f"{emulator.base_url}{prefix}/agents/a?api-version=v1")
        assert (status, body["versions"]["latest"]["version"]) == (200, "1")


def test_stats_count_requests_by_method_and_reset(emulator: EmulatorHandle, sdk: Any) -> None:
    sdk.agents.create_version("a", definition=PromptAgentDefinition(model="m"))
    sdk.agents.get("a")
    with pytest.raises(ResourceNotFoundError):
        sdk.agents.get("b")
    status, stats = _get(f"{emulator.base_url}/_emulator/stats")
    assert status == 200
    assert (stats["requests"], stats["reads"], stats["writes"]) == (3, 2, 1)
    assert stats["by_method"] == {"GET": 2, "POST": 1}
    reset = urllib.request.Request(f"{emulator.base_url}/_emulator/reset-stats", method="POST")
    with urllib.request.urlopen(reset, timeout=5) as response:
        assert response.status == 200
    assert emulator.stats()["requests"] == 0


def test_fail_rate_answers_429_with_retry_after_and_does_no_work(
    make_emulator: Callable[..., EmulatorHandle], make_sdk: Callable[[str], Any]
) -> None:
    emulator = make_emulator(fail_rate=1.0, fail_statuses=(429,), retry_after_ms=1500)
    client = make_sdk(emulator.endpoint)
    with pytest.raises(HttpResponseError) as info:
        client.agents.create_version("a", definition=PromptAgentDefinition(model="m"))
    assert info.value.status_code == 429
    assert info.value.error.code == "rate_limit_exceeded"
    headers = info.value.response.headers
    assert (headers["Retry-After"], headers["retry-after-ms"]) == ("2", "1500")
    assert emulator.store.latest_version("a") is None
    assert emulator.stats()["injected_failures"] == 1


def test_fail_rate_with_a_seed_is_repeatable(make_emulator: Callable[..., EmulatorHandle]) -> None:
    def outcomes(seed: int) -> list[int]:
        emulator = make_emulator(fail_rate=0.5, seed=seed)
        statuses = []
        for _ in range(24):
            status, _body = _get(f"{emulator.endpoint}/agents?api-version=v1")
            statuses.append(status)
        emulator.stop()
        return statuses

    first = outcomes(7)
    assert first == outcomes(7)
    assert set(first) == {200, 429, 503}  # both kinds of failure, and successes, occur


def test_lost_response_does_the_work_but_the_client_sees_an_error(
    make_emulator: Callable[..., EmulatorHandle], make_sdk: Callable[[str], Any]
) -> None:
    emulator = make_emulator(lost_response_rate=1.0)
    client = make_sdk(emulator.endpoint)
    with pytest.raises(HttpResponseError) as info:
        client.agents.create_version("a", definition=PromptAgentDefinition(model="m"))
    assert info.value.status_code == 503
    assert emulator.store.latest_version("a").version == "1"  # type: ignore[union-attr]
    # reads are not lost
    assert client.agents.get("a").versions.latest.version == "1"
    emulator.configure(lost_response_mode="drop")
    with pytest.raises(ServiceResponseError):
        client.agents.delete("a")
    assert emulator.store.latest_version("a") is None
    assert emulator.stats()["lost_responses"] == 2


def test_latency_is_added_per_request(make_emulator: Callable[..., EmulatorHandle]) -> None:
    import time

    emulator = make_emulator(latency_ms=50)
    started = time.perf_counter()
    for _ in range(3):
        _get(f"{emulator.endpoint}/agents?api-version=v1")
    assert time.perf_counter() - started >= 0.15


def test_conversations_and_responses_through_the_sdk_openai_client(
    emulator: EmulatorHandle, sdk: Any
) -> None:
    emulator.store.create_version("echoer", definition=DEFINITION)
    emulator.store.create_version("echoer", definition=DEFINITION)
    openai = sdk.get_openai_client(max_retries=0)
    try:
        conversation = openai.conversations.create(
            items=[{"type": "message", "role": "user", "content": "context words"}],
            metadata={"user": "u1"},
        )
        assert conversation.id.startswith("conv_")
        assert conversation.metadata == {"user": "u1"}

        response = openai.responses.create(
            conversation=conversation.id,
            input="ping me back",
            extra_body={"agent_reference": {"type": "agent_reference", "name": "echoer"}},
        )
        assert response.output_text == "[echoer v2] ping me back"
        assert response.usage.input_tokens == 2 + 3
        assert response.usage.output_tokens == 5
        assert response.usage.total_tokens == 10

        pinned = openai.responses.create(
            conversation=conversation.id,
            input=[{"type": "message", "role": "user", "content": "older"}],
            extra_body={
                "agent_reference": {"type": "agent_reference", "name": "echoer", "version": "1"}
            },
        )
        assert pinned.output_text == "[echoer v1] older"
        assert openai.responses.retrieve(pinned.id).output_text == "[echoer v1] older"

        openai.conversations.items.create(
            conversation.id, items=[{"type": "message", "role": "user", "content": "note"}]
        )
        items = openai.conversations.items.list(conversation.id, order="asc")
        texts = [item.content[0].text for item in items]
        assert texts == [
            "context words",
            "ping me back",
            "[echoer v2] ping me back",
            "older",
            "[echoer v1] older",
            "note",
        ]
        deleted = openai.conversations.delete(conversation.id)
        assert deleted.deleted
        assert emulator.store.get_conversation(conversation.id) is None
    finally:
        openai.close()


def test_responses_for_unknown_agents_are_404(emulator: EmulatorHandle, sdk: Any) -> None:
    import openai as openai_module

    openai = sdk.get_openai_client(max_retries=0)
    try:
        conversation = openai.conversations.create()
        with pytest.raises(openai_module.NotFoundError):
            openai.responses.create(
                conversation=conversation.id,
                input="hi",
                extra_body={"agent_reference": {"type": "agent_reference", "name": "ghost"}},
            )
        assert emulator.store.list_items(conversation.id).items == []
    finally:
        openai.close()


def test_the_cli_prints_the_endpoint_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "emulator", "--port", "0", "--data", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        endpoint = lines[1].removeprefix("endpoint:").strip()
        assert endpoint.startswith("http://127.0.0.1:") and endpoint.endswith("/api/projects/p1")
        status, body = _get(f"{endpoint}/agents?api-version=v1")
        assert (status, body["data"]) == (200, [])
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "local-store.db").exists()


def test_the_cli_float32_flag_echoes_like_the_service(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "runner", "emulator", "--port", "0", "--float32"]
    process = subprocess.Popen(
        [*command, "--data", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        endpoint = lines[1].removeprefix("endpoint:").strip()
        body = {"definition": {"kind": "prompt", "model": "m", "temperature": 0.3, "top_p": 1}}
        request = urllib.request.Request(
            f"{endpoint}/agents/a1/versions?api-version=v1",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            definition = json.loads(response.read())["definition"]
        assert definition["temperature"] == 0.30000001192092896
        assert definition["top_p"] == 1.0
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
