"""What one reload reports: its `ReloadEvent`, the `ReloadOutcome` and its `--format json` form.

Role in the flow: the last step of a reload. The engine returns a `ReloadOutcome` for every
`start`, `reload` and `refresh`; the watcher hands it to a callback, the CLI's reporters print it
(text, or `to_json()` one object a line), and `ReloadHook`s (the runtime's `Lifecycle.reload`)
see it with the good project after every reload that moved the good state.

Invariants:
  - Outcomes are data: frozen, built once, never mutated; errors are `Problem`s that carry their
    file:line:col, not exceptions.
  - `to_json()` is stable: its keys and their order of appearance are the contract of
    `runner watch --format json`; optional keys (`ops`, `conflicts`, `outcomes`, `message`,
    an outcome's `detail`/`version`) appear only when there is something to say.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from runner.apply.executor import ApplyResult
from runner.plan.ops import Plan, op_address
from runner.spec.project import Problem, Project

__all__ = ["ReloadEvent", "ReloadHook", "ReloadOutcome"]

ReloadEvent = Literal["applied", "planned", "invalid", "unchanged", "failed"]
ReloadHook = Callable[["ReloadOutcome", Project], None]
"""Called after every reload that moved the good state (the runtime's `Lifecycle.reload`)."""


@dataclass(frozen=True)
class ReloadOutcome:
    """What one reload did; `to_json()` is the `--format json` line."""

    event: ReloadEvent
    files: tuple[str, ...] = ()
    """Spec files this reload read (as the loader names them)."""
    addresses: tuple[str, ...] = ()
    """Addresses whose desired state changed (added, changed or removed)."""
    errors: tuple[Problem, ...] = ()
    elapsed_ms: float = 0.0
    """From the moment the change was detected (or the call began) to the end of the reload."""
    env: str = ""
    protected: bool = False
    plan: Plan | None = None
    result: ApplyResult | None = None
    message: str = ""
    """One human sentence for `failed` (and the protected-environment note)."""

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "event": self.event,
            "env": self.env,
            "protected": self.protected,
            "files": list(self.files),
            "addresses": list(self.addresses),
            "errors": [
                {
                    "file": p.file,
                    "line": p.line,
                    "column": p.column,
                    "code": p.code,
                    "message": p.message,
                    "severity": p.severity,
                }
                for p in self.errors
            ],
            "elapsed_ms": round(self.elapsed_ms, 1),
        }
        if self.plan is not None:
            document["ops"] = [
                {"address": op_address(op), "action": op.action} for op in self.plan.ops
            ]
            document["conflicts"] = [
                {"address": c.address, "message": c.message} for c in self.plan.conflicts
            ]
        if self.result is not None:
            document["outcomes"] = [
                {
                    "address": o.address,
                    "action": o.action,
                    "outcome": o.outcome,
                    **({"detail": o.detail} if o.detail else {}),
                    **({"version": o.foundry_version} if o.foundry_version else {}),
                }
                for o in self.result.outcomes
            ]
        if self.message:
            document["message"] = self.message
        return document
