"""`runner watch [PATH] [--env NAME] [--apply] [--format text|json]`: reload on every save.

Each save is validated first; an invalid one prints its problems at file:line:col and keeps the
last good state (nothing planned, applied or deleted from it). A good one prints the plan, or
with `--apply` applies it, except in a protected environment, which is only ever planned (said
at start and on every reload). `--format json` prints one JSON object per reload
(`ReloadOutcome.to_json`). Ctrl-C stops (exit 130), SIGTERM too (exit 0), within a second
whatever is rendering (the handler cancels rendering: `runner.spec.render_limits`); SIGUSR1
re-reads Foundry and the registry in full, as does every `--refresh-interval` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from typing import IO, Any

from runner.apply.executor import DEFAULT_PARALLELISM
from runner.cli._workspace import (
    add_lock_argument,
    add_spec_arguments,
    non_negative_float,
    positive_int,
    require_spec_folder,
    use_colour,
)
from runner.errors import EXIT_OK
from runner.spec.render_limits import RenderCancelled, cancel_rendering
from runner.watch.engine import ReloadEngine
from runner.watch.outcome import ReloadOutcome

EXIT_INTERRUPTED = 130
DEFAULT_REFRESH_INTERVAL = 300.0

_GLYPHS = {
    "applied": ("✓", "\033[32m"),
    "planned": ("~", "\033[33m"),
    "unchanged": ("·", "\033[2m"),
    "invalid": ("✗", "\033[31m"),
    "failed": ("✗", "\033[31m"),
}
_RESET = "\033[0m"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument(
        "--apply",
        action="store_true",
        help="apply each good save (never in a protected environment: there it only plans)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--refresh-interval",
        type=non_negative_float,
        default=DEFAULT_REFRESH_INTERVAL,
        metavar="S",
        help="re-read Foundry and the registry in full every S seconds (0: never; "
        f"default {DEFAULT_REFRESH_INTERVAL:g}); SIGUSR1 asks for one at once",
    )
    parser.add_argument(
        "--parallelism",
        type=positive_int,
        default=DEFAULT_PARALLELISM,
        metavar="N",
        help=f"operations in flight at once, 1 or more (default {DEFAULT_PARALLELISM})",
    )
    add_lock_argument(parser)


class TextReporter:
    """Short lines for people; colour only on a terminal."""

    def __init__(self, stream: IO[str], *, apply: bool, path: str) -> None:
        self.stream = stream
        self.colour = use_colour(stream)
        self.apply = apply
        self.path = path
        self.started = False

    def _paint(self, text: str, event: str) -> str:
        glyph, code = _GLYPHS[event]
        line = f"{glyph} {text}"
        return f"{code}{line}{_RESET}" if self.colour else line

    def __call__(self, outcome: ReloadOutcome) -> None:
        out: list[str] = []
        if not self.started and outcome.event != "invalid":
            self.started = True
            mode = "applying each save" if self.apply else "planning each save"
            if outcome.protected:
                mode = "planning each save (protected: never applied)"
            out.append(
                f"Watching {self.path} for environment {outcome.env!r}, {mode}. Ctrl-C stops."
            )
        stamp = time.strftime("%H:%M:%S")
        files = outcome.files
        where = files[0] if len(files) == 1 else (f"{len(files)} files" if files else "state")
        took = f"({outcome.elapsed_ms:.0f} ms)"
        if outcome.event == "invalid":
            count = len(outcome.errors)
            out.append(
                self._paint(
                    f"{stamp} {where}: {count} problem{'s' if count != 1 else ''}; "
                    "kept the last good state, nothing planned or applied",
                    "invalid",
                )
            )
            out.extend(f"  {p.format()}" for p in outcome.errors)
        elif outcome.event == "unchanged":
            out.append(self._paint(f"{stamp} {where}: no changes {took}", "unchanged"))
        elif outcome.event == "applied":
            assert outcome.result is not None
            outcomes = outcome.result.outcomes
            if len(outcomes) > 5:
                counts: dict[str, int] = {}
                for o in outcomes:
                    counts[o.action] = counts.get(o.action, 0) + 1
                done = (
                    f"{len(outcomes)} changes ("
                    + ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
                    + ")"
                )
            else:
                done = ", ".join(
                    f"{o.address} {o.action}"
                    + (f" v{o.foundry_version}" if o.foundry_version else "")
                    for o in outcomes
                )
            out.append(self._paint(f"{stamp} {where}: applied {done} {took}", "applied"))
        elif outcome.event == "planned":
            out.append(self._paint(f"{stamp} {where}: planned {took}", "planned"))
            if outcome.plan is not None:
                from runner.plan.render import render_text

                text = render_text(outcome.plan, colour=self.colour).rstrip("\n")
                out.extend(f"  {line}" if line else "" for line in text.split("\n"))
        else:
            out.append(self._paint(f"{stamp} {where}: failed: {outcome.message} {took}", "failed"))
        if outcome.message and outcome.event == "planned":
            out.append(f"  {outcome.message}")
        self.stream.write("\n".join(out) + "\n")
        self.stream.flush()


class JsonReporter:
    """One JSON object per reload, one per line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, outcome: ReloadOutcome) -> None:
        self.stream.write(json.dumps(outcome.to_json(), sort_keys=True, ensure_ascii=False) + "\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from runner.watch.watcher import SpecWatcher

    require_spec_folder(args.path)
    engine = ReloadEngine(
        [args.path],
        env=args.env,
        apply=args.apply,
        parallelism=args.parallelism,
        lock_timeout=args.lock_timeout,
    )
    reporter: Any = (
        JsonReporter(sys.stdout)
        if args.format == "json"
        else TextReporter(sys.stdout, apply=args.apply, path=args.path)
    )
    watcher = SpecWatcher(
        engine,
        on_outcome=reporter,
        refresh_interval=args.refresh_interval or None,
    )
    previous = _install_signals(watcher)
    try:
        watcher.run()
    except KeyboardInterrupt:
        if args.format == "text":
            print("Stopped watching.", flush=True)
        return EXIT_INTERRUPTED
    except RenderCancelled:  # SIGTERM while a template rendered: nothing was planned from it
        if args.format == "text":
            print("Stopped watching.", flush=True)
        return EXIT_OK
    finally:
        _restore_signals(previous)
        engine.close()
    return EXIT_OK


def _install_signals(watcher: Any) -> dict[int, Any]:
    previous: dict[int, Any] = {}

    def stop(_signum: int, _frame: object) -> None:
        watcher.stop()
        cancel_rendering()  # a template rendering now stops at its next step

    def refresh(_signum: int, _frame: object) -> None:
        watcher.request_refresh()

    for name, handler in (("SIGTERM", stop), ("SIGUSR1", refresh)):
        number = getattr(signal, name, None)
        if number is not None:
            # ValueError: not the main thread (tests drive run() from threads)
            with contextlib.suppress(ValueError):
                previous[number] = signal.signal(number, handler)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)
