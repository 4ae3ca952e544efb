"""Input that cannot be read is an error, never a deletion (issue 9, finding 2).

`chmod 000 specs/alerts` used to make validate say ok and apply destroy what the folder
declared. Root reads everything, so the CLI runs here as `nobody` with every capability dropped
(`setpriv`), in a world-writable folder of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.spec.loader import load_project

SETPRIV = shutil.which("setpriv")
AS_NOBODY = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
]

ENV = "apiVersion: runner/v1\nkind: Environment\nname: local\ndefault: true\n"


def agent(name: str) -> str:
    return (
        f"apiVersion: runner/v1\nkind: Agent\nname: {name}\nmodel: gpt-4o\n"
        f"instructions: You are {name}.\n"
    )


ALERT = (
    "apiVersion: runner/v1\nkind: Alert\nname: slow\nagent: one\n"
    "metric: average_response_time\ncondition: above\nthreshold: 5000\nnotify: [ops]\n"
)
CHANNEL = (
    "apiVersion: runner/v1\nkind: Channel\nname: ops\ntype: webhook\n"
    "url: http://127.0.0.1:9/hooks\n"
)


@pytest.fixture
def project() -> Iterator[Path]:
    """A project folder `nobody` can write (outside pytest's root-only tmp folder)."""
    root = Path(tempfile.mkdtemp(prefix="runner-unreadable-"))
    root.chmod(0o777)
    specs = root / "specs"
    (specs / "agents").mkdir(parents=True)
    (specs / "alerts").mkdir()
    (specs / "env.yaml").write_text(ENV, encoding="utf-8")
    (specs / "agents" / "one.yaml").write_text(agent("one"), encoding="utf-8")
    (specs / "agents" / "two.yaml").write_text(agent("two"), encoding="utf-8")
    (specs / "alerts" / "slow.yaml").write_text(ALERT + "---\n" + CHANNEL, encoding="utf-8")
    for path in [specs, *specs.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def runner_as_nobody(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_HOME"}
    env["RUNNER_LOG_DIR"] = str(root / "logs")
    return subprocess.run(
        [*AS_NOBODY, sys.executable, "-m", "runner", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


needs_setpriv = pytest.mark.skipif(
    SETPRIV is None or os.geteuid() != 0, reason="needs root and setpriv to drop to nobody"
)


@needs_setpriv
@pytest.mark.parametrize("unreadable", ["specs/alerts", "specs/agents", "specs/agents/two.yaml"])
def test_an_unreadable_folder_or_file_is_an_error_and_nothing_is_destroyed(
    project: Path, unreadable: str
) -> None:
    applied = runner_as_nobody(project, "apply", "specs", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr

    (project / unreadable).chmod(0)
    try:
        validated = runner_as_nobody(project, "validate", "specs")
        assert validated.returncode == 1, validated.stdout + validated.stderr
        said = validated.stdout + validated.stderr
        assert unreadable in said and "cannot read this" in said
        for verb in (["plan"], ["apply", "--auto-approve"]):
            done = runner_as_nobody(project, *verb, "specs")
            assert done.returncode == 1, done.stdout + done.stderr
            assert "Permission denied" in done.stderr and "nothing was planned" in done.stderr
            assert "destroy" not in done.stdout
    finally:
        (project / unreadable).chmod(0o777 if (project / unreadable).is_dir() else 0o666)
    again = runner_as_nobody(project, "plan", "specs", "--detailed-exitcode")
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr


@needs_setpriv
def test_an_emptied_spec_folder_is_refused_while_the_registry_records_its_documents(
    project: Path,
) -> None:
    assert runner_as_nobody(project, "apply", "specs", "--auto-approve").returncode == 0
    for path in sorted((project / "specs").rglob("*.yaml")):
        path.unlink()
    for verb in (["plan"], ["apply", "--auto-approve"]):
        done = runner_as_nobody(project, *verb, "specs")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "holds no documents" in done.stderr and "runner destroy" in done.stderr
    shutil.rmtree(project / "specs")
    gone = runner_as_nobody(project, "apply", "specs", "--auto-approve")
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_a_file_that_vanished_between_listing_and_reading_is_an_error(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "env.yaml").write_text(ENV, encoding="utf-8")
    (specs / "agents.yaml").symlink_to(tmp_path / "moved-away.yaml")  # listed, cannot be read
    result = load_project([specs])
    [problem] = [p for p in result.problems if p.severity == "error"]
    assert problem.file.endswith("agents.yaml") and problem.code == "file.read"
    assert "vanished" in problem.message


def test_a_file_deleted_mid_read_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner.spec.loader as loader

    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "env.yaml").write_text(ENV, encoding="utf-8")
    (specs / "agents.yaml").write_text(agent("one"), encoding="utf-8")
    listed = loader.discover_files

    def list_then_delete(paths: list[str]) -> tuple[list[str], list[object]]:
        files, problems = listed(paths)
        (specs / "agents.yaml").unlink()  # another process removes it right after the listing
        return files, problems

    monkeypatch.setattr(loader, "discover_files", list_then_delete)
    result = load_project([specs])
    assert [p.code for p in result.problems if p.severity == "error"] == ["file.read"]


def test_spec_files_match_their_extension_in_any_case(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "ENV.YAML").write_text(ENV, encoding="utf-8")
    (specs / "agents.Yml").write_text(agent("one"), encoding="utf-8")
    (specs / "notes.txt").write_text("not a spec", encoding="utf-8")
    result = load_project([specs])
    assert result.problems == []
    assert sorted(d.address for d in result.project) == ["agent.one", "environment.local"]
