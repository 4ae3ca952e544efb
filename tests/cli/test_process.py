"""The `runner` program's collector policy (runner.cli.process): imports are made with the
collector paused; only the program itself freezes them, and what a command makes later is still
collected, so SQLite connections close (and remove their -wal/-shm files) when it exits."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from runner.cli.process import importing


def test_in_process_the_collector_is_paused_then_restored_and_nothing_is_frozen() -> None:
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    with importing():
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    gc.disable()  # a host that turned the collector off keeps it off
    try:
        with importing():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_program_freezes_what_its_imports_made_and_still_collects() -> None:
    code = (
        "import gc\n"
        "from runner.cli.process import console, importing\n"
        "def main():\n"
        "    with importing():\n"
        "        import json, decimal\n"
        "    print(gc.get_freeze_count() > 0, gc.isenabled())\n"
        "    return 3\n"
        "console(main)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert done.stdout.split() == ["True", "True"]


def test_an_apply_from_the_shell_leaves_no_sqlite_side_files(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "all.yaml").write_text(
        "apiVersion: runner/v1\nkind: Environment\nname: loc\nprovider: local\ndefault: true\n"
        "---\napiVersion: runner/v1\nkind: Agent\nname: a1\nmodel: gpt-4o-mini\n"
        "instructions: hi\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "runner", "apply", "specs", "--auto-approve"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "RUNNER_HOME"},  # state under tmp_path
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(p.name for p in (tmp_path / ".runner").iterdir())
    assert "state.db" in files
    assert not [name for name in files if name.endswith(("-wal", "-shm"))], files
