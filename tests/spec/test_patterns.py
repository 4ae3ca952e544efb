"""Patterns in specs run on RE2: `validate` names what RE2 cannot run at file:line:col, and a
preference schema's patterns cannot make a session's value backtrack (issue 9, finding 5)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from runner.cli.main import main
from runner.spec.models import Preference
from runner.spec.preference_values import schema_problem, value_problem

TEAM = """\
apiVersion: runner/v1
kind: Team
name: t
members:
  - agent: a
    specialization: s
    handoff_triggers:
      - name: slow
        when:
          pattern: '(a+)+$'
        target: s
      - name: back
        when:
          pattern: '(ab)\\1'
        target: s
---
apiVersion: runner/v1
kind: EscalationPath
name: p
levels:
  - level: 1
    target: human
    when:
      pattern: 'x(?<=x)y'
"""


def test_validate_reports_unsupported_syntax_at_file_line_col(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "team.yaml").write_text(TEAM)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--format", "json", "specs"]) == 1
    items = json.loads(capsys.readouterr().out)
    found = {(i["file"], i["line"], i["column"]): i["message"] for i in items}
    assert set(found) == {("specs/team.yaml", 14, 20), ("specs/team.yaml", 24, 16)}, items
    assert "backreferences are not supported" in found["specs/team.yaml", 14, 20]
    assert "lookbehind is not supported" in found["specs/team.yaml", 24, 16]
    # the catastrophic pattern is valid RE2: it is no problem at all
    assert not any("(a+)+$" in m for m in found.values())


def pref(schema: dict[str, Any]) -> Preference:
    return Preference.model_validate({"schema": schema, "required": True})


def finishes(fn: Any) -> Any:
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "a backtracking engine is matching the schema's pattern"
    return out[0]


def test_schema_pattern_on_a_session_value_is_linear() -> None:
    p = pref({"type": "string", "pattern": "^(a+)+$"})
    assert schema_problem(p.schema_ or {}) is None
    problem = finishes(lambda: value_problem(p, "a" * 1999 + "!"))
    assert problem is not None and "does not match" in problem
    assert value_problem(p, "a" * 1999) is None


def test_schema_pattern_properties_and_additional_properties_are_linear() -> None:
    p = pref(
        {
            "type": "object",
            "patternProperties": {"^(a+)+$": {"type": "integer"}},
            "additionalProperties": False,
        }
    )
    assert value_problem(p, {"aaa": 1}) is None
    assert "integer" in (value_problem(p, {"aaa": "x"}) or "")
    key = "a" * 5000 + "!"
    problem = finishes(lambda: value_problem(p, {key: 1}))
    assert problem is not None and "additional properties are not allowed" in problem


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "(a)\\1"},
        {"type": "object", "patternProperties": {"(?=x)": {}}},
        {"type": "array", "items": {"type": "string", "pattern": "(?<!a)b"}},
        {"type": "object", "patternProperties": {"a": {}}, "unevaluatedProperties": False},
    ],
)
def test_schema_patterns_re2_cannot_run_are_problems(schema: dict[str, Any]) -> None:
    problem = schema_problem(schema)
    assert problem is not None and problem.startswith("not a usable JSON Schema")
