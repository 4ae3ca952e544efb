"""Dynamic configuration that must fit: declared preferences and features, and the values an
Environment or a Workspace sets for them.

Role in the flow: a concern `check_project` runs after the references. A preference's `default`
fits its `values` or JSON `schema`, and the schema is one (`config.value`, `config.schema`); a
feature's `tools` name a function tool (by `name`) or a server-side tool (by `type`) of each
agent that has the feature (`config.tool`); every preference or feature an Environment or a
Workspace sets is declared by some Template or Agent and its value fits each declaration
(`config.unknown`, `config.value`); a Workspace never switches a feature that gates
server-side tools, which are part of the agent version (`config.fixed`); no two Workspaces
overlay the same workspace id (`name.duplicate`).

Invariant: the checks read declarations as written (Template and Agent documents), so a
workspace is checked against every agent without rendering one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.spec.checks.context import CheckContext
from runner.spec.models import (
    ADDRESS_PREFIX,
    Agent,
    Environment,
    Feature,
    Preference,
    Template,
    Workspace,
    address_of,
)
from runner.spec.preference_values import schema_problem, value_problem
from runner.spec.project import Path, SpecDocument
from runner.spec.suggest import did_you_mean

__all__ = ["check_configuration"]

_Declarations = dict[str, list[tuple[Template | Agent, Any]]]


def check_configuration(ctx: CheckContext, broken_agents: set[str]) -> None:
    """Every configuration problem of the project (agents in `broken_agents` are skipped)."""
    for kind in ("Template", "Agent"):
        for doc in ctx.docs(kind):
            spec = doc.spec
            assert isinstance(spec, Template | Agent)
            for name, pref in (spec.preferences or {}).items():
                _check_preference(ctx, doc, name, pref)
    # What environments and workspaces may set: declared by any template or agent of the
    # project (all of them, also when a reload checks only the agents a change touched).
    prefs: _Declarations = {}
    features: _Declarations = {}
    project = ctx.project
    declaring: list[Template | Agent] = [*project.templates.values(), *project.agents.values()]
    for spec in declaring:
        for name, pref in (spec.preferences or {}).items():
            prefs.setdefault(name, []).append((spec, pref))
        for name, feature in (spec.features or {}).items():
            features.setdefault(name, []).append((spec, feature))
    for doc in ctx.docs("Agent"):
        if doc.spec.name not in broken_agents:
            _check_feature_tools(ctx, doc)
    for doc in ctx.docs("Environment"):
        env = doc.spec
        assert isinstance(env, Environment)
        _check_values(ctx, doc, env.preferences, env.features, prefs, features, workspace=False)
    owners: dict[str, SpecDocument] = {}
    for doc in ctx.docs("Workspace"):
        workspace = doc.spec
        assert isinstance(workspace, Workspace)
        _check_values(
            ctx, doc, workspace.preferences, workspace.features, prefs, features, workspace=True
        )
        first = owners.setdefault(workspace.id, doc)
        if first is not doc:
            ctx.report(
                doc,
                ("workspace_id",) if workspace.workspace_id else ("name",),
                "name.duplicate",
                f"workspace {workspace.id!r} already has an overlay ({first.position}); "
                "merge the two",
            )


def _check_preference(ctx: CheckContext, doc: SpecDocument, name: str, pref: Preference) -> None:
    path: Path = ("preferences", name)
    if pref.schema_ is not None:
        problem = schema_problem(pref.schema_)
        if problem is not None:
            ctx.report(doc, (*path, "schema"), "config.schema", f"preference {name!r}: {problem}")
            return
    if pref.has_default:
        problem = value_problem(pref, pref.default)
        if problem is not None:
            ctx.report(
                doc, (*path, "default"), "config.value", f"preference {name!r} default: {problem}"
            )


def _check_feature_tools(ctx: CheckContext, doc: SpecDocument) -> None:
    """Each feature of the agent (its own or its template's) names one of the agent's tools."""
    agent = doc.spec
    assert isinstance(agent, Agent)
    template = ctx.project.templates.get(agent.template or "")
    tools = agent.tools if agent.tools is not None else (template.tools if template else None)
    names = {str(getattr(t, "name", "")) for t in tools or () if t.type == "function"}
    types = {t.type for t in tools or () if t.type != "function"}
    declared: dict[str, tuple[SpecDocument, Feature]] = {}
    if template is not None:
        owner = ctx.project.document(address_of("Template", template.name))
        for name, feature in (template.features or {}).items():
            if owner is not None:
                declared[name] = (owner, feature)
    for name, feature in (agent.features or {}).items():
        declared[name] = (doc, feature)
    for name, (owner, feature) in declared.items():
        for index, tool in enumerate(feature.tools):
            if tool in names or tool in types:
                continue
            known = sorted(names | types)
            hint = did_you_mean(tool, known)
            listing = ", ".join(known) or "none"
            ctx.report(
                owner,
                ("features", name, "tools", index),
                "config.tool",
                f"feature {name!r}: agent {agent.name!r} has no tool {tool!r}{hint} (its tools: "
                f"{listing}; a function tool by its name, a server-side tool by its type)",
            )


def _check_values(
    ctx: CheckContext,
    doc: SpecDocument,
    pref_values: Mapping[str, Any],
    feature_values: Mapping[str, bool],
    prefs: _Declarations,
    features: _Declarations,
    *,
    workspace: bool,
) -> None:
    for name, value in pref_values.items():
        path: Path = ("preferences", name)
        declared = prefs.get(name)
        if not declared:
            _unknown(ctx, doc, path, "preference", name, prefs)
            continue
        for owner, pref in declared:
            problem = value_problem(pref, value)
            if problem is not None:
                ctx.report(
                    doc,
                    path,
                    "config.value",
                    f"preference {name!r} as {_address(owner)} declares it: {problem}",
                )
                break
    for name in feature_values:
        path = ("features", name)
        declared_features = features.get(name)
        if not declared_features:
            _unknown(ctx, doc, path, "feature", name, features)
            continue
        if not workspace:
            continue
        for owner, feature in declared_features:
            server_side = _server_side(ctx, owner, feature)
            if server_side:
                ctx.report(
                    doc,
                    path,
                    "config.fixed",
                    f"feature {name!r} ({_address(owner)}) switches server-side tools "
                    f"({', '.join(server_side)}), which are part of the agent version: set it "
                    "per Environment (`features:`), or give the workspace its own agent",
                )
                break


def _address(spec: Template | Agent) -> str:
    return address_of(type(spec).__name__, spec.name)


def _server_side(ctx: CheckContext, spec: Template | Agent, feature: Feature) -> list[str]:
    """The feature's tools that are server-side tool types for the declaring template or agent
    (or an agent built on the declaring template)."""
    specs: list[Template | Agent] = []
    if isinstance(spec, Template):
        specs = [spec, *(a for a in ctx.project.agents.values() if a.template == spec.name)]
    elif isinstance(spec, Agent):
        template = ctx.project.templates.get(spec.template or "")
        specs = [spec] if spec.tools is not None or template is None else [template]
    types = {t.type for s in specs for t in s.tools or () if t.type != "function"}
    return [t for t in feature.tools if t in types]


def _declarations_incomplete(ctx: CheckContext) -> bool:
    """Whether a template or agent failed to load (it may declare what looks undeclared)."""
    prefixes = tuple(f"{ADDRESS_PREFIX[kind]}." for kind in ("Template", "Agent"))
    return (
        ctx.may_be_missing("Template")
        or ctx.may_be_missing("Agent")
        or any(a.startswith(prefixes) for a in ctx.skip)
    )


def _unknown(
    ctx: CheckContext,
    doc: SpecDocument,
    path: Path,
    noun: str,
    name: str,
    declared: _Declarations,
) -> None:
    if _declarations_incomplete(ctx):
        return  # a template or agent that failed to load may declare it: unknown, not wrong
    hint = did_you_mean(name, sorted(declared))
    ctx.report(
        doc,
        path,
        "config.unknown",
        f"no Template or Agent declares a {noun} {name!r}{hint}; declare it under "
        f"'{noun}s:' or remove it here",
    )
