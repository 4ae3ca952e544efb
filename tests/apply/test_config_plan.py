"""Preferences through plan and apply against the emulator (the real SDK over HTTP): the
definition declares them as structured inputs, a re-plan is empty, a changed default is one
field diff and one new version, and a workspace overlay never makes a version."""

from __future__ import annotations

import json
from pathlib import Path

from runner.providers.foundry import FoundryProvider
from tests.apply.conftest import Project

PREFERENCES = """\
  Help customers with billing and account questions.
  Reply in a {{ prefs.formality }} tone.
preferences:
  formality:
    description: How formal replies are
    values: [casual, professional, formal]
    default: professional
"""


def test_a_changed_default_is_a_plan_diff_and_a_workspace_is_no_version(project: Project) -> None:
    project.edit(
        "templates.yaml", "  Help customers with billing and account questions.\n", PREFERENCES
    )
    done = project.cli("apply", "specs", "--env", "emu", "--auto-approve")
    assert done.returncode == 0, done.stderr + done.stdout
    provider = FoundryProvider(project.endpoint)
    try:
        general = provider.get_agent("general-agent-1")
        assert general is not None
        assert "Reply in a {{formality}} tone." in general.definition["instructions"]
        assert general.definition["structured_inputs"]["formality"]["default_value"] == (
            "professional"
        )
        again = project.cli("plan", "specs", "--env", "emu", "--detailed-exitcode")
        assert again.returncode == 0, again.stdout + again.stderr

        project.edit("templates.yaml", "default: professional", "default: formal")
        changed = project.cli("plan", "specs", "--env", "emu", "--format", "json")
        document = json.loads(changed.stdout)
        diffs = {
            c["address"]: [(d["path"], d["old"], d["new"]) for d in c["diff"]]
            for c in document["changes"]
        }
        path = "definition.structured_inputs.formality.default_value"
        assert diffs["agent.general-agent-1"] == [(path, "professional", "formal")]
        assert diffs["agent.billing-agent-1"] == [(path, "professional", "formal")]
        text = project.cli("plan", "specs", "--env", "emu").stdout
        assert f'~ {path}: "professional" -> "formal"' in text

        (project.specs / "workspaces.yaml").write_text(
            "apiVersion: runner/v1\nkind: Workspace\nname: workspace-123\n"
            "preferences: {formality: casual}\n",
            encoding="utf-8",
        )
        applied = project.cli("apply", "specs", "--env", "emu", "--auto-approve")
        assert applied.returncode == 0, applied.stderr + applied.stdout
        versions = [v.version for v in provider.list_versions("general-agent-1")]
        assert versions == ["1", "2"]  # the default's change only; the workspace made none
        settled = project.cli("plan", "specs", "--env", "emu", "--detailed-exitcode")
        assert settled.returncode == 0, settled.stdout
    finally:
        provider.close()


def test_apply_then_plan_against_a_float32_emulator_is_empty(tmp_path: Path) -> None:
    """The emulator echoes temperature/top_p as float32 like the service: plan exits 0, and
    with the registry lost the plan only adopts (the echo is no change to Foundry)."""
    from runner.providers.emulator import serve_emulator
    from tests.apply.conftest import make_project

    with serve_emulator(data_dir=tmp_path / "foundry", float32=True) as handle:
        project = make_project(tmp_path, handle.endpoint)
        project.edit("agents.yaml", "temperature: 0.2 ", "temperature: 0.3\ntop_p: 0.9 ")
        done = project.cli("apply", "specs", "--env", "emu", "--auto-approve")
        assert done.returncode == 0, done.stderr + done.stdout
        provider = FoundryProvider(handle.endpoint)
        try:
            echoed = [a.definition for a in provider.list_agents() if "top_p" in a.definition]
        finally:
            provider.close()
        assert echoed and echoed[0]["top_p"] == 0.8999999761581421  # float32, as the service
        assert echoed[0]["temperature"] == 0.30000001192092896
        again = project.cli("plan", "specs", "--env", "emu", "--detailed-exitcode")
        assert again.returncode == 0, again.stdout + again.stderr

        lost = Project(tmp_path / "lost", project.specs, handle.endpoint)
        (lost.root / ".runner").mkdir(parents=True)
        plan = lost.cli("plan", str(project.specs), "--env", "emu", "--format", "json")
        assert plan.stdout, plan.stderr
        document = json.loads(plan.stdout)
        agents = [c for c in document["changes"] if c["kind"] == "Agent"]
        assert agents and {c["action"] for c in agents} == {"adopt"}, plan.stdout
