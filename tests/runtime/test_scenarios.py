"""The scenario runner: the contract scenarios pass; false expectations fail naming the
scenario, the step (number, text, file:line:col) and what was seen; the vocabulary (repeat,
end, approve/reject with by, advance on the virtual clock, expect-only steps, events in order);
notifications are recorded, never sent; JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from runtime_support import copy_contract

from runner.scenarios import (
    ScenarioResult,
    describe_step,
    render_junit,
    run_scenarios,
)
from runner.spec.loader import load_project
from runner.spec.models import Step
from runner.spec.project import Project


def load(path: Path) -> Project:
    result = load_project([path])
    assert [p for p in result.problems if p.severity == "error"] == []
    project: Project = result.project
    return project


def write_scenarios(specs: Path, text: str) -> Path:
    target = specs / "scenarios" / "extra.yaml"
    target.write_text(text)
    return target


async def run_only(specs: Path, *names: str) -> dict[str, ScenarioResult]:
    results = await run_scenarios(load(specs), names=list(names) or None)
    return {r.name: r for r in results}


async def test_the_contract_scenarios_pass(tmp_path: Path) -> None:
    specs = copy_contract(tmp_path / "specs")
    results = await run_scenarios(load(specs))
    assert [(r.name, r.passed, r.message) for r in results] == [
        ("technical-issue-reaches-tech-support", True, None),
        ("asking-for-a-person-waits-for-a-human", True, None),
        ("max-turns-ends-gracefully", True, None),
        ("long-conversation-escalates-after-approval", True, None),
    ]
    # level 2 opened: slack and email would have been told, nothing was sent
    channels = [c for c, _ in results[-1].notifications]
    assert channels == ["slack", "email"]


async def test_a_false_expectation_fails_naming_scenario_step_and_what_was_seen(
    tmp_path: Path,
) -> None:
    specs = copy_contract(tmp_path / "specs")
    scenarios = specs / "scenarios" / "customer-support.yaml"
    text = scenarios.read_text()
    scenarios.write_text(
        text.replace(
            "      handoff: {from: general-agent-1, to: tech-agent-1, trigger: "
            "technical-issue-detected}\n      agent: tech-agent-1",
            "      handoff: {from: general-agent-1, to: tech-agent-1, trigger: "
            "technical-issue-detected}\n      agent: billing-agent-1",
            1,
        )
    )
    results = await run_only(specs)
    broken = results["technical-issue-reaches-tech-support"]
    assert not broken.passed and broken.steps_run == 2
    assert broken.message == (
        f"{scenarios}:12:5: scenario 'technical-issue-reaches-tech-support' step 2 "
        '(user: "The dashboard shows an Error every time I log in"): '
        "expected agent billing-agent-1, saw tech-agent-1"
    )
    assert all(r.passed for name, r in results.items() if name != broken.name)


async def test_each_expectation_kind_reports_what_it_saw(tmp_path: Path) -> None:
    specs = copy_contract(tmp_path / "specs")
    extra = write_scenarios(
        specs,
        """
apiVersion: runner/v1
kind: Scenario
name: wrong-handoff
team: customer-support
steps:
  - user: I see an error
    expect:
      handoff: {to: billing-agent-1}
---
apiVersion: runner/v1
kind: Scenario
name: wrong-events
team: customer-support
steps:
  - user: I see an error
    expect:
      events: ["handoff:completed", "handoff:initiated"]
---
apiVersion: runner/v1
kind: Scenario
name: wrong-escalation
team: customer-support
steps:
  - user: hello
  - expect:
      escalation: {level: 2}
---
apiVersion: runner/v1
kind: Scenario
name: wrong-state-and-reason
team: customer-support
steps:
  - end: resolved
    expect: {state: active, reason: timeout}
""",
    )
    results = await run_only(
        specs, "wrong-handoff", "wrong-events", "wrong-escalation", "wrong-state-and-reason"
    )
    assert results["wrong-handoff"].message == (
        f"{extra}:7:5: scenario 'wrong-handoff' step 1 (user: \"I see an error\"): "
        "expected handoff {to: billing-agent-1}, saw general-agent-1 -> tech-agent-1 "
        "(trigger technical-issue-detected)"
    )
    events = results["wrong-events"].message or ""
    assert "expected events [handoff:completed, handoff:initiated] in this order" in events
    assert "(handoff:initiated missing)" in events
    assert "saw [handoff:initiated, escalation:opened, handoff:completed" in events
    assert (results["wrong-escalation"].message or "").endswith(
        "step 2 (expect): expected escalation level 2, saw no escalation"
    )
    assert (results["wrong-state-and-reason"].message or "").endswith(
        "step 1 (end: resolved): expected state active, saw ended; "
        "expected reason timeout, saw resolved"
    )


async def test_vocabulary_reject_advance_repeat_and_session_options(tmp_path: Path) -> None:
    specs = copy_contract(tmp_path / "specs")
    write_scenarios(
        specs,
        """
apiVersion: runner/v1
kind: EscalationPath
name: quick
levels:
  - {level: 1, target: human, when: {keywords: [lawyer]}, requires_approval: true}
---
apiVersion: runner/v1
kind: Team
name: quick-team
members:
  - {agent: general-agent-1, role: primary, specialization: customer_service}
workflow: {escalation_path: quick}
---
apiVersion: runner/v1
kind: Scenario
name: rejected-then-idle
team: quick-team
session: {idle_timeout: 5m, priority: high}
steps:
  - user: my lawyer will call
    expect:
      agent: general-agent-1
      escalation: {level: 1, status: pending_approval}
      events: ["escalation:opened", "escalation:pending_approval"]
  - reject: escalation
    by: lead-7
    expect:
      escalation: {status: rejected}
      state: active
      events: ["escalation:rejected"]
  - advance: 4m
    expect: {state: active}
  - advance: 1m
    expect: {state: ended, reason: idle_timeout}
---
apiVersion: runner/v1
kind: Scenario
name: repeat-stops-at-the-end
agent: tech-advisor
session: {max_turns: 2}
steps:
  - user: hi
    repeat: 5
    expect: {state: ended, reason: max_turns}
""",
    )
    results = await run_only(specs, "rejected-then-idle", "repeat-stops-at-the-end")
    assert {n: (r.passed, r.message) for n, r in results.items()} == {
        "rejected-then-idle": (True, None),
        "repeat-stops-at-the-end": (True, None),
    }


async def test_an_action_that_cannot_run_fails_the_step(tmp_path: Path) -> None:
    specs = copy_contract(tmp_path / "specs")
    write_scenarios(
        specs,
        """
apiVersion: runner/v1
kind: Scenario
name: nothing-to-approve
team: customer-support
steps:
  - approve: escalation
    by: someone
""",
    )
    result = (await run_only(specs, "nothing-to-approve"))["nothing-to-approve"]
    assert not result.passed
    assert "step 1 (approve: escalation by someone): failed: " in (result.message or "")
    assert "has no escalation to approve" in (result.message or "")


def test_describe_step_is_short_and_faithful() -> None:
    assert describe_step(Step(user="x" * 100, repeat=3)) == f'user: "{"x" * 57}..." x3'
    assert describe_step(Step(advance="5m")) == "advance: 5m"
    assert describe_step(Step(reject="escalation")) == "reject: escalation"


def test_junit_has_one_testcase_per_scenario_with_the_failure() -> None:
    xml = render_junit(
        [
            ScenarioResult("ok", True, seconds=0.1, file="specs/scenarios/a.yaml"),
            ScenarioResult("bad", False, 'step 1 (user: "<x>"): expected & saw', seconds=0.2),
        ]
    )
    root = ET.fromstring(xml)
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [(c.get("name"), c.get("classname")) for c in cases] == [
        ("ok", "scenarios.a"),
        ("bad", "scenarios"),
    ]
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == 'step 1 (user: "<x>"): expected & saw'
