"""Fixtures for end-to-end apply tests: a copy of the contract specs with an environment that
points the real SDK (foundry provider) at a `runner emulator` over HTTP, and the CLI."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "contract" / "specs"
if not CONTRACT.exists():
    CONTRACT = Path("/work/shared/contract/specs")

pytest.importorskip("runner.spec.loader")


@dataclass
class Project:
    root: Path
    specs: Path
    endpoint: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["RUNNER_HOME"] = str(self.root / ".runner")
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the CLI in this process (the SDK is imported once per test run, not per call)."""
        from runner.cli.main import main

        out, err = io.StringIO(), io.StringIO()
        saved_env, saved_cwd, saved_stdin = os.environ.get("RUNNER_HOME"), Path.cwd(), sys.stdin
        os.environ["RUNNER_HOME"] = str(self.root / ".runner")
        os.chdir(self.root)
        sys.stdin = io.StringIO("")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        finally:
            sys.stdin = saved_stdin
            os.chdir(saved_cwd)
            if saved_env is None:
                os.environ.pop("RUNNER_HOME", None)
            else:
                os.environ["RUNNER_HOME"] = saved_env
        return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())

    def cli_subprocess(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runner", *args],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.root,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "runner", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
        )

    def edit(self, file: str, old: str, new: str) -> None:
        path = self.specs / file
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new), encoding="utf-8")


def make_project(root: Path, endpoint: str) -> Project:
    specs = root / "specs"
    shutil.copytree(CONTRACT, specs)
    (specs / "emulated.yaml").write_text(
        "apiVersion: runner/v1\nkind: Environment\nname: emu\nprovider: foundry\n"
        f"endpoint: {endpoint}\n"
        "---\napiVersion: runner/v1\nkind: Environment\nname: guarded\nprovider: foundry\n"
        f"endpoint: {endpoint}\nname_prefix: g-\nprotected: true\n",
        encoding="utf-8",
    )
    return Project(root, specs, endpoint)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[object]:
    from runner.providers.emulator import serve_emulator

    with serve_emulator(data_dir=tmp_path / "foundry", seed=7) as handle:
        yield handle


@pytest.fixture
def project(tmp_path: Path, emulator: object) -> Project:
    return make_project(tmp_path, emulator.endpoint)  # type: ignore[attr-defined]
