"""The reference checks of a team created from code (`Lifecycle.create_team`).

Role: the operator side validates a team made in code with the spec checks
(`runner.spec.checks`, positions and all); `check_team` is the team's own reference check, used
when those cannot run: members that are declared agents, trigger and level targets that are
specializations of the team or `human`, an escalation path that exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.spec.models import EscalationPath, Team
from runner.spec.vocabulary import HUMAN

__all__ = ["check_team"]


def check_team(
    team: Team,
    *,
    agents: Mapping[str, Any] | set[str] | frozenset[str],
    escalation_paths: Mapping[str, EscalationPath],
) -> list[str]:
    """Reference problems of a team (for teams created from code): members that are agents,
    trigger and level targets that are specializations of the team or `human`, a known path."""
    problems: list[str] = []
    specializations = {m.specialization for m in team.members}
    seen: set[str] = set()
    for i, member in enumerate(team.members):
        if member.agent not in agents:
            problems.append(f"members[{i}].agent: agent {member.agent!r} is not declared")
        if member.agent in seen:
            problems.append(f"members[{i}].agent: agent {member.agent!r} is listed twice")
        seen.add(member.agent)
        names: set[str] = set()
        for j, trig in enumerate(member.handoff_triggers):
            where = f"members[{i}].handoff_triggers[{j}]"
            if trig.target != HUMAN and trig.target not in specializations:
                problems.append(
                    f"{where}.target: {trig.target!r} is neither a specialization of the team "
                    f"({', '.join(sorted(specializations))}) nor 'human'"
                )
            if trig.name in names:
                problems.append(f"{where}.name: trigger {trig.name!r} is declared twice")
            names.add(trig.name)
    path_name = team.workflow.escalation_path
    if path_name is not None:
        path = escalation_paths.get(path_name)
        if path is None:
            problems.append(f"workflow.escalation_path: escalation path {path_name!r} not found")
        else:
            for k, level in enumerate(path.levels):
                if level.target != HUMAN and level.target not in specializations:
                    problems.append(
                        f"escalation_path.{path_name}.levels[{k}].target: {level.target!r} is "
                        "neither a specialization of the team nor 'human'"
                    )
    return problems
