"""`runner emulator`: serve a local store over Foundry's agents REST protocol until Ctrl-C.

Role: the CLI face of `runner.providers.emulator.serve_emulator`. It prints the endpoint to put
in a foundry Environment (`endpoint: http://127.0.0.1:PORT/api/projects/p1`); plain http is
accepted by the foundry provider only on loopback hosts. The emulator has no authentication:
it listens on loopback only unless `--allow-remote` says otherwise (else exit 2), serves at
most `--max-connections` connections at once and bodies of at most `--max-body-mb`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.cli._workspace import (
    non_negative_float,
    port_number,
    positive_int,
    real_number,
    whole_number,
)
from runner.errors import EXIT_OK, EXIT_USAGE, UserError
from runner.providers.emulator_http import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    check_bind_host,
)


def _statuses(text: str) -> tuple[int, ...]:
    try:
        statuses = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of status codes: {text!r}") from None
    if not statuses or any(s not in (429, 500, 502, 503, 504) for s in statuses):
        raise argparse.ArgumentTypeError("choose among 429, 500, 502, 503, 504")
    return statuses


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (loopback unless --allow-remote)"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not loopback (the emulator has no authentication)",
    )
    parser.add_argument(
        "--max-connections",
        type=positive_int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="connections served at once; more are answered 503 "
        f"(default {DEFAULT_MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--max-body-mb",
        type=non_negative_float,
        default=DEFAULT_MAX_BODY / (1024 * 1024),
        help="largest request body in MiB; larger ones are answered 413 (default 16)",
    )
    parser.add_argument("--port", type=port_number, default=8765, help="port (0 picks a free one)")
    parser.add_argument(
        "--data", default=".runner/emulator", help="folder of the store (local-store.db)"
    )
    parser.add_argument("--project", default="p1", help="project name shown in the endpoint")
    parser.add_argument(
        "--latency-ms", type=non_negative_float, default=0.0, help="sleep this long per request"
    )
    parser.add_argument(
        "--fail-rate",
        type=real_number(0.0, 1.0),
        default=0.0,
        help="answer this fraction of requests 429/503 without doing the work",
    )
    parser.add_argument(
        "--fail-status",
        type=_statuses,
        default=(429, 503),
        help="statuses injected by --fail-rate, comma-separated (default 429,503)",
    )
    parser.add_argument(
        "--retry-after-ms",
        type=whole_number(0),
        default=0,
        help="delay advertised by injected 429s (Retry-After, retry-after-ms)",
    )
    parser.add_argument(
        "--lost-response-rate",
        type=real_number(0.0, 1.0),
        default=0.0,
        help="do this fraction of writes, then lose the response",
    )
    parser.add_argument(
        "--lost-response-mode",
        choices=("503", "drop"),
        default="503",
        help="how a response is lost: a 503 answer or a dropped connection",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for injected faults (default: random)"
    )
    parser.add_argument(
        "--float32",
        action="store_true",
        help="keep temperature/top_p as float32 and echo them so (0.3 -> 0.30000001192092896), "
        "as the service does",
    )


def run(args: argparse.Namespace) -> int:
    from runner.providers.emulator import serve_emulator

    if args.retry_after_ms < 0:
        raise UserError("--retry-after-ms must not be negative", exit_code=EXIT_USAGE)
    try:
        check_bind_host(args.host, allow_remote=args.allow_remote)
    except ValueError as exc:
        raise UserError(str(exc), exit_code=EXIT_USAGE) from None
    try:
        handle = serve_emulator(
            data_dir=Path(args.data),
            host=args.host,
            port=args.port,
            latency_ms=args.latency_ms,
            fail_rate=args.fail_rate,
            lost_response_rate=args.lost_response_rate,
            seed=args.seed,
            fail_statuses=args.fail_status,
            retry_after_ms=args.retry_after_ms,
            lost_response_mode=args.lost_response_mode,
            project=args.project,
            max_connections=args.max_connections,
            max_body=int(args.max_body_mb * 1024 * 1024),
            allow_remote=args.allow_remote,
            float32=args.float32,
        )
    except OSError as exc:
        raise UserError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
            "choose another --port (0 picks a free one)"
        ) from None
    try:  # Ctrl-C from here on, even while the banner prints, is a clean stop
        print(f"runner emulator: serving {Path(args.data) / 'local-store.db'}", flush=True)
        print(f"endpoint: {handle.endpoint}", flush=True)
        print(f"stats:    {handle.base_url}/_emulator/stats", flush=True)
        print("press Ctrl-C to stop", flush=True)
        handle.wait()
    except KeyboardInterrupt:
        print("runner emulator: stopping", file=sys.stderr, flush=True)
    finally:
        handle.stop()
    return EXIT_OK
