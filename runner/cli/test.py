"""`runner test [PATH] [--junit FILE]`: run the project's Scenario documents and report.

Each scenario runs on a throwaway local store with a virtual clock (runner.scenarios);
nothing needs to be applied first and no real channel is notified. Output reads like a test
runner: `PASS name` / `FAIL name` (with the reason under it), then `N passed, M failed`.

`--format json` prints one document instead: `{"passed", "failed", "scenarios": [{"name",
"passed", "message", "seconds", "steps", "file"}]}`.

Exit codes (pytest's): 0 every scenario passed, 1 a scenario failed or the specs have problems
(printed at file:line:col), 2 usage (PATH does not exist, an unknown --scenario, a --junit file
that cannot be written), 5 there was nothing to run (no Scenario document).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from runner.cli._workspace import DEFAULT_SPECS, writable_file
from runner.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserError

EXIT_NOTHING_TO_RUN = 5  # as pytest: "no tests were collected"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", default=DEFAULT_SPECS, help="spec folder or file (default: ./specs)"
    )
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report to FILE")
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help="run only this scenario (repeatable)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output")


def _write_junit(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--junit {path}: {exc.strerror or exc}", exit_code=EXIT_USAGE) from None


def _result_json(result: Any) -> dict[str, Any]:
    return {
        "name": result.name,
        "passed": result.passed,
        "message": result.message,
        "seconds": round(result.seconds, 3),
        "steps": result.steps_run,
        "file": result.file,
    }


def _problems(path: Path) -> tuple[object, int]:
    from runner.spec.loader import load_project

    result = load_project([path])
    problems = list(result.problems)
    if not [p for p in problems if p.severity == "error"]:
        try:
            from runner.spec.checks import check_project
        except ImportError:
            pass
        else:
            problems.extend(check_project(result.project))
    for problem in sorted(problems):
        print(problem.format(), file=sys.stderr)
    return result.project, sum(1 for p in problems if p.severity == "error")


def run(args: argparse.Namespace) -> int:
    from runner.scenarios import render_junit, run_scenarios
    from runner.spec.project import Project

    path = Path(args.path)
    if not path.exists():
        print(f"runner test: error: {args.path!r} does not exist", file=sys.stderr)
        return EXIT_USAGE
    if args.junit:
        writable_file(args.junit, option="--junit")  # before the scenarios run, not after
    project, errors = _problems(path)
    assert isinstance(project, Project)
    if errors:
        print(
            f"runner test: {errors} problem{'s' if errors != 1 else ''} in the specs; "
            "no scenario was run",
            file=sys.stderr,
        )
        return EXIT_FAILED
    names = args.scenario
    if names:
        unknown = sorted(set(names) - set(project.scenarios))
        if unknown:
            print(f"runner test: error: no scenario named {', '.join(unknown)}", file=sys.stderr)
            return EXIT_USAGE
    if not project.scenarios:
        if args.format == "json":
            print(json.dumps({"passed": 0, "failed": 0, "scenarios": []}))
        else:
            print(f"no scenarios in {args.path}: nothing to run (exit 5)")
        if args.junit:
            _write_junit(args.junit, render_junit([]))
        return EXIT_NOTHING_TO_RUN
    results = asyncio.run(run_scenarios(project, names=names))
    failed = sum(1 for r in results if not r.passed)
    if args.format == "json":
        document = {
            "passed": len(results) - failed,
            "failed": failed,
            "scenarios": [_result_json(r) for r in results],
        }
        print(json.dumps(document, indent=2))
    else:
        for result in results:
            if result.passed:
                print(f"PASS {result.name}")
            else:
                print(f"FAIL {result.name}")
                print(f"  {result.message}")
        print(f"{len(results) - failed} passed, {failed} failed")
    if args.junit:
        _write_junit(args.junit, render_junit(results))
    return EXIT_FAILED if failed else EXIT_OK
