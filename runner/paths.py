"""Where runner keeps its files: the project's `.runner/` folder (registry, local store, logs).

A spec folder belongs to a project, and the project's `.runner/` lives with it, not with the
current directory: `ProjectHome.of(spec_path)` finds it. The project folder is the spec folder
itself when it already holds a `.runner/` (the loader skips hidden folders), else the spec
folder's parent (`shop/specs` -> `shop/.runner/`, the layout `runner` has always shown).
`RUNNER_HOME` overrides where the state lives, whatever the spec folder. Commands that take no
spec folder (`runner emulator`, the runtime opened as a library) use `./.runner`, as before.

The project's default identity (when its Environment declares no `project:`) comes from the
same place: the spec folder's parent's name and its own (`shop/specs`), stable across
checkouts that keep the folder names, and distinct for two spec folders side by side.
Every component asks here instead of building paths itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

STATE_FOLDER = ".runner"


def state_dir(spec_path: str | os.PathLike[str] | None = None) -> Path:
    """`RUNNER_HOME`, else the `.runner/` of the project `spec_path` belongs to, else ./.runner."""
    configured = os.environ.get("RUNNER_HOME")
    if configured:
        return Path(configured)
    if spec_path is not None:
        return ProjectHome.of(spec_path).state_dir
    return Path.cwd() / STATE_FOLDER


def registry_path(spec_path: str | os.PathLike[str] | None = None) -> Path:
    """The SQLite registry shared by every environment (and the runtime's tables)."""
    return state_dir(spec_path) / "state.db"


def local_store_path(data_dir: str | None = None) -> Path:
    """The embedded `local` provider's SQLite store (an Environment may set `data_dir`)."""
    base = Path(data_dir) if data_dir else state_dir()
    return base / "local-store.db"


_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


def _identity_part(name: str) -> str:
    cleaned = _UNSAFE.sub("-", name).strip("-.") or "root"
    return cleaned[:60]


@dataclass(frozen=True)
class ProjectHome:
    """The project a spec path belongs to: its folder, its state folder, its default identity."""

    root: Path
    """The project folder (absolute; symlinks are not followed)."""
    spec_root: Path
    """The spec folder (a spec file given alone counts as its folder)."""
    default_project: str
    """The identity used when no Environment declares `project:`."""

    @property
    def state_dir(self) -> Path:
        configured = os.environ.get("RUNNER_HOME")
        return Path(configured) if configured else self.root / STATE_FOLDER

    @property
    def registry_path(self) -> Path:
        return self.state_dir / "state.db"

    @classmethod
    def of(cls, spec_path: str | os.PathLike[str]) -> ProjectHome:
        # as written (made absolute), not through symlinks: a linked spec folder belongs to
        # the project it is linked into
        given = Path(os.path.abspath(os.fspath(spec_path)))
        spec_root = given if not given.is_file() else given.parent
        inside = (spec_root / STATE_FOLDER).is_dir() or spec_root.parent == spec_root
        root = spec_root if inside else spec_root.parent
        # the identity does not depend on where the state is: moving it keeps the project
        default = f"{_identity_part(spec_root.parent.name)}/{_identity_part(spec_root.name)}"
        return cls(root=root, spec_root=spec_root, default_project=default)
