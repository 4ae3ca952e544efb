"""References between documents: every name a spec uses must be declared, and fit where used.

Role in the flow: the first concern `check_project` runs. It checks that templates,
personalities, agents, teams, escalation paths and channels named anywhere exist (`ref.*`), that
handoff and escalation targets are a specialization of the team or `HUMAN` (`ref.target`), that
an escalation level's trigger is a handoff trigger of a team using the path (`ref.trigger`), that
a team has exactly one primary member (`team.primary`) and an agent is in at most one pool
(`pool.membership`). It returns the agents whose own references are broken, which are not
rendered (their error is already reported).

Invariant: an unknown name suggests the closest declared one; a trigger is not reported while a
team failed to load (it may hold the trigger).
"""

from __future__ import annotations

from collections.abc import Collection

from runner.spec.checks.context import CheckContext
from runner.spec.models import (
    Agent,
    Alert,
    EscalationPath,
    ResourcePool,
    Scenario,
    Team,
    Template,
)
from runner.spec.project import Path, SpecDocument
from runner.spec.suggest import did_you_mean
from runner.spec.vocabulary import HUMAN

__all__ = ["check_references"]


def check_references(ctx: CheckContext) -> set[str]:
    """Every reference problem of the project; returns the agents whose references are broken."""
    broken = _check_templates_and_agents(ctx)
    _check_teams(ctx)
    _check_escalation_paths(ctx)
    _check_pool_members(ctx)
    _check_alerts(ctx)
    _check_scenarios(ctx)
    return broken


def _check_target(
    ctx: CheckContext,
    doc: SpecDocument,
    path: Path,
    *,
    target: str,
    specializations: Collection[str],
    team: str,
) -> None:
    """Report `target` unless it is `HUMAN` or one of the team's `specializations`."""
    if target == HUMAN or target in specializations:
        return
    hint = did_you_mean(target, sorted(specializations))
    known = ", ".join(repr(s) for s in sorted(specializations))
    ctx.report(
        doc,
        path,
        "ref.target",
        f"target {target!r} is not a specialization in team {team!r}{hint}; "
        f"use one of {known} or 'human'",
    )


def _check_templates_and_agents(ctx: CheckContext) -> set[str]:
    p = ctx.project
    broken: set[str] = set()
    for doc in ctx.docs("Template"):
        spec = doc.spec
        assert isinstance(spec, Template)
        if spec.personality is not None:
            _check_personality(ctx, doc, spec.personality)
    for doc in ctx.docs("Agent"):
        agent = doc.spec
        assert isinstance(agent, Agent)
        ok = True
        if agent.template is not None:
            ok = ctx.ref(
                doc,
                ("template",),
                kind="Template",
                name=agent.template,
                known=p.templates,
                noun="template",
            )
        if agent.personality is not None:
            ok = _check_personality(ctx, doc, agent.personality) and ok
        if not ok:
            broken.add(agent.name)
    return broken


def _check_personality(ctx: CheckContext, doc: SpecDocument, name: str) -> bool:
    """The personality a template or an agent names; True when it resolves."""
    return ctx.ref(
        doc,
        ("personality",),
        kind="Personality",
        name=name,
        known=ctx.project.personalities,
        noun="personality",
    )


def _check_teams(ctx: CheckContext) -> None:
    p = ctx.project
    for doc in ctx.docs("Team"):
        team = doc.spec
        assert isinstance(team, Team)
        specializations = {m.specialization for m in team.members}
        primary_at: int | None = None
        for i, member in enumerate(team.members):
            ctx.ref(
                doc,
                ("members", i, "agent"),
                kind="Agent",
                name=member.agent,
                known=p.agents,
                noun="agent",
            )
            if member.role == "primary":
                if primary_at is None:
                    primary_at = i
                else:
                    first = doc.position_of(("members", primary_at, "role"))
                    ctx.report(
                        doc,
                        ("members", i, "role"),
                        "team.primary",
                        f"a team has one primary member; {team.members[primary_at].agent!r} "
                        f"is already primary (line {first.line})",
                    )
            for j, trigger in enumerate(member.handoff_triggers):
                _check_target(
                    ctx,
                    doc,
                    ("members", i, "handoff_triggers", j, "target"),
                    target=trigger.target,
                    specializations=specializations,
                    team=team.name,
                )
        if primary_at is None:
            ctx.report(
                doc,
                ("members",),
                "team.primary",
                "no member has role 'primary' (the member that starts every session)",
            )
        if team.workflow.escalation_path is not None:
            ctx.ref(
                doc,
                ("workflow", "escalation_path"),
                kind="EscalationPath",
                name=team.workflow.escalation_path,
                known=p.escalation_paths,
                noun="escalation path",
            )


def _check_escalation_paths(ctx: CheckContext) -> None:
    p = ctx.project
    # A team that failed to load may hold the trigger: do not guess.
    teams_incomplete = ctx.may_be_missing("Team") or any(a.startswith("team.") for a in ctx.skip)
    for doc in ctx.docs("EscalationPath"):
        path_spec = doc.spec
        assert isinstance(path_spec, EscalationPath)
        teams = [t for t in p.teams.values() if t.workflow.escalation_path == path_spec.name]
        trigger_teams = teams or list(p.teams.values())
        triggers = sorted(
            {trig.name for t in trigger_teams for m in t.members for trig in m.handoff_triggers}
        )
        for i, level in enumerate(path_spec.levels):
            for k, channel in enumerate(level.notify):
                ctx.ref(
                    doc,
                    ("levels", i, "notify", k),
                    kind="Channel",
                    name=channel,
                    known=p.channels,
                    noun="channel",
                )
            for team in teams:
                _check_target(
                    ctx,
                    doc,
                    ("levels", i, "target"),
                    target=level.target,
                    specializations={m.specialization for m in team.members},
                    team=team.name,
                )
            trigger = level.when.trigger
            if trigger is not None and trigger not in triggers and not teams_incomplete:
                hint = did_you_mean(trigger, triggers)
                users = ", ".join(repr(t.name) for t in teams)
                scope = (
                    f"team {users}"
                    if len(teams) == 1
                    else (f"teams {users}" if teams else "any team")
                )
                ctx.report(
                    doc,
                    ("levels", i, "when", "trigger"),
                    "ref.trigger",
                    f"no handoff trigger {trigger!r} in {scope}{hint}",
                )


def _check_pool_members(ctx: CheckContext) -> None:
    p = ctx.project
    member_of: dict[str, tuple[str, SpecDocument, Path]] = {}
    for doc in ctx.docs("ResourcePool"):
        pool = doc.spec
        assert isinstance(pool, ResourcePool)
        for i, agent in enumerate(pool.agents):
            path: Path = ("agents", i)
            if not ctx.ref(doc, path, kind="Agent", name=agent, known=p.agents, noun="agent"):
                continue
            first = member_of.get(agent)
            if first is not None:
                where = first[1].position_of(first[2])
                ctx.report(
                    doc,
                    path,
                    "pool.membership",
                    f"agent {agent!r} is already in pool {first[0]!r} ({where}); "
                    "an agent belongs to at most one pool",
                )
            else:
                member_of[agent] = (pool.name, doc, path)


def _check_alerts(ctx: CheckContext) -> None:
    p = ctx.project
    subjects: tuple[tuple[str, str, Collection[str]], ...] = (
        ("agent", "Agent", p.agents),
        ("team", "Team", p.teams),
        ("pool", "ResourcePool", p.pools),
    )
    for doc in ctx.docs("Alert"):
        alert = doc.spec
        assert isinstance(alert, Alert)
        for field_name, kind, known in subjects:
            value = getattr(alert, field_name)
            if value is not None:
                ctx.ref(doc, (field_name,), kind=kind, name=value, known=known, noun=field_name)
        for k, channel in enumerate(alert.notify):
            ctx.ref(
                doc,
                ("notify", k),
                kind="Channel",
                name=channel,
                known=p.channels,
                noun="channel",
            )


def _check_scenarios(ctx: CheckContext) -> None:
    p = ctx.project
    for doc in ctx.docs("Scenario"):
        scenario = doc.spec
        assert isinstance(scenario, Scenario)
        if scenario.team is not None:
            ctx.ref(doc, ("team",), kind="Team", name=scenario.team, known=p.teams, noun="team")
        if scenario.agent is not None:
            ctx.ref(
                doc, ("agent",), kind="Agent", name=scenario.agent, known=p.agents, noun="agent"
            )
