"""Plan renderers: text like Terraform's and a stable JSON document (alembic's `render`).

Role in the flow: `compute_plan` -> Plan -> *render* (here) | execute (`apply.executor`). One
function per op type and per format, chosen through a dispatch table, so a new op is one function
per renderer.

Invariants:
  - Pure: no I/O. Output is deterministic; JSON is byte-identical for identical plans.
  - Every string value shown goes through `secrets.mask`: plans show `${VAR}` references, never
    values. Colour codes appear only when the caller asks for them (the CLI does on a TTY).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from typing import Any

from runner.plan.before_after import before_after
from runner.plan.diff import FieldChange, format_path
from runner.plan.essence import compute_essence, strip_echoes
from runner.plan.ops import (
    AdoptAgent,
    Conflict,
    CreateAgent,
    CreateResource,
    DeleteAgent,
    DeleteResource,
    Drift,
    Op,
    Plan,
    RemoveDuplicateVersion,
    UpdateAgent,
    UpdateResource,
    op_address,
    op_diff,
    op_foundry_name,
    op_kind,
)
from runner.spec.secrets import mask, mask_value

__all__ = ["FORMAT_VERSION", "render_json", "render_summary", "render_text"]

FORMAT_VERSION = 1
_LONG_TEXT = 80  # strings longer than this, or with a newline, are shown as a line diff
_COLOURS = {"+": "\033[32m", "~": "\033[33m", "-": "\033[31m", "!": "\033[35m", "=": "\033[36m"}
_RESET = "\033[0m"


# ---------------------------------------------------------------- values and field diffs


def _value(value: Any) -> str:
    value = mask_value(value)
    if isinstance(value, str):
        if "\n" in value or len(value) > _LONG_TEXT:
            first = value.splitlines()[0] if value else ""
            lines = value.count("\n") + 1
            count = f"{lines} line{'' if lines == 1 else 's'}"
            return json.dumps(first[:_LONG_TEXT] + "…", ensure_ascii=False) + f" ({count})"
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _is_long(value: Any) -> bool:
    return isinstance(value, str) and ("\n" in value or len(value) > _LONG_TEXT)


def _line_diff(old: str, new: str, indent: str) -> list[str]:
    """A compact unified diff of two texts: changed lines with one line of context."""
    lines = difflib.unified_diff(mask(old).splitlines(), mask(new).splitlines(), lineterm="", n=1)
    out: list[str] = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            out.append(f"{indent}  …")
        else:
            out.append(f"{indent}  {line[:1] or ' '} {line[1:]}")
    return out


def _change_lines(change: FieldChange, indent: str) -> list[str]:
    path = change.dotted
    if change.op == "add":
        return [f"{indent}+ {path} = {_value(change.new)}"]
    if change.op == "remove":
        return [f"{indent}- {path} = {_value(change.old)}"]
    if (_is_long(change.old) and _is_long(change.new)) or (
        isinstance(change.old, str) and isinstance(change.new, str) and _is_long(change.new)
    ):
        return [f"{indent}~ {path}:", *_line_diff(str(change.old), str(change.new), indent)]
    return [f"{indent}~ {path}: {_value(change.old)} -> {_value(change.new)}"]


def _diff_lines(diff: tuple[FieldChange, ...], indent: str = "      ") -> list[str]:
    lines: list[str] = []
    for change in diff:
        lines.extend(_change_lines(change, indent))
    return lines


_IDENTITY_FIELDS = frozenset({"apiVersion", "kind", "name"})


def _leaves(value: Any, path: tuple[str, ...]) -> list[FieldChange]:
    if isinstance(value, dict) and value:
        out: list[FieldChange] = []
        for key in sorted(value):
            out.extend(_leaves(value[key], (*path, key)))
        return out
    return [FieldChange("add", path, None, value)]


def _created_lines(value: dict[str, Any]) -> list[str]:
    """The fields of a new resource, one line per leaf (identity fields are in the title)."""
    shown = strip_echoes({k: v for k, v in value.items() if k not in _IDENTITY_FIELDS})
    return _diff_lines(tuple(_leaves(shown, ())))


# ---------------------------------------------------------------- text, one function per op


def _text_create_agent(op: CreateAgent) -> list[str]:
    d = op.desired
    essence = compute_essence(definition=d.definition, description=d.description, metadata={})
    return [
        f"  + {d.address} will be created (Foundry agent {d.foundry_name})",
        *_created_lines(essence),
    ]


def _text_update_agent(op: UpdateAgent) -> list[str]:
    d = op.desired
    return [
        f"  ~ {d.address} will get a new version (Foundry agent {d.foundry_name}, "
        f"latest version {op.base_version})",
        *_diff_lines(op.diff),
    ]


def _text_delete_agent(op: DeleteAgent) -> list[str]:
    if op.in_foundry:
        return [
            f"  - {op.address} will be destroyed (Foundry agent {op.foundry_name}, all versions)"
        ]
    return [f"  - {op.address} will be forgotten (Foundry agent {op.foundry_name} is already gone)"]


def _text_drift(op: Drift) -> list[str]:
    d = op.desired
    seen = (
        f"Foundry has version {op.live_version}, runner applied version {op.applied_version or '?'}"
    )
    if op.resolution == "refresh":
        head = f"  ! {d.address} drifted: {seen}; the live version will be recorded (refresh-only)"
        return [head]
    also = " and the spec changed" if op.spec_changed else ""
    return [
        f"  ! {d.address} drifted: {seen}{also}; apply reverts it to the spec as a new version "
        f"(Foundry agent {d.foundry_name})",
        *_diff_lines(op.diff),
    ]


def _text_adopt(op: AdoptAgent) -> list[str]:
    return [
        f"  = {op.desired.address} already matches Foundry agent {op.desired.foundry_name} "
        f"version {op.version}; it will be recorded"
    ]


def _text_remove_duplicate(op: RemoveDuplicateVersion) -> list[str]:
    return [
        f"  - duplicate version {op.remove} of agent {op.foundry_name} will be removed "
        f"(same definition as version {op.keep})"
    ]


def _text_create_resource(op: CreateResource) -> list[str]:
    return [f"  + {op.desired.address} will be created", *_created_lines(dict(op.desired.body))]


def _text_update_resource(op: UpdateResource) -> list[str]:
    return [f"  ~ {op.desired.address} will be updated", *_diff_lines(op.diff)]


def _text_delete_resource(op: DeleteResource) -> list[str]:
    return [f"  - {op.address} will be destroyed"]


_TEXT: dict[type[Any], Callable[[Any], list[str]]] = {
    CreateAgent: _text_create_agent,
    UpdateAgent: _text_update_agent,
    DeleteAgent: _text_delete_agent,
    Drift: _text_drift,
    AdoptAgent: _text_adopt,
    RemoveDuplicateVersion: _text_remove_duplicate,
    CreateResource: _text_create_resource,
    UpdateResource: _text_update_resource,
    DeleteResource: _text_delete_resource,
}


def render_summary(plan: Plan) -> str:
    s = plan.summary
    if not plan.ops:
        return "No changes. Foundry and the registry match the specs."
    line = f"Plan: {s['add']} to add, {s['change']} to change, {s['destroy']} to destroy."
    extras = []
    if s["drift"]:
        extras.append(f"{s['drift']} drifted")
    if s["adopt"]:
        extras.append(f"{s['adopt']} to record without a Foundry change")
    if s["duplicates"]:
        plural = "s" if s["duplicates"] != 1 else ""
        extras.append(f"{s['duplicates']} duplicate version{plural} to remove")
    if extras:
        line += " (" + ", ".join(extras) + ")"
    return line


def _colour(line: str) -> str:
    stripped = line.lstrip()
    code = _COLOURS.get(stripped[:1])
    return f"{code}{line}{_RESET}" if code else line


def _conflict_line(conflict: Conflict) -> str:
    return f"  ✗ {conflict.address}: {conflict.message}"


def render_text(plan: Plan, *, colour: bool = False) -> str:
    """The plan as a human reads it, ending with the summary line."""
    lines: list[str] = []
    title = "refresh-only plan" if plan.refresh_only else "plan"
    protected = " (protected)" if plan.protected else ""
    if plan.ops:
        lines.append(f"runner {title} for environment {plan.env!r}{protected}:")
        lines.append("")
        for op in plan.ops:
            lines.extend(_TEXT[type(op)](op))
        lines.append("")
    if plan.unmanaged:
        lines.append("Not managed by runner (left alone; `runner import NAME` adopts one):")
        lines.extend(
            f"  ? {u.foundry_name} (version {u.version}"
            + (f", runner project {u.project!r})" if u.project else ")")
            for u in plan.unmanaged
        )
        lines.append("")
    if plan.conflicts:
        lines.append("Errors:")
        lines.extend(_conflict_line(c) for c in plan.conflicts)
        lines.append("")
    lines.append(render_summary(plan))
    text = "\n".join(mask(line) for line in lines) + "\n"
    if colour:
        text = "\n".join(_colour(line) for line in text.split("\n"))
    return text


# ---------------------------------------------------------------- JSON


def _json_change(op: Op) -> dict[str, Any]:
    change: dict[str, Any] = {
        "address": op_address(op),
        "action": op.action,
        "kind": op_kind(op),
        "foundry_name": op_foundry_name(op),
        "diff": [
            {"op": c.op, "path": format_path(c.path), "old": c.old, "new": c.new}
            for c in op_diff(op)
        ],
    }
    change["before"], change["after"] = before_after(op)
    if isinstance(op, UpdateAgent):
        change["base_version"] = op.base_version
    elif isinstance(op, Drift):
        change.update(
            live_version=op.live_version,
            applied_version=op.applied_version,
            spec_changed=op.spec_changed,
            resolution=op.resolution,
        )
    elif isinstance(op, AdoptAgent):
        change["version"] = op.version
    elif isinstance(op, DeleteAgent):
        change["in_foundry"] = op.in_foundry
    elif isinstance(op, RemoveDuplicateVersion):
        change.update(version=op.remove, keep_version=op.keep)
    return change


def render_json_document(plan: Plan) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "environment": plan.env,
        "refresh_only": plan.refresh_only,
        "protected": plan.protected,
        "changes": [_json_change(op) for op in plan.ops],
        "unmanaged": [
            {"foundry_name": u.foundry_name, "version": u.version}
            | ({"project": u.project} if u.project else {})
            for u in plan.unmanaged
        ],
        "errors": [
            {"address": c.address, "foundry_name": c.foundry_name, "message": c.message}
            for c in plan.conflicts
        ],
        "summary": plan.summary,
        "fingerprint": plan.fingerprint,
        "inputs": {
            "specs": plan.desired_fingerprint,
            "foundry": plan.actual_fingerprint,
            "registry": plan.applied_fingerprint,
        },
    }
    masked: dict[str, Any] = mask_value(document)
    return masked


def render_json(plan: Plan) -> str:
    """The plan as a stable JSON document (sorted keys, 2-space indent, trailing newline)."""
    return (
        json.dumps(render_json_document(plan), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )
