"""One mistake, one error: a document that failed to load makes references into it unknown, not
wrong; a template mistake shared by agents and environments is reported once, where it is written.

Each case breaks the repository's own `specs/` the way a user would and asserts the exact output
of `runner validate`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.cli.main import main

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(SPECS, tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "specs"


def _edit(path: Path, change: Callable[[list[str]], None]) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    change(lines)
    path.write_text("".join(lines), encoding="utf-8")


def _validate(capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["validate", "specs"]) == 1
    return capsys.readouterr().out.splitlines()


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_dropped_bracket_in_agents_is_one_problem(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agents = specs / "agents.yaml"
    at = _line_of(agents, "capabilities: [account_access, password_reset]")

    def drop(lines: list[str]) -> None:
        lines[at - 1] = lines[at - 1].replace("password_reset]", "password_reset")

    _edit(agents, drop)
    # access-agent and every agent after it in the file are unreadable: the teams, pools and
    # scenarios naming them (ten references) and the workspace switching its feature are not
    # reported as unknown, nor given a "did you mean".
    assert _validate(capsys) == [
        f"specs/agents.yaml:{at + 3}:1: error: did not find expected ',' or ']' (while parsing a "
        f"flow sequence opened at line {at}, column 15)",
        "1 problem in 1 file",
    ]


def test_tab_indentation_says_tab(specs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agents = specs / "agents.yaml"
    at = _line_of(agents, "  focus: You handle passwords")
    _edit(agents, lambda lines: lines.__setitem__(at - 1, "\t" + lines[at - 1][2:]))
    assert _validate(capsys) == [
        f"specs/agents.yaml:{at}:1: error: a tab character: YAML indents with spaces only; "
        "replace the tab with spaces",
        "1 problem in 1 file",
    ]


def test_misspelt_kind_is_one_problem(specs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agents = specs / "agents.yaml"
    at = _line_of(agents, "name: access-agent") - 1
    _edit(agents, lambda lines: lines.__setitem__(at - 1, "kind: Agnet\n"))
    out = _validate(capsys)
    assert out[1:] == ["1 problem in 1 file"]
    assert out[0].startswith(f"specs/agents.yaml:{at}:7: error: unknown kind 'Agnet' (did you")


def test_missing_name_is_one_problem(specs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agents = specs / "agents.yaml"
    at = _line_of(agents, "name: access-agent")
    _edit(agents, lambda lines: lines.__delitem__(at - 1))
    assert _validate(capsys) == [
        f"specs/agents.yaml:{at - 2}:1: error: Agent: missing required field 'name'",
        "1 problem in 1 file",
    ]


def test_a_file_that_is_not_utf8_hides_no_cascade(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teams = specs / "teams" / "service-desk.yaml"
    teams.write_bytes(teams.read_bytes().replace(b"service-desk", b"service-d\xe9sk", 1))
    out = _validate(capsys)
    assert len(out) == 2 and "not valid UTF-8" in out[0], out
    assert out[1] == "1 problem in 1 file"


def test_still_wrong_references_are_reported_when_everything_loaded(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pools = specs / "pools.yaml"
    pools.write_text(pools.read_text().replace("access-agent", "acess-agent", 1))
    out = _validate(capsys)
    assert any("unknown agent 'acess-agent' (did you mean 'access-agent'?)" in o for o in out)


def test_an_undefined_template_variable_is_one_problem_where_it_is_written(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = specs / "templates.yaml"
    at = _line_of(templates, "Write in a {{ prefs.formality }} tone")

    def add(lines: list[str]) -> None:
        lines[at - 1] = lines[at - 1].replace("Write in a", "Sign as {{ vars.signature }}. Write")

    _edit(templates, add)
    out = _validate(capsys)
    assert out[1:] == ["1 problem in 1 file"], out
    assert out[0].startswith(f"specs/templates.yaml:{at}:14: error: Template 'service-desk': ")
    assert "'vars' has no attribute 'signature'" in out[0]
    assert "set vars.signature in each agent, template.service-desk or each environment" in out[0]
    assert out[0].endswith(
        "(affects 4 agents (triage-agent, access-agent, hardware-agent, network-agent) "
        "in 2 environments (local, prod))"
    )


def test_a_top_level_key_named_like_pydantics_marker_is_an_unknown_field(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (specs / "extra.yaml").write_text(
        'apiVersion: runner/v1\nkind: Channel\nname: extra\ntype: webhook\n"[key]": 1\n'
    )
    out = _validate(capsys)
    assert any(o.startswith("specs/extra.yaml:5:1: error: ") and "'[key]'" in o for o in out), out
