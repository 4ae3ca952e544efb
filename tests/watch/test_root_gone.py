"""The spec folder itself deleted under `runner watch --apply` (issue 9, finding 3).

Deleting it used to destroy every agent, and the watch kept watching the deleted inode, so the
folder restored was never seen again. Now the root disappearing is `invalid` (the last good state
kept, nothing deleted), the watch follows its parent, and the first good state after the folder
comes back is applied. Real files, the real watcher, provider and registry.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from watch_support import Running, Workspace, agent_yaml

from runner.watch import ReloadEngine

Start = Callable[..., Running]


def live_agents(ws: Workspace) -> dict[str, str | None]:
    provider = ws.provider()
    try:
        return {a.name: a.description for a in provider.list_agents()}
    finally:
        provider.close()


def test_deleting_the_spec_folder_destroys_nothing_and_its_return_is_applied(
    workspace: Workspace, run_watcher: Start, tmp_path: Path
) -> None:
    running = run_watcher(workspace)
    before_live, before_registry = live_agents(workspace), workspace.registry().applied("local")
    assert set(before_live) == {"triage", "billing"}
    backup = tmp_path / "backup"
    shutil.copytree(workspace.specs, backup)

    shutil.rmtree(workspace.specs)
    gone = running.until(lambda o: o.event == "invalid")
    assert gone.plan is None and gone.result is None
    assert [e.code for e in gone.errors] == ["file.read"] and "gone" in gone.errors[0].message
    assert live_agents(workspace) == before_live
    assert workspace.registry().applied("local") == before_registry
    assert running.engine.project is not None and "billing" in running.engine.project.agents

    # the folder comes back (a restore, with one agent edited): its first good state applies
    shutil.copytree(backup, workspace.specs)
    workspace.write("agents/billing.yaml", agent_yaml("billing", "restored and edited"))
    running.until(lambda o: o.event == "applied" and "agent.billing" in o.addresses)
    assert live_agents(workspace) == {"triage": "first contact", "billing": "restored and edited"}

    # and the watch follows the new folder: a later save applies too
    workspace.write("agents/triage.yaml", agent_yaml("triage", "after the return"))
    running.until(lambda o: o.event == "applied" and o.addresses == ("agent.triage",))
    assert live_agents(workspace)["triage"] == "after the return"


def test_a_folder_replaced_by_a_rename_is_followed(
    workspace: Workspace, run_watcher: Start, tmp_path: Path
) -> None:
    running = run_watcher(workspace)
    staged = tmp_path / "staged"
    shutil.copytree(workspace.specs, staged)
    (staged / "agents" / "billing.yaml").write_text(agent_yaml("billing", "swapped in"))
    old = tmp_path / "old-specs"
    workspace.specs.rename(old)
    staged.rename(workspace.specs)
    running.until(lambda o: o.event == "applied" and "agent.billing" in o.addresses)
    assert live_agents(workspace)["billing"] == "swapped in"
    (old / "agents" / "triage.yaml").write_text(agent_yaml("triage", "edited in the old folder"))
    workspace.write("agents/triage.yaml", agent_yaml("triage", "edited in the new folder"))
    running.until(lambda o: o.event == "applied" and o.addresses == ("agent.triage",))
    assert live_agents(workspace)["triage"] == "edited in the new folder"


def test_an_emptied_spec_folder_is_invalid_not_a_deletion(workspace: Workspace) -> None:
    with ReloadEngine([workspace.specs], apply=True) as engine:
        assert engine.start().event == "applied"
        before = live_agents(workspace)
        removed = sorted(workspace.specs.rglob("*.yaml"))
        for path in removed:
            path.unlink()
        outcome = engine.reload(removed)
        assert outcome.event == "invalid" and "holds no spec documents" in outcome.errors[0].message
        assert live_agents(workspace) == before
        gone_folder = engine.reload([workspace.specs])
        assert gone_folder.event == "invalid"
