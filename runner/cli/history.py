"""`runner history ADDRESS`: the journal of a resource and, for agents, Foundry's versions.

An address with no journal, no registry record and (for an agent) no Foundry agent exits 1 with
the closest recorded address suggested, as `runner state show` does. `--format json` prints
`{"address", "environment", "journal": [...], "foundry_name", "foundry_versions": [...]}`.
Reading creates no file.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from runner.cli._workspace import (
    DEFAULT_SPECS,
    load_workspace,
    open_provider,
    open_registry,
)
from runner.cli.state import unknown_address, when
from runner.errors import EXIT_OK, UserError
from runner.providers.base import AgentVersion, ProviderError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", help="the resource, e.g. agent.tech-agent-1")
    parser.add_argument(
        "path",
        nargs="?",
        default=DEFAULT_SPECS,
        help="spec folder, read for the environment (default: ./specs)",
    )
    parser.add_argument("--env", default=None, help="environment (default: the default one)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output")


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
    versions: list[AgentVersion] = []
    if foundry_name is not None:
        versions = _foundry_versions(env, foundry_name, args.address)
    if not journal and record is None and not versions:
        raise unknown_address(args.address, list(registry.applied(env.name)), env.name)
    if args.format == "json":
        print(
            json.dumps(_document(args.address, env.name, journal, foundry_name, versions), indent=2)
        )
        return EXIT_OK
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
        print(f"Foundry versions of {foundry_name}:")
        for v in versions:
            spec = v.spec_hash[:12] if v.spec_hash else "-" * 12
            who = "runner" if v.managed else "not runner"
            print(f"  v{v.version:<4} {when(float(v.created_at))}  hash {spec}  ({who})")
        if not versions:
            print("  (no such agent in Foundry)")
    return EXIT_OK


def _foundry_versions(env: Any, foundry_name: str, address: str) -> list[AgentVersion]:
    provider = open_provider(env, read_only=True)
    try:
        return provider.list_versions(foundry_name)
    except ProviderError as exc:
        raise UserError(f"{address}: cannot list Foundry versions: {exc}") from None
    finally:
        provider.close()


def _document(
    address: str,
    env: str,
    journal: list[Any],
    foundry_name: str | None,
    versions: list[AgentVersion],
) -> dict[str, Any]:
    return {
        "address": address,
        "environment": env,
        "journal": [
            {
                "at": when(e.at),
                "action": e.action,
                "outcome": e.outcome,
                "foundry_version": e.foundry_version,
                "hash": e.hash,
                "apply_id": e.apply_id,
                "detail": e.detail,
            }
            for e in journal
        ],
        "foundry_name": foundry_name,
        "foundry_versions": [
            {
                "version": v.version,
                "created_at": when(float(v.created_at)),
                "hash": v.spec_hash,
                "managed": v.managed,
            }
            for v in versions
        ],
    }
