"""The README's examples work as written.

Every ```yaml block that declares a `kind` is validated (with the blocks of other kinds: the blocks
refer to each other) and every ```python block is run in a copy of the repository's project:
the Runtime example on the local provider, the SDK example against a real `runner emulator`
(started here; its endpoint replaces the README's `http://127.0.0.1:8765/api/projects/p1`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, re.S | re.M)
SPEC_BLOCKS = [b for lang, b in BLOCKS if lang == "yaml" and re.search(r"^kind:", b, re.M)]
PYTHON_BLOCKS = [b for lang, b in BLOCKS if lang == "python"]
README_ENDPOINT = "http://127.0.0.1:8765/api/projects/p1"


def test_the_readme_has_the_examples_this_file_checks() -> None:
    assert len(SPEC_BLOCKS) >= 4
    assert any("AIProjectClient" in b for b in PYTHON_BLOCKS)
    assert any("Lifecycle.open" in b for b in PYTHON_BLOCKS)


def _kind(block: str) -> str:
    found = re.search(r"^kind:\s*(\S+)", block, re.M)
    assert found is not None
    return found[1]


def _name(block: str) -> str:
    found = re.search(r"^name:\s*(\S+)", block, re.M)
    assert found is not None
    return found[1]


@pytest.mark.parametrize("index", range(len(SPEC_BLOCKS)))
def test_every_spec_block_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], index: int
) -> None:
    """Each block with the README's blocks of other kinds (what it may refer to: a Workspace
    sets a feature the Template block declares); two examples of one kind may share a name."""
    block = SPEC_BLOCKS[index]
    others: list[str] = []
    taken = {(_kind(block), _name(block))}
    for other in SPEC_BLOCKS:  # another kind's blocks, the first of each name
        key = (_kind(other), _name(other))
        if key[0] != _kind(block) and key not in taken:
            taken.add(key)
            others.append(other)
    for number, text in enumerate([block, *others]):
        (tmp_path / f"block{number}.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code = main(["validate", "."])
    out = capsys.readouterr().out
    assert code == 0, out
    count = 1 + len(others)
    assert out == f"ok: {count} documents in {count} files\n"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "emulator", "--port", "0", "--data", str(tmp_path / "e")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    endpoint = ""
    for line in process.stdout:
        if line.startswith("endpoint:"):
            endpoint = line.split()[1]
            break
    try:
        assert endpoint.startswith("http://127.0.0.1:"), "the emulator printed no endpoint"
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_every_python_block_runs(tmp_path: Path, emulator: str, index: int) -> None:
    block = PYTHON_BLOCKS[index]
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    script = tmp_path / "example.py"
    script.write_text(block.replace(README_ENDPOINT, emulator), encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if k != "RUNNER_HOME"}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    if "AIProjectClient" in block:
        assert done.stdout.splitlines() == ["hello-agent 1", "['hello-agent']"]
    if "Lifecycle.open" in block:
        assert "handoff:initiated triage-agent -> hardware-agent" in done.stdout
        assert "\nhardware-agent " in done.stdout
