"""`runner import NAME`: adopt an unmanaged Foundry agent into the registry.

The agent must have a spec (an Agent whose Foundry name in this environment is NAME): import
records it under that address, under the environment's lock, and the next apply writes the
spec as a new, managed version. Nothing is written to Foundry here.
"""

from __future__ import annotations

import argparse

from runner.apply.executor import default_holder
from runner.cli._workspace import (
    add_lock_argument,
    add_spec_arguments,
    load_workspace,
    open_provider,
    open_registry,
)
from runner.errors import EXIT_OK, UserError
from runner.providers.base import ProviderError
from runner.spec.models import address_of
from runner.state.base import AppliedResource, LockTimeoutError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the Foundry agent's name")
    add_spec_arguments(parser)
    add_lock_argument(parser)


def run(args: argparse.Namespace) -> int:
    workspace = load_workspace(args.path, args.env)
    env = workspace.env
    name: str = args.name
    spec_name = name.removeprefix(env.name_prefix) if name.startswith(env.name_prefix) else None
    if spec_name is None or spec_name not in workspace.project.agents:
        raise UserError(
            f"no Agent in the specs has the Foundry name {name!r} in environment {env.name!r}; "
            f"write its spec first (an Agent named {name.removeprefix(env.name_prefix)!r})"
        )
    address = address_of("Agent", spec_name)
    registry = open_registry(workspace, claim=True)
    provider = open_provider(env)
    try:
        with registry.lock(env.name, holder=default_holder(), timeout=args.lock_timeout):
            live = provider.get_agent(name)
            if live is None:
                raise UserError(f"{address}: Foundry has no agent named {name!r}")
            if live.managed and live.project is not None:
                owner = "this project" if live.project == workspace.owner else live.project
                raise UserError(
                    f"{address}: Foundry agent {name!r} is already managed by runner "
                    f"(project {owner!r})"
                )
            # a managed version with no project recorded (an earlier runner) may be adopted
            if registry.get(env.name, address) is not None:
                raise UserError(f"{address}: already in the registry")
            registry.record_applied(
                env.name,
                AppliedResource(
                    address=address,
                    kind="Agent",
                    name=spec_name,
                    hash="",
                    body={},
                    foundry_name=name,
                    foundry_version=live.version,
                ),
                apply_id="import",
                action="import",
            )
    except LockTimeoutError as exc:
        raise UserError(str(exc)) from None
    except ProviderError as exc:
        raise UserError(f"{address}: {exc}") from None
    finally:
        provider.close()
    print(
        f"Imported Foundry agent {name!r} (version {live.version}) as {address}. "
        "The next `runner apply` writes the spec as a new managed version."
    )
    return EXIT_OK
