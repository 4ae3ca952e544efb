"""Scenarios with session configuration: the example project's scenarios show one agent
answering differently under two preference values, a workspace's overlay, and a switched-off
tool never run; `reply` and `tools` expectations fail naming what was seen."""

from __future__ import annotations

import shutil
from pathlib import Path

from runner.scenarios import run_scenarios
from runner.spec.loader import load_project
from runner.spec.project import Project

EXAMPLE = Path(__file__).resolve().parents[2] / "specs"


def load(path: Path) -> Project:
    result = load_project([path])
    assert [p for p in result.problems if p.severity == "error"] == []
    project: Project = result.project
    return project


async def test_the_example_configuration_scenarios_pass() -> None:
    names = [
        "triage-writes-professionally-by-default",
        "triage-writes-casually-in-german-when-asked",
        "helpdesk-workspace-overlay-applies",
        "unlock-switched-off-is-never-run",
    ]
    results = await run_scenarios(load(EXAMPLE), names=names)
    assert [(r.name, r.passed, r.message) for r in results] == [(n, True, None) for n in names]


async def test_reply_and_tools_expectations_say_what_was_seen(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    shutil.copytree(EXAMPLE, specs)
    (specs / "scenarios" / "wrong.yaml").write_text(
        """\
apiVersion: runner/v1
kind: Scenario
name: wrong-tone
agent: triage-agent
session: {preferences: {formality: casual}}
steps:
  - user: hello
    expect:
      reply: {contains: ["professional tone"], not_contains: ["casual tone"]}
---
apiVersion: runner/v1
kind: Scenario
name: expects-a-tool-call
agent: access-agent
steps:
  - user: unlock me
    expect:
      tools: {called: [unlock_account]}
---
apiVersion: runner/v1
kind: Scenario
name: bad-preference
agent: triage-agent
session: {preferences: {formality: rude}}
steps:
  - user: hello
"""
    )
    results = {
        r.name: r
        for r in await run_scenarios(
            load(specs), names=["wrong-tone", "expects-a-tool-call", "bad-preference"]
        )
    }
    tone = results["wrong-tone"].message or ""
    assert 'step 1 (user: "hello")' in tone
    assert "expected the reply to contain 'professional tone', saw '[triage-agent v1] hello" in tone
    assert "expected the reply not to contain 'casual tone'" in tone
    tool = results["expects-a-tool-call"].message or ""
    assert "expected tool unlock_account to be called, saw [none]" in tool
    bad = results["bad-preference"].message or ""
    assert "could not start a session with agent triage-agent" in bad
    assert "'rude' is not one of the allowed values" in bad.replace('"', "'")
