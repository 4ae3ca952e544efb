"""A team created from code (`Lifecycle.create_team`), validated like a spec file.

Role: `project_with_team` turns a Team (or its mapping) into the project the runtime reloads
with: the specs it runs with, the team replacing any of the same name. It is validated with
the spec checks (`runner.spec.checks.check_project`) over what the runtime runs with, including
agents and escalation paths that were applied but are not in the specs; `check_team` (the
team's own reference checks) stands in if the spec checks fail.

Invariant: an invalid team raises `LifecycleError` naming every problem; nothing is changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from runner.runtime.errors import LifecycleError
from runner.runtime.sessions import Declared
from runner.runtime.teams import check_team
from runner.spec.models import API_VERSION, Envelope, Team
from runner.spec.project import Position, Project, SpecDocument

__all__ = ["CODE_POSITION", "project_with_team", "team_of"]

log = logging.getLogger("runner.runtime.operators")

CODE_POSITION = Position("<create_team>", 1, 1)


def team_of(spec: Team | Mapping[str, Any]) -> Team:
    """`spec` as a Team (the Team model's validation, as for a spec file)."""
    if isinstance(spec, Team):
        return spec
    body = {"apiVersion": API_VERSION, "kind": "Team", **dict(spec)}
    try:
        return Team.model_validate(body)
    except ValidationError as exc:
        raise LifecycleError(f"team: invalid definition: {exc}") from None


def project_with_team(team: Team, *, specs: Project, declared: Declared) -> Project:
    """The specs with `team` added (replacing one of its name), once it checks clean against
    what the runtime runs with: members that are declared agents, targets that are
    specializations or `human`, a known escalation path."""
    project = Project()  # what the runtime will run with
    checked = Project()  # plus what it runs with but the specs lack (applied only)
    for doc in specs:
        if doc.address != f"team.{team.name}":
            project.add(doc)
            checked.add(doc)
    applied = Position("<applied>", 1, 1)
    known: list[Envelope] = [*declared.agents.values(), *declared.escalation_paths.values()]
    for known_spec in known:
        checked.add(SpecDocument(spec=known_spec, position=applied))  # no-op when present
    project.add(SpecDocument(spec=team, position=CODE_POSITION))
    checked.add(SpecDocument(spec=team, position=CODE_POSITION))
    problems = _checks_problems(checked)
    if problems is None:  # the spec checks failed: the team's own reference checks
        problems = check_team(
            team, agents=set(declared.agents), escalation_paths=declared.escalation_paths
        )
    if problems:
        raise LifecycleError(f"team.{team.name}: " + "; ".join(dict.fromkeys(problems)))
    return project


def _checks_problems(project: Project) -> list[str] | None:
    """Errors the spec checks find in the team created from code; None if they fail."""
    from runner.spec.checks import check_project  # only teams made in code need the checks

    try:
        found = check_project(project)
    except Exception:  # a checks bug must not hide the team's own reference checks
        log.exception("spec checks failed on the project with a team created from code")
        return None
    return [
        p.message
        for p in found
        if getattr(p, "file", None) == CODE_POSITION.file and p.severity == "error"
    ]
