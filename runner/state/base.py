"""The registry seam: what runner last applied, per environment, and the journal of applies.

The planner reads `applied(env)`; the executor records each outcome the moment it happens; the
runtime reads applied revisions of teams, pools, alerts and channels. One apply per environment
at a time is enforced by `lock`. Each environment is owned by one runner project
(`project_of`/`claim_project`): a SQLite file applied from one project refuses another; a
PostgreSQL database is shared, each project's registry keyed by (project, environment), so
another project's environment of the same name is a different one. On SQLite
(`runner.state.sqlite`, one host) or PostgreSQL (`runner.state.pg_registry`, any number of
hosts); `runner.state.backends` picks one. Secrets
never reach it: bodies hold `${VAR}` references, not values.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

JournalAction = Literal["create", "update", "delete", "delete_version", "adopt", "import", "revert"]


@dataclass(frozen=True)
class AppliedResource:
    """The revision of one resource that runner last applied in an environment."""

    address: str
    kind: str
    name: str
    hash: str
    body: Mapping[str, Any] = field(default_factory=dict)
    foundry_name: str | None = None
    foundry_version: str | None = None
    applied_at: float = 0.0


@dataclass(frozen=True)
class JournalEntry:
    env: str
    address: str
    action: str
    outcome: Literal["ok", "failed"]
    hash: str | None
    foundry_version: str | None
    at: float
    apply_id: str
    detail: str = ""


class LockTimeoutError(Exception):
    def __init__(self, env: str, holder: str, waited: float) -> None:
        super().__init__(
            f"environment {env!r} is locked by {holder} (waited {waited:.1f}s); "
            "try again when that apply ends, or raise --lock-timeout"
        )
        self.env = env
        self.holder = holder


class ProjectMismatchError(Exception):
    """The registry holds `env` for another runner project: refused, nothing changed."""

    def __init__(self, env: str, *, recorded: str, project: str, where: object) -> None:
        place = f" {where}" if where else ""
        super().__init__(
            f"the registry{place} holds environment {env!r} for runner project {recorded!r}, "
            f"not {project!r}; nothing was changed. Give this project its own state folder "
            f"(a `.runner/` folder created inside its spec folder is used from then on, or set "
            f"RUNNER_HOME), or, if both are the same project, declare `project: {recorded}` in "
            f"its Environment"
        )
        self.env = env
        self.recorded = recorded
        self.project = project


class Registry(Protocol):
    def applied(self, env: str) -> dict[str, AppliedResource]: ...

    def get(self, env: str, address: str) -> AppliedResource | None: ...

    def record_applied(
        self, env: str, resource: AppliedResource, *, apply_id: str, action: JournalAction
    ) -> None:
        """Store `resource` as applied and journal it, in one transaction."""
        ...

    def record_deleted(self, env: str, address: str, *, apply_id: str) -> None: ...

    def record_failure(
        self, env: str, address: str, *, apply_id: str, action: JournalAction, detail: str
    ) -> None: ...

    def record_version_removed(
        self, env: str, address: str, *, version: str, apply_id: str
    ) -> None:
        """Journal the removal of one surplus Foundry version (e.g. a twin left by a lost
        response); what is recorded as applied does not change."""
        ...

    def history(self, env: str, address: str) -> list[JournalEntry]: ...

    def lock(self, env: str, *, holder: str, timeout: float) -> AbstractContextManager[None]:
        """Hold the environment's apply lock; LockTimeoutError naming the holder after timeout."""
        ...

    def project_of(self, env: str) -> str | None:
        """The runner project that applied `env` through this registry (None: none recorded)."""
        ...

    def claim_project(self, env: str, project: str) -> None:
        """Record `project` as `env`'s owner here unless one is recorded (adopting what was
        applied before projects existed); ProjectMismatchError, nothing changed, if another."""
        ...

    def close(self) -> None: ...
