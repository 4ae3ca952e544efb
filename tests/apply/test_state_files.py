"""Broken state files (issue 9, finding 11): one line naming the file and what to do, exit 1.

A truncated, garbage or bit-flipped `.runner/state.db`, an unreadable one, a read-only `.runner/`
and a full disk used to end in `internal error: DatabaseError` naming no file. `plan` and
`validate` write nothing, so a read-only `.runner/` does not break `plan`. The environment points
the real SDK at `runner emulator`, so the registry is the only state file involved.
"""

from __future__ import annotations

import gc
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apply.test_ownership import cli, write_specs

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
needs_setpriv = pytest.mark.skipif(
    shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs root and setpriv"
)


@pytest.fixture
def applied(tmp_path: Path, emulator: object) -> Path:
    """A project folder whose specs were applied once: `<root>/.runner/state.db` exists."""
    root = tmp_path / "shop"
    write_specs(root / "specs", emulator.endpoint, ["one", "two"])  # type: ignore[attr-defined]
    code, out, err = cli(root, "apply", "specs", "--auto-approve")
    assert code == 0, out + err
    return root


def assert_one_line_naming(state: Path, code: int, err: str) -> None:
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("runner: error:")]
    assert len(lines) == 1 and str(state) in lines[0], err
    assert "internal error" not in err


def test_garbage_and_truncated_state_files_are_one_line_errors(applied: Path) -> None:
    state = applied / ".runner" / "state.db"
    good = state.read_bytes()
    for name, broken in [
        ("garbage", random.Random(1).randbytes(len(good))),
        ("truncated", good[: len(good) // 3]),
        ("empty header", b"\0" * 100 + good[100:]),
    ]:
        for leftover in state.parent.glob("state.db-*"):
            leftover.unlink()
        state.write_bytes(broken)
        for verb in (["plan", "specs"], ["apply", "specs", "--auto-approve"]):
            code, _out, err = cli(applied, *verb)
            assert_one_line_naming(state, code, err)
            assert "corrupt" in err or "cannot" in err, (name, err)


def test_bit_flips_never_end_in_an_internal_error(applied: Path) -> None:
    state = applied / ".runner" / "state.db"
    cli(applied, "plan", "specs")  # settle the WAL into the file
    good = state.read_bytes()
    rng = random.Random(9)
    for _ in range(40):
        for leftover in state.parent.glob("state.db-*"):
            leftover.unlink()
        flipped = bytearray(good)
        offset = rng.randrange(len(flipped))
        flipped[offset] ^= 1 << rng.randrange(8)
        state.write_bytes(bytes(flipped))
        code, out, err = cli(applied, "plan", "specs")
        assert code in (0, 1), (offset, out, err)
        if code == 1 and "runner: error:" in err and ".runner" in err:
            assert str(state) in err, (offset, err)


@pytest.fixture
def shared_project(emulator: object) -> Iterator[Path]:
    """A project `nobody` can use (outside pytest's root-only tmp folder), applied by nobody."""
    root = Path(tempfile.mkdtemp(prefix="runner-state-"))
    root.chmod(0o777)
    write_specs(root / "specs", emulator.endpoint, ["one"])  # type: ignore[attr-defined]
    for path in [root / "specs", *(root / "specs").rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def runner_process(
    root: Path, *args: str, nobody: bool = True, file_limit: int | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_HOME"}
    env["RUNNER_LOG_DIR"] = str(root / "logs")
    env["PYTHONDONTWRITEBYTECODE"] = "1"

    def limit() -> None:
        if file_limit is not None:  # a full disk: writes past the limit fail (EFBIG)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.run(
        [*(AS_NOBODY if nobody else []), sys.executable, "-m", "runner", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        preexec_fn=limit,
    )


@needs_setpriv
def test_unreadable_state_file_and_read_only_state_folder(shared_project: Path) -> None:
    root = shared_project
    done = runner_process(root, "apply", "specs", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    state_dir = root / ".runner"
    state = state_dir / "state.db"

    state_dir.chmod(0o555)  # read-only: plan still works, apply says what to do
    try:
        plan = runner_process(root, "plan", "specs", "--detailed-exitcode")
        assert plan.returncode == 0 and "No changes." in plan.stdout, plan.stdout + plan.stderr
        (root / "specs" / "agents.yaml").write_text(
            (root / "specs" / "agents.yaml").read_text() + "description: edited\n"
        )
        apply = runner_process(root, "apply", "specs", "--auto-approve")
        assert_one_line_naming(state, apply.returncode, apply.stderr)
        assert "writable" in apply.stderr or "RUNNER_HOME" in apply.stderr
    finally:
        state_dir.chmod(0o777)

    for leftover in state_dir.glob("state.db-*"):
        leftover.unlink()
    state.chmod(0)
    try:
        for verb in (["plan", "specs"], ["apply", "specs", "--auto-approve"]):
            done = runner_process(root, *verb)
            assert_one_line_naming(state, done.returncode, done.stderr)
    finally:
        state.chmod(0o666)


def test_a_full_disk_is_a_one_line_error(applied: Path) -> None:
    state = applied / ".runner" / "state.db"
    specs = applied / "specs" / "agents.yaml"
    specs.write_text(specs.read_text() + "description: grown\n" * 1)
    # a full disk: no file may grow past what the state file and its WAL hold already (the
    # registry's write-ahead log is where a write lands first)
    wal = state.with_name(state.name + "-wal")
    size = min(p.stat().st_size for p in (state, wal) if p.exists())
    done = runner_process(
        applied, "apply", "specs", "--auto-approve", nobody=False, file_limit=size
    )
    assert_one_line_naming(state, done.returncode, done.stderr)
    assert "disk" in done.stderr


def test_plan_and_validate_write_nothing(tmp_path: Path, emulator: object) -> None:
    root = tmp_path / "fresh"
    write_specs(root / "specs", emulator.endpoint, ["one"])  # type: ignore[attr-defined]
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert cli(root, "validate", "specs")[0] == 0
    code, out, err = cli(root, "plan", "specs")
    assert code == 0, out + err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert not (root / ".runner").exists()

    assert cli(root, "apply", "specs", "--auto-approve")[0] == 0

    database = root / ".runner" / "state.db"
    gc.collect()  # the in-process apply's registry connections close (and checkpoint) now
    stamp = database.stat().st_mtime_ns, database.read_bytes()
    assert cli(root, "plan", "specs")[0] == 0
    gc.collect()
    assert (database.stat().st_mtime_ns, database.read_bytes()) == stamp
    # a reader may leave SQLite's (empty) WAL companions; never anything it wrote
    others = {p.name: p.stat().st_size for p in database.parent.iterdir() if p != database}
    assert set(others) <= {"state.db-wal", "state.db-shm"}
    assert others.get("state.db-wal", 0) == 0


@needs_setpriv
def test_the_local_provider_plan_writes_nothing_and_reads_a_read_only_folder() -> None:
    """The default provider keeps its store in `.runner/` too: plan creates it not, and a
    read-only `.runner/` does not break plan; apply then says which file and what to do."""
    root = Path(tempfile.mkdtemp(prefix="runner-local-"))
    try:
        root.chmod(0o777)
        specs = root / "specs"
        specs.mkdir()
        specs.chmod(0o777)
        (specs / "env.yaml").write_text(
            "apiVersion: runner/v1\nkind: Environment\nname: local\ndefault: true\n"
        )
        (specs / "agents.yaml").write_text(
            "apiVersion: runner/v1\nkind: Agent\nname: one\nmodel: gpt-4o\ninstructions: hi\n"
        )
        for path in specs.iterdir():
            path.chmod(0o666)
        for verb in (["validate", "specs"], ["plan", "specs"]):
            done = runner_process(root, *verb)
            assert done.returncode == 0, done.stdout + done.stderr
        assert not (root / ".runner").exists()

        assert runner_process(root, "apply", "specs", "--auto-approve").returncode == 0
        (root / ".runner").chmod(0o555)
        plan = runner_process(root, "plan", "specs", "--detailed-exitcode")
        assert plan.returncode == 0 and "No changes." in plan.stdout, plan.stdout + plan.stderr
        (specs / "more.yaml").write_text(
            "apiVersion: runner/v1\nkind: Agent\nname: two\nmodel: gpt-4o\ninstructions: hi\n"
        )
        (specs / "more.yaml").chmod(0o666)
        apply = runner_process(root, "apply", "specs", "--auto-approve")
        assert apply.returncode == 1 and "writable" in apply.stderr, apply.stderr
        assert "internal error" not in apply.stderr
    finally:
        if (root / ".runner").exists():
            (root / ".runner").chmod(0o777)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("limit", [20_000, 45_000, 120_000])
def test_a_disk_that_fills_at_any_point_of_an_apply_is_exit_1_never_3(
    tmp_path: Path, limit: int
) -> None:
    """Files may not grow past `limit` bytes: the disk fills before, during or after the
    creates, in the local store or the registry; each ends in one line naming the file."""
    root = tmp_path / "p"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "env.yaml").write_text(
        "apiVersion: runner/v1\nkind: Environment\nname: local\ndefault: true\n"
    )
    (root / "specs" / "agents.yaml").write_text(
        "".join(
            f"---\napiVersion: runner/v1\nkind: Agent\nname: a{i}\nmodel: gpt-4o\n"
            f"instructions: {'x' * 200} {i}\n"
            for i in range(20)
        )
    )
    done = runner_process(root, "apply", "specs", "--auto-approve", nobody=False, file_limit=limit)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("runner: error: ") and ".runner/" in last and "disk" in last
