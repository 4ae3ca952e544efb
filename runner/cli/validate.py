"""`runner validate [PATH...]`: check specs offline and report every problem at file:line:col.

Flow: load (YAML, models) -> checks (references, names, ranges, templates) -> one report.
Exit 0 when valid, 1 when there are problems, 2 for a usage error (a path that does not exist).

Invariants: no network, no Azure SDK import, no `${VAR}` resolved; the output is sorted by
file, line and column so it is stable for CI diffs and editors.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import os
import sys
import types
from collections.abc import Sequence
from typing import Any, TextIO

# runner registers no pydantic plugins; without this, the first model build scans the entry
# points of every installed distribution (the Azure SDK brings many), a fixed ~20 ms per run.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
_PLUGIN_LOADER = "pydantic.plugin._loader"
_PLUGINS_OFF = ("__all__", "1", "true")


def _skip_plugin_loader_import() -> None:
    """With plugins disabled, pydantic's plugin loader still imports `importlib.metadata` (and
    `email`, `zipfile`, `csv` with it: ~15 ms) only to answer "no plugins". Stand in for that
    module with one giving the same answer; should plugins be enabled again, it hands over to the
    real loader."""
    if _PLUGIN_LOADER in sys.modules or os.environ.get("PYDANTIC_DISABLE_PLUGINS") not in (
        _PLUGINS_OFF
    ):
        return
    stand_in = types.ModuleType(_PLUGIN_LOADER)

    def get_plugins() -> Any:
        if os.getenv("PYDANTIC_DISABLE_PLUGINS") in _PLUGINS_OFF:
            return ()
        if sys.modules.get(_PLUGIN_LOADER) is stand_in:
            del sys.modules[_PLUGIN_LOADER]
        return importlib.import_module(_PLUGIN_LOADER).get_plugins()

    stand_in.get_plugins = get_plugins  # type: ignore[attr-defined]
    sys.modules[_PLUGIN_LOADER] = stand_in


_skip_plugin_loader_import()

# Importing the spec models builds pydantic's validators: tens of thousands of short-lived
# containers the cyclic collector would rescan a few times over (~8 ms). Collect after.
_collecting = gc.isenabled()
gc.disable()
try:
    from runner.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserError
    from runner.spec.project import Problem
finally:
    if _collecting:
        gc.enable()

FORMATS = ("text", "json", "github")
DEFAULT_PATH = "specs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=f"spec files or folders, read recursively (default: ./{DEFAULT_PATH})",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (file:line:col lines and a summary), json (a list of problems), "
        "or github (workflow annotations)",
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def render_text(problems: Sequence[Problem], *, documents: int, files: int, out: TextIO) -> None:
    for problem in problems:
        out.write(problem.format() + "\n")
    if problems:
        with_problems = len({p.file for p in problems})
        out.write(f"{_plural(len(problems), 'problem')} in {_plural(with_problems, 'file')}\n")
    else:
        out.write(f"ok: {_plural(documents, 'document')} in {_plural(files, 'file')}\n")


def render_json(problems: Sequence[Problem], *, out: TextIO) -> None:
    items = [
        {
            "file": p.file,
            "line": p.line,
            "column": p.column,
            "code": p.code,
            "severity": p.severity,
            "message": p.message,
        }
        for p in problems
    ]
    import json  # only this format needs it

    out.write(json.dumps(items, indent=2) + "\n")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(problems: Sequence[Problem], *, out: TextIO) -> None:
    for p in problems:
        out.write(
            f"::{p.severity} file={_escape_property(p.file)},line={p.line},col={p.column},"
            f"title={_escape_property(p.code)}::{_escape_data(p.message)}\n"
        )


def collect_problems(paths: Sequence[str]) -> tuple[list[Problem], int, int]:
    """Load and check `paths`: (problems sorted by position, documents read, files read)."""
    from runner.spec.checks import check_project
    from runner.spec.loader import load_project

    result = load_project(paths)
    problems = list(result.problems)
    problems.extend(check_project(result.project, skip=result.invalid))
    problems = sorted(set(problems), key=lambda p: (p.file, p.line, p.column, p.code, p.message))
    return problems, result.document_count, len(result.files)


def run(args: argparse.Namespace) -> int:
    paths: list[str] = list(args.paths) or [DEFAULT_PATH]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        hint = "" if args.paths else " (give the folder holding your specs)"
        raise UserError(
            "no such file or directory: " + ", ".join(missing) + hint, exit_code=EXIT_USAGE
        )
    # A short-lived run that allocates many small containers and frees them at exit: the
    # cyclic collector would only rescan them (about 10% of the run); memory stays bounded by
    # the input size.
    gc.disable()
    try:
        problems, documents, files = collect_problems(paths)
    finally:
        gc.enable()
    out = sys.stdout
    if args.format == "json":
        render_json(problems, out=out)
    elif args.format == "github":
        render_github(problems, out=out)
    else:
        render_text(problems, documents=documents, files=files, out=out)
    code = EXIT_FAILED if any(p.severity == "error" for p in problems) else EXIT_OK
    _end_the_command(code)
    return code


def _is_the_command() -> bool:
    """Whether this process is the `runner` command itself (`python -m runner`, or the console
    script), not a program or test calling `main()`."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if getattr(spec, "name", None) == "runner.__main__":
        return True
    script = getattr(main, "__file__", None)
    return bool(sys.argv) and script == sys.argv[0] and os.path.basename(script) == "runner"


def _end_the_command(code: int) -> None:
    """End the `runner validate` process now, with `code`, when nothing is left to do but the
    interpreter's teardown: freeing every module, pydantic's validators and the loaded specs
    costs about 25 ms on a thousand files, and a process that exits has no use for it.

    Only when this process is the command (a caller of `main()` gets its return value), its
    output is flushed, no exit handler is registered and no other thread runs; otherwise the
    process ends the usual way."""
    if not _is_the_command():
        return
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return
    pending = getattr(atexit, "_ncallbacks", None)
    if pending is None or pending():
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # let the interpreter report it as it always did
    os._exit(code)
