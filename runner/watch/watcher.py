"""The file watcher: `watchfiles` events -> coalesced batches -> one `ReloadEngine.reload` each.

Role in the flow: the edge between the file system and the reload engine. `SpecWatcher.run()`
blocks, feeding the engine every batch of relevant changes and handing each outcome to a
callback (the CLI prints it; the runtime may log it).

Invariants:
  - One reload at a time, on the calling thread. Changes made while a reload runs are kept by
    the watcher (its notify thread keeps collecting) and arrive as the next batch, so a burst of
    saves (a `git checkout`) costs a few reloads, never interleaved ones, and the last one sees
    the final files.
  - Batches are cut by `step_ms` of quiet (a save reloads within a blink) and at most
    `debounce_ms` long (a steady stream of writes still reloads).
  - Only spec files under the spec paths pass the filter (`ReloadEngine.is_relevant`): editors'
    temp and swap files (`.x.swp`, `x~`, `.#x`, `4913`, `x.tmp`), other files and hidden folders
    never wake the engine. Atomic saves (write a temp file, rename it over) arrive as a change
    of the real file.
  - A batch that deletes or empties a tracked file waits `settle_ms` before the engine reads the
    disk, so delete-and-recreate saves are seen as the edit they are.
  - The engine's initial load runs after the watcher is armed: nothing saved in between is lost.
  - A spec path that disappears is `invalid` (the engine keeps the last good state) and the
    watch moves to its parent, flat, until it is back; a path replaced (`mv new specs`) or back
    is re-read in full once the new watch is armed, so the first good state after it applies.
  - `stop()` (or the stop event) ends `run()` within about `rust_timeout_ms`; Ctrl-C raises
    KeyboardInterrupt out of `run()` for the caller to turn into an exit code.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from runner.spec.project import Project
from runner.watch.engine import ReloadEngine
from runner.watch.outcome import ReloadHook, ReloadOutcome

if TYPE_CHECKING:
    from runner.runtime.lifecycle import Lifecycle

__all__ = ["SpecWatcher", "lifecycle_hook"]

DEFAULT_STEP_MS = 20
DEFAULT_DEBOUNCE_MS = 400
DEFAULT_SETTLE_MS = 60
DEFAULT_RUST_TIMEOUT_MS = 200


class SpecWatcher:
    """Watch the engine's spec paths and reload on every batch of changes until stopped."""

    def __init__(
        self,
        engine: ReloadEngine,
        *,
        on_outcome: Callable[[ReloadOutcome], None],
        step_ms: int = DEFAULT_STEP_MS,
        debounce_ms: int = DEFAULT_DEBOUNCE_MS,
        settle_ms: int = DEFAULT_SETTLE_MS,
        rust_timeout_ms: int = DEFAULT_RUST_TIMEOUT_MS,
        refresh_interval: float | None = None,
        stop_event: threading.Event | None = None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        force_polling: bool | None = None,
    ) -> None:
        self.engine = engine
        self.on_outcome = on_outcome
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.settle_ms = settle_ms
        self.rust_timeout_ms = rust_timeout_ms
        self.refresh_interval = refresh_interval
        self.stop_event = stop_event or threading.Event()
        self._clock = clock
        self._sleep = sleep
        self._force_polling = force_polling
        self._refresh_requested = threading.Event()
        self._last_refresh = clock()
        self.batches = 0
        """Batches of relevant changes handed to the engine (tests bound this)."""

    def stop(self) -> None:
        self.stop_event.set()

    def request_refresh(self) -> None:
        """Re-read Foundry and the registry in full at the next opportunity (any thread)."""
        self._refresh_requested.set()

    def _filter(self, _change: Any, path: str) -> bool:
        return self.engine.is_relevant(path)

    def run(self) -> None:
        """Arm the watcher, load the specs (`engine.start()`), then reload on every batch.

        A spec path that is deleted or replaced re-arms the watch: on its parent (flat) while it
        is gone, so its return is seen, then on the path again, which is re-read in full."""
        started = False
        reread = False  # re-read every spec path once the new watch is armed
        while not self.stop_event.is_set():
            identities = self.engine.spec_files.root_identities()
            paths, recursive = self.engine.spec_files.arm_paths()
            rearm = False
            for changes in self._watch(paths, recursive=recursive):
                detected = self._clock()
                if self.stop_event.is_set():
                    return
                if not started:  # the watcher is armed now; start() reads every file anyway
                    started = True
                    self._last_refresh = detected
                    self.on_outcome(self.engine.start())
                    continue
                if reread:  # armed again: what changed before the watch saw it is read now
                    reread = False
                    if not self.engine.spec_files.missing_roots():
                        self.on_outcome(
                            self.engine.reload(
                                self.engine.spec_files.root_paths, detected_at=detected
                            )
                        )
                self._maybe_refresh(detected)
                if self.engine.spec_files.root_identities() != identities:
                    # a spec path was deleted, replaced or came back: report what the disk
                    # holds now (gone: `invalid`, the last good state kept), then watch anew
                    self.batches += 1
                    self.on_outcome(
                        self.engine.reload(self.engine.spec_files.root_paths, detected_at=detected)
                    )
                    reread = rearm = True
                    break
                if not changes:
                    continue
                self.batches += 1
                changed = sorted({path for _change, path in changes})
                if self._needs_settling(changed):
                    self._sleep(self.settle_ms / 1000.0)
                self.on_outcome(self.engine.reload(changed, detected_at=detected))
            if not rearm:
                return

    def _watch(self, paths: list[str], *, recursive: bool) -> Iterator[set[tuple[Any, str]]]:
        import watchfiles  # imported here: `runner validate` and friends never pay for it

        return watchfiles.watch(
            *paths,
            watch_filter=self._filter,
            debounce=self.debounce_ms,
            step=self.step_ms,
            stop_event=self.stop_event,
            rust_timeout=self.rust_timeout_ms,
            yield_on_timeout=True,
            raise_interrupt=True,
            force_polling=self._force_polling,
            recursive=recursive,
        )

    def _maybe_refresh(self, detected: float) -> None:
        due = (
            self.refresh_interval is not None
            and detected - self._last_refresh >= self.refresh_interval
        )
        if self._refresh_requested.is_set() or due:
            self._refresh_requested.clear()
            self._last_refresh = detected
            self.on_outcome(self.engine.refresh())

    def _needs_settling(self, paths: list[str]) -> bool:
        """A tracked file that is gone or empty may be half-way through a delete-and-recreate."""
        for path in paths:
            try:
                if os.path.getsize(path) == 0:
                    return True
            except OSError:
                return True
        return False


def lifecycle_hook(lc: Lifecycle, *, loop: asyncio.AbstractEventLoop | None = None) -> ReloadHook:
    """A hook that hands every good reload's project to a running `Lifecycle.reload`.

    Teams, pools, alerts and channels are swapped; live sessions are kept. Give `loop` when the
    Lifecycle runs on an event loop in another thread than the watcher: the swap is then made
    on that loop, between two turns, never in the middle of one.
    """

    def hook(outcome: ReloadOutcome, project: Project) -> None:
        if outcome.event == "invalid":
            return
        if loop is None:
            lc.reload(project)
        else:
            loop.call_soon_threadsafe(lc.reload, project)

    return hook
