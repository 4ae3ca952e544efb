"""The essence of an agent version: what runner compares, with server echoes stripped.

Role in the flow: the planner compares the *essence* of Foundry's latest version with the essence
of the desired agent (kopf's `diffbase` idea). Foundry may echo defaults it was never sent
(`tools: []`, `description: ""`, `metadata: null`, `None` fields) and adds server-managed fields;
those must never look like a change, or every plan would propose a new version.

Invariants:
  - `compute_essence` is pure and applied to *both* sides of a comparison, so stripping a value
    that equals a default is symmetric: a real change from or to that value still shows.
  - The `runner-hash` and `runner-project` metadata keys are bookkeeping, not content: they are
    left out of the essence (a version written before projects existed is not rewritten for it).
  - `temperature` and `top_p` are float32 on the service: both sides are compared at float32
    precision (`float32_value`), so an echo of 0.3 as 0.30000001192092896 is no change, while
    0.3 -> 0.31 still is.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from runner.providers.base import HASH_KEY, PROJECT_KEY

# Fields a prompt definition may carry that the server sets or echoes, never runner.
SERVER_MANAGED_FIELDS: frozenset[str] = frozenset(
    {"id", "object", "created_at", "updated_at", "version", "status"}
)


# Metadata keys that are bookkeeping, not content: never a reason for a new version.
_BOOKKEEPING: frozenset[str] = frozenset({HASH_KEY, PROJECT_KEY})

# Definition fields the service stores as float32 (spec PromptAgentDefinition).
FLOAT32_FIELDS: frozenset[str] = frozenset({"temperature", "top_p"})


def float32_value(value: Any) -> Any:
    """A number as the service keeps it: rounded to float32, then written with the fewest
    digits that give the same float32 (0.30000001192092896 and 0.3 both -> 0.3).

    Anything that is not a finite int/float (a bool, a string, None) is returned unchanged.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        single = struct.unpack("<f", struct.pack("<f", float(value)))[0]
    except OverflowError:  # beyond float32's range: not a value the service keeps
        return value
    for digits in range(1, 10):  # 9 significant digits always round-trip a float32
        shortest = float(f"{single:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", shortest))[0] == single:
            return shortest
    return single


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def strip_echoes(value: Any) -> Any:
    """`value` with None/empty values removed from every mapping, recursively."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in sorted(value):
            item = strip_echoes(value[key])
            if not _is_empty(item):
                out[str(key)] = item
        return out
    if isinstance(value, list | tuple):
        return [strip_echoes(item) for item in value]
    return value


def compute_definition_essence(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The definition without server-managed fields and echoed empty defaults."""
    kept = {
        k: float32_value(v) if k in FLOAT32_FIELDS else v
        for k, v in definition.items()
        if k not in SERVER_MANAGED_FIELDS
    }
    essence = strip_echoes(kept)
    assert isinstance(essence, dict)
    return essence


def compute_essence(
    *,
    definition: Mapping[str, Any],
    description: str | None,
    metadata: Mapping[str, str] | None,
) -> dict[str, Any]:
    """{definition, description, metadata} as compared by the planner (empty parts omitted)."""
    essence: dict[str, Any] = {"definition": compute_definition_essence(definition)}
    if description:
        essence["description"] = description
    meta = {k: v for k, v in sorted((metadata or {}).items()) if k not in _BOOKKEEPING}
    if meta:
        essence["metadata"] = meta
    return essence
