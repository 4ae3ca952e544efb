"""Foundry's own rules, checked before anything is sent: agent names and tool keys.

Role in the flow: the second concern `check_project` runs. Every agent's Foundry name (the
environment's `name_prefix` plus the spec name) must be a valid Foundry agent name in every
environment (`name.foundry`), and a tool of a type runner knows must have Foundry's wire shape
(`tool.required` for a missing key, `tool.shape` for a bad value; the shapes are in `tools`).
Foundry's naming rule itself is `runner.providers.base.AGENT_NAME_RE`, the one the local store
enforces too.

Invariant: a `name_prefix` holding `${` is skipped (its value is only known when the environment
is used, and validate never resolves secrets).
"""

from __future__ import annotations

from runner.providers.base import AGENT_NAME_RE
from runner.spec.checks.context import CheckContext
from runner.spec.checks.tools import tool_problems
from runner.spec.models import Agent, Template, Tool
from runner.spec.project import SpecDocument

__all__ = ["check_foundry_rules", "foundry_name_problem"]


def foundry_name_problem(name: str) -> str | None:
    """Why `name` is not a valid Foundry agent name, or None when it is."""
    if AGENT_NAME_RE.fullmatch(name):  # valid: 1-63 allowed characters, well placed '-'
        return None
    if not name:
        return "it is empty"
    if len(name) > 63:
        return f"it is {len(name)} characters long (at most 63)"
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "-"))})
    if bad:
        return "it may only hold letters, digits and '-' (found " + ", ".join(map(repr, bad)) + ")"
    if not AGENT_NAME_RE.match(name):
        return "it must start and end with a letter or digit"
    return None


def check_foundry_rules(ctx: CheckContext) -> None:
    """Tool keys of templates and agents, and every agent's Foundry name per environment."""
    for doc in ctx.docs("Template"):
        template = doc.spec
        assert isinstance(template, Template)
        _check_tools(ctx, doc, template.tools)
    prefixes = _name_prefixes(ctx)
    for doc in ctx.docs("Agent"):
        agent = doc.spec
        assert isinstance(agent, Agent)
        _check_tools(ctx, doc, agent.tools)
        for env_name, prefix in prefixes:
            full = prefix + agent.name
            why = foundry_name_problem(full)
            if why is not None:
                where = f"in environment {env_name!r}" if env_name else "in Foundry"
                ctx.report(
                    doc,
                    ("name",),
                    "name.foundry",
                    f"Foundry name {full!r} {where} is invalid: {why}",
                )


def _name_prefixes(ctx: CheckContext) -> list[tuple[str, str]]:
    """(environment, name_prefix) pairs to check names with; prefixes holding `${` are skipped
    (their value is only known when the environment is used)."""
    envs = list(ctx.project.environments.values())
    if not envs:
        return [("", "")]
    return [(e.name, e.name_prefix) for e in envs if "${" not in e.name_prefix]


def _check_tools(ctx: CheckContext, doc: SpecDocument, tools: list[Tool] | None) -> None:
    for index, tool in enumerate(tools or ()):
        keys = tool.model_extra or {}
        for where, code, message in tool_problems(tool.type, keys):
            ctx.report(doc, ("tools", index, *where), code, message)
