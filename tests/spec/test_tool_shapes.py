"""Tool wire shapes: every tool the real service accepted (recorded create_version bodies) passes
runner's checks and the published JSON Schema, and each rule refuses what it should."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runner.spec.checks.tools import tool_problems
from runner.spec.models import TOOL_REQUIRED_KEYS

RECORDINGS = Path(__file__).resolve().parent.parent / "providers" / "recordings"
SCHEMAS = Path(__file__).resolve().parent.parent.parent / "schemas"


def recorded_tools() -> list[dict[str, Any]]:
    tools = []
    for name in (
        "builtin_tools.json",
        "function_tool_conversation.json",
        "function_tool_previous_response.json",
    ):
        for exchange in json.loads((RECORDINGS / name).read_text(encoding="utf-8")):
            body = exchange["request"]["body"]
            if exchange["response"]["status"] == 200 and isinstance(body, dict):
                tools.extend((body.get("definition") or {}).get("tools") or [])
    return tools


TOOLS = recorded_tools()


def test_the_recordings_cover_every_type_runner_checks() -> None:
    types = {t["type"] for t in TOOLS}
    assert set(TOOL_REQUIRED_KEYS) <= types
    assert {"web_search", "web_search_preview", "code_interpreter"} <= types


@pytest.mark.parametrize("tool", TOOLS, ids=[t["type"] for t in TOOLS])
def test_what_the_service_accepted_passes(tool: dict[str, Any]) -> None:
    keys = {k: v for k, v in tool.items() if k != "type"}
    assert tool_problems(tool["type"], keys) == []
    schema = json.loads((SCHEMAS / "agent.schema.json").read_text(encoding="utf-8"))
    tool_schema = schema["$defs"]["Tool"]
    jsonschema.validate(tool, {**tool_schema, "$defs": schema["$defs"]})


@pytest.mark.parametrize(
    ("tool_type", "keys", "path", "code"),
    [
        ("function", {"name": "f", "parameters": {"type": "object"}}, (), "tool.required"),
        (
            "function",
            {"name": "f", "strict": False, "parameters": []},
            ("parameters",),
            "tool.shape",
        ),
        (
            "function",
            {"name": "f", "strict": True, "parameters": {"type": "object", "properties": {}}},
            ("parameters",),
            "tool.shape",
        ),
        (
            "bing_grounding",
            {"bing_grounding": {"search_configurations": []}},
            ("bing_grounding", "search_configurations"),
            "tool.shape",
        ),
        (
            "file_search",
            {"vector_store_ids": ["vs_1"], "max_num_results": 0},
            ("max_num_results",),
            "tool.shape",
        ),
        ("mcp", {"server_label": "x"}, (), "tool.shape"),
        ("openapi", {"openapi": {"name": "w", "spec": {}}}, ("openapi",), "tool.shape"),
        (
            "azure_ai_search",
            {"azure_ai_search": {"indexes": [{}]}},
            ("azure_ai_search", "indexes", 0),
            "tool.shape",
        ),
    ],
)
def test_each_rule_refuses_its_case(
    tool_type: str, keys: dict[str, Any], path: tuple[Any, ...], code: str
) -> None:
    problems = tool_problems(tool_type, keys)
    assert problems and problems[0][:2] == (path, code), problems


def test_the_schema_requires_the_keys_per_type() -> None:
    schema = json.loads((SCHEMAS / "agent.schema.json").read_text(encoding="utf-8"))
    tool_schema = {**schema["$defs"]["Tool"], "$defs": schema["$defs"]}
    with pytest.raises(jsonschema.ValidationError, match="strict"):
        jsonschema.validate({"type": "function", "name": "f", "parameters": {}}, tool_schema)
    jsonschema.validate({"type": "some_future_tool"}, tool_schema)


def test_preview_features_are_checked_where_written() -> None:
    from runner.spec.loader import load_text
    from runner.spec.models import Environment

    text = (
        "apiVersion: runner/v1\nkind: Environment\nname: prod\nprovider: foundry\n"
        "endpoint: https://a.services.ai.azure.com/api/projects/p\n"
        "preview_features:\n  - WorkflowAgents=V1Preview\n  - Workflow Agents\n"
    )
    result = load_text(text, file="env.yaml")
    assert [p.format()[:14] for p in result.problems] == ["env.yaml:8:5: "]
    assert "preview_features" in result.problems[0].message
    good = load_text(text.replace("  - Workflow Agents\n", ""), file="env.yaml")
    assert not good.problems
    env = good.documents[0].spec
    assert isinstance(env, Environment)
    assert env.preview_features == ["WorkflowAgents=V1Preview"]
