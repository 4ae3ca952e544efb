"""Golden plans as data: desired.json + actual.json + applied.json -> expected.json (+ .txt).

Each folder under `golden/` is one case; `options.json` (optional) holds `refresh_only`.
Set RUNNER_UPDATE_GOLDEN=1 to rewrite the expected files from the current planner, then read
the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from runner.plan.desired import DesiredState
from runner.plan.planner import compute_plan
from runner.plan.render import render_json, render_text
from runner.providers.base import AgentVersion
from runner.state.base import AppliedResource

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
UPDATE = os.environ.get("RUNNER_UPDATE_GOLDEN") == "1"


def _read(case: Path, name: str, default: Any = None) -> Any:
    path = case / name
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def load_case(
    case: Path,
) -> tuple[DesiredState, list[AgentVersion], dict[str, AppliedResource], bool]:
    desired = DesiredState.from_json(_read(case, "desired.json"))
    actual = [AgentVersion(**row) for row in _read(case, "actual.json", [])]
    applied = {k: AppliedResource(**v) for k, v in _read(case, "applied.json", {}).items()}
    options = _read(case, "options.json", {})
    return desired, actual, applied, bool(options.get("refresh_only", False))


def test_there_are_at_least_ten_cases() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case_name", CASES)
def test_golden_case(case_name: str) -> None:
    case = GOLDEN / case_name
    desired, actual, applied, refresh_only = load_case(case)
    plan = compute_plan(desired, actual, applied, env=desired.env, refresh_only=refresh_only)
    got_json = render_json(plan)
    got_text = render_text(plan)
    if UPDATE:
        (case / "expected.json").write_text(got_json, encoding="utf-8")
        (case / "expected.txt").write_text(got_text, encoding="utf-8")
    assert got_json == (case / "expected.json").read_text(encoding="utf-8")
    assert got_text == (case / "expected.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("case_name", CASES)
def test_plan_is_deterministic_whatever_the_input_order(case_name: str) -> None:
    desired, actual, applied, refresh_only = load_case(GOLDEN / case_name)
    first = compute_plan(desired, actual, applied, env=desired.env, refresh_only=refresh_only)
    shuffled = compute_plan(
        desired,
        list(reversed(actual)),
        dict(reversed(list(applied.items()))),
        env=desired.env,
        refresh_only=refresh_only,
    )
    assert render_json(first) == render_json(shuffled)
    assert first.fingerprint == shuffled.fingerprint
