"""JSON Schemas: committed files match the models, and they accept/reject what the models do."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from runner.spec.models import KINDS
from runner.spec.schema import COMBINED_SCHEMA, build_schemas, dump_schema, main

REPO = Path(__file__).resolve().parent.parent.parent
SCHEMAS = REPO / "schemas"
CONTRACT = Path("/work/shared/contract/specs")


def test_committed_schemas_are_up_to_date() -> None:
    built = build_schemas()
    assert sorted(built) == sorted([f"{k.lower()}.schema.json" for k in KINDS] + [COMBINED_SCHEMA])
    stale = [
        name
        for name, schema in built.items()
        if not (SCHEMAS / name).is_file()
        or (SCHEMAS / name).read_text(encoding="utf-8") != dump_schema(schema)
    ]
    assert stale == [], f"regenerate with: python -m runner.spec.schema  (stale: {stale})"


def test_main_writes_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(build_schemas())


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / COMBINED_SCHEMA).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _documents(folder: Path) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    for path in sorted(folder.rglob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


@pytest.mark.parametrize("folder", [CONTRACT, REPO / "specs"], ids=["contract", "example"])
def test_combined_schema_accepts_the_corpora(folder: Path) -> None:
    docs = _documents(folder) if folder.is_dir() else []
    if not docs:
        pytest.skip(f"{folder} not present")
    validator = _validator()
    for doc in docs:
        assert list(validator.iter_errors(doc)) == [], doc.get("name")


@pytest.mark.parametrize(
    "doc",
    [
        {
            "apiVersion": "runner/v1",
            "kind": "Agent",
            "name": "a",
            "model": "m",
            "instructions": "i",
            "temprature": 1,
        },
        {"apiVersion": "runner/v1", "kind": "Team", "name": "t", "members": []},
        {"apiVersion": "runner/v1", "kind": "Nope", "name": "x"},
        {"apiVersion": "runner/v2", "kind": "Channel", "name": "c", "type": "slack", "url": "u"},
        {
            "apiVersion": "runner/v1",
            "kind": "Alert",
            "name": "a",
            "agent": "x",
            "metric": "turns",
            "condition": "above",
            "threshold": 1,
            "window": "5 minutes",
        },
    ],
    ids=["unknown-field", "empty-members", "unknown-kind", "api-version", "duration"],
)
def test_combined_schema_rejects_what_the_models_reject(doc: dict[str, object]) -> None:
    assert list(_validator().iter_errors(doc)) != []


def test_tools_stay_open_but_documents_are_closed() -> None:
    agent = json.loads((SCHEMAS / "agent.schema.json").read_text())
    assert agent["additionalProperties"] is False
    assert agent["$defs"]["Tool"].get("additionalProperties") is True
