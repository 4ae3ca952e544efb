"""Ownership by project under `runner watch --apply` (issue 9, finding 1): two spec folders on
one store never delete each other's agents, and each keeps its state with its own project."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.providers.local import LocalProvider
from runner.watch import ReloadEngine


def write_project(folder: Path, store: Path, agents: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "env.yaml").write_text(
        f"apiVersion: runner/v1\nkind: Environment\nname: local\ndefault: true\ndata_dir: {store}\n"
    )
    for name in agents:
        (folder / f"{name}.yaml").write_text(
            f"apiVersion: runner/v1\nkind: Agent\nname: {name}\nmodel: gpt-4o\n"
            f"instructions: You are {name}.\n"
        )
    return folder


def live(store: Path) -> dict[str, str | None]:
    provider = LocalProvider.open(store / "local-store.db")
    try:
        return {a.name: a.project for a in provider.list_agents()}
    finally:
        provider.close()


def test_two_watched_projects_on_one_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNNER_HOME", raising=False)
    store = tmp_path / "shared-store"
    a = write_project(tmp_path / "a" / "specs", store, ["agent-0000", "agent-0001"])
    b = write_project(tmp_path / "b" / "specs", store, ["other-agent"])
    with ReloadEngine([a], apply=True) as engine_a, ReloadEngine([b], apply=True) as engine_b:
        assert engine_a.start().event == "applied"
        outcome = engine_b.start()
        assert outcome.event == "applied", outcome
        assert outcome.result is not None
        assert [o.action for o in outcome.result.outcomes] == ["create"]
        assert live(store) == {
            "agent-0000": "a/specs",
            "agent-0001": "a/specs",
            "other-agent": "b/specs",
        }
        assert engine_a.refresh().event == "unchanged"
        (b / "other-agent.yaml").unlink()
        removed = engine_b.reload([b / "other-agent.yaml"])
        assert removed.event == "applied" and removed.result is not None
        assert [(o.address, o.action) for o in removed.result.outcomes] == [
            ("agent.other-agent", "delete")
        ]
        assert set(live(store)) == {"agent-0000", "agent-0001"}  # a's agents untouched
    assert (tmp_path / "a" / ".runner" / "state.db").is_file()
    assert (tmp_path / "b" / ".runner" / "state.db").is_file()


def test_a_watch_refuses_a_registry_applied_by_another_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "shared-state"))
    store = tmp_path / "shared-store"
    a = write_project(tmp_path / "a" / "specs", store, ["agent-0000"])
    b = write_project(tmp_path / "b" / "specs", store, ["other-agent"])
    with ReloadEngine([a], apply=True) as engine_a:
        assert engine_a.start().event == "applied"
    with ReloadEngine([b], apply=True) as engine_b:
        outcome = engine_b.start()
        assert outcome.event == "failed"
        assert "'a/specs'" in outcome.message and "'b/specs'" in outcome.message
        assert live(store) == {"agent-0000": "a/specs"}
