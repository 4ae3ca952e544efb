"""Structured inputs as Foundry honours them, in the local store and the emulator: the recorded
exchange replays, templates naming undeclared inputs are refused, and ten sessions with ten
preference combinations talk to one agent version, each request carrying its own inputs (the
real azure-ai-projects / openai clients against the emulator)."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.providers.base import ProviderError
from runner.providers.emulator import EmulatorHandle
from runner.providers.local_store import LocalStore
from runner.runtime.clock import FakeClock
from runner.runtime.lifecycle import Lifecycle
from runner.runtime.monitoring import RecordingNotifier
from runner.spec.models import KINDS
from runner.spec.project import Position, Project, SpecDocument

RECORDING = json.loads(
    (Path(__file__).parent / "recordings" / "structured_inputs.json").read_text(encoding="utf-8")
)
DEFINITION = {
    "kind": "prompt",
    "model": "gpt-4o",
    "instructions": "Write in a {{tone}} tone for {{company}}.\nBe brief.",
    "structured_inputs": {
        "tone": {"description": "tone", "default_value": "calm", "schema": {"type": "string"}},
        "company": {"required": True, "schema": {"type": "string"}},
    },
}


def _post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---------------------------------------------------------------- the recorded traffic


def test_the_recorded_exchange_replays_through_the_sdk(emulator: EmulatorHandle, sdk: Any) -> None:
    create, _conversation, respond, _delete, _rejected = RECORDING
    name = create["request"]["path"].split("/")[2]
    status, created = _post(
        emulator.endpoint + create["request"]["path"], create["request"]["body"]
    )
    assert status == 200
    recorded_definition = create["response"]["body"]["definition"]
    assert created["definition"]["structured_inputs"] == recorded_definition["structured_inputs"]
    assert created["definition"]["instructions"] == recorded_definition["instructions"]

    openai = sdk.get_openai_client(max_retries=0)
    try:
        conversation = openai.conversations.create()
        body = respond["request"]["body"]
        response = openai.responses.create(
            conversation=conversation.id,
            input=body["input"],
            extra_body={
                "agent_reference": body["agent_reference"],
                "structured_inputs": body["structured_inputs"],
            },
        )
    finally:
        openai.close()
    # the service echoes the instructions with the inputs put in: the emulator does the same
    assert response.instructions == respond["response"]["body"]["instructions"]
    assert response.agent_reference["name"] == name  # type: ignore[attr-defined]


def test_a_template_naming_an_undeclared_input_is_refused_as_recorded(
    emulator: EmulatorHandle,
) -> None:
    rejected = RECORDING[4]
    status, body = _post(
        emulator.endpoint + rejected["request"]["path"], rejected["request"]["body"]
    )
    assert status == rejected["response"]["status"] == 400
    assert body["error"]["code"] == rejected["response"]["body"]["error"]["code"]
    assert "analysis_file_2" in body["error"]["message"]
    assert emulator.store.latest_version("MyStructuredInputsAgent") is None


# ---------------------------------------------------------------- the local store


def test_the_store_fills_inputs_applies_defaults_and_refuses_what_does_not_fit(
    tmp_path: Path,
) -> None:
    with LocalStore(tmp_path / "s.db") as store:
        store.create_version("a", definition=DEFINITION)
        conversation = store.create_conversation().id
        response = store.respond(
            conversation_id=conversation,
            agent_name="a",
            agent_version=None,
            text="hello",
            structured_inputs={"company": "Contoso"},
        )
        assert response.instructions == "Write in a calm tone for Contoso.\nBe brief."
        assert response.text == "[a v1] hello [session: Write in a calm tone for Contoso.]"
        for bad, word in (({"tone": "x"}, "required"), ({"company": "C", "colour": 1}, "colour")):
            with pytest.raises(ProviderError) as info:
                store.respond(
                    conversation_id=conversation,
                    agent_name="a",
                    agent_version="1",
                    text="x",
                    structured_inputs=bad,
                )
            assert (info.value.code, info.value.status) == ("invalid_payload", 400)
            assert word in str(info.value)
        # nothing was written by the refused requests
        assert len(store.list_items(conversation).items) == 2
        broken = copy.deepcopy(DEFINITION)
        broken["instructions"] += " {{missing}}"
        with pytest.raises(ProviderError) as info:
            store.create_version("a", definition=broken)
        assert info.value.code == "invalid_payload"
        plain = {"kind": "prompt", "model": "m", "instructions": "no inputs"}
        store.create_version("b", definition=plain)
        with pytest.raises(ProviderError):
            store.respond(
                conversation_id=conversation,
                agent_name="b",
                agent_version=None,
                text="x",
                structured_inputs={"tone": "calm"},
            )


# ---------------------------------------------------------------- done when: one version


SPECS = """
kind: Environment
name: emu
provider: foundry
endpoint: {endpoint}
default: true
---
kind: Agent
name: concierge
model: gpt-4o
preferences:
  formality: {{values: [casual, professional, formal], default: professional}}
  verbosity: {{values: [concise, balanced], default: balanced}}
  language: {{schema: {{type: string, maxLength: 20}}, default: English}}
features:
  refunds: {{default: false, tools: [issue_refund]}}
tools:
  - {{type: function, name: issue_refund, parameters: {{type: object}}}}
instructions: |
  Reply in a {{{{ prefs.formality }}}} tone, in {{{{ prefs.language }}}}.
  {{% if prefs.verbosity == 'concise' %}}
  At most three sentences.
  {{% endif %}}
  {{% if features.refunds %}}
  You may issue refunds.
  {{% endif %}}
---
kind: Workspace
name: vip
preferences: {{formality: formal}}
"""


def _project(endpoint: str) -> Project:
    project = Project()
    for doc in yaml.safe_load_all(textwrap.dedent(SPECS.format(endpoint=endpoint))):
        doc["apiVersion"] = "runner/v1"
        spec = KINDS[doc["kind"]].model_validate(doc)
        project.add(SpecDocument(spec, Position("<test>", 1, 1)))
    return project


def test_ten_sessions_ten_combinations_one_version_each_request_carries_its_inputs(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(record_requests=200)
    combos = list(
        itertools.islice(
            itertools.product(
                ["casual", "professional", "formal"],
                ["concise", "balanced"],
                ["English", "German"],
                [True, False],
            ),
            0,
            24,
            2,
        )
    )[:10]
    combos.sort(key=lambda c: c[0] != "formal")  # the first session is the vip workspace's
    assert len(set(combos)) == 10 and combos[0][0] == "formal"

    async def run() -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
        seen = []
        async with Lifecycle.open(
            _project(emulator.endpoint),
            env="emu",
            clock=FakeClock(),
            registry_path=tmp_path / "state.db",
            environ={},
            background=False,
            notifier=RecordingNotifier(),
        ) as lc:
            for i, (formality, verbosity, language, refunds) in enumerate(combos):
                workspace = "vip" if i == 0 else f"w{i}"
                session = await lc.create_agent_session(
                    agent="concierge",
                    auth={
                        "user_id": f"u{i}",
                        "workspace_id": workspace,
                        "permissions": ["chat:access"],
                    },
                    preferences={"verbosity": verbosity, "language": language}
                    | ({} if i == 0 else {"formality": formality}),
                    features={"refunds": refunds},
                )
                reply = await session.send(f"question {i}")
                config = session.row.config
                seen.append((config, reply.text, session.versions))
        return seen

    seen = asyncio.run(run())
    versions = emulator.store.list_versions("concierge").items
    assert [v.version for v in versions] == ["1"]  # one version for every combination
    assert {s[2]["concierge"] for s in seen} == {"1"}
    responses = [
        r["body"] for r in emulator.requests() if r["path"].endswith("/openai/v1/responses")
    ]
    assert len(responses) == 10
    for i, ((formality, verbosity, language, refunds), (config, text, _)) in enumerate(
        zip(combos, seen, strict=True)
    ):
        sent = responses[i]["structured_inputs"]
        expected_formality = "formal" if i == 0 else formality  # the vip workspace's overlay
        assert sent == config["agents"]["concierge"]["inputs"]
        assert (sent["formality"], sent["verbosity"], sent["language"], sent["refunds"]) == (
            expected_formality,
            verbosity,
            language,
            refunds,
        )
        assert responses[i]["agent_reference"]["version"] == "1"
        assert f"Reply in a {expected_formality} tone, in {language}." in text
        assert ("At most three sentences." in text) == (verbosity == "concise")
        assert ("You may issue refunds." in text) == refunds
    assert len({json.dumps(r["structured_inputs"], sort_keys=True) for r in responses}) == 10
