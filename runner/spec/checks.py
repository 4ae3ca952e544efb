"""Semantic checks over a loaded Project: the rules no single document can enforce alone.

Runs after `runner.spec.loader` (which has already checked each document against its model) and
before planning. `check_project` is pure: it reads the Project, renders every agent in every
environment through `runner.spec.render`, and returns problems; it never raises for bad specs
and never resolves a `${VAR}`.

Every problem sits at the exact position of the offending value (`doc.position_of(path)`), and an
unknown name suggests the closest known one. References to documents that exist but failed to
load (`skip`, from `LoadResult.invalid`) are not reported again.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from runner.spec.models import (
    Agent,
    Alert,
    Environment,
    EscalationPath,
    ResourcePool,
    Scenario,
    Team,
    Template,
    Tool,
    address_of,
    parse_duration,
)
from runner.spec.project import Path, Problem, Project, SpecDocument

__all__ = ["FOUNDRY_NAME_RE", "TOOL_REQUIRED_KEYS", "check_project", "foundry_name_problem"]

FOUNDRY_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
"""Foundry's rule for agent names: 1-63 letters, digits and '-', not starting or ending in '-'."""

TOOL_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "function": ("name", "parameters"),
    "file_search": ("vector_store_ids",),
    "bing_grounding": ("bing_grounding",),
}
"""Keys Foundry needs for the tool types runner knows; other types pass through unchecked."""

HUMAN = "human"
_WEIGHT_TOLERANCE = 1e-6


def foundry_name_problem(name: str) -> str | None:
    """Why `name` is not a valid Foundry agent name, or None when it is."""
    if FOUNDRY_NAME_RE.fullmatch(name):  # valid: 1-63 allowed characters, well placed '-'
        return None
    if not name:
        return "it is empty"
    if len(name) > 63:
        return f"it is {len(name)} characters long (at most 63)"
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "-"))})
    if bad:
        return "it may only hold letters, digits and '-' (found " + ", ".join(map(repr, bad)) + ")"
    if not FOUNDRY_NAME_RE.match(name):
        return "it must start and end with a letter or digit"
    return None


class _Checker:
    def __init__(self, project: Project, skip: Collection[str]) -> None:
        self.project = project
        self.skip = skip
        self.problems: list[Problem] = []
        self._by_kind: dict[str, list[SpecDocument]] | None = None

    # -- helpers

    def report(self, doc: SpecDocument, path: Path, code: str, message: str) -> None:
        label = f"{doc.kind} {doc.spec.name!r}"
        self.problems.append(Problem.at(doc.position_of(path), code, f"{label}: {message}"))

    def ref(
        self,
        doc: SpecDocument,
        path: Path,
        *,
        kind: str,
        name: str,
        known: Collection[str],
        noun: str,
    ) -> bool:
        """Report `name` if no `kind` document has it; True when it resolves (or is skipped)."""
        if name in known or address_of(kind, name) in self.skip:
            return True
        close = _close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listing = "" if close else (" (none declared)" if not known else "")
        self.report(doc, path, f"ref.{kind.lower()}", f"unknown {noun} {name!r}{hint}{listing}")
        return False

    def docs(self, kind: str) -> Iterator[SpecDocument]:
        by_kind = self._by_kind
        if by_kind is None:  # every check reads one kind: index the documents once
            by_kind = self._by_kind = {}
            for doc in self.project.documents:
                by_kind.setdefault(doc.kind, []).append(doc)
        return iter(by_kind.get(kind, ()))

    # -- checks

    def run(self) -> list[Problem]:
        broken_agents = self.check_agents_and_templates()
        self.check_teams()
        self.check_escalation_paths()
        self.check_pools()
        self.check_alerts()
        self.check_environments()
        self.check_scenarios()
        self.check_durations()
        self.check_renders(broken_agents)
        return self.problems

    def check_agents_and_templates(self) -> set[str]:
        """References, tools and Foundry names of agents; returns agents whose refs are broken."""
        p = self.project
        broken: set[str] = set()
        for doc in self.docs("Template"):
            spec = doc.spec
            assert isinstance(spec, Template)
            if spec.personality is not None:
                self.ref(
                    doc,
                    ("personality",),
                    kind="Personality",
                    name=spec.personality,
                    known=p.personalities,
                    noun="personality",
                )
            self.check_tools(doc, spec.tools)
        prefixes = self.name_prefixes()
        for doc in self.docs("Agent"):
            spec = doc.spec
            assert isinstance(spec, Agent)
            ok = True
            if spec.template is not None:
                ok = self.ref(
                    doc,
                    ("template",),
                    kind="Template",
                    name=spec.template,
                    known=p.templates,
                    noun="template",
                )
            if spec.personality is not None:
                ok = (
                    self.ref(
                        doc,
                        ("personality",),
                        kind="Personality",
                        name=spec.personality,
                        known=p.personalities,
                        noun="personality",
                    )
                    and ok
                )
            if not ok:
                broken.add(spec.name)
            self.check_tools(doc, spec.tools)
            for env_name, prefix in prefixes:
                full = prefix + spec.name
                why = foundry_name_problem(full)
                if why is not None:
                    where = f"in environment {env_name!r}" if env_name else "in Foundry"
                    self.report(
                        doc,
                        ("name",),
                        "name.foundry",
                        f"Foundry name {full!r} {where} is invalid: {why}",
                    )
        return broken

    def name_prefixes(self) -> list[tuple[str, str]]:
        """(environment, name_prefix) pairs to check names with; prefixes holding `${` are skipped
        (their value is only known when the environment is used)."""
        envs = list(self.project.environments.values())
        if not envs:
            return [("", "")]
        return [(e.name, e.name_prefix) for e in envs if "${" not in e.name_prefix]

    def check_tools(self, doc: SpecDocument, tools: list[Tool] | None) -> None:
        for index, tool in enumerate(tools or ()):
            required = TOOL_REQUIRED_KEYS.get(tool.type)
            if required is None:
                continue
            extra = tool.model_extra or {}
            missing = [k for k in required if k not in extra]
            if missing:
                self.report(
                    doc,
                    ("tools", index),
                    "tool.required",
                    f"a {tool.type} tool needs " + " and ".join(repr(m) for m in missing),
                )

    def check_teams(self) -> None:
        p = self.project
        for doc in self.docs("Team"):
            team = doc.spec
            assert isinstance(team, Team)
            specializations = {m.specialization for m in team.members}
            primary_at: int | None = None
            for i, member in enumerate(team.members):
                self.ref(
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
                        self.report(
                            doc,
                            ("members", i, "role"),
                            "team.primary",
                            f"a team has one primary member; {team.members[primary_at].agent!r} "
                            f"is already primary (line {first.line})",
                        )
                for j, trigger in enumerate(member.handoff_triggers):
                    self.check_target(
                        doc,
                        ("members", i, "handoff_triggers", j, "target"),
                        target=trigger.target,
                        specializations=specializations,
                        team=team.name,
                    )
            if primary_at is None:
                self.report(
                    doc,
                    ("members",),
                    "team.primary",
                    "no member has role 'primary' (the member that starts every session)",
                )
            if team.workflow.escalation_path is not None:
                self.ref(
                    doc,
                    ("workflow", "escalation_path"),
                    kind="EscalationPath",
                    name=team.workflow.escalation_path,
                    known=p.escalation_paths,
                    noun="escalation path",
                )

    def check_target(
        self,
        doc: SpecDocument,
        path: Path,
        *,
        target: str,
        specializations: Collection[str],
        team: str,
    ) -> None:
        if target == HUMAN or target in specializations:
            return
        close = _close_matches(target, sorted(specializations), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(repr(s) for s in sorted(specializations))
        self.report(
            doc,
            path,
            "ref.target",
            f"target {target!r} is not a specialization in team {team!r}{hint}; "
            f"use one of {known} or 'human'",
        )

    def check_escalation_paths(self) -> None:
        p = self.project
        # A team that failed to load may hold the trigger: do not guess.
        teams_incomplete = any(a.startswith("team.") for a in self.skip)
        for doc in self.docs("EscalationPath"):
            path_spec = doc.spec
            assert isinstance(path_spec, EscalationPath)
            teams = [t for t in p.teams.values() if t.workflow.escalation_path == path_spec.name]
            trigger_teams = teams or list(p.teams.values())
            triggers = sorted(
                {trig.name for t in trigger_teams for m in t.members for trig in m.handoff_triggers}
            )
            for i, level in enumerate(path_spec.levels):
                for k, channel in enumerate(level.notify):
                    self.ref(
                        doc,
                        ("levels", i, "notify", k),
                        kind="Channel",
                        name=channel,
                        known=p.channels,
                        noun="channel",
                    )
                for team in teams:
                    self.check_target(
                        doc,
                        ("levels", i, "target"),
                        target=level.target,
                        specializations={m.specialization for m in team.members},
                        team=team.name,
                    )
                trigger = level.when.trigger
                if trigger is not None and trigger not in triggers and not teams_incomplete:
                    close = _close_matches(trigger, triggers, n=1, cutoff=0.6)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    users = ", ".join(repr(t.name) for t in teams)
                    scope = (
                        f"team {users}"
                        if len(teams) == 1
                        else (f"teams {users}" if teams else "any team")
                    )
                    self.report(
                        doc,
                        ("levels", i, "when", "trigger"),
                        "ref.trigger",
                        f"no handoff trigger {trigger!r} in {scope}{hint}",
                    )

    def check_pools(self) -> None:
        p = self.project
        member_of: dict[str, tuple[str, SpecDocument, Path]] = {}
        for doc in self.docs("ResourcePool"):
            pool = doc.spec
            assert isinstance(pool, ResourcePool)
            for i, agent in enumerate(pool.agents):
                path: Path = ("agents", i)
                if not self.ref(doc, path, kind="Agent", name=agent, known=p.agents, noun="agent"):
                    continue
                first = member_of.get(agent)
                if first is not None:
                    where = first[1].position_of(first[2])
                    self.report(
                        doc,
                        path,
                        "pool.membership",
                        f"agent {agent!r} is already in pool {first[0]!r} ({where}); "
                        "an agent belongs to at most one pool",
                    )
                else:
                    member_of[agent] = (pool.name, doc, path)
            weights = pool.allocation.priority_weights
            total = weights.response_time + weights.throughput + weights.quality + weights.cost
            if abs(total - 1.0) > _WEIGHT_TOLERANCE:
                self.report(
                    doc,
                    ("allocation", "priority_weights"),
                    "value.weights",
                    f"priority_weights sum to {total:g}, not 1 (response_time "
                    f"{weights.response_time:g} + throughput {weights.throughput:g} + quality "
                    f"{weights.quality:g} + cost {weights.cost:g}; unset weights are 0.25)",
                )
            elastic = pool.allocation.elastic_limits
            self.ordered(
                doc,
                ("allocation", "elastic_limits"),
                ("min_memory_mb", elastic.min_memory_mb),
                ("max_memory_mb", elastic.max_memory_mb),
            )
            self.ordered(
                doc,
                ("allocation", "elastic_limits"),
                ("min_cpu_percent", elastic.min_cpu_percent),
                ("max_cpu_percent", elastic.max_cpu_percent),
            )
            scaling = pool.scaling
            self.ordered(
                doc,
                ("scaling",),
                ("min_instances", scaling.min_instances),
                ("max_instances", scaling.max_instances),
            )
            self.ordered(
                doc,
                ("scaling",),
                ("scale_down_threshold", scaling.scale_down_threshold),
                ("scale_up_threshold", scaling.scale_up_threshold),
                strict=True,
            )

    def ordered(
        self,
        doc: SpecDocument,
        base: Path,
        low: tuple[str, float | None],
        high: tuple[str, float | None],
        *,
        strict: bool = False,
    ) -> None:
        (low_name, low_value), (high_name, high_value) = low, high
        if low_value is None or high_value is None:
            return
        bad = low_value >= high_value if strict else low_value > high_value
        if bad:
            relation = "below" if strict else "at most"
            self.report(
                doc,
                (*base, low_name),
                "value.range",
                f"{low_name} ({low_value:g}) must be {relation} {high_name} ({high_value:g})",
            )

    def check_alerts(self) -> None:
        p = self.project
        subjects: tuple[tuple[str, str, Collection[str]], ...] = (
            ("agent", "Agent", p.agents),
            ("team", "Team", p.teams),
            ("pool", "ResourcePool", p.pools),
        )
        for doc in self.docs("Alert"):
            alert = doc.spec
            assert isinstance(alert, Alert)
            for field_name, kind, known in subjects:
                value = getattr(alert, field_name)
                if value is not None:
                    self.ref(
                        doc, (field_name,), kind=kind, name=value, known=known, noun=field_name
                    )
            for k, channel in enumerate(alert.notify):
                self.ref(
                    doc,
                    ("notify", k),
                    kind="Channel",
                    name=channel,
                    known=p.channels,
                    noun="channel",
                )

    def check_environments(self) -> None:
        first: SpecDocument | None = None
        for doc in self.docs("Environment"):
            env = doc.spec
            assert isinstance(env, Environment)
            if not env.default:
                continue
            if first is None:
                first = doc
                continue
            where = first.position_of(("default",))
            self.report(
                doc,
                ("default",),
                "env.default",
                f"environment {first.spec.name!r} is already the default ({where}); "
                "at most one environment is the default",
            )

    def check_scenarios(self) -> None:
        p = self.project
        for doc in self.docs("Scenario"):
            scenario = doc.spec
            assert isinstance(scenario, Scenario)
            if scenario.team is not None:
                self.ref(
                    doc, ("team",), kind="Team", name=scenario.team, known=p.teams, noun="team"
                )
            if scenario.agent is not None:
                self.ref(
                    doc, ("agent",), kind="Agent", name=scenario.agent, known=p.agents, noun="agent"
                )

    def check_durations(self) -> None:
        """Durations and regexes are checked by the models already; this guards the invariant
        the runtime relies on (`parse_duration` and `re.compile` cannot fail later)."""
        for doc in self.project.documents:
            for path, value in _strings_at(doc, _DURATION_PATHS.get(doc.kind, ())):
                try:
                    parse_duration(value)
                except ValueError as exc:
                    self.report(doc, path, "value.duration", str(exc))
            for path, value in _strings_at(doc, _REGEX_PATHS.get(doc.kind, ())):
                try:
                    re.compile(value)
                except re.error as exc:
                    self.report(doc, path, "value.regex", f"invalid regular expression: {exc}")

    def check_renders(self, broken_agents: set[str]) -> None:
        agents = [n for n in self.project.agents if n not in broken_agents]
        if not agents:
            return
        from runner.spec.render import PreparedAgent, prepare_agent
        from runner.spec.render_resolve import RenderError

        envs = list(self.project.environments.values()) or [self.project.environment()]
        seen: set[tuple[str, str, tuple[Any, ...], str]] = set()
        for name in agents:
            # Resolution and the checks before any text is rendered do not depend on the
            # environment: done once per agent, their error is reported as render_agent's would
            # be (for every environment, deduplicated below).
            prepared: PreparedAgent | None = None
            failure: RenderError | None = None
            try:
                prepared = prepare_agent(self.project, name)
            except RenderError as exc:
                failure = exc
            for env in envs:
                try:
                    if prepared is None:
                        assert failure is not None
                        raise failure
                    prepared.instructions(env)
                except RenderError as exc:
                    key = (exc.address, exc.message, tuple(exc.path), "")
                    if key in seen:
                        continue
                    seen.add(key)
                    doc = self.project.document(exc.address) or self.project.document(
                        address_of("Agent", name)
                    )
                    assert doc is not None
                    where = "".join(
                        f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path
                    ).lstrip(".")
                    line = f" (line {exc.line} of the text)" if exc.line is not None else ""
                    context = f"agent {name!r}, environment {env.name!r}"
                    subject = f"{where}{line}: " if where else ""
                    self.report(
                        doc,
                        tuple(exc.path),
                        "render.template",
                        f"{subject}{exc.message} (rendering {context})",
                    )


_DURATION_PATHS: dict[str, tuple[Path, ...]] = {
    "ResourcePool": (
        ("scaling", "cooldown"),
        ("monitoring", "interval"),
        ("scaling", "triggers", "*", "duration"),
    ),
    "Alert": (("window",),),
    "Channel": (("timeout",),),
    "Scenario": (("session", "idle_timeout"), ("steps", "*", "advance")),
}
_REGEX_PATHS: dict[str, tuple[Path, ...]] = {
    "Team": (("members", "*", "handoff_triggers", "*", "when", "pattern"),),
    "EscalationPath": (("levels", "*", "when", "pattern"),),
}


def _strings_at(doc: SpecDocument, patterns: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """(path, value) for the string values at `patterns` ('*' = every list item)."""
    data = doc.spec.model_dump(by_alias=True) if patterns else {}
    for pattern in patterns:
        stack: list[tuple[Path, Any]] = [((), data)]
        for step in pattern:
            following: list[tuple[Path, Any]] = []
            for path, value in stack:
                if step == "*" and isinstance(value, list):
                    following.extend(((*path, i), v) for i, v in enumerate(value))
                elif isinstance(value, dict) and value.get(step) is not None:
                    following.append(((*path, step), value[step]))
            stack = following
        for path, value in stack:
            if isinstance(value, str):
                yield path, value


def check_project(project: Project, *, skip: Collection[str] = frozenset()) -> list[Problem]:
    """Every cross-document problem of `project`, each at the position of the offending value.

    `skip` holds addresses of documents that exist but failed to load: references to them are
    not reported as unknown.
    """
    return _Checker(project, skip).run()


def _close_matches(word: str, candidates: list[str], *, n: int, cutoff: float) -> list[str]:
    """difflib.get_close_matches, imported only when a name is unknown (not on a valid run)."""
    import difflib

    return difflib.get_close_matches(word, candidates, n=n, cutoff=cutoff)
