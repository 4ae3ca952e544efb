"""JSON Schemas for editors and CI, generated from the spec models (never written by hand).

`build_schemas()` returns `{file name: schema}`: one `<kind>.schema.json` per kind, and
`runner.schema.json`, which dispatches on `kind` (if/then per kind) so a single
`# yaml-language-server: $schema=../schemas/runner.schema.json` line serves files that hold
several kinds. `python -m runner.spec.schema [DIR]` writes them (default `schemas/`); the test
suite fails when the committed files are stale.

Invariants: schemas are strict where the models are (`additionalProperties: false` for
`extra="forbid"`; `Tool` stays open by design); output is deterministic (sorted keys, fixed
indentation), so regenerating an unchanged model gives byte-identical files. Cross-document
rules (references, Foundry names, templates) are only checked by `runner validate`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from runner.spec.models import KINDS, SUPPORTED_API_VERSIONS

__all__ = ["COMBINED_SCHEMA", "SCHEMA_ID_BASE", "build_schemas", "dump_schema", "main"]

COMBINED_SCHEMA = "runner.schema.json"
SCHEMA_ID_BASE = "https://runner.dev/schemas/"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _kind_file(kind: str) -> str:
    return f"{kind.lower()}.schema.json"


def build_schemas() -> dict[str, dict[str, Any]]:
    """Every schema file's content, keyed by file name."""
    schemas: dict[str, dict[str, Any]] = {}
    for kind, model in KINDS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schemas[_kind_file(kind)] = {
            "$schema": _DRAFT,
            "$id": SCHEMA_ID_BASE + _kind_file(kind),
            **schema,
        }
    _, combined_defs = models_json_schema(
        [(model, "validation") for model in KINDS.values()],
        by_alias=True,
        ref_template="#/$defs/{model}",
    )
    defs = combined_defs.get("$defs", {})
    schemas[COMBINED_SCHEMA] = {
        "$schema": _DRAFT,
        "$id": SCHEMA_ID_BASE + COMBINED_SCHEMA,
        "title": "runner spec document",
        "description": "Any runner document; the schema is chosen by `kind` "
        f"(apiVersion {', '.join(SUPPORTED_API_VERSIONS)}).",
        "type": "object",
        "required": ["apiVersion", "kind", "name"],
        "properties": {
            "apiVersion": {"enum": list(SUPPORTED_API_VERSIONS)},
            "kind": {"enum": list(KINDS)},
        },
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"$ref": f"#/$defs/{model.__name__}"},
            }
            for kind, model in KINDS.items()
        ],
        "$defs": defs,
    }
    return schemas


def dump_schema(schema: dict[str, Any]) -> str:
    """The exact text written for a schema (stable, so staleness is a byte comparison)."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    target = Path(args[0]) if args else Path("schemas")
    target.mkdir(parents=True, exist_ok=True)
    for name, schema in sorted(build_schemas().items()):
        (target / name).write_text(dump_schema(schema), encoding="utf-8")
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
