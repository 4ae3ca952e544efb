"""`runner apply [PLANFILE|PATH]`: plan, confirm, and apply to the environment.

Confirmation: y/N on a TTY, the environment's name for a protected one, `--auto-approve`
otherwise (no TTY and no --auto-approve is an error). A protected environment never deletes
without `--allow-delete`: such an apply changes nothing at all. A saved plan is applied exactly
as shown, or refused as stale when the specs, Foundry or the registry moved since it was saved.
With --auto-approve and no saved plan, a plan that went stale while waiting for the lock is
made again under the lock (so concurrent applies converge instead of failing).

Output: the plan and one line per finished operation on stdout (plain lines, fit for logs);
a progress bar on stderr only when stderr is a terminal, cleared before each line so the two
never share a line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

from runner.apply.executor import (
    DEFAULT_PARALLELISM,
    ApplyError,
    ApplyResult,
    Progress,
    apply_plan,
)
from runner.cli._workspace import (
    add_lock_argument,
    add_spec_arguments,
    compute_current_plan,
    confirm,
    load_workspace,
    open_provider,
    open_registry,
    print_conflicts,
    use_colour,
)
from runner.errors import EXIT_FAILED, EXIT_OK, UserError
from runner.plan.ops import Plan
from runner.plan.render import render_text
from runner.state.base import LockTimeoutError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        nargs="?",
        default="specs",
        metavar="PLANFILE|PATH",
        help="a plan saved by `runner plan --out`, or the spec folder (default: ./specs)",
    )
    add_spec_arguments(parser, positional=False)
    add_run_arguments(parser)
    parser.add_argument(
        "--refresh-only",
        action="store_true",
        help="record Foundry's live state in the registry; change nothing",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--allow-delete", action="store_true", help="allow deletes in a protected environment"
    )
    parser.add_argument(
        "--parallelism",
        type=int,
        default=DEFAULT_PARALLELISM,
        metavar="N",
        help=f"operations in flight at once (default {DEFAULT_PARALLELISM})",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=None,
        metavar="S",
        help="how long a Foundry write may take to land (default: the provider's request "
        "timeout, 60 for Foundry). If this apply is killed, the next one waits this long "
        "after its last write before changing anything",
    )
    add_lock_argument(parser)


def _is_terminal(stream: IO[str]) -> bool:
    return stream.isatty() and os.environ.get("TERM") != "dumb"


class ProgressPrinter:
    """One line per finished op on `out`; a bar on `err` only when it is a terminal."""

    def __init__(self, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.out = sys.stdout if out is None else out
        self.err = sys.stderr if err is None else err
        self.bar = _is_terminal(self.err)
        self._drawn = False

    def _line(self, text: str) -> None:
        if self._drawn:  # the bar shares the terminal: clear it so the line starts clean
            self.err.write("\r\033[K")
            self.err.flush()
            self._drawn = False
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self, progress: Progress) -> None:
        last = progress.last
        if last.action == "delete_version" and last.outcome == "ok":
            self._line(f"{last.address}: duplicate version removed (kept {last.foundry_version})")
        elif last.outcome == "ok":
            version = f" (version {last.foundry_version})" if last.foundry_version else ""
            self._line(f"{last.address}: {last.action} done{version}")
        elif last.outcome == "failed":
            self._line(f"{last.address}: {last.action} FAILED: {last.detail}")
        if self.bar:
            width = 30
            filled = width * progress.done // max(progress.total, 1)
            self.err.write(
                f"\r[{'#' * filled}{' ' * (width - filled)}] {progress.done}/{progress.total}"
                f" {progress.elapsed:.0f}s"
            )
            self._drawn = progress.done < progress.total
            if not self._drawn:
                self.err.write("\n")
            self.err.flush()


def report(result: ApplyResult) -> int:
    if result.replanned:
        print("Foundry or the registry changed while waiting for the lock; applied a fresh plan.")
    counts = {"create": 0, "update": 0, "delete": 0, "drift": 0, "adopt": 0, "delete_version": 0}
    for outcome in result.outcomes:
        if outcome.outcome == "ok":
            counts[outcome.action] = counts.get(outcome.action, 0) + 1
    for outcome in result.failed:
        print(
            f"runner: error: {outcome.address}: {outcome.action} failed: {outcome.detail}",
            file=sys.stderr,
        )
    skipped = [o for o in result.outcomes if o.outcome == "skipped"]
    if skipped:
        print(
            f"runner: {len(skipped)} operation(s) skipped after a failure: "
            + ", ".join(o.address for o in skipped),
            file=sys.stderr,
        )
    word = "complete" if result.ok else "failed"
    print(
        f"Apply {word}! Resources: {counts['create']} added, "
        f"{counts['update'] + counts['drift']} changed, {counts['delete']} destroyed"
        + (f", {counts['adopt']} recorded" if counts["adopt"] else "")
        + (
            f", {counts['delete_version']} duplicate version(s) removed"
            if counts["delete_version"]
            else ""
        )
        + f". (apply id {result.apply_id})"
    )
    return EXIT_OK if result.ok else EXIT_FAILED


def execute(
    plan: Plan,
    *,
    args: argparse.Namespace,
    provider: Any,
    registry: Any,
    desired: Any,
    replan: bool,
    what: str = "apply these changes",
) -> int:
    if plan.conflicts:
        print_conflicts(plan)
        return EXIT_FAILED
    if plan.protected and plan.deletes and not args.allow_delete:
        names = ", ".join(getattr(op, "address", "") for op in plan.deletes)
        raise UserError(
            f"environment {plan.env!r} is protected and this apply would delete {names}; "
            "nothing was applied. Re-run with --allow-delete to delete them"
        )
    if not plan.ops:
        return EXIT_OK
    confirm(plan, auto_approve=args.auto_approve, what=what)
    try:
        result = apply_plan(
            plan,
            provider=provider,
            registry=registry,
            env=plan.env,
            parallelism=args.parallelism,
            lock_timeout=args.lock_timeout,
            on_progress=ProgressPrinter(),
            desired=desired,
            replan=replan,
            allow_delete=args.allow_delete or not plan.protected,
            request_timeout=getattr(args, "request_timeout", None),
        )
    except (ApplyError, LockTimeoutError) as exc:
        raise UserError(str(exc)) from None
    return report(result)


def _saved_plan(target: str) -> dict[str, Any] | None:
    path = Path(target)
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{target}: not a saved plan ({exc})") from None
    if not isinstance(document, dict) or document.get("format_version") != 1:
        raise UserError(f"{target}: not a saved plan (write one with `runner plan --out FILE`)")
    return document


def run(args: argparse.Namespace) -> int:
    saved = _saved_plan(args.target)
    if saved is not None:
        if args.env and args.env != saved.get("environment"):
            raise UserError(
                f"the saved plan is for environment {saved.get('environment')!r}, not {args.env!r}"
            )
        workspace = load_workspace(str(saved.get("specs_path", "specs")), saved["environment"])
        refresh_only = bool(saved.get("refresh_only", False))
    else:
        workspace = load_workspace(args.target, args.env)
        refresh_only = args.refresh_only
    desired = workspace.desired()
    provider = open_provider(workspace.env)
    registry = open_registry(workspace, claim=True)
    try:
        plan = compute_current_plan(
            desired,
            provider=provider,
            registry=registry,
            refresh_only=refresh_only,
            specs=workspace,
        )
        if saved is not None:
            inputs = saved.get("inputs", {})
            if plan.fingerprint != saved.get("fingerprint"):
                if plan.desired_fingerprint != inputs.get("specs"):
                    why = "the specs changed"
                elif plan.actual_fingerprint != inputs.get("foundry"):
                    why = "Foundry changed"
                else:
                    why = "the registry changed (another apply ran)"
                raise UserError(
                    f"the saved plan is stale: {why} since it was made; "
                    "run `runner plan --out FILE` again"
                )
        sys.stdout.write(render_text(plan, colour=use_colour(sys.stdout)))
        return execute(
            plan,
            args=args,
            provider=provider,
            registry=registry,
            desired=desired,
            replan=saved is None and args.auto_approve,
        )
    finally:
        provider.close()
