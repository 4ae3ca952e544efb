"""`runner test`: PASS/FAIL lines and a summary, exit 0/1/2, problems for invalid specs, JUnit."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT.parent / "shared" / "contract" / "specs"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", "test", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=120,
    )


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    return Path(shutil.copytree(CONTRACT, tmp_path / "specs"))


def test_the_contract_passes(specs: Path, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    result = run_cli(str(specs), "--junit", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "PASS technical-issue-reaches-tech-support",
        "PASS asking-for-a-person-waits-for-a-human",
        "PASS max-turns-ends-gracefully",
        "PASS long-conversation-escalates-after-approval",
        "4 passed, 0 failed",
    ]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "0"


def test_the_example_project_passes() -> None:
    result = run_cli("specs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].endswith("passed, 0 failed")


def test_a_false_expectation_fails_with_exit_1_naming_itself(specs: Path, tmp_path: Path) -> None:
    scenarios = specs / "scenarios" / "customer-support.yaml"
    scenarios.write_text(scenarios.read_text().replace("reason: max_turns", "reason: bored"))
    junit = tmp_path / "report.xml"
    result = run_cli(str(specs), "--junit", str(junit))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "FAIL max-turns-ends-gracefully" in lines
    detail = lines[lines.index("FAIL max-turns-ends-gracefully") + 1]
    assert detail == (
        f"  {scenarios}:48:5: scenario 'max-turns-ends-gracefully' step 2 "
        '(user: "one more question"): expected reason bored, saw max_turns'
    )
    assert lines[-1] == "3 passed, 1 failed"
    cases = ET.parse(junit).getroot().iter("testcase")
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["max-turns-ends-gracefully"]


def test_only_the_named_scenario_runs(specs: Path) -> None:
    result = run_cli(str(specs), "--scenario", "max-turns-ends-gracefully")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["PASS max-turns-ends-gracefully", "1 passed, 0 failed"]
    unknown = run_cli(str(specs), "--scenario", "nope")
    assert unknown.returncode == 2 and "no scenario named nope" in unknown.stderr


def test_invalid_specs_print_problems_and_exit_1(specs: Path) -> None:
    scenarios = specs / "scenarios" / "customer-support.yaml"
    scenarios.write_text(scenarios.read_text().replace("repeat: 3", "repeat: 0", 1))
    result = run_cli(str(specs))
    assert result.returncode == 1
    assert f"{scenarios}:" in result.stderr and "no scenario was run" in result.stderr
    assert "PASS" not in result.stdout


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
