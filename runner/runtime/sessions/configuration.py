"""A session's configuration: its preferences, feature toggles and workspace overlay, checked
when it starts and turned into the structured inputs of every request.

Role: admission (`runner.runtime.sessions.admission`) asks `SessionConfigs.admit` for the
effective configuration of a new session: for each agent of the session, its declared
preferences and features resolved by precedence (declared default < Environment < Workspace <
session), the function tools switched off, and the structured inputs its version is sent on
every turn (`runner.spec.render_session.SessionPlan.inputs`). The result is stored in the
session row (`SessionRow.config`) and fixed for the session's life, like its pinned versions.
The turn path asks `inputs_for` (what to send) and `tool_refusal` (the seam the function-call
loop asks before running a tool).

Invariants:
  - An unknown preference or feature, a value that does not fit its declaration, a missing
    required preference, or a feature that switches server-side tools (part of the agent
    version) is a `SessionConfigError` before anything is held; nothing varies per session
    without a declaration.
  - A session's values are bounded (`MAX_KEYS` names, `MAX_PREFERENCES_BYTES` of JSON).
  - Plans are built from what the runtime runs with (applied bodies first) once per agent spec
    and reused; an agent's configuration (and inputs) is computed once per distinct (plan,
    overlay, session values) and shared, read-only, by the sessions that have it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from runner.runtime.context import RuntimeContext
from runner.runtime.errors import SessionConfigError
from runner.runtime.sessions.applied import AppliedState
from runner.spec.models import Workspace
from runner.spec.preference_values import value_problem
from runner.spec.project import Position, Project, SpecDocument
from runner.spec.render import prepare_agent
from runner.spec.render_resolve import RenderError
from runner.spec.render_session import SessionPlan
from runner.state.sessions import SessionRow

__all__ = ["MAX_KEYS", "MAX_PREFERENCES_BYTES", "SessionConfigs", "public_configuration"]

MAX_KEYS = 64
MAX_PREFERENCES_BYTES = 8_192
_CACHE = 1024
_RUNTIME = Position("<runtime>", 1, 1)


def public_configuration(
    config: Mapping[str, Any], *, workspace: str | None = None
) -> dict[str, Any]:
    """A session's effective configuration as the API and events show it (no inputs);
    `workspace` is the session's, for a session nothing configures (an empty `config`)."""
    agents = config.get("agents") or {}
    return {
        "workspace": config.get("workspace", workspace),
        "overlay": config.get("overlay"),
        "preferences": dict(config.get("preferences") or {}),
        "features": dict(config.get("features") or {}),
        "disabled_tools": {
            name: list(entry.get("disabled_tools") or ())
            for name, entry in agents.items()
            if entry.get("disabled_tools")
        },
    }


class SessionConfigs:
    """Session configuration of one runtime (see the module docstring)."""

    def __init__(self, ctx: RuntimeContext, *, applied: AppliedState) -> None:
        self._ctx = ctx
        self._applied = applied
        # agent -> (the specs its plan was built from, the plan)
        self._plans: dict[str, tuple[tuple[Any, ...], SessionPlan | None]] = {}
        self._workspace_index: tuple[Any, dict[str, Workspace]] | None = None
        # (members, workspace, session values) -> (the plans and overlay it was made from, the
        # configuration): shared, read-only, by every session that has it
        self._configs: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], dict[str, Any]]] = (
            OrderedDict()
        )
        # (session, agent) -> the configuration of an agent that joined after the session began
        self._late: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        # (agent, plan, overlay, session values) -> (plan, overlay, the agent's configuration)
        self._entries: OrderedDict[tuple[Any, ...], tuple[Any, Any, dict[str, Any]]] = OrderedDict()

    # ------------------------------------------------------------ plans

    def plan(self, agent: str) -> SessionPlan | None:
        """The session plan of `agent` as the runtime runs it (None: nothing varies)."""
        declared = self._applied.declared
        spec = declared.agents.get(agent)
        if spec is None:
            return None
        template = declared.templates.get(spec.template or "")
        personality_name = spec.personality or (template.personality if template else None)
        personality = declared.personalities.get(personality_name or "")
        key = (spec, template, personality, *declared.workspaces.values())
        cached = self._plans.get(agent)
        if (
            cached is not None
            and len(cached[0]) == len(key)
            and all(a is b for a, b in zip(cached[0], key, strict=True))
        ):
            return cached[1]
        project = Project()
        for doc in key:
            if doc is not None:
                project.add(SpecDocument(spec=doc, position=_RUNTIME))
        try:
            plan = prepare_agent(project, agent).session_plan(self._ctx.env)
        except RenderError as exc:
            raise SessionConfigError(
                "invalid_configuration", f"agent.{agent}: cannot render: {exc}"
            ) from exc
        self._plans[agent] = (key, plan)
        return plan

    def workspace(self, workspace_id: str | None) -> Workspace | None:
        """The overlay of `workspace_id` (None: none declared)."""
        if workspace_id is None:
            return None
        declared = self._applied.declared.workspaces
        index = self._workspace_index
        if index is None or index[0] is not declared:
            index = self._workspace_index = (declared, {w.id: w for w in declared.values()})
        return index[1].get(workspace_id)

    # ------------------------------------------------------------ admission

    def admit(
        self,
        members: Sequence[str],
        *,
        workspace_id: str | None,
        preferences: Mapping[str, Any] | None,
        features: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """The effective configuration of a new session of `members` (see the module
        docstring); SessionConfigError when the session's values do not fit."""
        preferences = dict(preferences or {})
        features = dict(features or {})
        _check_bounds(preferences, features)
        plans = {m: self.plan(m) for m in members}
        key = (tuple(members), workspace_id, _frozen(preferences), _frozen(features))
        cached = self._configs.get(key)
        if cached is not None and all(
            a is b
            for a, b in zip(cached[0], (*plans.values(), self.workspace(workspace_id)), strict=True)
        ):
            self._configs.move_to_end(key)
            return cached[1]
        config = self._admit(plans, members, workspace_id, preferences, features)
        self._configs[key] = ((*plans.values(), self.workspace(workspace_id)), config)
        if len(self._configs) > _CACHE:
            self._configs.popitem(last=False)
        return config

    def _admit(
        self,
        plans: Mapping[str, SessionPlan | None],
        members: Sequence[str],
        workspace_id: str | None,
        preferences: Mapping[str, Any],
        features: Mapping[str, Any],
    ) -> dict[str, Any]:
        present = {m: p for m, p in plans.items() if p is not None}
        _check_known(present, preferences, features, members)
        overlay = self.workspace(workspace_id)
        agents: dict[str, Any] = {}
        merged_prefs: dict[str, Any] = {}
        merged_features: dict[str, bool] = {}
        for name, plan in plans.items():
            if plan is None:
                agents[name] = {}  # nothing varies for it: the turn path looks no further
                continue
            entry = self._agent_config(name, plan, overlay, preferences, features)
            agents[name] = entry
            for key, value in entry["preferences"].items():
                merged_prefs.setdefault(key, value)
            for key, value in entry["features"].items():
                merged_features.setdefault(key, value)
        if not present and overlay is None:
            return {}
        return {
            "workspace": workspace_id,
            "overlay": None if overlay is None else overlay.name,
            "preferences": merged_prefs,
            "features": merged_features,
            "agents": agents,
        }

    def _agent_config(
        self,
        agent: str,
        plan: SessionPlan,
        overlay: Workspace | None,
        preferences: Mapping[str, Any],
        features: Mapping[str, bool],
    ) -> dict[str, Any]:
        """The configuration of one agent of a session (shared, read-only: cached per distinct
        agent plan, overlay and session values)."""
        key = (agent, id(plan), id(overlay), _frozen(preferences), _frozen(features))
        cached = self._entries.get(key)
        if cached is not None and cached[0] is plan and cached[1] is overlay:
            self._entries.move_to_end(key)
            return cached[2]
        entry = self._compute_agent_config(agent, plan, overlay, preferences, features)
        self._entries[key] = (plan, overlay, entry)
        if len(self._entries) > _CACHE:
            self._entries.popitem(last=False)
        return entry

    def _compute_agent_config(
        self,
        agent: str,
        plan: SessionPlan,
        overlay: Workspace | None,
        preferences: Mapping[str, Any],
        features: Mapping[str, bool],
    ) -> dict[str, Any]:
        declared = plan.spec.preferences
        prefs = dict(plan.default_preferences)
        if overlay is not None:
            prefs.update((k, v) for k, v in overlay.preferences.items() if k in declared)
        for name, value in preferences.items():
            pref = declared.get(name)
            if pref is None:
                continue
            problem = value_problem(pref, value)
            if problem is not None:
                raise SessionConfigError(
                    "invalid_preferences", f"preference {name!r} (agent.{agent}): {problem}"
                )
            prefs[name] = value
        missing = [n for n in declared if n not in prefs]
        if missing:
            raise SessionConfigError(
                "invalid_preferences",
                f"preference {missing[0]!r} is required by agent.{agent}: set it in the "
                "session's preferences",
            )
        switchable = plan.session_features()
        toggles = {n: bool(plan.default_features.get(n, False)) for n in plan.spec.features}
        if overlay is not None:
            toggles.update((k, v) for k, v in overlay.features.items() if k in switchable)
        toggles.update((k, v) for k, v in features.items() if k in switchable)
        vars_ = dict(overlay.vars) if overlay is not None and overlay.vars else None
        try:
            inputs = plan.inputs(preferences=prefs, features=toggles, vars=vars_)
        except RenderError as exc:
            raise SessionConfigError(
                "invalid_preferences",
                f"agent.{agent}: its texts cannot render with this session's values: {exc}",
            ) from exc
        return {
            "preferences": prefs,
            "features": toggles,
            "disabled_tools": plan.spec.disabled_tools(toggles),
            "inputs": inputs,
        }

    # ------------------------------------------------------------ the turn path

    def inputs_for(self, row: SessionRow, agent: str) -> Mapping[str, Any] | None:
        """The structured inputs a request of `agent` in the session carries (None: none)."""
        agents = row.config.get("agents")
        entry = agents.get(agent) if agents else None
        if entry is None:
            if self.plan(agent) is None:
                return None
            entry = self._late_entry(row, agent)
        inputs: Mapping[str, Any] | None = entry.get("inputs")
        return inputs or None

    def tool_refusal(self, row: SessionRow, agent: str, tool: str) -> str | None:
        """None when `tool` may run for `agent` in the session; else the output the model gets
        instead (the function-call loop sends it back and never runs the tool)."""
        agents = row.config.get("agents")
        entry = agents.get(agent) if agents else None
        if entry is None and self.plan(agent) is not None:
            entry = self._late_entry(row, agent)
        if entry is None or tool not in (entry.get("disabled_tools") or ()):
            return None
        self._ctx.emit(
            "tool:refused",
            {"session_id": row.id, "agent": agent, "tool": tool, "reason": "feature_off"},
        )
        return (
            f"The tool {tool!r} is unavailable in this session (switched off); it was not run. "
            "Answer without it."
        )

    def _late_entry(self, row: SessionRow, agent: str) -> dict[str, Any]:
        """The configuration of an agent that joined after the session started (a router
        chose it), from the session's own values (computed again after a restart)."""
        found = self._late.get((row.id, agent))
        if found is not None:
            return found
        plan = self.plan(agent)
        assert plan is not None
        entry = self._agent_config(
            agent,
            plan,
            self.workspace(row.workspace_id),
            row.preferences,
            {k: v for k, v in row.features.items() if isinstance(v, bool)},
        )
        self._late[(row.id, agent)] = entry
        if len(self._late) > _CACHE:
            self._late.popitem(last=False)
        return entry


def _frozen(values: Mapping[str, Any]) -> Any:
    """A hashable form of a session's values (JSON text when they are not all scalars)."""
    try:  # the type too: True and 1 are equal in Python, not in JSON
        return frozenset((k, type(v), v) for k, v in values.items())
    except TypeError:
        return json.dumps(values, sort_keys=True, default=str)


def _check_bounds(preferences: Mapping[str, Any], features: Mapping[str, Any]) -> None:
    if len(preferences) > MAX_KEYS or len(features) > MAX_KEYS:
        raise SessionConfigError(
            "invalid_preferences", f"at most {MAX_KEYS} preferences and {MAX_KEYS} features"
        )
    try:
        size = len(json.dumps(preferences, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise SessionConfigError(
            "invalid_preferences", f"preferences must be JSON values: {exc}"
        ) from None
    if size > MAX_PREFERENCES_BYTES:
        raise SessionConfigError(
            "invalid_preferences", f"preferences: at most {MAX_PREFERENCES_BYTES} bytes of JSON"
        )
    for name, value in features.items():
        if not isinstance(value, bool):
            raise SessionConfigError(
                "invalid_features", f"feature {name!r}: on or off is true or false, not {value!r}"
            )


def _check_known(
    plans: Mapping[str, SessionPlan],
    preferences: Mapping[str, Any],
    features: Mapping[str, Any],
    members: Sequence[str],
) -> None:
    who = "the session's agents (" + ", ".join(f"agent.{m}" for m in members) + ")"
    known_prefs = sorted({n for p in plans.values() for n in p.spec.preferences})
    for name in preferences:
        if name not in known_prefs:
            raise SessionConfigError(
                "invalid_preferences",
                f"unknown preference {name!r}: {who} declare "
                + (", ".join(known_prefs) if known_prefs else "no preferences")
                + "; see `runner plan` or their specs",
            )
    switchable = {n for p in plans.values() for n in p.session_features()}
    known_features = sorted({n for p in plans.values() for n in p.spec.features})
    for name in features:
        if name not in known_features:
            raise SessionConfigError(
                "invalid_features",
                f"unknown feature {name!r}: {who} declare "
                + (", ".join(known_features) if known_features else "no features")
                + "; see `runner plan` or their specs",
            )
        if name not in switchable:
            raise SessionConfigError(
                "invalid_features",
                f"feature {name!r} switches server-side tools, which are part of the agent "
                "version: it is set per environment, not per session",
            )
