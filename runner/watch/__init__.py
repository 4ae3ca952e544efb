"""Hot reload (`runner watch`): re-validate, plan and apply on every save.

`ReloadEngine` is the reload path, usable without the CLI (the runtime and tests call
`reload(paths)`); `SpecWatcher` feeds it the changes `watchfiles` sees, coalesced, one reload at
a time; `lifecycle_hook` lets a running `Lifecycle` pick up each good reload.
"""

from __future__ import annotations

from runner.watch.engine import ReloadEngine
from runner.watch.outcome import ReloadEvent, ReloadHook, ReloadOutcome
from runner.watch.spec_files import is_spec_file
from runner.watch.watcher import SpecWatcher, lifecycle_hook

__all__ = [
    "ReloadEngine",
    "ReloadEvent",
    "ReloadHook",
    "ReloadOutcome",
    "SpecWatcher",
    "is_spec_file",
    "lifecycle_hook",
]
