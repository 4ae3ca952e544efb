"""Where a project's state lives and its default identity (`runner.paths.ProjectHome`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.paths import ProjectHome, registry_path


def test_state_lives_beside_the_spec_folder_whatever_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNNER_HOME", raising=False)
    specs = tmp_path / "shop" / "specs"
    specs.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    home = ProjectHome.of("shop/specs")
    assert home.root == tmp_path / "shop"
    assert home.registry_path == tmp_path / "shop" / ".runner" / "state.db"
    assert home.default_project == "shop/specs"
    assert registry_path("shop/specs") == home.registry_path
    (specs / "agents.yaml").write_text("")
    assert ProjectHome.of(specs / "agents.yaml") == home  # a file given counts as its folder


def test_a_state_folder_inside_the_spec_folder_is_used_and_keeps_the_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNNER_HOME", raising=False)
    specs = tmp_path / "p" / "specs-b"
    (specs / ".runner").mkdir(parents=True)
    home = ProjectHome.of(specs)
    assert home.state_dir == specs / ".runner"
    assert home.default_project == "p/specs-b"


def test_runner_home_overrides_and_names_are_made_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "elsewhere"))
    specs = tmp_path / "my shop!" / "spec files"
    specs.mkdir(parents=True)
    home = ProjectHome.of(specs)
    assert home.registry_path == tmp_path / "elsewhere" / "state.db"
    assert home.default_project == "my-shop/spec-files"


def test_a_linked_spec_folder_belongs_to_the_project_it_is_linked_into(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNNER_HOME", raising=False)
    shared = tmp_path / "shared" / "specs"
    shared.mkdir(parents=True)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "specs").symlink_to(shared)
    home = ProjectHome.of(tmp_path / "app" / "specs")
    assert home.root == tmp_path / "app" and home.default_project == "app/specs"
