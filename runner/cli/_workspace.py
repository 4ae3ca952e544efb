"""What the plan/apply/destroy/state/history/import verbs share: load, check, plan, confirm.

Role in the flow: the CLI edge. Loads the specs (refusing invalid ones with every problem at
file:line:col), resolves the environment, builds the provider and the registry, and turns the
library's exceptions into `UserError`s naming the resource. No verb builds these itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from runner.cli.process import importing
from runner.errors import EXIT_FAILED, UserError
from runner.paths import ProjectHome
from runner.plan.desired import DesiredState, compute_desired, project_identity
from runner.plan.ops import Plan
from runner.plan.planner import compute_plan
from runner.providers.base import Provider, ProviderError
from runner.spec.models import Environment
from runner.spec.project import Project
from runner.state.base import ProjectMismatchError
from runner.state.errors import state_file_errors
from runner.state.sqlite import SqliteRegistry

if TYPE_CHECKING:
    from runner.state.pg_registry import PostgresRegistry

DEFAULT_SPECS = "specs"
DEFAULT_LOCK_TIMEOUT = 120.0


def add_spec_arguments(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    if positional:
        parser.add_argument(
            "path", nargs="?", default=DEFAULT_SPECS, help="spec folder (default: ./specs)"
        )
    parser.add_argument("--env", default=None, help="environment (default: the default one)")


def add_lock_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-timeout",
        type=non_negative_float,
        default=DEFAULT_LOCK_TIMEOUT,
        metavar="S",
        help="seconds to wait while another apply holds the environment "
        f"(default {DEFAULT_LOCK_TIMEOUT:g})",
    )


@dataclass
class Workspace:
    path: Path
    project: Project
    env: Environment

    @property
    def home(self) -> ProjectHome:
        """Where this spec folder's project lives: its `.runner/`, its default identity."""
        return ProjectHome.of(self.path)

    @property
    def owner(self) -> str:
        """The runner project identity: the environment's `project:`, else the derived one."""
        return project_identity(self.env, self.home.default_project)

    def desired(self) -> DesiredState:
        from runner.spec.render_resolve import RenderError

        try:
            return compute_desired(self.project, self.env, owner=self.owner)
        except RenderError as exc:
            raise UserError(f"cannot render {exc}") from None

    def empty(self) -> DesiredState:
        """Nothing desired (what `destroy` plans towards), owned by this project."""
        env = self.env
        return DesiredState(
            env=env.name, name_prefix=env.name_prefix, protected=env.protected, project=self.owner
        )


def require_spec_folder(path: str) -> Path:
    """`path` as a Path; UserError saying what to give when it does not exist."""
    root = Path(path)
    if not root.exists():
        raise UserError(f"spec folder {path!r} does not exist (give the folder as an argument)")
    return root


def load_workspace(path: str, env_name: str | None, *, check: bool = True) -> Workspace:
    """The checked project at `path` and its environment; UserError listing every problem."""
    from runner.spec.loader import load_project
    from runner.spec.project import UnknownEnvironmentError

    root = require_spec_folder(path)
    result = load_project([root])
    problems = list(result.problems)
    if check and not [p for p in problems if p.severity == "error"]:
        from runner.spec.checks import check_project

        problems.extend(check_project(result.project))
    errors = [p for p in problems if p.severity == "error"]
    for problem in sorted(problems):
        print(problem.format(), file=sys.stderr)
    if errors:
        raise UserError(
            f"{len(errors)} problem{'s' if len(errors) != 1 else ''} in the specs; "
            "nothing was planned"
        )
    try:
        env = result.project.environment(env_name)
    except UnknownEnvironmentError as exc:
        raise UserError(str(exc)) from None
    if env.provider == "local" and env.data_dir is None:  # the local store lives with the project
        env = env.model_copy(update={"data_dir": str(ProjectHome.of(root).state_dir)})
    return Workspace(root, result.project, env)


def open_provider(env: Environment, *, read_only: bool = False) -> Provider:
    from runner.paths import local_store_path
    from runner.providers import build_provider

    try:
        if env.provider != "local":
            with importing():  # the provider's SDK (azure-ai-projects: openai, azure.storage.blob)
                return build_provider(env)
        with state_file_errors(local_store_path(env.data_dir)):  # the local store is a state file
            return build_provider(env, read_only=read_only)
    except ProviderError as exc:
        raise UserError(f"environment {env.name!r}: {exc}") from None


def _tell(notice: object) -> None:
    print(f"runner: {notice}", file=sys.stderr, flush=True)


def _notice(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def open_registry(
    workspace: Workspace | None = None,
    *,
    spec_path: str | None = None,
    read_only: bool = False,
    claim: bool = False,
    env: Environment | None = None,
) -> SqliteRegistry | PostgresRegistry:
    """The registry of `workspace`'s project (its `.runner/`, or RUNNER_HOME); notices (e.g.
    waiting out a dead apply's writes) go to stderr. `read_only` (plan) creates and writes
    nothing; `claim` (apply, destroy, import) records the project as the environment's owner.
    Either way a registry that holds the environment for another project is refused. The
    environment's `state:` (of `workspace`, or `env`) chooses the backend: its PostgreSQL
    database (shared by many projects: this project's environments only), else the SQLite
    file (one project per environment)."""
    from runner.paths import registry_path
    from runner.state.backends import state_location
    from runner.state.pg_database import StateUnavailableError

    home = workspace.home if workspace is not None else None
    path = home.registry_path if home is not None else registry_path(spec_path)
    if workspace is not None:
        project = workspace.owner
    elif env is not None:
        default = ProjectHome.of(spec_path).default_project if spec_path is not None else ""
        project = project_identity(env, default)
    else:
        project = ""
    registry: SqliteRegistry | PostgresRegistry
    try:
        location = state_location(workspace.env if workspace is not None else env, default=path)
        if location.url is not None:
            from runner.state.pg_registry import PostgresRegistry

            registry = PostgresRegistry(location.url, on_notice=_notice, project=project)
        elif read_only:
            registry = SqliteRegistry.open_read_only(location.path or path)
        else:
            registry = SqliteRegistry(location.path or path, on_notice=_notice)
        if workspace is not None:
            if claim:
                registry.claim_project(workspace.env.name, workspace.owner)
            else:
                registry.check_project(workspace.env.name, workspace.owner)
    except (ProjectMismatchError, StateUnavailableError) as exc:
        raise UserError(str(exc)) from None
    return registry


def compute_current_plan(
    desired: DesiredState,
    *,
    provider: Provider,
    registry: SqliteRegistry | PostgresRegistry,
    refresh_only: bool = False,
    specs: Workspace | None = None,
) -> Plan:
    """Read Foundry (one paged listing) and the registry, then plan. With `specs`, a spec
    folder holding no documents while the registry records resources is refused."""
    from runner.apply.executor import read_actual

    if specs is not None:
        refuse_empty_specs(specs, registry)

    store = getattr(getattr(provider, "store", None), "path", None)  # the local provider's file
    try:
        if isinstance(store, Path):
            with state_file_errors(store):
                actual = read_actual(provider, on_retry=_tell)
        else:
            actual = read_actual(provider, on_retry=_tell)
    except ProviderError as exc:
        raise UserError(f"cannot read agents from Foundry: {exc}") from None
    return compute_plan(
        desired, actual, registry.applied(desired.env), env=desired.env, refresh_only=refresh_only
    )


def refuse_empty_specs(workspace: Workspace, registry: SqliteRegistry | PostgresRegistry) -> None:
    """UserError when the spec folder holds no documents but the registry records resources
    applied in its environment: an emptied or unmounted folder is not a request to delete."""
    if workspace.project.documents:
        return
    recorded = registry.applied(workspace.env.name)
    if recorded:
        raise UserError(
            f"spec folder {str(workspace.path)!r} holds no documents, but the registry records "
            f"{len(recorded)} resource{'s' if len(recorded) != 1 else ''} applied in environment "
            f"{workspace.env.name!r}; nothing was planned. Restore the specs, or run "
            f"`runner destroy {workspace.path}` to remove everything it applied"
        )


def use_colour(stream: IO[str]) -> bool:
    """Colour on a terminal, unless NO_COLOR (or --no-color) or TERM=dumb says no; FORCE_COLOR
    asks for it anywhere (https://no-color.org, https://force-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


T = TypeVar("T", int, float)


def _bounded(parse: Callable[[str], T], what: str, low: T, high: T | None) -> Callable[[str], T]:
    """An argparse type: `parse` the text, a finite value from `low` to `high` (inclusive)."""

    def convert(text: str) -> T:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {text}")
        if not low <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be {low} or more, not {text}")
        return value

    return convert


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse type: a whole number from `low` (to `high`)."""
    return _bounded(int, "a whole number", low, high)


def real_number(low: float, high: float | None = None) -> Callable[[str], float]:
    """argparse type: a finite number from `low` (to `high`)."""
    return _bounded(float, "a number", low, high)


positive_int = whole_number(1)
port_number = whole_number(0, 65535)  # 0: any free port
non_negative_float = real_number(0)  # seconds


def writable_file(path: str, *, option: str) -> None:
    """UserError (usage, exit 2) when `path`'s folder does not exist or cannot be written."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise UserError(f"{option} {path}: folder {str(folder)!r} does not exist", exit_code=2)
    if not os.access(folder, os.W_OK) or Path(path).is_dir():
        raise UserError(f"{option} {path}: cannot write there", exit_code=2)


def print_conflicts(plan: Plan) -> None:
    for conflict in plan.conflicts:
        print(f"runner: error: {conflict.address}: {conflict.message}", file=sys.stderr)


def confirm(plan: Plan, *, auto_approve: bool, what: str = "apply these changes") -> None:
    """Ask on a TTY (the env name for a protected environment); UserError when refused."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise UserError(
            f"no terminal to confirm on; re-run with --auto-approve to {what} non-interactively"
        )
    if plan.protected:
        answer = input(f"Environment {plan.env!r} is protected. Type its name to {what}: ").strip()
        if answer != plan.env:
            raise UserError("not confirmed; nothing was changed", exit_code=EXIT_FAILED)
        return
    answer = input(f"Do you want to {what}? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise UserError("not confirmed; nothing was changed", exit_code=EXIT_FAILED)


def write_json(path: str, document: dict[str, Any], *, option: str = "--out") -> None:
    """Write `document`; a path that cannot be written is a usage error (exit 2)."""
    try:
        Path(path).write_text(
            json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    except OSError as exc:
        raise UserError(f"{option} {path}: {exc.strerror or exc}", exit_code=2) from None
