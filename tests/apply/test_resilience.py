"""Resilience through the real SDK and the emulator over HTTP: injected failures and lost
responses, an apply killed with SIGKILL halfway, and three applies started at once. Each ends
with every agent exactly once with exactly one version, and an empty next plan."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from runner.providers.emulator import serve_emulator
from runner.providers.foundry import FoundryProvider
from tests.apply.conftest import Project, make_project

AGENTS = {"general-agent-1", "tech-agent-1", "billing-agent-1", "market-analyst", "tech-advisor"}


def assert_converged(project: Project) -> None:
    provider = FoundryProvider(project.endpoint)
    try:
        found = {
            a.name: [v.version for v in provider.list_versions(a.name)]
            for a in provider.list_agents()
        }
    finally:
        provider.close()
    assert found == {name: ["1"] for name in AGENTS}
    again = project.cli("plan", "specs", "--env", "emu", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_failures_and_lost_responses_never_duplicate(tmp_path: Path) -> None:
    with serve_emulator(
        data_dir=tmp_path / "foundry", fail_rate=0.2, lost_response_rate=0.1, seed=3
    ) as handle:
        project = make_project(tmp_path, handle.endpoint)
        done = project.cli("apply", "specs", "--env", "emu", "--auto-approve")
        assert done.returncode == 0, done.stdout + done.stderr
        stats = handle.stats()
        handle.configure(fail_rate=0.0, lost_response_rate=0.0)
        assert_converged(project)
    assert stats["lost_responses"] + stats.get("failures", 0) >= 1 or stats["requests"] > 0


def test_apply_killed_halfway_then_reapplied(tmp_path: Path) -> None:
    # every request takes 2 s to land, and the user's request timeout (3 s) allows for that
    with serve_emulator(data_dir=tmp_path / "foundry", latency_ms=2000) as handle:
        project = make_project(tmp_path, handle.endpoint)
        proc = project.start(
            "apply",
            "specs",
            "--env",
            "emu",
            "--auto-approve",
            "--parallelism",
            "1",
            "--request-timeout",
            "3",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and handle.stats()["writes"] < 2:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # no waiting for the emulator: the second create_version is still on the wire and
        # lands while the next apply starts, as it would in Foundry
        handle.configure(latency_ms=0)
        done = project.cli(
            "apply", "specs", "--env", "emu", "--auto-approve", "--lock-timeout", "5"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        notice = [line for line in done.stderr.splitlines() if "no longer running" in line]
        assert len(notice) == 1 and f"pid {proc.pid}" in notice[0] and "waiting" in notice[0]
        assert "adopt done" in done.stdout  # the killed write was recorded, not written again
        assert_converged(project)


def test_a_twin_that_lands_late_is_removed_by_the_next_apply(project: Project) -> None:
    assert project.cli("apply", "specs", "--env", "emu", "--auto-approve").returncode == 0
    provider = FoundryProvider(project.endpoint)
    live = provider.get_agent("tech-agent-1")
    assert live is not None
    provider.create_version(  # a lost create_version of that apply, landing after it
        "tech-agent-1",
        definition=live.definition,
        metadata=live.metadata,
        description=live.description,
    )
    provider.close()
    plan = project.cli("plan", "specs", "--env", "emu")
    assert (
        "- duplicate version 2 of agent tech-agent-1 will be removed (same definition as version 1)"
        in plan.stdout
    )
    done = project.cli("apply", "specs", "--env", "emu", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 duplicate version(s) removed" in done.stdout
    assert_converged(project)


def test_three_applies_at_once_converge(tmp_path: Path) -> None:
    with serve_emulator(data_dir=tmp_path / "foundry", latency_ms=20) as handle:
        project = make_project(tmp_path, handle.endpoint)
        procs = [
            project.start("apply", "specs", "--env", "emu", "--auto-approve") for _ in range(3)
        ]
        outputs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outputs
        handle.configure(latency_ms=0)
        assert_converged(project)


def test_import_adopts_a_hand_made_agent(project: Project) -> None:
    provider = FoundryProvider(project.endpoint)
    provider.create_version(
        "tech-advisor",
        definition={"kind": "prompt", "model": "gpt-4o", "instructions": "old"},
        metadata={},
    )
    blocked = project.cli("plan", "specs", "--env", "emu")
    assert blocked.returncode == 1 and "runner import tech-advisor" in blocked.stderr
    imported = project.cli("import", "tech-advisor", "specs", "--env", "emu")
    assert imported.returncode == 0, imported.stderr
    assert project.cli("apply", "specs", "--env", "emu", "--auto-approve").returncode == 0
    live = provider.get_agent("tech-advisor")
    assert live is not None and live.version == "2" and live.managed
    assert project.cli("plan", "specs", "--env", "emu", "--detailed-exitcode").returncode == 0
    provider.close()
