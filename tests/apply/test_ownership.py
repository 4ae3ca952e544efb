"""Ownership by project (issue 9, finding 1): two runner projects on one Foundry project.

Project A applies `agent-0000..2`; project B (another folder with its own `.runner/`, the same
endpoint and `name_prefix`) used to plan `- agent-0000..2` and destroy them. Now each version
records its project (`runner-project`), a plan touches only its own project's agents, lists the
other's like unmanaged ones, and a name collision is an error naming both projects. State lives
with the project (not the current directory), and a registry refuses another project.
Everything runs through the real SDK against `runner emulator` over HTTP.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.providers.foundry import FoundryProvider


@contextlib.contextmanager
def _no_runner_home() -> Iterator[None]:
    saved = os.environ.pop("RUNNER_HOME", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["RUNNER_HOME"] = saved


def cli(cwd: Path, *args: str) -> tuple[int, str, str]:
    """The CLI in this process, run from `cwd`, with no RUNNER_HOME (state goes with the specs)."""
    from runner.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved_cwd, saved_stdin = Path.cwd(), sys.stdin
    os.chdir(cwd)
    sys.stdin = io.StringIO("")
    try:
        with _no_runner_home(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
    return code, out.getvalue(), err.getvalue()


def write_specs(folder: Path, endpoint: str, agents: list[str], *, project: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    declared = f"project: {project}\n" if project else ""
    (folder / "env.yaml").write_text(
        "apiVersion: runner/v1\nkind: Environment\nname: dev\nprovider: foundry\n"
        f"endpoint: {endpoint}\nname_prefix: ''\ndefault: true\n{declared}",
        encoding="utf-8",
    )
    (folder / "agents.yaml").write_text(
        "".join(
            f"---\napiVersion: runner/v1\nkind: Agent\nname: {name}\nmodel: gpt-4o\n"
            f"instructions: You are {name}.\n"
            for name in agents
        ),
        encoding="utf-8",
    )
    return folder


def live(endpoint: str) -> dict[str, dict[str, str]]:
    provider = FoundryProvider(endpoint)
    try:
        return {a.name: dict(a.metadata) for a in provider.list_agents()}
    finally:
        provider.close()


def dump(database: Path) -> list[tuple[object, ...]]:
    """Every row of the registry's tables (what it records, not how the file is laid out)."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [(t, *row) for t in sorted(tables) for row in conn.execute(f"SELECT * FROM {t}")]


A_AGENTS = ["agent-0000", "agent-0001", "agent-0002"]


@pytest.fixture
def endpoint(emulator: object) -> str:
    return emulator.endpoint  # type: ignore[attr-defined,no-any-return]


def test_two_projects_on_one_foundry_never_touch_each_other(tmp_path: Path, endpoint: str) -> None:
    a = write_specs(tmp_path / "a" / "specs", endpoint, A_AGENTS)
    b = write_specs(tmp_path / "b" / "specs", endpoint, ["other-agent"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    code, out, err = cli(elsewhere, "apply", str(a), "--auto-approve")
    assert code == 0, out + err
    agents = live(endpoint)
    assert {agents[n]["runner-project"] for n in A_AGENTS} == {"a/specs"}
    # state lives with the project, not with the current directory
    assert (tmp_path / "a" / ".runner" / "state.db").is_file()
    assert not (elsewhere / ".runner").exists()

    code, out, err = cli(elsewhere, "plan", str(b), "--format", "json")
    assert code == 0, out + err
    plan = json.loads(out)
    assert [c["action"] for c in plan["changes"]] == ["create"]
    assert plan["changes"][0]["address"] == "agent.other-agent"
    listed = {u["foundry_name"]: u.get("project") for u in plan["unmanaged"]}
    assert listed == dict.fromkeys(A_AGENTS, "a/specs")

    code, out, err = cli(tmp_path / "b", "apply", "specs", "--auto-approve")
    assert code == 0, out + err
    assert "destroyed" not in out or "0 destroyed" in out
    agents = live(endpoint)
    assert set(agents) == {*A_AGENTS, "other-agent"}
    assert agents["other-agent"]["runner-project"] == "b/specs"

    # A's next plan leaves B's agent alone
    code, out, err = cli(tmp_path / "a", "plan", "specs", "--detailed-exitcode")
    assert code == 0, out + err
    assert "No changes." in out and "other-agent" in out and "'b/specs'" in out


def test_a_name_taken_by_another_project_is_an_error_naming_both(
    tmp_path: Path, endpoint: str
) -> None:
    a = write_specs(tmp_path / "a" / "specs", endpoint, A_AGENTS, project="billing")
    b = write_specs(tmp_path / "b" / "specs", endpoint, ["agent-0001"], project="support")
    assert cli(tmp_path, "apply", str(a), "--auto-approve")[0] == 0
    before = live(endpoint)

    code, _out, err = cli(tmp_path, "apply", str(b), "--auto-approve")
    assert code == 1
    assert "agent-0001" in err and "'billing'" in err and "'support'" in err
    assert live(endpoint) == before


def test_one_folder_two_spec_folders_the_registry_refuses_the_other(
    tmp_path: Path, endpoint: str
) -> None:
    first = write_specs(tmp_path / "p" / "specs-a", endpoint, A_AGENTS)
    second = write_specs(tmp_path / "p" / "specs-b", endpoint, ["other-agent"])
    assert cli(tmp_path / "p", "apply", "specs-a", "--auto-approve")[0] == 0
    registry = tmp_path / "p" / ".runner" / "state.db"
    before = dump(registry), live(endpoint)

    for verb in (["plan"], ["apply", "--auto-approve"]):
        code, out, err = cli(tmp_path / "p", verb[0], str(second), *verb[1:])
        assert code == 1, out + err
        assert "'p/specs-a'" in err and "'p/specs-b'" in err and "nothing was changed" in err
        assert (dump(registry), live(endpoint)) == before
    # a state folder of its own inside the spec folder: the same identity, its own registry
    (second / ".runner").mkdir()
    code, out, err = cli(tmp_path / "p", "apply", str(second), "--auto-approve")
    assert code == 0, out + err
    agents = live(endpoint)
    assert agents["other-agent"]["runner-project"] == "p/specs-b"
    assert {agents[n]["runner-project"] for n in A_AGENTS} == {"p/specs-a"}
    assert (second / ".runner" / "state.db").is_file() and dump(registry) == before[0]
    assert cli(tmp_path / "p", "plan", str(first), "--detailed-exitcode")[0] == 0


def test_agents_from_before_projects_are_adopted_by_the_registry_that_recorded_them(
    tmp_path: Path, endpoint: str
) -> None:
    """Versions written with no `runner-project` (an earlier runner) belong to the project whose
    registry recorded them; another project lists them and never deletes them."""
    a = write_specs(tmp_path / "a" / "specs", endpoint, A_AGENTS)
    provider = FoundryProvider(endpoint)
    try:
        for name in A_AGENTS:  # what an earlier runner wrote: the same keys, no project
            provider.create_version(
                name,
                definition={
                    "kind": "prompt",
                    "model": "gpt-4o",
                    "instructions": f"You are {name}.",
                },
                metadata={
                    "managed-by": "runner",
                    "runner-address": f"agent.{name}",
                    "runner-env": "dev",
                    "runner-hash": "0" * 64,
                },
            )
    finally:
        provider.close()

    from runner.state.base import AppliedResource
    from runner.state.sqlite import SqliteRegistry

    registry = SqliteRegistry(tmp_path / "a" / ".runner" / "state.db")
    for name in A_AGENTS:  # ... and recorded in A's registry, as that runner's apply did
        record = AppliedResource(
            address=f"agent.{name}",
            kind="Agent",
            name=name,
            hash="0" * 64,
            foundry_name=name,
            foundry_version="1",
        )
        registry.record_applied("dev", record, apply_id="earlier", action="create")
    registry.close()

    b = write_specs(tmp_path / "b" / "specs", endpoint, ["other-agent"])
    code, out, err = cli(tmp_path, "apply", str(b), "--auto-approve")
    assert code == 0, out + err
    assert set(live(endpoint)) == {*A_AGENTS, "other-agent"}

    code, out, err = cli(tmp_path, "plan", str(a), "--detailed-exitcode")
    assert code == 0 and "No changes." in out, out + err  # adopted as they are
    write_specs(a, endpoint, A_AGENTS[:2])
    code, out, err = cli(tmp_path, "apply", str(a), "--auto-approve")
    assert code == 0, out + err
    assert set(live(endpoint)) == {*A_AGENTS[:2], "other-agent"}  # A owns what it recorded
    code, out, err = cli(tmp_path, "plan", str(b), "--detailed-exitcode")
    assert code == 0 and "No changes." in out, out + err


def test_an_unrecorded_agent_from_before_projects_is_a_conflict_not_an_adoption(
    tmp_path: Path, endpoint: str
) -> None:
    provider = FoundryProvider(endpoint)
    try:
        provider.create_version(
            "agent-0000",
            definition={"kind": "prompt", "model": "gpt-4o", "instructions": "You are agent-0000."},
            metadata={"managed-by": "runner", "runner-address": "agent.agent-0000"}
            | {"runner-env": "dev", "runner-hash": "0" * 64},
        )
    finally:
        provider.close()
    a = write_specs(tmp_path / "a" / "specs", endpoint, ["agent-0000"])
    code, _out, err = cli(tmp_path, "plan", str(a))
    assert code == 1
    assert "no project recorded" in err and "runner import agent-0000" in err
    code, out, err = cli(tmp_path, "import", "agent-0000", str(a))
    assert code == 0, out + err
    code, out, err = cli(tmp_path, "apply", str(a), "--auto-approve")
    assert code == 0, out + err
    code, out, err = cli(tmp_path, "plan", str(a), "--detailed-exitcode")
    assert code == 0 and "No changes." in out, out + err  # adopted as it is
    # another project's agent cannot be imported
    b = write_specs(tmp_path / "b" / "specs", endpoint, ["agent-0000", "agent-0001"])
    write_specs(a, endpoint, ["agent-0000", "agent-0001"])
    code, out, err = cli(tmp_path, "apply", str(a), "--auto-approve")
    assert code == 0, out + err
    code, out, err = cli(tmp_path, "import", "agent-0001", str(b))
    assert code == 1 and "already managed by runner (project 'a/specs')" in err
