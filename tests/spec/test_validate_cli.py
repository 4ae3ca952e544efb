"""`runner validate` as a user runs it: exit codes, output formats, import hygiene, crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli.main import main

CONTRACT = Path("/work/shared/contract/specs")
BAD = """\
apiVersion: runner/v1
kind: Agent
name: helper
model: gpt-4o
instructions: "Say: 100%, then stop"
temprature: 0.2
"""


@pytest.fixture
def bad_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.yaml").write_text(BAD)
    (tmp_path / "specs" / "b.yaml").write_text("kind: Team\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_text_format_lists_problems_sorted_with_a_summary(
    bad_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "specs"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "specs/a.yaml:6:1: error: Agent 'helper': unknown field 'temprature' "
        "(did you mean 'temperature'?)",
        "specs/b.yaml:1:1: error: missing 'apiVersion' (this runner reads runner/v1)",
        "2 problems in 2 files",
    ]


def test_json_format(bad_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", "specs"]) == 1
    items = json.loads(capsys.readouterr().out)
    assert items[0] == {
        "file": "specs/a.yaml",
        "line": 6,
        "column": 1,
        "code": "schema.unknown-field",
        "severity": "error",
        "message": "Agent 'helper': unknown field 'temprature' (did you mean 'temperature'?)",
    }
    assert [i["code"] for i in items] == ["schema.unknown-field", "api-version"]


def test_json_format_of_a_valid_project_is_an_empty_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text(BAD.replace("temprature", "temperature"))
    assert main(["validate", "--format=json", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_github_format_escapes_properties_and_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("odd,name.yaml").write_text(BAD.replace("temprature: 0.2", "temperature: 100%"))
    assert main(["validate", "--format", "github", "odd,name.yaml"]) == 1
    assert capsys.readouterr().out == (
        "::error file=odd%2Cname.yaml,line=6,col=14,title=schema.type::Agent 'helper': "
        "temperature: expected a number, got a string ('100%25')\n"
    )


def test_ok_summary_counts_documents_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = BAD.replace("temprature", "temperature")
    (tmp_path / "a.yaml").write_text(ok + "---\n" + ok.replace("helper", "other"))
    assert main(["validate", str(tmp_path / "a.yaml")]) == 0
    assert capsys.readouterr().out == "ok: 2 documents in 1 file\n"


def test_missing_path_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "nowhere"]) == 2
    assert "no such file or directory: nowhere" in capsys.readouterr().err
    assert main(["validate"]) == 2  # no ./specs here
    assert main(["validate", "--format", "xml", "."]) == 2


def _run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_validate_never_imports_azure(bad_project: Path) -> None:
    code = (
        "import sys\n"
        "from runner.cli.main import main\n"
        "rc = main(['validate', 'specs'])\n"
        "loaded = sorted(m for m in sys.modules if m == 'azure' or m.startswith('azure.'))\n"
        "print('AZURE', loaded)\n"
        "sys.exit(rc)\n"
    )
    proc = _run("-c", code, cwd=bad_project)
    assert proc.returncode == 1
    assert "AZURE []" in proc.stdout


def test_internal_error_is_one_line_and_exit_3(bad_project: Path, tmp_path: Path) -> None:
    # A genuine bug inside the checks (simulated by breaking the function in a real process):
    # the user sees one line naming the log file, never a traceback.
    code = (
        "import sys, runner.spec.checks as checks\n"
        "def broken(project, *, skip=frozenset()):\n"
        "    raise ZeroDivisionError('division by zero')\n"
        "checks.check_project = broken\n"
        "from runner.cli.main import main\n"
        "sys.exit(main(['validate', 'specs']))\n"
    )
    logs = tmp_path / "logs"
    proc = _run("-c", code, cwd=bad_project, env={"RUNNER_LOG_DIR": str(logs)})
    assert proc.returncode == 3
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("runner: internal error: ZeroDivisionError: division by zero")
    assert "Traceback" not in proc.stderr + proc.stdout
    (log,) = logs.iterdir()
    assert "Traceback" in log.read_text()


def test_the_console_entry_point_validates_the_contract(tmp_path: Path) -> None:
    if not CONTRACT.is_dir():
        pytest.skip("shared contract specs not present")
    proc = _run("-m", "runner", "validate", str(CONTRACT), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "ok: 24 documents in 9 files\n"


def test_the_command_ends_with_the_same_output_and_exit_code_as_main(bad_project: Path) -> None:
    # `python -m runner validate` ends its process as soon as the report is written (skipping the
    # interpreter's teardown); a caller of main() gets the return value and carries on.
    negative = Path(__file__).parent / "negative"
    for args in (["specs"], ["specs", "--format", "json"], [str(negative)], ["--format=github"]):
        as_command = _run("-m", "runner", "validate", *args, cwd=bad_project)
        code = (
            "import sys\n"
            "from runner.cli.main import main\n"
            f"rc = main(['validate', *{args!r}])\n"
            "print('AFTER', rc, file=sys.stderr)\n"
            "sys.exit(rc)\n"
        )
        as_call = _run("-c", code, cwd=bad_project)
        assert as_call.stderr.endswith(f"AFTER {as_call.returncode}\n")
        assert as_command.returncode == as_call.returncode
        assert as_command.stdout == as_call.stdout
        assert as_command.stderr + f"AFTER {as_call.returncode}\n" == as_call.stderr
