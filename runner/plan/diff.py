"""Field-level diffs: `(op, path, old, new)` over two JSON-like values (kopf's `diffs` shape).

Role in the flow: the planner attaches a diff to every update, drift and resource change; the
renderers show it (text: `~ definition.temperature: 0.2 -> 0.4`; JSON: a list of objects).

Invariants: pure and deterministic (mapping keys visited in sorted order); lists of equal length
are compared item by item, lists of different length are one change of the whole list; an empty
diff means the two values are equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

DiffOp = Literal["add", "change", "remove"]
PathItem = str | int


@dataclass(frozen=True)
class FieldChange:
    op: DiffOp
    path: tuple[PathItem, ...]
    old: Any = None
    new: Any = None

    @property
    def dotted(self) -> str:
        return format_path(self.path)


def format_path(path: tuple[PathItem, ...]) -> str:
    """`definition.tools[0].type` for ("definition", "tools", 0, "type")."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else item
    return out


def compute_diff(old: Any, new: Any, *, path: tuple[PathItem, ...] = ()) -> tuple[FieldChange, ...]:
    """Every difference between `old` and `new`, as changes at the deepest differing paths."""
    if old == new and type(old) is type(new):
        return ()
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        changes: list[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            if key not in new:
                changes.append(FieldChange("remove", (*path, key), old[key], None))
            elif key not in old:
                changes.append(FieldChange("add", (*path, key), None, new[key]))
            else:
                changes.extend(compute_diff(old[key], new[key], path=(*path, key)))
        return tuple(changes)
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        changes = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            changes.extend(compute_diff(a, b, path=(*path, index)))
        return tuple(changes)
    if old == new:  # 1 == 1.0: equal values of different numeric types are no change
        return ()
    if old is None:
        return (FieldChange("add", path, None, new),)
    if new is None:
        return (FieldChange("remove", path, old, None),)
    return (FieldChange("change", path, old, new),)
