"""Issue 9 finding 7: credentials in an endpoint URL never appear in what runner prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli.main import main

ENV = """apiVersion: runner/v1
kind: Environment
name: prod
provider: foundry
default: true
endpoint: http://user:S3cr3tPW@{host}/api/projects/p
"""
AGENT = """apiVersion: runner/v1
kind: Agent
name: a1
model: gpt-4o
instructions: hi
"""


def test_an_endpoint_password_is_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain http off loopback is refused before any request, and the error quotes the
    endpoint: with its credentials scrubbed, as every UserError's are."""
    host = "foundry.example"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNNER_LOG_DIR", str(tmp_path / "logs"))
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "env.yaml").write_text(ENV.format(host=host))
    (specs / "agent.yaml").write_text(AGENT)
    code = main(["plan", str(specs)])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert "S3cr3tPW" not in out + err
    assert err.startswith("runner: error:")
    for log in (tmp_path / "logs").glob("*"):
        assert "S3cr3tPW" not in log.read_text()
