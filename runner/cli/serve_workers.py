"""`runner serve --workers N`: N runtime processes accepting on one listening socket.

Role: the parent of the workers. It binds the port once (so `--port 0` gives one port to all),
prints the address (and, with no `auth:`, the one key every worker accepts: handed to them in
RUNNER_SERVE_KEY, never on a command line), starts N `runner serve` processes that inherit the
socket (`--worker-fd`), and supervises them: SIGTERM/SIGINT are forwarded (each worker drains
as a single `runner serve` does), a worker that dies on its own stops the others.
Exit 0 when every worker drained and exited 0; 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from types import FrameType

from runner.errors import EXIT_FAILED, EXIT_OK, UserError

__all__ = ["run_workers"]


def run_workers(args: argparse.Namespace, *, generate_key: bool) -> int:
    from runner.serve.server import bind

    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    port = sock.getsockname()[1]
    env = dict(os.environ)
    key = None
    if generate_key:
        key = env["RUNNER_SERVE_KEY"] = secrets.token_urlsafe(32)
    command = [sys.executable, "-m", "runner", "serve", args.path, "--host", args.host]
    command += ["--port", str(port), "--worker-fd", str(sock.fileno())]
    if args.env:
        command += ["--env", args.env]
    if args.watch:
        command.append("--watch")
    workers = [
        subprocess.Popen(command, env=env, pass_fds=(sock.fileno(),)) for _ in range(args.workers)
    ]
    sock.close()  # the workers hold it now
    host = f"[{args.host}]" if ":" in args.host else args.host
    base = f"http://{host}:{port}"
    lines = [f"runner serve: {base} ({args.workers} workers)", f"  console: {base}/console"]
    if key is not None:
        lines.append(f"  key (every permission, this run only): {key}")
    print("\n".join(lines), flush=True)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while any(w.poll() is None for w in workers):
            died = [w for w in workers if w.poll() is not None and w.returncode != 0]
            if died and not stopping:
                print(
                    f"runner serve: a worker exited ({died[0].returncode}); stopping the others",
                    file=sys.stderr,
                    flush=True,
                )
                stop(signal.SIGTERM, None)
            time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = [w.returncode for w in workers]
    if all(code == 0 for code in codes):
        print("runner serve: every worker drained and stopped", file=sys.stderr, flush=True)
        return EXIT_OK
    return EXIT_FAILED
