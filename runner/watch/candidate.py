"""The candidate: the specs as they are now, built, checked and rendered against the good state.

Role in the flow: the validate step of a reload (file results -> project -> checks -> desired).
`compute_candidate` chains the public functions of the spec and plan layers (`build_project`,
`check_project`, `compute_desired`) and returns either a `Candidate` (what the environment
should now hold, and which addresses that changes) or `Rejected` (every problem, at
file:line:col). It does no I/O; the engine decides what to swap, plan and apply.

Incremental, but with the full answer:
  - Cross-document checks run on a *view* of the candidate project: every document of the small
    kinds (`ALWAYS_CHECKED`: templates, personalities, teams, pools, alerts, channels,
    environments, ...) plus the agents the change touches (changed agents, agents of a changed
    template or personality), while references are resolved against the whole project. The
    change is always taken against the last *good* state (files changed by invalid saves
    accumulate in `dirty`), and that state checked clean, so every problem of the candidate
    sits in the view. The view's messages are the full check's, except "did you mean" for an
    unknown agent (it looks through every agent), so a `ref.agent` problem is reported by the
    full `check_project`.
  - Templates are rendered again only for agents whose agent, template or personality changed
    (every agent when the environment changed, or on a full evaluation).
  - Desired state is compared by value: a save that changes nothing (a comment, a re-save, a
    checkout that restores the same text) yields no changed addresses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from runner.plan.desired import (
    NOT_APPLIED_KINDS,
    DesiredAgent,
    DesiredResource,
    DesiredState,
    compute_desired,
)
from runner.spec.checks import check_project
from runner.spec.loader import build_project
from runner.spec.models import Agent, Environment
from runner.spec.project import Problem, Project, SpecDocument, UnknownEnvironmentError
from runner.watch.snapshot import GoodState
from runner.watch.spec_files import SpecFiles

__all__ = ["ALWAYS_CHECKED", "Candidate", "Rejected", "compute_candidate"]

# Kinds whose documents are checked on every reload (they are few and hold the references to
# agents); agents are checked only when the change touches them.
ALWAYS_CHECKED = frozenset(
    {
        "Personality",
        "Template",
        "Team",
        "EscalationPath",
        "ResourcePool",
        "Alert",
        "Channel",
        "Environment",
        "Workspace",
        "Scenario",
    }
)


@dataclass(frozen=True)
class Candidate:
    """Specs that loaded and checked cleanly, and what they want in the environment."""

    project: Project
    env: Environment
    agents: dict[str, DesiredAgent]  # by address
    resources: dict[str, DesiredResource]  # by address
    changed: tuple[str, ...]
    """Addresses whose desired state changed (added, changed or removed), sorted."""
    env_changed: bool
    """No good state yet, or the environment itself changed: plan against a full listing."""
    full: bool
    """Evaluated in full (asked for, or the environment changed)."""
    touched: bool
    """Some document was added, changed or removed since the good state."""


@dataclass(frozen=True)
class Rejected:
    """Specs that do not load, resolve their environment, check or render: every problem."""

    problems: Sequence[Problem]


def compute_candidate(
    specs: SpecFiles,
    good: GoodState | None,
    *,
    env_name: str | None,
    dirty: Collection[str],
    files: tuple[str, ...],
    extra_problems: Sequence[Problem] = (),
    full: bool = False,
    owner: str = "",
) -> Candidate | Rejected:
    """Build, check and render the current specs; incrementally from `good` unless `full`.

    `dirty` names the files changed since `good`; `files` those this reload read (a render
    problem with no better place is reported at the first); `owner` is the project's default
    identity (`runner.plan.desired.project_identity`).
    """
    file_problems, documents, skip = specs.collect()
    problems = [*extra_problems, *file_problems]
    project, duplicates = build_project(documents)
    problems.extend(duplicates)
    if _has_errors(problems):
        return Rejected(problems)

    try:
        env = project.environment(env_name)
    except UnknownEnvironmentError as exc:
        return Rejected([Problem(specs.first_root, 1, 1, "env.unknown", str(exc))])
    env_changed = good is None or good.env != env
    full = full or env_changed

    touched: dict[str, str] = {}
    removed: set[str] = set()
    if good is not None and not full:
        touched, removed = _detect_touched(good, specs, dirty, project)
    focus = None if full else _compute_focus(project, touched)
    problems.extend(_check(project, skip=skip, focus=focus))
    if _has_errors(problems):
        return Rejected(problems)

    from runner.spec.render_resolve import RenderError  # lazily, as runner.plan.desired does

    try:
        if full or good is None:
            agents, resources = _desired_maps(compute_desired(project, env, owner=owner))
            changed = _changed_addresses(good, agents, resources)
        else:
            agents, resources, changed = _desired_delta(
                good, project, env, focus or set(), touched=touched, removed=removed, owner=owner
            )
    except RenderError as exc:  # checks render the same texts; kept as a safety net
        source = project.document(exc.address)
        position = source.position_of(tuple(exc.path)) if source is not None else None
        problem = (
            Problem.at(position, "render.template", f"cannot render {exc}")
            if position is not None
            else Problem(files[0] if files else ".", 1, 1, "render.template", str(exc))
        )
        return Rejected([problem])
    return Candidate(
        project=project,
        env=env,
        agents=agents,
        resources=resources,
        changed=changed,
        env_changed=env_changed,
        full=full,
        touched=bool(touched),
    )


class _FocusAgents(dict[str, Agent]):
    """Every agent for lookups (`in`, `get`, `[]`), only the focus agents for iteration.

    Checks and `compute_desired` iterate `project.agents` to decide what to render and resolve
    references with lookups; this view makes them render only what a change touched.
    """

    def __init__(self, agents: Mapping[str, Agent], focus: Iterable[str]) -> None:
        super().__init__(agents)
        self._focus = sorted(n for n in set(focus) if n in agents)

    def __iter__(self) -> Iterator[str]:
        return iter(self._focus)


def _detect_touched(
    good: GoodState, specs: SpecFiles, dirty: Iterable[str], project: Project
) -> tuple[dict[str, str], set[str]]:
    """(address -> kind of every added, changed or removed document; removed addresses)."""
    before: dict[str, SpecDocument] = {}
    after: dict[str, SpecDocument] = {}
    for name in dirty:
        old = good.files.get(name)
        if old is not None:
            before.update((d.address, d) for d in old.documents)
        new = specs.results.get(name)
        if new is not None:
            after.update((d.address, d) for d in new.documents)
    # an address cannot move to a file that was not re-read: that file changed too
    touched = {a: d.kind for a, d in after.items() if a not in before or d.spec != before[a].spec}
    removed = {a for a in before if a not in after and project.document(a) is None}
    touched.update((a, before[a].kind) for a in removed)
    return touched, removed


def _compute_focus(project: Project, touched: Mapping[str, str]) -> set[str]:
    """Agent names whose check or rendering a change of `touched` (address -> kind) affects."""
    if any(k == "Workspace" for k in touched.values()):
        # the `vars` a workspace sets are read per session: every agent's texts may change
        return set(project.agents)
    names = {a.removeprefix("agent.") for a, k in touched.items() if k == "Agent"}
    templates = {a.partition(".")[2] for a, k in touched.items() if k == "Template"}
    personalities = {a.partition(".")[2] for a, k in touched.items() if k == "Personality"}
    if personalities:
        templates |= {t.name for t in project.templates.values() if t.personality in personalities}
    if templates or personalities:
        names |= {
            a.name
            for a in project.agents.values()
            if a.template in templates or a.personality in personalities
        }
    return {n for n in names if n in project.agents}


def _check(project: Project, *, skip: Collection[str], focus: set[str] | None) -> list[Problem]:
    if focus is None:
        return check_project(project, skip=skip)
    documents = [
        d
        for d in project.documents
        if d.kind in ALWAYS_CHECKED or (d.kind == "Agent" and d.spec.name in focus)
    ]
    view = dataclasses.replace(
        project, documents=documents, agents=_FocusAgents(project.agents, focus)
    )
    problems = check_project(view, skip=skip)
    if any(p.code == "ref.agent" for p in problems):
        # "did you mean" for an unknown agent looks through every agent: ask the full check
        return check_project(project, skip=skip)
    return problems


def _desired_delta(
    good: GoodState,
    project: Project,
    env: Environment,
    focus: set[str],
    *,
    touched: Mapping[str, str],
    removed: set[str],
    owner: str = "",
) -> tuple[dict[str, DesiredAgent], dict[str, DesiredResource], tuple[str, ...]]:
    """The good state's desired maps with the touched agents and resources recomputed, and
    the addresses whose desired value changed."""
    documents = [
        d
        for a, kind in sorted(touched.items())
        if kind not in NOT_APPLIED_KINDS and (d := project.document(a)) is not None
    ]
    view = dataclasses.replace(
        project, documents=documents, agents=_FocusAgents(project.agents, focus)
    )
    delta_agents, delta_resources = _desired_maps(compute_desired(view, env, owner=owner))
    changed = {a for a in removed if a in good.agents or a in good.resources}
    changed |= {a for a, d in delta_agents.items() if good.agents.get(a) != d}
    changed |= {a for a, r in delta_resources.items() if good.resources.get(a) != r}
    if not changed:
        return good.agents, good.resources, ()
    agents = dict(good.agents)
    resources = dict(good.resources)
    for address in removed:
        agents.pop(address, None)
        resources.pop(address, None)
    agents.update(delta_agents)
    resources.update(delta_resources)
    return agents, resources, tuple(sorted(changed))


def _has_errors(problems: Iterable[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


def _desired_maps(
    desired: DesiredState,
) -> tuple[dict[str, DesiredAgent], dict[str, DesiredResource]]:
    return (
        {a.address: a for a in desired.agents},
        {r.address: r for r in desired.resources},
    )


def _changed_addresses(
    previous: GoodState | None,
    agents: Mapping[str, DesiredAgent],
    resources: Mapping[str, DesiredResource],
) -> tuple[str, ...]:
    if previous is None:
        return tuple(sorted([*agents, *resources]))
    changed: set[str] = set()
    for old, new in ((previous.agents, agents), (previous.resources, resources)):
        old_map: Mapping[str, object] = old
        new_map: Mapping[str, object] = new
        changed |= {a for a in new_map if old_map.get(a) != new_map[a]}
        changed |= {a for a in old_map if a not in new_map}
    return tuple(sorted(changed))
