"""The reload engine: changed spec files -> validated project -> desired -> plan (-> apply).

Role in the flow: the hot-reload path of `runner watch`, usable without the CLI (the runtime and
tests call `ReloadEngine.reload(paths)` directly). It chains the public functions of the other
layers (`load_file`, `build_project`, `check_project`, `compute_desired`, `compute_plan`,
`apply_plan`), but only over what a change touches:

  - Only the files named in a reload are read again; every other file's parse result is kept.
  - Cross-document checks run on a *view* of the candidate project: every document of the small
    kinds (templates, personalities, teams, pools, alerts, channels, environments, ...) plus the
    agents the change touches (changed agents, agents of a changed template or personality),
    while references are resolved against the whole project. The change is always taken
    against the last *good* state (files changed by invalid saves accumulate), and that state
    checked clean, so every problem of the candidate sits in the view. The view's messages are
    the full check's, except "did you mean" for an unknown agent (it looks through every
    agent), so a `ref.agent` problem is reported by the full `check_project`.
  - Templates are rendered again only for agents whose agent, template or personality changed
    (every agent when the environment changed).
  - The plan is computed against the state kept in memory (Foundry's latest versions, the
    registry's records), scoped to the addresses whose desired state changed plus those with
    ops still pending. After an apply the scope's records and versions are read back; a full
    listing happens at start, on `refresh()`, and when the environment itself changes.
  - An apply runs through `apply_plan` with the real provider and registry behind scoped views
    whose `list_agents`/`applied` read only the plan's names and addresses, so the executor's
    stale check under the environment lock still compares fresh reads with the plan's inputs.

Invariants:
  - Validate, then swap: a reload whose specs do not load or check cleanly is `invalid`; its
    problems are reported at file:line:col and the last good state (project, desired state,
    plan scope) is kept untouched. Nothing is planned, applied or deleted from an invalid
    state; in particular a file that stops parsing never reads as "its agents were removed".
    The file contents are still tracked, so the next good save is compared with the last good
    state, not with the broken one.
  - A file that held documents and now reads as 0 bytes is read again after `empty_grace`
    (a plain save truncates before it writes), so a save caught half-way does not remove agents.
  - A protected environment is never applied: the engine plans and says so.
  - Reloads never interleave: `reload`, `refresh` and `start` hold one lock.
  - Desired-state comparison is by value: a save that changes nothing (a comment, a re-save, a
    checkout that restores the same text) is `unchanged` and plans nothing.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

from runner.apply.executor import (
    DEFAULT_LOCK_TIMEOUT,
    ApplyError,
    ApplyResult,
    apply_plan,
)
from runner.plan.desired import (
    NOT_APPLIED_KINDS,
    DesiredAgent,
    DesiredResource,
    DesiredState,
    compute_desired,
)
from runner.plan.ops import Plan
from runner.providers.base import Provider, ProviderError
from runner.spec.checks import check_project
from runner.spec.loader import build_project
from runner.spec.models import Agent, Environment
from runner.spec.project import Problem, Project, SpecDocument, UnknownEnvironmentError
from runner.state.base import (
    LockTimeoutError,
    Registry,
)
from runner.watch.outcome import Event, ReloadHook, ReloadOutcome
from runner.watch.snapshot import EnvironmentState, GoodState, Pending, Scope
from runner.watch.spec_files import SpecFiles, is_spec_file
from runner.watch.views import ScopedProvider, ScopedRegistry

__all__ = [
    "Event",
    "ReloadEngine",
    "ReloadHook",
    "ReloadOutcome",
    "is_spec_file",
]

# Kinds whose documents are checked on every reload (they are few and hold the references to
# agents); agents are checked only when the change touches them.
_ALWAYS_CHECKED = frozenset(
    {
        "Personality",
        "Template",
        "Team",
        "EscalationPath",
        "ResourcePool",
        "Alert",
        "Channel",
        "Environment",
        "Scenario",
    }
)


# ---------------------------------------------------------------- scoped views for apply_plan


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


def _now() -> float:
    return time.perf_counter()


def _provider_key(env: Environment) -> tuple[Any, ...]:
    return (env.provider, env.endpoint, env.data_dir)


# ---------------------------------------------------------------- the engine


class ReloadEngine:
    """Keeps the specs, the desired state and the environment's state in memory across saves.

    `start()` loads everything once; `reload(paths)` takes the paths that changed (files or
    folders, created, modified or deleted: the disk is read again, events are not trusted);
    `refresh()` re-reads Foundry and the registry in full. With `apply=True` every good reload's
    plan is applied, except in a protected environment. The provider and registry are built from
    the environment (as the CLI does) unless given; given ones are not closed by `close()`.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        env: str | None = None,
        apply: bool = False,
        provider: Provider | None = None,
        registry: Registry | None = None,
        provider_factory: Callable[[Environment], Provider] | None = None,
        parallelism: int = 8,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        clock: Callable[[], float] = _now,
        sleep: Callable[[float], None] = time.sleep,
        empty_grace: float = 0.05,
        hooks: Iterable[ReloadHook] = (),
    ) -> None:
        self.env_name = env
        self.apply = apply
        self.parallelism = parallelism
        self.lock_timeout = lock_timeout
        self._clock = clock
        self._sleep = sleep
        self.empty_grace = empty_grace
        self._hooks: list[ReloadHook] = list(hooks)
        self._specs = SpecFiles(paths)
        self._provider = provider
        self._owns_provider = provider is None
        self._provider_factory = provider_factory
        self._registry = registry
        self._owns_registry = registry is None
        self._good: GoodState | None = None
        self._dirty: set[str] = set()  # files changed since the good state
        self._state = EnvironmentState()
        self._lock = threading.RLock()
        self._advanced = False
        self.reloads = 0
        """Reloads that ran (start, reload with spec changes, refresh)."""

    # ------------------------------------------------------------ public surface

    @property
    def project(self) -> Project | None:
        """The last good project (None until the specs first load cleanly)."""
        return None if self._good is None else self._good.project

    @property
    def environment(self) -> Environment | None:
        return None if self._good is None else self._good.env

    @property
    def protected(self) -> bool:
        return self._good is not None and self._good.env.protected

    def desired(self) -> DesiredState | None:
        return None if self._good is None else self._good.desired()

    def add_hook(self, hook: ReloadHook) -> None:
        self._hooks.append(hook)

    @property
    def watch_paths(self) -> list[str]:
        """Folders to watch: each folder given, and the folder of each file given."""
        return self._specs.watch_paths

    def is_relevant(self, path: str) -> bool:
        """Whether a change at `path` can matter: a spec file (or a folder) under a spec path."""
        return self._specs.is_relevant(path)

    def start(self) -> ReloadOutcome:
        """Load every spec file; plan (and apply) against a full listing when they are valid."""
        with self._lock:
            started = self._clock()
            files, problems = self._specs.load_all()
            self._dirty = set(files)
            return self._evaluate(started, tuple(files), extra_problems=problems, full=True)

    def reload(
        self, changed: Iterable[str | os.PathLike[str]], *, detected_at: float | None = None
    ) -> ReloadOutcome:
        """Re-read the changed paths and plan (and apply) what changed; see the module docs."""
        with self._lock:
            started = self._clock() if detected_at is None else detected_at
            touched = self._specs.read_changes(
                [os.fspath(p) for p in changed], sleep=self._sleep, empty_grace=self.empty_grace
            )
            if not touched and self._good is not None and not self._dirty:
                return self._outcome("unchanged", started, files=())
            self._dirty |= set(touched)
            return self._evaluate(started, tuple(sorted(touched, key=self._specs.sort_key)))

    def refresh(self) -> ReloadOutcome:
        """Read Foundry and the registry in full again and plan (apply) the whole environment."""
        with self._lock:
            started = self._clock()
            if self._good is None:
                return self._evaluate(started, (), full=True)
            try:
                plan, scope = self._full_plan(self._good)
            except ProviderError as exc:
                return self._failed(started, (), (), f"cannot read agents from Foundry: {exc}")
            return self._run_plan(plan, scope, started, files=(), addresses=())

    def close(self) -> None:
        if self._owns_provider and self._provider is not None:
            self._provider.close()
            self._provider = None
        if self._owns_registry and self._registry is not None:
            self._registry.close()
            self._registry = None

    def __enter__(self) -> ReloadEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ validate, then swap

    def _evaluate(
        self,
        started: float,
        files: tuple[str, ...],
        *,
        extra_problems: Sequence[Problem] = (),
        full: bool = False,
    ) -> ReloadOutcome:
        """One reload; hooks see its outcome when it moved the good state."""
        self.reloads += 1
        self._advanced = False
        outcome = self._validate_and_swap(started, files, extra_problems=extra_problems, full=full)
        if self._advanced and self._hooks:
            self._run_hooks(outcome)
        return outcome

    def _validate_and_swap(
        self,
        started: float,
        files: tuple[str, ...],
        *,
        extra_problems: Sequence[Problem],
        full: bool,
    ) -> ReloadOutcome:
        file_problems, documents, skip = self._specs.collect()
        problems = [*extra_problems, *file_problems]
        project, duplicates = build_project(documents)
        problems.extend(duplicates)
        if _errors(problems):
            return self._invalid(started, files, problems)

        good = self._good
        try:
            env = project.environment(self.env_name)
        except UnknownEnvironmentError as exc:
            problem = Problem(self._specs.first_root, 1, 1, "env.unknown", str(exc))
            return self._invalid(started, files, [problem])
        env_changed = good is None or good.env != env
        full = full or env_changed

        touched: dict[str, str] = {}
        removed: set[str] = set()
        if good is not None and not full:
            touched, removed = self._diff(good, project)
        focus = None if full else self._focus(project, touched)
        problems.extend(self._check(project, skip=skip, focus=focus))
        if _errors(problems):
            return self._invalid(started, files, problems)

        from runner.spec.render import RenderError

        try:
            if full or good is None:
                agents, resources = _desired_maps(compute_desired(project, env))
                changed = _changed_addresses(good, agents, resources)
            else:
                agents, resources, changed = self._desired_delta(
                    good, project, env, focus or set(), touched=touched, removed=removed
                )
        except RenderError as exc:  # checks render the same texts; kept as a safety net
            source = project.document(exc.address)
            position = source.position_of(tuple(exc.path)) if source is not None else None
            problem = (
                Problem.at(position, "render.template", f"cannot render {exc}")
                if position is not None
                else Problem(files[0] if files else ".", 1, 1, "render.template", str(exc))
            )
            return self._invalid(started, files, [problem])

        previous = good
        new_good = GoodState(
            files=dict(self._specs.results),
            project=project,
            env=env,
            agents=agents,
            resources=resources,
        )
        provider_moved = previous is None or _provider_key(previous.env) != _provider_key(env)
        self._good = new_good
        self._dirty = set()
        self._advanced = previous is None or bool(touched) or full

        if previous is None or env_changed:
            if provider_moved and self._owns_provider and self._provider is not None:
                self._provider.close()
                self._provider = None
            try:
                plan, scope = self._full_plan(new_good)
            except ProviderError as exc:
                self._state.actual = None
                return self._failed(started, files, changed, f"{exc}")
            return self._run_plan(plan, scope, started, files=files, addresses=changed)
        if not changed:
            return self._outcome("unchanged", started, files=files)
        try:
            plan, scope = self._scoped_plan(new_good, changed)
        except ProviderError as exc:
            return self._failed(started, files, changed, f"cannot read agents from Foundry: {exc}")
        return self._run_plan(plan, scope, started, files=files, addresses=changed)

    def _diff(self, good: GoodState, project: Project) -> tuple[dict[str, str], set[str]]:
        """(address -> kind of every added, changed or removed document; removed addresses)."""
        before: dict[str, SpecDocument] = {}
        after: dict[str, SpecDocument] = {}
        for name in self._dirty:
            old = good.files.get(name)
            if old is not None:
                before.update((d.address, d) for d in old.documents)
            new = self._specs.results.get(name)
            if new is not None:
                after.update((d.address, d) for d in new.documents)
        # an address cannot move to a file that was not re-read: that file changed too
        touched = {
            a: d.kind for a, d in after.items() if a not in before or d.spec != before[a].spec
        }
        removed = {a for a in before if a not in after and project.document(a) is None}
        touched.update((a, before[a].kind) for a in removed)
        return touched, removed

    @staticmethod
    def _focus(project: Project, touched: Mapping[str, str]) -> set[str]:
        """Agent names whose check or rendering a change of `touched` (address -> kind) affects."""
        names = {a.removeprefix("agent.") for a, k in touched.items() if k == "Agent"}
        templates = {a.partition(".")[2] for a, k in touched.items() if k == "Template"}
        personalities = {a.partition(".")[2] for a, k in touched.items() if k == "Personality"}
        if personalities:
            templates |= {
                t.name for t in project.templates.values() if t.personality in personalities
            }
        if templates or personalities:
            names |= {
                a.name
                for a in project.agents.values()
                if a.template in templates or a.personality in personalities
            }
        return {n for n in names if n in project.agents}

    def _check(
        self, project: Project, *, skip: Collection[str], focus: set[str] | None
    ) -> list[Problem]:
        if focus is None:
            return check_project(project, skip=skip)
        documents = [
            d
            for d in project.documents
            if d.kind in _ALWAYS_CHECKED or (d.kind == "Agent" and d.spec.name in focus)
        ]
        view = dataclasses.replace(
            project, documents=documents, agents=_FocusAgents(project.agents, focus)
        )
        problems = check_project(view, skip=skip)
        if any(p.code == "ref.agent" for p in problems):
            # "did you mean" for an unknown agent looks through every agent: ask the full check
            return check_project(project, skip=skip)
        return problems

    @staticmethod
    def _desired_delta(
        good: GoodState,
        project: Project,
        env: Environment,
        focus: set[str],
        *,
        touched: Mapping[str, str],
        removed: set[str],
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
        delta_agents, delta_resources = _desired_maps(compute_desired(view, env))
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

    # ------------------------------------------------------------ plan and apply

    def _ensure_backends(self, env: Environment) -> tuple[Provider, Registry]:
        if self._registry is None:
            from runner.paths import registry_path
            from runner.state.sqlite import SqliteRegistry

            self._registry = SqliteRegistry(registry_path())
        if self._provider is None:
            if self._provider_factory is not None:
                self._provider = self._provider_factory(env)
            else:
                from runner.providers import build_provider

                self._provider = build_provider(env)
        return self._provider, self._registry

    def _full_plan(self, good: GoodState) -> tuple[Plan, Scope | None]:
        provider, registry = self._ensure_backends(good.env)
        return self._state.plan_full(good, provider=provider, registry=registry)

    def _scoped_plan(self, good: GoodState, changed: Iterable[str]) -> tuple[Plan, Scope | None]:
        """The plan of the changed and pending addresses, from the state kept in memory."""
        if self._state.actual is None:  # a failed read earlier: read everything again
            return self._full_plan(good)
        return self._state.plan_scoped(good, changed)

    def _run_plan(
        self,
        plan: Plan,
        scope: Scope | None,
        started: float,
        *,
        files: tuple[str, ...],
        addresses: tuple[str, ...],
    ) -> ReloadOutcome:
        """Report `plan`, or apply it. `scope` is what a scoped plan was made from (None: the
        whole environment); the executor's views read exactly that, so its stale check and any
        re-plan under the lock see the same addresses and names as the plan did."""
        good = self._good
        assert good is not None
        self._state.pending = Pending.of_plan(plan)
        if not plan.ops and not plan.conflicts:
            event: Event = "unchanged" if not addresses else "planned"
            return self._outcome(event, started, files=files, addresses=addresses, plan=plan)
        if not self.apply or good.env.protected:
            note = (
                f"environment {good.env.name!r} is protected: planned only, nothing applied"
                if self.apply and good.env.protected
                else ""
            )
            return self._outcome(
                "planned", started, files=files, addresses=addresses, plan=plan, message=note
            )
        if plan.conflicts:
            return self._outcome(
                "failed",
                started,
                files=files,
                addresses=addresses,
                plan=plan,
                message="; ".join(f"{c.address}: {c.message}" for c in plan.conflicts),
            )
        provider, registry = self._ensure_backends(good.env)
        if scope is None:
            views: tuple[Provider, Registry] = (provider, registry)
            desired = good.desired()
        else:
            views = (
                ScopedProvider(provider, scope.names),
                ScopedRegistry(registry, scope.addresses),
            )
            desired = good.desired(scope.addresses)
        try:
            result = apply_plan(
                plan,
                provider=views[0],
                registry=views[1],
                env=good.env.name,
                parallelism=self.parallelism,
                lock_timeout=self.lock_timeout,
                desired=desired,
                replan=True,
                allow_delete=True,
            )
        except (ApplyError, LockTimeoutError, ProviderError) as exc:
            self._read_back(plan, None)
            return self._outcome(
                "failed", started, files=files, addresses=addresses, plan=plan, message=str(exc)
            )
        self._read_back(plan, result)
        self._state.pending = Pending.of_result(result)
        event = "applied" if result.ok else "failed"
        message = (
            ""
            if result.ok
            else "; ".join(f"{o.address}: {o.action} failed: {o.detail}" for o in result.failed)
        )
        return self._outcome(
            event,
            started,
            files=files,
            addresses=addresses,
            plan=result.plan,
            result=result,
            message=message,
        )

    def _read_back(self, plan: Plan, result: ApplyResult | None) -> None:
        good = self._good
        if good is None or self._provider is None or self._registry is None:
            return
        self._state.read_back(
            plan, result, env=good.env.name, provider=self._provider, registry=self._registry
        )

    # ------------------------------------------------------------ outcomes

    def _run_hooks(self, outcome: ReloadOutcome) -> ReloadOutcome:
        project = self.project
        if project is not None:
            for hook in self._hooks:
                hook(outcome, project)
        return outcome

    def _outcome(
        self,
        event: Event,
        started: float,
        *,
        files: tuple[str, ...],
        addresses: tuple[str, ...] = (),
        errors: Sequence[Problem] = (),
        plan: Plan | None = None,
        result: ApplyResult | None = None,
        message: str = "",
    ) -> ReloadOutcome:
        env = self._good.env if self._good is not None else None
        return ReloadOutcome(
            event=event,
            files=files,
            addresses=addresses,
            errors=tuple(errors),
            elapsed_ms=(self._clock() - started) * 1000.0,
            env=env.name if env is not None else (self.env_name or ""),
            protected=env.protected if env is not None else False,
            plan=plan,
            result=result,
            message=message,
        )

    def _invalid(
        self, started: float, files: tuple[str, ...], problems: Sequence[Problem]
    ) -> ReloadOutcome:
        errors = sorted(p for p in problems if p.severity == "error")
        return self._outcome("invalid", started, files=files, errors=errors)

    def _failed(
        self, started: float, files: tuple[str, ...], addresses: tuple[str, ...], message: str
    ) -> ReloadOutcome:
        return self._outcome("failed", started, files=files, addresses=addresses, message=message)


# ---------------------------------------------------------------- helpers


def _errors(problems: Iterable[Problem]) -> bool:
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
