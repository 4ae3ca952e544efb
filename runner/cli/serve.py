"""`runner serve [specs] [--env NAME] [--host 127.0.0.1] [--port 8600] [--watch]`: the runtime
as a service (REST, Socket.io, /metrics, /console) until SIGTERM drains it.

Authentication comes from the environment's `auth:` block. With none declared, serve binds
loopback only and prints a random key with every permission (Jupyter's pattern); a
non-loopback `--host` without `auth:` is refused (exit 2). `--watch` reloads every good save
of the specs into the running runtime; live sessions are kept. Exit 0 after a drain.

`--workers N` (N > 1) runs N runtime processes on one port: this process binds the port, starts
N workers that accept on the same socket (the kernel spreads the connections), forwards
SIGTERM/SIGINT to them (each drains) and exits when they have; a worker that dies stops the
others (exit 1). The workers share what they must through the environment's `redis:` (pool
limits, events, Socket.io rooms), so N > 1 without it is a usage error (exit 2). With no
`auth:`, the printed key is valid on every worker. Socket.io clients connect with the
`websocket` transport (long-polling needs sticky routing, which one port cannot give).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.cli._workspace import port_number
from runner.cli.errors import log_dir
from runner.errors import EXIT_OK, EXIT_USAGE, UserError

if TYPE_CHECKING:
    from runner.spec.models import AuthConfig
    from runner.spec.project import Project

DEFAULT_PORT = 8600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default="specs", help="spec folder (default: ./specs)")
    parser.add_argument("--env", default=None, help="environment (default: the default one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0: any)",
    )
    parser.add_argument(
        "--watch", action="store_true", help="reload every good save of the specs, live"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="runtime processes on the one port (default 1; > 1 needs the environment's redis:)",
    )
    parser.add_argument("--worker-fd", type=int, default=None, help=argparse.SUPPRESS)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    try:
        from runner.runtime.assembly.opening import load_specs
        from runner.serve import server  # noqa: F401  (the serve extra is installed)
    except ImportError as exc:  # the serve extra is not installed
        raise UserError(
            f"runner serve needs its extra ({exc.name} is missing): pip install 'runner[serve]'"
        ) from None
    if not 0 <= args.port <= 65535:
        print("runner: error: --port must be between 0 and 65535", file=sys.stderr)
        return EXIT_USAGE
    root = Path(args.path)
    if not root.exists():
        raise UserError(
            f"spec folder {args.path!r} does not exist (give the folder as an argument)"
        )
    if args.workers < 1:
        print("runner: error: --workers must be 1 or more", file=sys.stderr)
        return EXIT_USAGE
    project = load_specs([root])
    if args.workers > 1 and _declared_redis(project, args.env) is None:
        print(
            f"runner: error: --workers {args.workers} runs several processes that must share "
            "pool limits, events and Socket.io rooms: declare redis: (a Redis URL, ${VAR} "
            "allowed) on the Environment, or run one worker",
            file=sys.stderr,
        )
        return EXIT_USAGE
    auth = _declared_auth(project, args.env)
    if auth is None and not is_loopback(args.host):
        print(
            f"runner: error: --host {args.host} is not a loopback address and the environment "
            "declares no auth: block; declare api_keys or jwt under the Environment's auth: "
            "(or serve on 127.0.0.1)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    _configure_logging()
    if args.workers > 1:
        from runner.cli.serve_workers import run_workers

        return run_workers(args, generate_key=auth is None)
    return _run_async(project, args, auth, root)


def _declared_redis(project: Project, env_name: str | None) -> str | None:
    from runner.spec.project import UnknownEnvironmentError

    try:
        return project.environment(env_name).redis
    except UnknownEnvironmentError:
        return None


def _declared_auth(project: Project, env_name: str | None) -> AuthConfig | None:
    """The environment's `auth:` block (None: none declared, or no such environment yet —
    `Lifecycle.open` reports that). The loader has validated it with the other specs."""
    from runner.spec.project import UnknownEnvironmentError

    try:
        return project.environment(env_name).auth
    except UnknownEnvironmentError:
        return None


def _run_async(project: Any, args: argparse.Namespace, auth: Any, root: Path) -> int:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        return runner.run(_serve(project, args, auth, root))


async def _serve(project: Any, args: argparse.Namespace, auth: Any, root: Path) -> int:
    from runner import Lifecycle
    from runner.serve.app import build_app
    from runner.serve.authn import Authenticator, AuthSetupError
    from runner.serve.context import ServeContext
    from runner.serve.server import bind, make_server, serve_forever

    key: str | None = None
    worker = args.worker_fd is not None
    try:
        if auth is None:
            shared_key = os.environ.get("RUNNER_SERVE_KEY") if worker else None
            authenticator, key = Authenticator.generated(key=shared_key)
        else:
            authenticator = Authenticator.from_config(auth, os.environ)
    except AuthSetupError as exc:
        raise UserError(str(exc)) from None
    try:
        sock = socket.socket(fileno=args.worker_fd) if worker else bind(args.host, args.port)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    lc = await Lifecycle.open(project, env=args.env)
    try:
        context = ServeContext(lc, authenticator, spec_paths=[root], env_name=lc.env.name)
        app = build_app(context)
        server = make_server(app, host=args.host, port=args.port)
        port = sock.getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host
        base = f"http://{host}:{port}"
        lines = [f"runner serve: {base} (environment {lc.env.name})", f"  console: {base}/console"]
        if key is not None:
            lines.append(f"  key (every permission, this run only): {key}")
            lines.append(
                f"  e.g. curl -H 'Authorization: Bearer {key}' {base}/api/agent-lifecycle/sessions"
            )
        if worker:  # the parent printed the address and key
            print(f"runner serve: worker {os.getpid()} ready", file=sys.stderr, flush=True)
        else:
            print("\n".join(lines), flush=True)
        watching = _start_watch(lc, root, args.env) if args.watch else None
        try:
            await serve_forever(server, sockets=[sock])
        finally:
            if watching is not None:
                # Stopped and joined before the interpreter exits: a watcher thread still inside
                # watchfiles' native loop at exit aborts the process (seen with watchfiles 0.21).
                watcher, thread = watching
                watcher.stop()
                await asyncio.to_thread(thread.join, 10.0)
    finally:
        await lc.close()
        sock.close()
    print("runner serve: drained and stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def _start_watch(lc: Any, root: Path, env: str | None) -> tuple[Any, threading.Thread]:
    from runner.watch.engine import ReloadEngine
    from runner.watch.watcher import SpecWatcher, lifecycle_hook

    loop = asyncio.get_running_loop()
    engine = ReloadEngine([root], env=env, apply=False, hooks=[lifecycle_hook(lc, loop=loop)])

    def report(outcome: Any) -> None:
        if outcome.event == "invalid":
            print(
                f"runner serve: specs invalid ({len(outcome.errors)} problems), "
                "kept the last good state",
                file=sys.stderr,
                flush=True,
            )
            for problem in outcome.errors[:20]:
                print(f"  {problem.format()}", file=sys.stderr, flush=True)
        elif outcome.event != "unchanged":
            print(f"runner serve: specs reloaded ({outcome.event})", file=sys.stderr, flush=True)

    watcher = SpecWatcher(engine, on_outcome=report)
    thread = threading.Thread(target=watcher.run, name="runner-serve-watch", daemon=True)
    thread.start()
    return watcher, thread


class _OneLine(logging.Formatter):
    """Log lines for the terminal: the message only, the traceback goes to the log file."""

    def __init__(self, log_file: Path | None) -> None:
        super().__init__()
        self.log_file = log_file

    def format(self, record: logging.LogRecord) -> str:
        line = f"runner serve: {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and self.log_file is not None:
            line += f" (traceback in {self.log_file})"
        return line


def _configure_logging() -> None:
    logger = logging.getLogger("runner")
    if logger.handlers:
        return
    path: Path | None = None
    try:
        directory = log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"runner-serve-{os.getpid()}.log"
        detail = logging.FileHandler(path, delay=True, encoding="utf-8")
        detail.setLevel(logging.WARNING)
        detail.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(detail)
    except OSError:
        path = None
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setLevel(logging.WARNING)
    terminal.setFormatter(_OneLine(path))
    logger.addHandler(terminal)
    logger.setLevel(logging.INFO)
