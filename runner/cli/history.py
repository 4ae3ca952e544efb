"""`runner history ADDRESS`: the journal of a resource and, for agents, Foundry's versions."""

from __future__ import annotations

import argparse

from runner.cli._workspace import (
    DEFAULT_SPECS,
    load_workspace,
    open_provider,
    open_registry,
)
from runner.cli.state import when
from runner.errors import EXIT_OK, UserError
from runner.providers.base import ProviderError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", help="e.g. agent.tech-agent-1")
    parser.add_argument("path", nargs="?", default=DEFAULT_SPECS)
    parser.add_argument("--env", default=None)


def run(args: argparse.Namespace) -> int:
    workspace = load_workspace(args.path, args.env, check=False)
    env = workspace.env
    registry = open_registry(workspace, read_only=True)
    journal = registry.history(env.name, args.address)
    record = registry.get(env.name, args.address)
    foundry_name: str | None = None
    if record is not None and record.foundry_name:
        foundry_name = record.foundry_name
    elif args.address.startswith("agent."):
        foundry_name = env.name_prefix + args.address.removeprefix("agent.")
    if not journal and record is None and foundry_name is None:
        raise UserError(f"{args.address}: no history in environment {env.name!r}")
    print(f"Journal of {args.address} in {env.name!r}:")
    for entry in journal:
        version = f" version {entry.foundry_version}" if entry.foundry_version else ""
        spec = f" hash {entry.hash[:12]}" if entry.hash else ""
        detail = f" ({entry.detail})" if entry.detail else ""
        print(
            f"  {when(entry.at)}  {entry.action:<7} {entry.outcome:<6}{version}{spec}"
            f"  apply {entry.apply_id}{detail}"
        )
    if not journal:
        print("  (nothing recorded)")
    if foundry_name is not None:
        provider = open_provider(env)
        try:
            versions = provider.list_versions(foundry_name)
        except ProviderError as exc:
            raise UserError(f"{args.address}: cannot list Foundry versions: {exc}") from None
        finally:
            provider.close()
        print(f"Foundry versions of {foundry_name}:")
        for v in versions:
            spec = v.spec_hash[:12] if v.spec_hash else "-" * 12
            who = "runner" if v.managed else "not runner"
            print(f"  v{v.version:<4} {when(float(v.created_at))}  hash {spec}  ({who})")
        if not versions:
            print("  (no such agent in Foundry)")
    return EXIT_OK
