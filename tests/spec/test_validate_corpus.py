"""`runner validate` on the spec corpora: the contract and example projects pass, and every
negative case prints exactly the lines in its `expected.txt` (positions and messages included).

A negative case is a folder under `negative/` holding YAML files and `expected.txt`; the case
is validated from inside its folder, with its YAML files named on the command line, so expected
lines read `agents.yaml:4:1: error: ...`. Add a case by adding a folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from runner.cli.main import main

HERE = Path(__file__).parent
REPO = HERE.parent.parent
CONTRACT = Path("/work/shared/contract/specs")
NEGATIVE = HERE / "negative"
CASES = sorted(p.name for p in NEGATIVE.iterdir() if p.is_dir())


def test_there_is_a_case_per_check() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES)
def test_negative_case_reports_exact_lines(
    case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = NEGATIVE / case
    monkeypatch.chdir(folder)
    files = sorted(p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    code = main(["validate", *files])
    out = capsys.readouterr().out
    expected = (folder / "expected.txt").read_text(encoding="utf-8")
    assert out == expected
    assert code == 1


def _contract_copy(tmp_path: Path) -> Path:
    if not CONTRACT.is_dir():
        pytest.skip("shared contract specs not present")
    target = tmp_path / "specs"
    shutil.copytree(CONTRACT, target)
    return target


def test_contract_specs_are_valid_without_env_vars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(("SLACK", "SMTP", "OPS_", "FOUNDRY")):
            monkeypatch.delenv(name)
    specs = _contract_copy(tmp_path)
    monkeypatch.chdir(tmp_path)
    code = main(["validate", "specs"])
    assert capsys.readouterr().out == "ok: 24 documents in 9 files\n"
    assert code == 0
    assert specs.is_dir()


def test_default_path_is_specs_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _contract_copy(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("ok: 24 documents")


def test_example_project_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    specs = REPO / "specs"
    if not any(specs.rglob("*.yaml")):
        pytest.skip("example project not written yet")
    assert main(["validate", str(specs)]) == 0, capsys.readouterr().out


def test_a_broken_reference_in_the_contract_is_found_at_its_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = _contract_copy(tmp_path)
    team = specs / "teams" / "customer-support.yaml"
    team.write_text(team.read_text().replace("agent: tech-agent-1", "agent: tech-agent-9"))
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "specs"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "specs/teams/customer-support.yaml:24:12: error: Team 'customer-support': "
        "unknown agent 'tech-agent-9' (did you mean 'tech-agent-1'?)",
        "1 problem in 1 file",
    ]
