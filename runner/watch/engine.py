"""The reload engine: changed spec files -> validated project -> desired -> plan (-> apply).

Role in the flow: the hot-reload path of `runner watch`, usable without the CLI (the runtime and
tests call `ReloadEngine.reload(paths)` directly). `ReloadEngine` is the facade that runs one
reload at a time through the parts, each over only what a change touches:

  - `spec_files.SpecFiles` re-reads the files a change stands for; every other file's parse
    result is kept (files -> load).
  - `candidate.compute_candidate` builds the project, checks the part of it the change touches
    and renders the agents it affects, against the last good state (load -> check -> desired).
  - `snapshot` keeps that good state and what Foundry and the registry held; the plan is
    computed from it, scoped to the addresses whose desired state changed plus those with ops
    still pending. A full listing happens at start, on `refresh()`, when the environment itself
    changes, and after a failed read; after an apply the scope is read back (plan).
  - `apply_step.run_plan_step` reports the plan or runs `apply_plan` with the real provider
    and registry (`backends`) behind scoped views whose listings read only the plan's names and
    addresses, so the executor's stale check under the environment lock still compares fresh
    reads with the plan's inputs (apply).
  - Every reload ends in one `outcome.ReloadOutcome`; hooks see it when the good state moved.

Invariants:
  - Validate, then swap: a reload whose specs do not load or check cleanly is `invalid`; its
    problems are reported at file:line:col and the last good state (project, desired state,
    plan scope) is kept untouched. Nothing is planned, applied or deleted from an invalid
    state; in particular a file that stops parsing never reads as "its agents were removed".
    The file contents are still tracked, so the next good save is compared with the last good
    state, not with the broken one.
  - A spec path that is gone (deleted, unmounted, mid-`mv`) or a folder that no longer holds
    any document is `invalid` the same way: the last good state is kept, nothing is deleted.
    Each file's last result is kept too, so the folder coming back is compared with it.
  - A file that held documents and now reads as 0 bytes is read again after `empty_grace`
    (a plain save truncates before it writes), so a save caught half-way does not remove agents.
  - A protected environment is never applied: the engine plans and says so.
  - Reloads never interleave: `reload`, `refresh` and `start` hold one lock.
  - Desired-state comparison is by value: a save that changes nothing (a comment, a re-save, a
    checkout that restores the same text) is `unchanged` and plans nothing.
  - The provider and registry the engine builds are its own (closed by `close()`, and the
    provider rebuilt when the environment moves to another endpoint); given ones are the
    caller's.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from runner.apply.executor import DEFAULT_LOCK_TIMEOUT, DEFAULT_PARALLELISM, ApplyResult
from runner.paths import ProjectHome
from runner.plan.desired import DesiredState
from runner.plan.ops import Plan
from runner.providers.base import Provider, ProviderError
from runner.spec.models import Environment
from runner.spec.project import Problem, Project
from runner.state.base import ProjectMismatchError, Registry
from runner.watch.apply_step import run_plan_step
from runner.watch.backends import Backends
from runner.watch.candidate import Rejected, compute_candidate
from runner.watch.outcome import ReloadEvent, ReloadHook, ReloadOutcome
from runner.watch.snapshot import EnvironmentState, GoodState, Scope
from runner.watch.spec_files import SpecFiles

__all__ = ["ReloadEngine"]


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
        parallelism: int = DEFAULT_PARALLELISM,
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
        home = ProjectHome.of(paths[0]) if paths else None
        self.owner = home.default_project if home is not None else ""
        """The project's default identity (an Environment's `project:` wins)."""
        self._backends = Backends(
            provider=provider,
            registry=registry,
            provider_factory=provider_factory,
            registry_path=None if home is None else home.registry_path,
            owner=self.owner,
        )
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

    @property
    def spec_files(self) -> SpecFiles:
        """The spec paths and files (the watcher arms on `arm_paths`, re-arms when
        `root_identities` change)."""
        return self._specs

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
            gone = self._specs.gone_problems()
            if gone:  # keep every file's last result: the root coming back is compared to it
                self.reloads += 1
                return self._invalid(started, (), gone)
            touched = self._specs.read_changes(
                [os.fspath(p) for p in changed], sleep=self._sleep, empty_grace=self.empty_grace
            )
            if not touched and self._good is not None and not self._dirty:
                return self._outcome("unchanged", started, files=())
            self._dirty |= set(touched)
            files = tuple(sorted(touched, key=self._specs.sort_key))
            had = self._good is not None and bool(self._good.project.documents)
            emptied = self._specs.emptied_problems(had_documents=had)
            if emptied:
                self.reloads += 1
                return self._invalid(started, files, emptied)
            return self._evaluate(started, files)

    def refresh(self) -> ReloadOutcome:
        """Read Foundry and the registry in full again and plan (apply) the whole environment."""
        with self._lock:
            started = self._clock()
            if self._good is None:
                return self._evaluate(started, (), full=True)
            try:
                plan, scope = self._full_plan(self._good)
            except ProjectMismatchError as exc:
                return self._failed(started, (), (), str(exc))
            except ProviderError as exc:
                return self._failed(started, (), (), f"cannot read agents from Foundry: {exc}")
            return self._run_plan(plan, scope, started, files=(), addresses=())

    def close(self) -> None:
        self._backends.close()

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
        candidate = compute_candidate(
            self._specs,
            self._good,
            env_name=self.env_name,
            dirty=self._dirty,
            files=files,
            extra_problems=extra_problems,
            full=full,
            owner=self.owner,
        )
        if isinstance(candidate, Rejected):
            return self._invalid(started, files, candidate.problems)

        previous = self._good
        env = candidate.env
        changed = candidate.changed
        new_good = GoodState(
            files=dict(self._specs.results),
            project=candidate.project,
            env=env,
            agents=candidate.agents,
            resources=candidate.resources,
            owner=self.owner,
        )
        provider_moved = previous is None or _provider_key(previous.env) != _provider_key(env)
        self._good = new_good
        self._dirty = set()
        self._advanced = previous is None or candidate.touched or candidate.full

        if previous is None or candidate.env_changed:
            if provider_moved:
                self._backends.release_provider()
            try:
                plan, scope = self._full_plan(new_good)
            except (ProviderError, ProjectMismatchError) as exc:
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

    # ------------------------------------------------------------ plan and apply

    def _full_plan(self, good: GoodState) -> tuple[Plan, Scope | None]:
        provider, registry = self._backends.ensure(good.env)
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
        """Report `plan`, or apply it (`apply_step.run_plan_step`)."""
        assert self._good is not None
        step = run_plan_step(
            plan,
            scope,
            good=self._good,
            state=self._state,
            backends=self._backends,
            apply=self.apply,
            changed=bool(addresses),
            parallelism=self.parallelism,
            lock_timeout=self.lock_timeout,
        )
        return self._outcome(
            step.event,
            started,
            files=files,
            addresses=addresses,
            plan=step.plan,
            result=step.result,
            message=step.message,
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
        event: ReloadEvent,
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
