"""`runner plan`: show what apply would change in an environment; optionally save the plan.

Exit codes: 0 no changes (or changes without --detailed-exitcode), 1 error (invalid specs, a
name taken by an unmanaged agent, Foundry unreachable), 2 changes with --detailed-exitcode.
Reading creates nothing: a project never applied plans against an empty registry and an empty
local store without making either file. A saved plan (`--out FILE`) is the JSON document plus
the spec folder; `runner apply FILE` applies exactly it (no confirmation), or refuses it as stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.cli._workspace import (
    add_spec_arguments,
    compute_current_plan,
    load_workspace,
    open_provider,
    open_registry,
    print_conflicts,
    use_colour,
    writable_file,
    write_json,
)
from runner.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from runner.plan.render import render_json, render_json_document, render_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--out", metavar="FILE", help="save the plan for `runner apply FILE`")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when there are changes (0 none, 1 error)",
    )
    parser.add_argument(
        "--refresh-only",
        action="store_true",
        help="only record Foundry's live state (drift) in the registry; change nothing",
    )


def run(args: argparse.Namespace) -> int:
    if args.out:
        writable_file(args.out, option="--out")  # before the work, not after it
    workspace = load_workspace(args.path, args.env)
    desired = workspace.desired()
    provider = open_provider(workspace.env, read_only=True)
    try:
        plan = compute_current_plan(
            desired,
            provider=provider,
            registry=open_registry(workspace, read_only=True),
            refresh_only=args.refresh_only,
            specs=workspace,
        )
    finally:
        provider.close()
    if args.format == "json":
        sys.stdout.write(render_json(plan))
    else:
        sys.stdout.write(render_text(plan, colour=use_colour(sys.stdout)))
    if plan.conflicts:
        print_conflicts(plan)
        return EXIT_FAILED
    if args.out:
        document = render_json_document(plan)
        document["specs_path"] = str(Path(args.path).resolve())
        write_json(args.out, document)
        print(f"Saved the plan to {args.out}; `runner apply {args.out}` applies exactly it.")
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_USAGE  # 2: changes present
    return EXIT_OK
