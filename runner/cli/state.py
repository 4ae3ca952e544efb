"""`runner state list|show`: what the registry holds for an environment (no Foundry call).

`--format json` prints a document for scripts (a list of resources; one resource). An address
the registry does not hold exits 1 with the closest recorded one suggested. Reading creates no
file: a project never applied lists nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from runner.cli._workspace import DEFAULT_SPECS, load_workspace, open_registry
from runner.errors import EXIT_OK, UserError
from runner.spec.models import Environment
from runner.state.base import AppliedResource

__all__ = ["add_arguments", "environment_of", "record_json", "run", "unknown_address", "when"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default=DEFAULT_SPECS,
        help="spec folder, read for the default environment (default: ./specs)",
    )
    parser.add_argument("--env", default=None, help="environment (default: the default one)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="state_command", metavar="COMMAND")
    sub.required = True
    listing = sub.add_parser(
        "list",
        help="every resource recorded for the environment",
        description="Every resource the registry holds for the environment: address, and for "
        "agents the Foundry name and version.",
        formatter_class=parser.formatter_class,
    )
    _common(listing)
    show = sub.add_parser(
        "show",
        help="one resource: hash, Foundry version, body",
        description="One recorded resource: kind, spec hash, Foundry name and version, when it "
        "was applied, and the body applied.",
        formatter_class=parser.formatter_class,
    )
    show.add_argument("address", help="the resource, e.g. agent.triage-agent or team.service-desk")
    _common(show)


def when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def environment_of(path: str, env: str | None) -> tuple[str, Environment | None]:
    """The environment's name and, when the specs define it, its model (its `state:` chooses
    the registry); `--env` without specs reads the default registry."""
    if env is not None and not Path(path).exists():
        return env, None
    try:
        found = load_workspace(path, env, check=False).env
    except UserError:
        if env is None:
            raise
        return env, None
    return found.name, found


def record_json(record: AppliedResource) -> dict[str, Any]:
    return {
        "address": record.address,
        "kind": record.kind,
        "name": record.name,
        "hash": record.hash,
        "foundry_name": record.foundry_name,
        "foundry_version": record.foundry_version,
        "applied_at": when(record.applied_at),
        "body": dict(record.body),
    }


def unknown_address(address: str, known: list[str], env: str) -> UserError:
    """`address` is not recorded in `env`: exit 1, with the closest recorded address."""
    from runner.spec.suggest import did_you_mean

    hint = did_you_mean(address, sorted(known))
    return UserError(f"{address}: not in the registry for environment {env!r}{hint}")


def run(args: argparse.Namespace) -> int:
    env, model = environment_of(args.path, args.env)
    registry = open_registry(spec_path=args.path, read_only=True, env=model)
    applied = registry.applied(env)
    if args.state_command == "list":
        if args.format == "json":
            document = [record_json(r) for r in applied.values()]
            print(json.dumps(document, indent=2, sort_keys=True))
            return EXIT_OK
        for address, listed in applied.items():
            where = (
                f"  {listed.foundry_name} v{listed.foundry_version}" if listed.foundry_name else ""
            )
            print(f"{address}{where}")
        return EXIT_OK
    record = applied.get(args.address)
    if record is None:
        raise unknown_address(args.address, list(applied), env)
    if args.format == "json":
        print(json.dumps(record_json(record), indent=2, sort_keys=True))
        return EXIT_OK
    print(f"address:         {record.address}")
    print(f"kind:            {record.kind}")
    print(f"hash:            {record.hash}")
    if record.foundry_name:
        print(f"foundry name:    {record.foundry_name}")
        print(f"foundry version: {record.foundry_version}")
    print(f"applied at:      {when(record.applied_at)}")
    print("body:")
    print(json.dumps(dict(record.body), indent=2, sort_keys=True))
    return EXIT_OK
