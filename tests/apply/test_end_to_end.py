"""End to end: the CLI applies the contract specs through the real azure-ai-projects SDK to the
emulator over HTTP, re-plans to nothing, updates one field as one new version, deletes a removed
agent while a hand-made one survives, and reverts an edit made directly in Foundry."""

from __future__ import annotations

import json
from pathlib import Path

from runner.providers.foundry import FoundryProvider
from tests.apply.conftest import Project, make_project

AGENTS = {"general-agent-1", "tech-agent-1", "billing-agent-1", "market-analyst", "tech-advisor"}


def versions(endpoint: str) -> dict[str, list[str]]:
    provider = FoundryProvider(endpoint)
    try:
        return {
            a.name: [v.version for v in provider.list_versions(a.name)]
            for a in provider.list_agents()
        }
    finally:
        provider.close()


def remove_tech_advisor(project: Project) -> None:
    path = project.specs / "agents.yaml"
    marker = "---\napiVersion: runner/v1\nkind: Agent\nname: tech-advisor"
    path.write_text(path.read_text(encoding="utf-8").split(marker)[0], encoding="utf-8")
    project.edit("pools.yaml", "agents: [market-analyst, tech-advisor]", "agents: [market-analyst]")


def plan_json(project: Project, *extra: str) -> dict[str, object]:
    done = project.cli("plan", "specs", "--format", "json", *extra)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_contract_applies_replans_empty_and_one_edit_is_one_version(project: Project) -> None:
    done = project.cli("apply", "specs", "--env", "emu", "--auto-approve")
    assert done.returncode == 0, done.stderr + done.stdout
    provider = FoundryProvider(project.endpoint)
    agents = {a.name: a for a in provider.list_agents()}
    assert set(agents) == AGENTS
    for agent in agents.values():
        assert agent.managed and agent.metadata["runner-env"] == "emu"
        assert agent.metadata["runner-address"] == f"agent.{agent.name}"
    tech = agents["tech-agent-1"].definition
    assert tech["temperature"] == 0.2 and tech["tools"] == [{"type": "code_interpreter"}]
    assert "Contoso Cloud" in tech["instructions"]
    assert "{{" not in agents["general-agent-1"].definition["instructions"]

    again = project.cli("plan", "specs", "--env", "emu", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout

    project.edit("agents.yaml", "temperature: 0.2 ", "temperature: 0.25 ")
    changed = project.cli("plan", "specs", "--env", "emu", "--detailed-exitcode")
    assert changed.returncode == 2
    assert "definition.temperature: 0.2 -> 0.25" in changed.stdout
    document = json.loads(project.cli("plan", "specs", "--env", "emu", "--format", "json").stdout)
    assert [(c["address"], c["action"]) for c in document["changes"]] == [
        ("agent.tech-agent-1", "update")
    ]
    assert project.cli("apply", "specs", "--env", "emu", "--auto-approve").returncode == 0
    assert versions(project.endpoint) == {
        name: (["1", "2"] if name == "tech-agent-1" else ["1"]) for name in AGENTS
    }
    provider.close()


def test_removed_agent_is_deleted_hand_made_survives_portal_edit_is_reverted(
    project: Project,
) -> None:
    assert project.cli("apply", "specs", "--env", "emu", "--auto-approve").returncode == 0
    provider = FoundryProvider(project.endpoint)
    provider.create_version(
        "hand-made",
        definition={"kind": "prompt", "model": "gpt-4o", "instructions": "x"},
        metadata={},
    )
    remove_tech_advisor(project)
    shown = project.cli("plan", "specs", "--env", "emu")
    assert "agent.tech-advisor will be destroyed" in shown.stdout
    assert "? hand-made" in shown.stdout
    assert project.cli("apply", "specs", "--env", "emu", "--auto-approve").returncode == 0
    names = {a.name for a in provider.list_agents()}
    assert "tech-advisor" not in names and "hand-made" in names

    live = provider.get_agent("market-analyst")
    assert live is not None
    provider.create_version(  # an edit in the portal: new instructions, metadata not kept
        "market-analyst",
        definition={**live.definition, "instructions": "Edited in the portal."},
        metadata={},
    )
    drift = json.loads(project.cli("plan", "specs", "--env", "emu", "--format", "json").stdout)
    assert [(c["address"], c["action"]) for c in drift["changes"]] == [
        ("agent.market-analyst", "drift")
    ]
    assert project.cli("apply", "specs", "--env", "emu", "--auto-approve").returncode == 0
    reverted = provider.get_agent("market-analyst")
    assert reverted is not None and reverted.version == "3" and reverted.managed
    assert reverted.definition["instructions"] == live.definition["instructions"]
    assert project.cli("plan", "specs", "--env", "emu", "--detailed-exitcode").returncode == 0
    provider.close()


def test_protected_environment_rules(project: Project) -> None:
    refused = project.cli("apply", "specs", "--env", "guarded")
    assert refused.returncode == 1 and "--auto-approve" in refused.stderr
    assert versions(project.endpoint) == {}
    assert project.cli("apply", "specs", "--env", "guarded", "--auto-approve").returncode == 0
    assert set(versions(project.endpoint)) == {f"g-{n}" for n in AGENTS}

    project.edit("agents.yaml", "temperature: 0.2 ", "temperature: 0.3 ")
    remove_tech_advisor(project)
    blocked = project.cli("apply", "specs", "--env", "guarded", "--auto-approve")
    assert blocked.returncode == 1
    assert "agent.tech-advisor" in blocked.stderr and "--allow-delete" in blocked.stderr
    after = versions(project.endpoint)
    assert "g-tech-advisor" in after and after["g-tech-agent-1"] == ["1"]  # nothing applied
    allowed = project.cli("apply", "specs", "--env", "guarded", "--auto-approve", "--allow-delete")
    assert allowed.returncode == 0, allowed.stderr
    after = versions(project.endpoint)
    assert "g-tech-advisor" not in after and after["g-tech-agent-1"] == ["1", "2"]


def test_saved_plan_applies_exactly_or_is_refused_as_stale(project: Project) -> None:
    assert project.cli("plan", "specs", "--env", "emu", "--out", "first.json").returncode == 0
    # A saved plan was reviewed when it was made: applying it asks nothing (no --auto-approve).
    applied = project.cli("apply", "first.json")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete!" in applied.stdout
    stale_again = project.cli("apply", "first.json", "--auto-approve")
    assert stale_again.returncode == 1 and "stale" in stale_again.stderr

    project.edit("agents.yaml", "temperature: 0.2 ", "temperature: 0.4 ")
    assert project.cli("plan", "specs", "--env", "emu", "--out", "second.json").returncode == 0
    provider = FoundryProvider(project.endpoint)
    live = provider.get_agent("tech-advisor")
    assert live is not None
    provider.create_version("tech-advisor", definition=dict(live.definition), metadata={})
    refused = project.cli("apply", "second.json", "--auto-approve")
    assert refused.returncode == 1 and "Foundry changed" in refused.stderr
    assert versions(project.endpoint)["tech-agent-1"] == ["1"]

    assert project.cli("plan", "specs", "--env", "emu", "--out", "third.json").returncode == 0
    project.edit("agents.yaml", "temperature: 0.4 ", "temperature: 0.5 ")
    refused = project.cli("apply", "third.json", "--auto-approve")
    assert refused.returncode == 1 and "the specs changed" in refused.stderr
    provider.close()


def test_local_provider_main_command_needs_no_azure(tmp_path: Path) -> None:
    project = make_project(tmp_path, "http://127.0.0.1:9/unused")
    done = project.cli_subprocess("apply", "specs", "--auto-approve")  # the README's command
    assert done.returncode == 0, done.stderr
    assert "Apply complete!" in done.stdout
    again = project.cli("plan", "specs", "--detailed-exitcode")
    assert again.returncode == 0 and "No changes." in again.stdout
    listed = project.cli("state", "list", "specs")
    assert "agent.tech-agent-1" in listed.stdout and "team.customer-support" in listed.stdout
    history = project.cli("history", "agent.tech-agent-1", "specs")
    assert history.returncode == 0 and "create" in history.stdout and "v1" in history.stdout


def test_invalid_specs_and_unknown_env_are_clear_errors(project: Project) -> None:
    unknown = project.cli("plan", "specs", "--env", "nope")
    assert unknown.returncode == 1 and "unknown environment 'nope'" in unknown.stderr
    project.edit("agents.yaml", "temperature: 0.2 ", "temperatur: 0.2 ")
    invalid = project.cli("apply", "specs", "--env", "emu", "--auto-approve")
    assert invalid.returncode == 1
    assert "agents.yaml:" in invalid.stderr and "nothing was planned" in invalid.stderr
    assert versions(project.endpoint) == {}
