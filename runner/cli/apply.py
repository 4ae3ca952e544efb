"""`runner apply [PLANFILE|PATH]`: plan, confirm, and apply to the environment.

Confirmation: y/N on a TTY, the environment's name for a protected one, `--auto-approve`
otherwise (no TTY and no --auto-approve is an error). A saved plan needs none: it was reviewed
when it was made (`runner plan --out`), and it is refused if anything moved since. The
environment's lock is taken before planning, so a second apply waits (or fails on
--lock-timeout) before it prints anything. Retries are told on stderr as they wait
(`retrying agent.x in 2.0 s (2/8): ...`). The summary line counts what was done the way the plan
counted it (`Apply complete!`, `Destroy complete!`). A protected environment never deletes
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
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from runner.apply.executor import (
    DEFAULT_PARALLELISM,
    ApplyError,
    ApplyResult,
    Progress,
    apply_plan,
    default_holder,
)
from runner.apply.fence import RetryNotice
from runner.cli._workspace import (
    add_lock_argument,
    add_spec_arguments,
    compute_current_plan,
    confirm,
    load_workspace,
    non_negative_float,
    open_provider,
    open_registry,
    positive_int,
    print_conflicts,
    use_colour,
)
from runner.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserError
from runner.plan.ops import Plan, op_address
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
        type=positive_int,
        default=DEFAULT_PARALLELISM,
        metavar="N",
        help=f"operations in flight at once, 1 or more (default {DEFAULT_PARALLELISM})",
    )
    parser.add_argument(
        "--request-timeout",
        type=non_negative_float,
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


def tell_retry(notice: RetryNotice) -> None:
    """Print a retry as it starts to wait (stderr: stdout stays the plan and the results)."""
    print(f"runner: {notice}", file=sys.stderr, flush=True)


def report(result: ApplyResult, *, verb: str = "Apply") -> int:
    if result.replanned:
        print("Foundry or the registry changed while waiting for the lock; applied a fresh plan.")
    # An op's outcome may name what was done rather than the op (a drift is "revert"d or
    # "adopt"ed): match by address, keeping a duplicate version's removal apart.
    done = {(o.address, o.action == "delete_version") for o in result.outcomes if o.outcome == "ok"}
    finished = dataclasses.replace(
        result.plan,
        ops=tuple(
            op for op in result.plan.ops if (op_address(op), op.action == "delete_version") in done
        ),
    )
    counts = finished.summary  # counted as the plan counted them
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
        f"{verb} {word}! Resources: {counts['add']} added, "
        f"{counts['change']} changed, {counts['destroy']} destroyed"
        + (f", {counts['adopt']} recorded" if counts["adopt"] else "")
        + (f", {counts['duplicates']} duplicate version(s) removed" if counts["duplicates"] else "")
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
    verb: str = "Apply",
    reviewed: bool = False,
) -> int | ApplyResult:
    """Confirm (unless `reviewed`: a saved plan) and apply `plan`: an exit code when nothing
    ran, else the result, which the caller reports once it has released the environment's lock
    (`environment_lock`, held around this) so a failing release is the one error shown."""
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
    confirm(plan, auto_approve=args.auto_approve or reviewed, what=what)
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
            on_retry=tell_retry,
            lock_held=True,  # `environment_lock` took it before the plan was made
        )
    except (ApplyError, LockTimeoutError) as exc:
        raise UserError(str(exc)) from None
    return result


@contextlib.contextmanager
def environment_lock(registry: Any, env: str, args: argparse.Namespace) -> Iterator[None]:
    """Hold `env`'s apply lock from before the plan is made to the end of the apply."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(
                registry.lock(env, holder=default_holder(), timeout=args.lock_timeout)
            )
        except LockTimeoutError as exc:
            raise UserError(str(exc)) from None
        yield


_SAVED_KEYS: dict[str, type] = {
    "environment": str,
    "fingerprint": str,
    "inputs": dict,
    "specs_path": str,
    "changes": list,
}


def _saved_plan(target: str) -> dict[str, Any] | None:
    """The saved plan at `target` (None when it is a folder); a malformed one is a usage error."""
    path = Path(target)
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{target}: not a saved plan ({exc})", exit_code=EXIT_USAGE) from None
    again = "write one with `runner plan --out FILE`"
    if not isinstance(document, dict) or document.get("format_version") != 1:
        raise UserError(f"{target}: not a saved plan ({again})", exit_code=EXIT_USAGE)
    for key, kind in _SAVED_KEYS.items():
        if not isinstance(document.get(key), kind):
            what = "missing" if key not in document else f"not a {kind.__name__}:"
            raise UserError(
                f"{target}: not a complete saved plan ({what} {key!r}); {again}",
                exit_code=EXIT_USAGE,
            )
    return document


def run(args: argparse.Namespace) -> int:
    saved = _saved_plan(args.target)
    if saved is not None:
        if args.env and args.env != saved["environment"]:
            raise UserError(
                f"the saved plan is for environment {saved['environment']!r}, not {args.env!r}"
            )
        workspace = load_workspace(saved["specs_path"], saved["environment"])
        refresh_only = bool(saved.get("refresh_only", False))
    else:
        workspace = load_workspace(args.target, args.env)
        refresh_only = args.refresh_only
    desired = workspace.desired()
    provider = open_provider(workspace.env)
    registry = open_registry(workspace, claim=True)
    try:
        with environment_lock(registry, workspace.env.name, args):
            plan = compute_current_plan(
                desired,
                provider=provider,
                registry=registry,
                refresh_only=refresh_only,
                specs=workspace,
            )
            if saved is not None:
                _refuse_stale(plan, saved)
            sys.stdout.write(render_text(plan, colour=use_colour(sys.stdout)))
            done = execute(
                plan,
                args=args,
                provider=provider,
                registry=registry,
                desired=desired,
                replan=saved is None and args.auto_approve,
                reviewed=saved is not None,
            )
    finally:
        provider.close()
    return report(done) if isinstance(done, ApplyResult) else done


def _refuse_stale(plan: Plan, saved: dict[str, Any]) -> None:
    inputs = saved["inputs"]
    if plan.fingerprint == saved["fingerprint"]:
        return
    if plan.desired_fingerprint != inputs.get("specs"):
        why = "the specs changed"
    elif plan.actual_fingerprint != inputs.get("foundry"):
        why = "Foundry changed"
    else:
        why = "the registry changed (another apply ran)"
    raise UserError(
        f"the saved plan is stale: {why} since it was made; run `runner plan --out FILE` again"
    )
