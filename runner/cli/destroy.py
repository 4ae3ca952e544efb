"""`runner destroy [PATH]`: delete everything runner manages in an environment.

Every kind goes: the managed Foundry agents (all their versions) and the registry's resources
(teams, pools, escalation paths, channels, alerts, workspaces). Same rules as apply (the lock is
taken before planning; the summary reads `Destroy complete!`): confirmation (y/N, or the
environment's name when protected, or --auto-approve), and a protected environment also needs
--allow-delete. Agents runner does not manage are never touched.
"""

from __future__ import annotations

import argparse
import sys

from runner.apply.executor import ApplyResult
from runner.cli._workspace import (
    add_spec_arguments,
    compute_current_plan,
    load_workspace,
    open_provider,
    open_registry,
    use_colour,
)
from runner.cli.apply import add_run_arguments, environment_lock, execute, report
from runner.plan.render import render_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    workspace = load_workspace(args.path, args.env, check=False)
    env = workspace.env
    nothing = workspace.empty()
    provider = open_provider(env)
    registry = open_registry(workspace, claim=True)
    try:
        with environment_lock(registry, env.name, args):
            plan = compute_current_plan(nothing, provider=provider, registry=registry)
            sys.stdout.write(render_text(plan, colour=use_colour(sys.stdout)))
            done = execute(
                plan,
                args=args,
                provider=provider,
                registry=registry,
                desired=nothing,
                replan=args.auto_approve,
                what="destroy these resources",
                verb="Destroy",
            )
    finally:
        provider.close()
    return report(done, verb="Destroy") if isinstance(done, ApplyResult) else done
