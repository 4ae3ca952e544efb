"""Semantic checks over a loaded Project: the rules no single document can enforce alone.

Runs after `runner.spec.loader` (which has already checked each document against its model) and
before planning. `check_project` is pure: it reads the Project, renders every agent in every
environment through `runner.spec.render`, and returns problems; it never raises for bad specs
and never resolves a `${VAR}`.

The concerns, one module each, run in this order over one `context.CheckContext`:
  `references`  every name used is declared and fits where it is used (`ref.*`, `team.primary`,
                `pool.membership`);
  `configuration` declared preferences and features, and the values environments and
                workspaces set for them (`config.*`);
  `foundry`     Foundry's rules: agent names per environment, required tool keys;
  `values`      pool weights and ranges, one default environment, durations, regexes;
  `renders`     every agent renders in every environment (`render.template`).
A concern module imports `context` and the spec modules, never another concern.

Every problem sits at the exact position of the offending value (`doc.position_of(path)`), and an
unknown name suggests the closest known one. References to documents that exist but failed to
load (`skip`, from `LoadResult.invalid`) are not reported again.
"""

from __future__ import annotations

from collections.abc import Collection

from runner.spec.checks import configuration, context, foundry, references, renders, values
from runner.spec.project import Problem, Project

__all__ = ["check_project"]


def check_project(project: Project, *, skip: Collection[str] = frozenset()) -> list[Problem]:
    """Every cross-document problem of `project`, each at the position of the offending value.

    `skip` holds addresses of documents that exist but failed to load: references to them are
    not reported as unknown.
    """
    ctx = context.CheckContext(project, skip)
    broken_agents = references.check_references(ctx)
    configuration.check_configuration(ctx, broken_agents)
    foundry.check_foundry_rules(ctx)
    values.check_values(ctx)
    renders.check_renders(ctx, broken_agents)
    return ctx.problems
