"""`runner state list|show`: what the registry holds for an environment (no Foundry call)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from runner.cli._workspace import DEFAULT_SPECS, load_workspace, open_registry
from runner.errors import EXIT_OK, UserError
from runner.spec.models import Environment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="state_command", metavar="COMMAND")
    sub.required = True
    listing = sub.add_parser("list", help="every resource recorded for the environment")
    listing.add_argument("path", nargs="?", default=DEFAULT_SPECS)
    listing.add_argument("--env", default=None)
    show = sub.add_parser("show", help="one resource: hash, Foundry version, body")
    show.add_argument("address")
    show.add_argument("path", nargs="?", default=DEFAULT_SPECS)
    show.add_argument("--env", default=None)


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


def run(args: argparse.Namespace) -> int:
    env, model = environment_of(args.path, args.env)
    registry = open_registry(spec_path=args.path, read_only=True, env=model)
    if args.state_command == "list":
        for address, record in registry.applied(env).items():
            where = (
                f"  {record.foundry_name} v{record.foundry_version}" if record.foundry_name else ""
            )
            print(f"{address}{where}")
        return EXIT_OK
    found = registry.get(env, args.address)
    if found is None:
        raise UserError(f"{args.address}: not in the registry for environment {env!r}")
    record = found
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
