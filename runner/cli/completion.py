"""`runner completion bash|zsh|fish`: print a shell completion script for runner.

Role: the CLI's own description (`runner.cli.main.VERBS` and each verb's `add_arguments`) made
into a static script, so completing costs the shell nothing at run time. Install it with, e.g.,
`runner completion bash > ~/.local/share/bash-completion/completions/runner`,
`runner completion zsh > "${fpath[1]}/_runner"` or
`runner completion fish > ~/.config/fish/completions/runner.fish`.
It completes verbs, each verb's options (and `state`'s commands), the values of options with a
fixed set of choices, and file names elsewhere.
"""

from __future__ import annotations

import argparse
import shlex

from runner.errors import EXIT_OK

SHELLS = ("bash", "zsh", "fish")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def _verbs() -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """verb -> (help, its parser with every argument)."""
    from runner.cli.main import verb_parsers

    return verb_parsers()


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's options, and those of its commands (`state list --format`), once each."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if action.option_strings:
            found.setdefault(action.option_strings[0], action)
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                for option in _options(nested):
                    found.setdefault(option.option_strings[0], option)
    return list(found.values())


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    """The words a positional argument takes: `state`'s commands, `completion`'s shells."""
    words: list[str] = []
    for action in parser._actions:
        if not action.option_strings and action.choices:
            words.extend(str(c) for c in action.choices)
    return words


def _bash() -> str:
    verbs = _verbs()
    cases = []
    for name, (_help, parser) in verbs.items():
        words = [o for a in _options(parser) for o in a.option_strings] + _commands(parser)
        choices = [
            f"      {'|'.join(a.option_strings)}) COMPREPLY=($(compgen -W "
            f'{shlex.quote(" ".join(map(str, a.choices)))} -- "$cur")); return;;'
            for a in _options(parser)
            if a.choices
        ]
        cases.append(
            f"    {name})\n"
            f'      case "$prev" in\n'
            + "\n".join(choices)
            + ("\n" if choices else "")
            + "      esac\n"
            f"      words={shlex.quote(' '.join(words))};;"
        )
    top = " ".join([*verbs, "--version", "--no-color", "--help"])
    return f"""# bash completion for runner (`runner completion bash`)
_runner() {{
  local cur prev verb words i
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  verb=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${{COMP_WORDS[i]}}" in -*) ;; *) verb="${{COMP_WORDS[i]}}"; break;; esac
  done
  if [[ -z "$verb" ]]; then
    COMPREPLY=($(compgen -W {shlex.quote(top)} -- "$cur"))
    return
  fi
  case "$verb" in
{chr(10).join(cases)}
    *) words="";;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(printf '%s\\n' $words | grep -v '^-')" -- "$cur") \\
               $(compgen -f -- "$cur"))
  fi
}}
complete -o filenames -F _runner runner
"""


def _zsh() -> str:
    return (
        "#compdef runner\n# zsh completion for runner (`runner completion zsh`): the bash "
        "script through zsh's bashcompinit\nautoload -U +X bashcompinit && bashcompinit\n" + _bash()
    )


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish() -> str:
    verbs = _verbs()
    lines = [
        "# fish completion for runner (`runner completion fish`)",
        "complete -c runner -f",
        "complete -c runner -n __fish_use_subcommand -l version -d 'print the version'",
        "complete -c runner -l no-color -d 'no colour in the output'",
    ]
    for name, (help_text, parser) in verbs.items():
        lines.append(
            f"complete -c runner -n __fish_use_subcommand -a {name} -d {_fish_quote(help_text)}"
        )
        when = f"'__fish_seen_subcommand_from {name}'"
        for command in _commands(parser):
            lines.append(f"complete -c runner -n {when} -a {command}")
        for action in _options(parser):
            longs = [o[2:] for o in action.option_strings if o.startswith("--")]
            if not longs:
                continue
            spec = f"complete -c runner -n {when} -l {longs[0]}"
            if action.choices:
                spec += " -x -a " + _fish_quote(" ".join(map(str, action.choices)))
            elif action.nargs != 0:
                spec += " -r -F"
            if action.help:
                spec += " -d " + _fish_quote(action.help.split(" (")[0][:60])
            lines.append(spec)
        lines.append(f"complete -c runner -n {when} -F")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    script = {"bash": _bash, "zsh": _zsh, "fish": _fish}[args.shell]()
    print(script, end="")
    return EXIT_OK
