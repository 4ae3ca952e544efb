"""`runner` command line: parse the verb, import only that verb's module, map outcomes to exits.

Each verb lives in `runner.cli.<module>` and exposes `add_arguments(parser)` and
`run(args) -> int`. Only the chosen verb is imported, so `runner validate` never pays for the
Azure SDK or the runtime.

Conventions every verb shares: `--version`; `--no-color` (before or after the verb; so do the
`NO_COLOR`, `FORCE_COLOR` and `TERM=dumb` environment variables); `--help` shows each option's
default; a reader that closes the pipe early (`runner state list | head -1`) ends the command
quietly, with exit 0 (the reader chose to stop reading; `runner.cli.errors`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, Protocol, cast

from runner.cli.errors import end_on_closed_pipe, report_internal_error
from runner.cli.process import console, importing
from runner.errors import EXIT_USAGE, UserError

# verb -> (module, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "validate": ("runner.cli.validate", "check specs offline: schema, refs, names, templates"),
    "plan": ("runner.cli.plan", "show what apply would change"),
    "apply": ("runner.cli.apply", "apply the specs (or a saved plan) to the environment"),
    "destroy": (
        "runner.cli.destroy",
        "delete everything runner manages in the environment: agents and registry resources",
    ),
    "state": ("runner.cli.state", "list or show what the registry holds"),
    "history": ("runner.cli.history", "versions of a resource with spec hash and time"),
    "import": ("runner.cli.import_", "adopt an unmanaged Foundry agent"),
    "watch": ("runner.cli.watch", "re-validate, plan and apply on every save"),
    "test": ("runner.cli.test", "run Scenario documents on a throwaway local store"),
    "emulator": ("runner.cli.emulator", "serve the local store over Foundry's REST protocol"),
    "serve": ("runner.cli.serve", "serve the runtime: REST, Socket.io, metrics, operator console"),
    "report": ("runner.cli.report", "sessions, response times, tokens, cost and quality over time"),
    "chat": ("runner.cli.chat", "talk to an applied agent or team in the terminal (or a script)"),
    "completion": ("runner.cli.completion", "print a shell completion script (bash, zsh, fish)"),
}


class VerbModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default in (None, False, argparse.SUPPRESS, [])
            or action.nargs == 0
            or isinstance(action, argparse._SubParsersAction)
        ):
            return text
        shown = ",".join(str(d) for d in default) if isinstance(default, tuple) else default
        return f"{text} (default: {shown})".lstrip()


class _Version(argparse.Action):
    """`--version`: the installed distribution's version (read only when asked)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print runner's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from runner import __version__

        print(f"runner {__version__}")
        parser.exit(0)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-color",
        "--no-colour",
        dest="no_color",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no colour in the output (so do NO_COLOR=1 and TERM=dumb; FORCE_COLOR=1 forces it)",
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line: what is wrong and where the whole usage is (the usage block would bury it).
        where = getattr(self, "help_hint", None) or f"{self.prog} --help"
        print(f"{self.prog}: error: {message} (see `{where}`)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _load(verb: str) -> VerbModule:
    return cast(VerbModule, importlib.import_module(VERBS[verb][0]))


def build_parser(verb: str | None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="runner",
        description="Agents on Azure AI Foundry, from YAML.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action=_Version)
    _add_common(parser)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True
    for name, (_module, help_text) in VERBS.items():
        verb_parser = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=_HelpFormatter
        )
        if name == verb:
            _add_common(verb_parser)
            _load(name).add_arguments(verb_parser)
            for nested in _nested_parsers(verb_parser):  # `state list`, `state show`
                _add_common(nested)
            # the top parser reports leftovers ("unrecognized arguments"): point at the verb's help
            parser.help_hint = f"runner {name} --help"  # type: ignore[attr-defined]
    return parser


def _nested_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [
        nested
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for nested in action.choices.values()
    ]


def verb_parsers() -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """verb -> (its one-line help, a parser holding every argument it takes): for completion."""
    out: dict[str, tuple[str, argparse.ArgumentParser]] = {}
    for name, (_module, help_text) in VERBS.items():
        parser = _Parser(prog=f"runner {name}", description=help_text)
        _add_common(parser)
        _load(name).add_arguments(parser)
        out[name] = (help_text, parser)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in args_list if not a.startswith("-")), None)
    try:
        with importing():  # the verb's module: spec models, the plan, the executor, ...
            parser = build_parser(verb if verb in VERBS else None)
        args = parser.parse_args(args_list)
        if getattr(args, "no_color", False):
            os.environ["NO_COLOR"] = "1"
        code = _load(args.verb).run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's teardown
        return code
    except BrokenPipeError:
        return end_on_closed_pipe()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except UserError as exc:
        print(f"runner: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("runner: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one place an unexpected error becomes exit 3
        return report_internal_error(exc)


def program() -> NoReturn:
    """The `runner` console script (and `python -m runner`): `main()` owning its process."""
    console(main)


if __name__ == "__main__":
    program()
