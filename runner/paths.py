"""Where runner keeps its files: the project's `.runner/` folder (registry, local store, logs).

`.runner/` sits in the current working directory (the project root, like `.terraform/`), or
wherever `RUNNER_HOME` points. Every component asks here instead of building paths itself.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    configured = os.environ.get("RUNNER_HOME")
    return Path(configured) if configured else Path.cwd() / ".runner"


def registry_path() -> Path:
    """The SQLite registry shared by every environment (and the runtime's tables)."""
    return state_dir() / "state.db"


def local_store_path(data_dir: str | None = None) -> Path:
    """The embedded `local` provider's SQLite store (an Environment may set `data_dir`)."""
    base = Path(data_dir) if data_dir else state_dir()
    return base / "local-store.db"
