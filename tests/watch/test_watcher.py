"""`SpecWatcher` + `ReloadEngine` on real files with the real watcher, provider and registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from watch_support import Running, Workspace, agent_yaml, make_workspace

Start = Callable[..., Running]


def live_description(ws: Workspace, name: str) -> str | None:
    provider = ws.provider()
    try:
        live = provider.get_agent(name)
        return None if live is None else live.description
    finally:
        provider.close()


def journal_actions(ws: Workspace, address: str) -> list[str]:
    return [entry.action for entry in ws.registry().history("local", address)]


def test_a_save_is_applied(workspace: Workspace, run_watcher: Start) -> None:
    running = run_watcher(workspace)
    assert live_description(workspace, "billing") == "invoices and refunds"
    workspace.write("agents/billing.yaml", agent_yaml("billing", "refunds only"))
    outcome = running.until(lambda o: o.event == "applied")
    assert outcome.addresses == ("agent.billing",)
    assert outcome.files == (str(workspace.specs / "agents" / "billing.yaml"),)
    assert outcome.result is not None and [o.action for o in outcome.result.outcomes] == ["update"]
    assert live_description(workspace, "billing") == "refunds only"
    record = workspace.registry().get("local", "agent.billing")
    assert record is not None and record.foundry_version == "2"


def test_an_atomic_save_is_one_change_of_the_real_file(
    workspace: Workspace, run_watcher: Start
) -> None:
    running = run_watcher(workspace)
    workspace.atomic_write("agents/triage.yaml", agent_yaml("triage", "renamed by rename"))
    outcome = running.until(lambda o: o.event == "applied")
    assert outcome.files == (str(workspace.specs / "agents" / "triage.yaml"),)
    assert live_description(workspace, "triage") == "renamed by rename"
    assert not any(".tmp" in f for o in running.seen for f in o.files)


def test_delete_and_recreate_ends_as_an_edit(workspace: Workspace, run_watcher: Start) -> None:
    running = run_watcher(workspace)
    path = workspace.specs / "agents" / "billing.yaml"
    os.remove(path)
    workspace.write("agents/billing.yaml", agent_yaml("billing", "recreated"))
    running.until(lambda o: o.event == "applied" and "agent.billing" in o.addresses)
    assert live_description(workspace, "billing") == "recreated"
    assert "delete" not in journal_actions(workspace, "agent.billing")


def test_a_file_really_deleted_deletes_its_agent(workspace: Workspace, run_watcher: Start) -> None:
    running = run_watcher(workspace)
    workspace.write("agents/extra.yaml", agent_yaml("extra", "short-lived"))
    running.until(lambda o: o.event == "applied" and o.addresses == ("agent.extra",))
    assert live_description(workspace, "extra") == "short-lived"
    os.remove(workspace.specs / "agents" / "extra.yaml")
    outcome = running.until(lambda o: o.event == "applied")
    assert outcome.result is not None
    assert [(o.address, o.action) for o in outcome.result.outcomes] == [("agent.extra", "delete")]
    assert live_description(workspace, "extra") is None


def test_a_broken_save_keeps_the_last_good_state(workspace: Workspace, run_watcher: Start) -> None:
    running = run_watcher(workspace)
    before = workspace.registry().applied("local")
    path = workspace.write("agents/billing.yaml", "apiVersion: runner/v1\nkind: Agent\nname: [x\n")
    outcome = running.until(lambda o: o.event == "invalid")
    assert outcome.plan is None and outcome.result is None and outcome.addresses == ()
    [error] = outcome.errors
    assert (error.file, error.line, error.code) == (str(path), 4, "yaml.syntax")
    # an unknown template is a semantic error, reported where it is written once all files
    # parse (as `runner validate` does)
    workspace.write("agents/triage.yaml", agent_yaml("triage", "x", template="dsek"))
    workspace.write("agents/billing.yaml", agent_yaml("billing", "fixed"))
    outcome = running.until(lambda o: o.event == "invalid" and o.errors[0].code != "yaml.syntax")
    [ref] = outcome.errors
    assert ref.code == "ref.template"
    assert (Path(ref.file).name, ref.line, ref.column) == ("triage.yaml", 4, 11)
    assert "did you mean 'desk'" in ref.message
    # nothing was planned, applied or deleted from the broken state
    assert workspace.registry().applied("local") == before
    assert live_description(workspace, "billing") == "invoices and refunds"
    assert journal_actions(workspace, "agent.billing") == ["create"]
    assert running.engine.project is not None and "billing" in running.engine.project.agents
    # the next good save resumes, compared with the last good state
    workspace.write("agents/triage.yaml", agent_yaml("triage", "first contact"))
    outcome = running.until(lambda o: o.event == "applied")
    assert outcome.addresses == ("agent.billing",)
    assert live_description(workspace, "billing") == "fixed"


def test_a_burst_of_saves_ends_in_one_correct_state(
    workspace: Workspace, run_watcher: Start
) -> None:
    running = run_watcher(workspace)
    for i in range(100):
        name = ("triage", "billing")[i % 2]
        workspace.write(f"agents/{name}.yaml", agent_yaml(name, f"save {i}"))
    # eventually both agents hold the last save; the watcher coalesced the burst
    deadline = time.monotonic() + 10
    while (live_description(workspace, "triage"), live_description(workspace, "billing")) != (
        "save 98",
        "save 99",
    ):
        assert time.monotonic() < deadline, "the burst did not converge"
        running.quiet(0.05)
    running.quiet(0.3)  # whatever the watcher still had queued
    batches = running.watcher.batches
    assert 1 <= batches <= 20, batches
    versions = {e.foundry_version for e in workspace.registry().history("local", "agent.triage")}
    assert len(versions) <= batches + 1  # one version per reload at most, never per save
    # plain (non-atomic) writes truncate first: a reload may read an empty file. That state is
    # invalid (the team names the agent), so it is reported and nothing is deleted.
    assert all(o.event in ("applied", "unchanged", "invalid") for o in running.seen)
    for address in ("agent.triage", "agent.billing"):
        assert "delete" not in journal_actions(workspace, address)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_git_checkout_of_another_branch(workspace: Workspace, run_watcher: Start) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=workspace.root,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", "specs")
    git("commit", "-q", "-m", "main")
    git("checkout", "-q", "-b", "other")
    for i in range(20):
        workspace.write(f"agents/more/a{i:02d}.yaml", agent_yaml(f"a{i:02d}", "on other"))
    workspace.write("agents/billing.yaml", agent_yaml("billing", "on other"))
    git("add", "specs")
    git("commit", "-q", "-m", "other")
    git("checkout", "-q", "main")
    running = run_watcher(workspace)
    git("checkout", "-q", "other")
    running.until(lambda o: o.event == "applied" and "agent.a19" in o.addresses)
    running.quiet(0.3)
    assert live_description(workspace, "billing") == "on other"
    assert all(live_description(workspace, f"a{i:02d}") == "on other" for i in range(20))
    git("checkout", "-q", "main")
    running.until(lambda o: o.event == "applied" and "agent.a00" in o.addresses)
    running.quiet(0.3)
    assert live_description(workspace, "a00") is None
    assert live_description(workspace, "billing") == "invoices and refunds"
    assert running.watcher.batches <= 10


def test_a_protected_environment_is_only_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_watcher: Start
) -> None:
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / ".runner"))
    ws = make_workspace(tmp_path, protected=True)
    running = run_watcher(ws, apply=True)
    [first] = running.seen
    assert first.event == "planned" and first.protected
    assert "protected" in first.message
    ws.write("agents/billing.yaml", agent_yaml("billing", "changed"))
    outcome = running.until(lambda o: "agent.billing" in o.addresses)
    assert outcome.event == "planned" and "protected" in outcome.message
    assert outcome.plan is not None and outcome.plan.ops and outcome.result is None
    assert ws.registry().applied("local") == {}
    assert ws.registry().history("local", "agent.billing") == []
    provider = ws.provider()
    try:
        assert provider.list_agents() == []
    finally:
        provider.close()


def test_files_outside_the_spec_paths_are_ignored(workspace: Workspace, run_watcher: Start) -> None:
    running = run_watcher(workspace)
    outside = workspace.root / "elsewhere"
    outside.mkdir()
    (outside / "agent.yaml").write_text(agent_yaml("outsider"))
    (workspace.specs / "notes.txt").write_text("not a spec")
    (workspace.specs / ".billing.yaml.swp").write_text("swap")
    (workspace.specs / "billing.yaml~").write_text("backup")
    (workspace.specs / ".#billing.yaml").write_text("lock")
    (workspace.specs / "4913").write_text("vim probe")
    (workspace.specs / "x.yaml.tmp").write_text("temp")
    hidden = workspace.specs / ".hidden"
    hidden.mkdir()
    (hidden / "agent.yaml").write_text(agent_yaml("hidden"))
    sentinel = workspace.write("agents/triage.yaml", agent_yaml("triage", "sentinel"))
    running.until(lambda o: o.event == "applied")
    assert [o.files for o in running.seen[1:]] == [(str(sentinel),)]
    assert running.watcher.batches == 1
    assert running.engine.project is not None
    assert set(running.engine.project.agents) == {"triage", "billing"}


def test_json_lines_from_the_cli_and_ctrl_c(workspace: Workspace) -> None:
    import json
    import signal
    import sys

    env = {**os.environ, "RUNNER_HOME": str(workspace.root / ".runner")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "watch",
            str(workspace.specs),
            "--apply",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None

    def line() -> dict[str, Any]:
        document: dict[str, Any] = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        return document

    try:
        first = line()
        assert first["event"] == "applied" and "agent.billing" in first["addresses"]
        workspace.write("agents/billing.yaml", "kind: Agent\nname: billing\nbad: [\n")
        broken = line()
        workspace.write("agents/billing.yaml", agent_yaml("billing", "via cli"))
        applied = line()
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode in (0, 130)
    assert "Traceback" not in stderr
    assert broken["event"] == "invalid" and broken["addresses"] == []
    [error] = broken["errors"]
    assert set(error) >= {"file", "line", "column", "code", "message"}
    assert error["file"].endswith("billing.yaml") and error["line"] >= 1
    assert applied["event"] == "applied"
    assert applied["addresses"] == ["agent.billing"]
    assert applied["files"] == [str(workspace.specs / "agents" / "billing.yaml")]
    assert applied["errors"] == [] and applied["elapsed_ms"] >= 0
    assert applied["outcomes"][0]["outcome"] == "ok"
    for document in (first, broken, applied):
        assert {"event", "addresses", "errors", "elapsed_ms", "files"} <= set(document)
