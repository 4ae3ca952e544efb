"""Scenario runner: drive `Scenario` documents through the real runtime on a throwaway store.

Role: `runner test` (runner.cli.test) loads a project and calls `run_scenarios`; the engine is
a client of the runtime (the public `Lifecycle` API and its operators), never part of it. Each
scenario gets its own temporary local environment (a fresh local provider store and registry
file in a temp dir; the project's agents are applied there on demand by the runtime), a virtual
clock (`FakeClock`: `advance` steps move it and sweep idle sessions) and one session of its team
or agent, opened with the scenario's `auth` and `session` options. Steps follow the vocabulary of
`shared/contract/README.md`:

  user (+ repeat) | end | approve / reject (by) | advance | expect only

and after each step its `expect` is checked: `agent` (who answered the step's last message; for
other steps the member that answers next), `handoff {from?, to, trigger?}` (a handoff initiated
during the step, any repetition), `escalation {level?, target?, status?}` (the session's current
escalation), `state`, `reason`, `events` (emitted during the step, in this order, others may
come between), `reply {contains?, not_contains?}` (the step's last reply text), `tools {called?,
not_called?, refused?, failed?}` (function tools run, never run, switched off, failed during
the step), `error` (the step fails with an error containing this text; any other failing step
fails the scenario). The session starts with the scenario's
`session.preferences` and `session.features`, in the workspace of its `auth`. With `repeat`,
`expect` is checked once, after the last repetition; a session that ends during the repetitions
stops them.

Invariants:
  - No model calls and no real notifications: replies come from the local provider, and
    channel deliveries are recorded (`ScenarioResult.notifications`), never sent.
  - The runtime's tuning variables (`AGENT_*`) are not read, so a scenario means the same on
    every machine; all time is virtual.
  - A failure names the scenario, the step (number, its text and file:line:col when the loader
    gave positions) and what was seen instead; the scenario stops at its first failing step.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.runtime.auth import OPERATOR, AuthContext
from runner.runtime.clock import FakeClock
from runner.runtime.events import Event
from runner.runtime.lifecycle import Lifecycle
from runner.runtime.monitoring import RecordingNotifier
from runner.scenarios.expect import check_expect
from runner.spec.models import API_VERSION, Environment, Scenario, Step, parse_duration
from runner.spec.project import Position, Project, SpecDocument

__all__ = [
    "ScenarioResult",
    "describe_step",
    "run_scenario",
    "run_scenarios",
    "scenario_project",
]

SCENARIO_WORKSPACE = "scenarios"  # the workspace of a scenario that names none
_DEFAULT_OPERATOR = "scenario-operator"
_TEXT_LIMIT = 60


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    passed: bool
    message: str | None = None  # why it failed (None when it passed)
    seconds: float = 0.0
    steps_run: int = 0
    file: str | None = None
    notifications: tuple[tuple[str, str], ...] = ()  # (channel, summary) recorded, not sent


def describe_step(step: Step) -> str:
    """The step as its author wrote it, short: `user: "..."`, `end: resolved`, ..."""
    if step.user is not None:
        text = step.user if len(step.user) <= _TEXT_LIMIT else step.user[: _TEXT_LIMIT - 3] + "..."
        more = f" x{step.repeat}" if step.repeat > 1 else ""
        return f'user: "{text}"{more}'
    if step.end is not None:
        return f"end: {step.end}"
    if step.approve is not None or step.reject is not None:
        verb = "approve" if step.approve is not None else "reject"
        return f"{verb}: escalation" + (f" by {step.by}" if step.by else "")
    if step.advance is not None:
        return f"advance: {step.advance}"
    return "expect"


def scenario_project(project: Project, data_dir: Path) -> Project:
    """`project` with one throwaway local environment (named `local`, store in `data_dir`)
    instead of its environments; the vars, preferences and features of the project's local
    environment are kept."""
    settings: dict[str, Any] = {}
    try:
        default = project.environment()
    except LookupError:
        default = None
    source = default if default is not None and default.provider == "local" else None
    source = source or project.environments.get("local")
    if source is not None and source.provider == "local":
        settings = {
            "vars": dict(source.vars),
            "preferences": dict(source.preferences),
            "features": dict(source.features),
        }
    env = Environment.model_validate(
        {
            "apiVersion": API_VERSION,
            "kind": "Environment",
            "name": "local",
            "provider": "local",
            "default": True,
            **settings,
            "data_dir": str(data_dir),
        }
    )
    out = Project()
    for doc in project:
        if doc.kind not in ("Environment", "Scenario"):
            out.add(doc)
    out.add(SpecDocument(spec=env, position=Position("<runner test>", 1, 1)))
    return out


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}


async def run_scenario(
    project: Project,
    scenario: Scenario,
    *,
    workdir: Path,
    document: SpecDocument | None = None,
) -> ScenarioResult:
    """Run one scenario in `workdir` (created; a fresh store and registry file live there)."""
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    clock = FakeClock()
    file = document.position.file if document is not None else None
    recorder = RecordingNotifier()
    steps_run = 0

    def fail(message: str) -> ScenarioResult:
        return ScenarioResult(
            scenario.name,
            False,
            message,
            time.perf_counter() - started,
            steps_run,
            file,
            tuple(recorder.sent),
        )

    try:
        opener = Lifecycle.open(
            scenario_project(project, workdir / "store"),
            env="local",
            clock=clock,
            registry_path=workdir / "state.db",
            environ=_environ(),
            background=False,
            notifier=recorder,
        )
        lc = await opener
    except Exception as exc:
        return fail(f"scenario '{scenario.name}': the runtime could not open: {exc}")
    ops = lc.operators
    events: list[Event] = []
    lc.on("*", events.append)
    try:
        opts = scenario.session
        try:
            session = await lc.create_agent_session(
                agent=scenario.agent,
                team=scenario.team,
                auth=_scenario_auth(scenario, lc),
                max_turns=opts.max_turns,
                idle_timeout=opts.idle_timeout,
                preferences=opts.preferences,
                priority=opts.priority,
                features=opts.features,
            )
        except Exception as exc:
            what = f"team {scenario.team}" if scenario.team else f"agent {scenario.agent}"
            where = _where(document, ())
            return fail(
                f"{where}scenario '{scenario.name}': could not start a session with {what}: {exc}"
            )
        for index, step in enumerate(scenario.steps, start=1):
            steps_run = index
            mark = len(events)
            prefix = (
                f"{_where(document, ('steps', index - 1))}scenario '{scenario.name}' "
                f"step {index} ({describe_step(step)})"
            )
            answered: list[str | None] = []
            replies: list[str] = []
            error: str | None = None
            try:
                if step.user is not None:
                    for _ in range(step.repeat):
                        reply = await session.send(step.user)
                        answered.append(reply.agent)
                        replies.append(reply.text)
                        if reply.ended:
                            break
                elif step.end is not None:
                    await session.end(step.end)
                elif step.approve is not None or step.reject is not None:
                    # `by:` is the operator: a person of the session's workspace who may decide
                    operator = AuthContext(
                        user_id=step.by or _DEFAULT_OPERATOR,
                        workspace_id=session.workspace_id,
                        permissions=frozenset({OPERATOR}),
                    )
                    if step.reject is not None:
                        await ops.reject_escalation(session.id, auth=operator)
                    elif (session.escalation or {}).get("status") == "suggested":
                        await ops.accept_escalation(session.id, auth=operator)
                    else:
                        await ops.approve_escalation(session.id, auth=operator)
                elif step.advance is not None:
                    clock.advance(parse_duration(step.advance))
                    await lc.sweep()
            except Exception as exc:
                if step.expect is None or step.expect.error is None:
                    return fail(f"{prefix}: failed: {exc}")
                error = str(exc)
            if step.expect is None:
                continue
            problems = check_expect(
                step.expect,
                step=step,
                answered=answered,
                current_agent=session.agent,
                state=session.state,
                reason=session.reason,
                escalation=session.escalation,
                events=events[mark:],
                reply=replies[-1] if replies else None,
                error=error,
            )
            if problems:
                return fail(f"{prefix}: " + "; ".join(problems))
        await lc.drain()
        return ScenarioResult(
            scenario.name,
            True,
            None,
            time.perf_counter() - started,
            steps_run,
            file,
            tuple(recorder.sent),
        )
    finally:
        await lc.close()


def _where(document: SpecDocument | None, path: tuple[str | int, ...]) -> str:
    if document is None or not document.positions:
        return ""
    return f"{document.position_of(path)}: "


async def run_scenarios(
    project: Project,
    *,
    names: Sequence[str] | None = None,
    workdir: Path | None = None,
) -> list[ScenarioResult]:
    """Run every scenario of `project` (or those in `names`), in file order, each isolated."""
    scenarios = [
        doc
        for doc in project
        if isinstance(doc.spec, Scenario) and (names is None or doc.spec.name in names)
    ]
    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="runner-test-") as tmp:
        root = workdir or Path(tmp)
        for index, doc in enumerate(scenarios):
            assert isinstance(doc.spec, Scenario)
            results.append(
                await run_scenario(
                    project, doc.spec, workdir=root / f"{index:03d}-{doc.spec.name}", document=doc
                )
            )
    return results


def _scenario_auth(scenario: Scenario, lc: Lifecycle) -> AuthContext:
    """The scenario's user. Every session needs a workspace: one the scenario does not name is
    its team's declared workspace, else `SCENARIO_WORKSPACE`."""
    auth = scenario.auth
    workspace = auth.workspace_id
    if workspace is None:
        team = lc.declared.teams.get(scenario.team) if scenario.team else None
        workspace = (team.workspace if team is not None else None) or SCENARIO_WORKSPACE
    return AuthContext(
        user_id=auth.user_id, workspace_id=workspace, permissions=frozenset(auth.permissions)
    )
