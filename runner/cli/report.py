"""`runner report [specs] [--env NAME] [--days N] [--html FILE] [--format text|json]`: what the
runtime did over the last N days (UTC), from the registry's session rows and turn log.

Prints the terminal summary (`runner.report.text`) or, with `--format json`, the figures; with
`--html FILE`, also writes the HTML page of charts (`runner.report.html`). Reads only: it never
creates a state file, and a registry another project applied is refused like everywhere else.
"""

from __future__ import annotations

import argparse
import calendar
import json
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from runner.cli._workspace import DEFAULT_SPECS, load_workspace, open_registry
from runner.errors import EXIT_OK, UserError
from runner.report import Report, SessionRecord, TurnRecord, build_report, render_html, render_text
from runner.state.turn_log import SessionSpan, TurnFigures

DAY = 86400.0


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if not 1 <= days <= 366:
        raise argparse.ArgumentTypeError("--days takes 1 to 366")
    return days


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", default=DEFAULT_SPECS, help="spec folder (default: specs)"
    )
    parser.add_argument("--env", default=None, help="environment (default: the default one)")
    parser.add_argument(
        "--days",
        type=_days,
        default=7,
        help="the period: the last N UTC days, today included (default: 7)",
    )
    parser.add_argument(
        "--html", metavar="FILE", help="also write the HTML report with charts here"
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="what to print (default: text)"
    )


def _read(
    workspace: Any, since: float, until: float
) -> tuple[list[SessionSpan], list[TurnFigures]]:
    """The period's sessions and turns from the environment's state (nothing when it has none)."""
    from runner.state.backends import state_location
    from runner.state.turn_log import TurnLog

    env = workspace.env
    registry = open_registry(workspace, read_only=True)  # refuses another project's registry
    registry.close()
    location = state_location(env, default=workspace.home.registry_path)
    log: TurnLog
    if location.url is not None:
        from runner.state.pg_database import PgDatabase, StateUnavailableError
        from runner.state.pg_turn_log import PostgresTurnLog

        try:
            db = PgDatabase(location.url, project=workspace.owner)  # this project's only
        except StateUnavailableError as exc:
            raise UserError(str(exc)) from None
        try:
            log = PostgresTurnLog(db)
            return log.sessions_between(env.name, since, until), log.turns_between(
                env.name, since, until
            )
        finally:
            db.close()
    path = location.path
    assert path is not None
    if not Path(path).exists():
        return [], []
    from runner.state.turn_log_sqlite import SqliteTurnLog

    sqlite_log = SqliteTurnLog(path)
    try:
        sessions = sqlite_log.sessions_between(env.name, since, until)
        try:
            turns = sqlite_log.turns_between(env.name, since, until)
        except sqlite3.OperationalError:  # a file no runtime of this version has opened yet
            turns = []
        return sessions, turns
    except sqlite3.OperationalError:  # no runtime table at all: nothing ran here
        return [], []
    except sqlite3.DatabaseError as exc:
        raise UserError(
            f"{path}: the state file cannot be read ({exc}); restore it from a backup"
        ) from None
    finally:
        sqlite_log.close()


def _json(report: Report) -> dict[str, Any]:
    def figures(f: Any) -> dict[str, Any]:
        data = {k: v for k, v in asdict(f).items() if k != "times"}
        data.update(p50_ms=f.p50_ms, p95_ms=f.p95_ms, resolution_rate=f.resolution_rate)
        return data

    return {
        "env": report.env,
        "since": report.since,
        "until": report.until,
        "currency": report.currency,
        "priced": report.priced,
        "total": figures(report.total),
        "days": [figures(d) for d in report.days],
        "agents": [figures(a) for a in report.agents],
        "teams": [figures(t) for t in report.teams],
    }


def run(args: argparse.Namespace) -> int:
    workspace = load_workspace(args.path, args.env, check=False)
    env = workspace.env
    today = time.gmtime()
    start_of_today = float(calendar.timegm((today.tm_year, today.tm_mon, today.tm_mday, 0, 0, 0)))
    until = start_of_today + DAY
    since = until - args.days * DAY
    spans, figures = _read(workspace, since, until)
    report = build_report(
        [
            SessionRecord(s.id, s.kind, s.target, s.created_at, s.ended_at, s.reason, s.turns)
            for s in spans
        ],
        [
            TurnRecord(
                t.at,
                t.session_id,
                t.agent,
                t.team,
                t.ms,
                t.input_tokens,
                t.output_tokens,
                t.cost,
                t.error,
            )
            for t in figures
        ],
        env=env.name,
        since=since,
        until=until,
        currency=env.pricing.currency if env.pricing is not None else "USD",
    )
    if args.html:
        target = Path(args.html)
        try:
            target.write_text(render_html(report), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--html {args.html}: cannot write it ({exc.strerror})") from None
    if args.format == "json":
        print(json.dumps(_json(report), indent=2, sort_keys=True))
    else:
        print(render_text(report), end="")
        if args.html:
            print(f"\nHTML report written to {args.html}")
    return EXIT_OK
