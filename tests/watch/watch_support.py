"""Helpers shared by the watch tests (importable: tests/watch is on sys.path)."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runner.providers.local import LocalProvider
from runner.state.sqlite import SqliteRegistry
from runner.watch import ReloadEngine, ReloadOutcome, SpecWatcher

AUTH = {"user_id": "user-1", "workspace_id": "ws-1", "permissions": ["chat:access"]}
TIMEOUT = 10.0

ENV = """\
apiVersion: runner/v1
kind: Environment
name: local
provider: local
default: true
protected: {protected}
data_dir: {data_dir}
"""

TEMPLATE = """\
apiVersion: runner/v1
kind: Template
name: desk
model: gpt-4o-mini
instructions: |
  You are {{ agent.name }} at {{ vars.company }}.
vars:
  company: Contoso
"""

TEAM = """\
apiVersion: runner/v1
kind: Team
name: desk
members:
  - agent: triage
    role: primary
    specialization: triage
    handoff_triggers:
      - name: money
        when:
          keywords: [{keyword}]
        target: billing
  - agent: billing
    role: specialist
    specialization: billing
---
apiVersion: runner/v1
kind: ResourcePool
name: desk
agents: [triage, billing]
limits:
  max_concurrent_sessions: 10
"""


def agent_yaml(name: str, description: str = "", template: str = "desk") -> str:
    text = f"apiVersion: runner/v1\nkind: Agent\nname: {name}\ntemplate: {template}\n"
    if description:
        text += f"description: {description}\n"
    return text


@dataclass
class Workspace:
    root: Path
    specs: Path
    store: Path
    registry_path: Path

    def write(self, rel: str, text: str) -> Path:
        path = self.specs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def atomic_write(self, rel: str, text: str) -> Path:
        """What vim (backupcopy=no), VS Code and JetBrains do: a temp file renamed over."""
        path = self.specs / rel
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
        return path

    def provider(self) -> LocalProvider:
        return LocalProvider.open(self.store / "local-store.db")

    def registry(self) -> SqliteRegistry:
        return SqliteRegistry(self.registry_path)


def make_workspace(root: Path, *, protected: bool = False, keyword: str = "invoice") -> Workspace:
    specs = root / "specs"
    ws = Workspace(root, specs, root / "store", root / ".runner" / "state.db")
    ws.write("env.yaml", ENV.format(protected=str(protected).lower(), data_dir=ws.store))
    ws.write("templates.yaml", TEMPLATE)
    ws.write("agents/triage.yaml", agent_yaml("triage", "first contact"))
    ws.write("agents/billing.yaml", agent_yaml("billing", "invoices and refunds"))
    ws.write("teams.yaml", TEAM.format(keyword=keyword))
    return ws


@dataclass
class Running:
    """A SpecWatcher in a thread, and every outcome it reported."""

    engine: ReloadEngine
    watcher: SpecWatcher
    outcomes: queue.Queue[ReloadOutcome] = field(default_factory=queue.Queue)
    seen: list[ReloadOutcome] = field(default_factory=list)

    def next(self, timeout: float = TIMEOUT) -> ReloadOutcome:
        outcome = self.outcomes.get(timeout=timeout)
        self.seen.append(outcome)
        return outcome

    def until(
        self, predicate: Callable[[ReloadOutcome], bool], timeout: float = TIMEOUT
    ) -> ReloadOutcome:
        """The first outcome (from now on) that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no such outcome; saw {[o.event for o in self.seen]}")
            try:
                outcome = self.next(left)
            except queue.Empty:
                continue
            if predicate(outcome):
                return outcome

    def quiet(self, seconds: float) -> list[ReloadOutcome]:
        """Outcomes reported within `seconds` (used only to show nothing else happened)."""
        found: list[ReloadOutcome] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                found.append(self.next(left))
            except queue.Empty:
                break
        return found
