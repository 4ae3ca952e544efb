"""Each change's `before` and `after`, as Terraform's JSON plan gives them (`resource_changes`).

Role in the flow: `runner.plan.render.render_json_document` adds them to every change of a
`--format json` plan or a saved plan. `after` is what apply makes (an agent's essence: its
definition, description and user metadata; a registry resource's body), `before` what is there
now: for an update or a drift, `after` with the diff undone; for a create, null. A delete's
`before` is what the plan knows of the resource (its Foundry name, or kind and name); its
`after` is null. Values are masked like the rest of the plan.
"""

from __future__ import annotations

import copy
from typing import Any

from runner.plan.diff import FieldChange
from runner.plan.essence import compute_essence
from runner.plan.ops import (
    AdoptAgent,
    CreateAgent,
    CreateResource,
    DeleteAgent,
    DeleteResource,
    Drift,
    Op,
    RemoveDuplicateVersion,
    UpdateAgent,
    UpdateResource,
)

__all__ = ["before_after"]


def before_after(op: Op) -> tuple[Any, Any]:
    """(before, after) of one change; None where the resource does not exist."""
    if isinstance(op, CreateAgent | UpdateAgent | Drift | AdoptAgent):
        d = op.desired
        after = compute_essence(
            definition=d.definition, description=d.description, metadata=d.metadata
        )
        if isinstance(op, CreateAgent):
            return None, after
        if isinstance(op, AdoptAgent):
            return after, after
        return _undo(after, op.diff), after
    if isinstance(op, CreateResource):
        return None, dict(op.desired.body)
    if isinstance(op, UpdateResource):
        body = dict(op.desired.body)
        return _undo(body, op.diff), body
    if isinstance(op, DeleteAgent):
        return {"foundry_name": op.foundry_name, "in_foundry": op.in_foundry}, None
    if isinstance(op, RemoveDuplicateVersion):
        return {"foundry_name": op.foundry_name, "version": op.remove}, None
    if isinstance(op, DeleteResource):
        return {"kind": op.kind, "name": op.name}, None
    return None, None


def _undo(after: Any, diff: tuple[FieldChange, ...]) -> Any:
    """`after` with each change of `diff` reverted (last first, so list indexes stay right)."""
    before = copy.deepcopy(after)
    for change in reversed(diff):
        if not change.path:
            before = copy.deepcopy(change.old)
            continue
        parent = before
        try:
            for item in change.path[:-1]:
                parent = parent[item]
            key = change.path[-1]
            if change.op == "add":
                del parent[key]
            elif isinstance(parent, list) and change.op == "remove" and isinstance(key, int):
                parent.insert(key, copy.deepcopy(change.old))
            else:
                parent[key] = copy.deepcopy(change.old)
        except (KeyError, IndexError, TypeError):
            continue  # a path the essence does not hold: leave it as it is
    return before
