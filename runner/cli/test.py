"""`runner test [PATH] [--junit FILE]`: run the project's Scenario documents and report.

Each scenario runs on a throwaway local store with a virtual clock (runner.scenarios);
nothing needs to be applied first and no real channel is notified. Output reads like a test
runner: `PASS name` / `FAIL name` (with the reason under it), then `N passed, M failed`.

Exit codes: 0 every scenario passed (or there are none), 1 a scenario failed or the specs have
problems (printed at file:line:col), 2 usage (e.g. PATH does not exist).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from runner.cli._workspace import DEFAULT_SPECS
from runner.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE


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
        print(f"no scenarios in {args.path}")
        print("0 passed, 0 failed")
        if args.junit:
            Path(args.junit).write_text(render_junit([]), encoding="utf-8")
        return EXIT_OK
    results = asyncio.run(run_scenarios(project, names=names))
    for result in results:
        if result.passed:
            print(f"PASS {result.name}")
        else:
            print(f"FAIL {result.name}")
            print(f"  {result.message}")
    failed = sum(1 for r in results if not r.passed)
    print(f"{len(results) - failed} passed, {failed} failed")
    if args.junit:
        Path(args.junit).write_text(render_junit(results), encoding="utf-8")
    return EXIT_FAILED if failed else EXIT_OK
