"""`ReloadEngine.reload` without the watcher: incremental results equal full ones, and the
runtime picks up a reload through `lifecycle_hook` without dropping live sessions."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from watch_support import AUTH, TIMEOUT, Workspace, agent_yaml

from runner.apply.executor import read_actual
from runner.paths import ProjectHome
from runner.plan.desired import compute_desired
from runner.plan.planner import compute_plan
from runner.runtime.lifecycle import Lifecycle
from runner.spec.checks import check_project
from runner.spec.loader import load_project
from runner.watch import ReloadEngine, SpecWatcher, lifecycle_hook

PERSONALITY = """\
apiVersion: runner/v1
kind: Personality
name: warm
prompt_modifiers: ["Be warm with {{ agent.name }}."]
"""


def full_plan_ops(ws: Workspace) -> list[tuple[str, str]]:
    result = load_project([ws.specs])
    env = result.project.environment()
    provider = ws.provider()
    try:
        plan = compute_plan(
            compute_desired(result.project, env, owner=ProjectHome.of(ws.specs).default_project),
            read_actual(provider),
            ws.registry().applied("local"),
            env="local",
        )
    finally:
        provider.close()
    return [(op.action, getattr(op, "address", "")) for op in plan.ops]


def test_incremental_state_equals_a_full_load(workspace: Workspace) -> None:
    with ReloadEngine([workspace.specs], apply=False) as engine:
        assert engine.start().event == "planned"
        edits = [
            ("agents/billing.yaml", agent_yaml("billing", "edited")),
            ("personalities.yaml", PERSONALITY),
            (
                "templates.yaml",
                workspace.specs.joinpath("templates.yaml").read_text() + "personality: warm\n",
            ),
            ("agents/new.yaml", agent_yaml("new", "added")),
        ]
        for rel, text in edits:
            path = workspace.write(rel, text)
            outcome = engine.reload([path])
            assert outcome.event == "planned", outcome
            full = load_project([workspace.specs])
            assert check_project(full.project) == []
            expected = compute_desired(full.project, full.project.environment(), owner=engine.owner)
            assert engine.desired() == expected
            # the scoped plan holds exactly the full plan's ops (nothing was applied)
            assert outcome.plan is not None
            ops = [(op.action, getattr(op, "address", "")) for op in outcome.plan.ops]
            assert sorted(ops) == sorted(full_plan_ops(workspace))
        # the template change re-rendered every agent using it
        assert {"agent.billing", "agent.triage", "template.desk"} <= set(outcome.addresses) or (
            outcome.addresses == ("agent.new",)
        )


def test_a_template_change_re_renders_only_its_agents(workspace: Workspace) -> None:
    workspace.write(
        "templates.yaml",
        workspace.specs.joinpath("templates.yaml").read_text()
        + "---\napiVersion: runner/v1\nkind: Template\nname: other\nmodel: gpt-4o\n"
        "instructions: Other.\n",
    )
    workspace.write("agents/lone.yaml", agent_yaml("lone", "alone", template="other"))
    with ReloadEngine([workspace.specs], apply=True) as engine:
        assert engine.start().event == "applied"
        text = workspace.specs.joinpath("templates.yaml").read_text()
        path = workspace.write("templates.yaml", text.replace("Contoso", "Fabrikam"))
        outcome = engine.reload([path])
        assert outcome.event == "applied"
        assert outcome.addresses == ("agent.billing", "agent.triage", "template.desk")
        again = engine.reload([path])
        assert again.event == "unchanged" and again.plan is None


def test_an_unparsable_file_never_reads_as_removed_agents(workspace: Workspace) -> None:
    with ReloadEngine([workspace.specs], apply=True) as engine:
        engine.start()
        path = workspace.write("agents/billing.yaml", "\tkind: Agent\n")
        assert engine.reload([path]).event == "invalid"
        path.unlink()
        workspace.write("agents/billing.yaml", "")
        # an emptied file is a real change: it holds no agent any more
        outcome = engine.reload([path])
        assert outcome.event == "invalid"  # the team and pool still name it
        assert {e.code for e in outcome.errors} == {"ref.agent"}
        assert workspace.registry().get("local", "agent.billing") is not None


def test_refresh_sees_a_change_made_outside(workspace: Workspace) -> None:
    with ReloadEngine([workspace.specs], apply=True) as engine:
        engine.start()
        provider = workspace.provider()
        try:
            provider.delete_agent("billing")
        finally:
            provider.close()
        outcome = engine.refresh()
        assert outcome.event == "applied"
        assert outcome.result is not None
        assert [(o.address, o.action) for o in outcome.result.outcomes] == [
            ("agent.billing", "create")
        ]


async def test_a_live_session_survives_a_reload_that_changes_its_team(
    workspace: Workspace,
) -> None:
    engine = ReloadEngine([workspace.specs], apply=True)
    outcomes: list[str] = []
    watcher = SpecWatcher(engine, on_outcome=lambda o: outcomes.append(o.event))
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        while not outcomes:
            await asyncio.sleep(0.02)
        assert outcomes == ["applied"]
        async with Lifecycle.open(
            workspace.specs,
            "local",
            registry_path=workspace.registry_path,
            environ={},
            background=False,
        ) as lc:
            engine.add_hook(lifecycle_hook(lc, loop=asyncio.get_running_loop()))
            session = await lc.create_agent_session(team="desk", auth=AUTH)
            assert (await session.send("hello")).agent == "triage"
            team = workspace.specs.joinpath("teams.yaml").read_text()
            workspace.atomic_write("teams.yaml", team.replace("[invoice]", "[refund]"))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + TIMEOUT
            while lc.declared.teams["desk"].members[0].handoff_triggers[0].when.keywords != [
                "refund"
            ]:
                assert loop.time() < deadline, outcomes
                await asyncio.sleep(0.02)
            assert outcomes[-1] == "applied"
            assert session.state == "active"
            same = lc.get_session(session.id, auth=AUTH)
            assert same.id == session.id and same.turns == 1
            assert (await session.send("about my invoice")).agent == "triage"
            reply = await session.send("I want a refund")
            assert reply.agent == "billing"
            assert session.turns == 3
    finally:
        watcher.stop()
        thread.join(timeout=TIMEOUT)
        engine.close()


def test_the_engine_names_files_as_the_loader_does(workspace: Workspace, tmp_path: Path) -> None:
    with ReloadEngine([workspace.specs]) as engine:
        engine.start()
        assert engine.is_relevant(str(workspace.specs / "agents" / "x.yaml"))
        assert engine.is_relevant(str(workspace.specs / "agents"))
        assert not engine.is_relevant(str(workspace.specs / ".x.yaml.swp"))
        assert not engine.is_relevant(str(workspace.specs / "x.yaml~"))
        assert not engine.is_relevant(str(workspace.specs / ".git" / "x.yaml"))
        assert not engine.is_relevant(str(tmp_path / "elsewhere.yaml"))


def test_a_change_made_outside_is_caught_under_the_lock(workspace: Workspace) -> None:
    """The in-memory state is stale for `billing`; the executor's scoped re-read notices it and
    re-plans that scope, so the save still lands and nothing else is touched."""
    with ReloadEngine([workspace.specs], apply=True) as engine:
        engine.start()
        provider = workspace.provider()
        try:
            live = provider.get_agent("billing")
            assert live is not None
            provider.create_version(
                "billing",
                definition=live.definition,
                metadata={**live.metadata, "runner-hash": "0" * 64},
                description="changed in the portal",
            )
        finally:
            provider.close()
        path = workspace.write("agents/billing.yaml", agent_yaml("billing", "from the spec"))
        outcome = engine.reload([path])
        assert outcome.event == "applied", outcome
        assert outcome.result is not None and outcome.result.replanned
        assert {o.address for o in outcome.result.outcomes} == {"agent.billing"}
        provider = workspace.provider()
        try:
            now = provider.get_agent("billing")
            assert now is not None and now.description == "from the spec"
            assert now.version == "3"
            assert provider.get_agent("triage") is not None
        finally:
            provider.close()


def test_a_workspace_that_overrides_a_var_re_renders_every_agent(workspace: Workspace) -> None:
    with ReloadEngine([workspace.specs], apply=False) as engine:
        assert engine.start().event == "planned"
        path = workspace.write(
            "workspaces.yaml",
            "apiVersion: runner/v1\nkind: Workspace\nname: ws-1\nvars: {company: Fabrikam}\n",
        )
        outcome = engine.reload([path])
        assert outcome.event == "planned", outcome
        assert {"agent.billing", "agent.triage", "workspace.ws-1"} <= set(outcome.addresses)
        full = load_project([workspace.specs])
        expected = compute_desired(full.project, full.project.environment(), owner=engine.owner)
        assert engine.desired() == expected
        triage = next(a for a in engine.desired().agents if a.name == "triage")
        # `company` is now read per session: a placeholder, its value an input
        assert "{{runner_" in triage.definition["instructions"]
        assert "Contoso" not in triage.definition["instructions"]


def test_a_reload_of_one_agent_still_sees_every_declaration(workspace: Workspace) -> None:
    """A workspace's values are checked against every template and agent, also when a reload
    checks only the agents a change touched."""
    workspace.write(
        "agents/lone.yaml",
        agent_yaml("lone", "alone")
        + "features:\n  beta: {default: false}\npreferences:\n"
        + "  tone: {values: [calm, brisk], default: calm}\n",
    )
    workspace.write(
        "workspaces.yaml",
        "apiVersion: runner/v1\nkind: Workspace\nname: ws-1\n"
        "features: {beta: true}\npreferences: {tone: brisk}\n",
    )
    with ReloadEngine([workspace.specs], apply=False) as engine:
        assert engine.start().event == "planned"
        path = workspace.write("agents/billing.yaml", agent_yaml("billing", "edited"))
        outcome = engine.reload([path])
        assert outcome.event == "planned", outcome.errors
        assert outcome.addresses == ("agent.billing",)
