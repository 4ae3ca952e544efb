"""`runner chat [PATH] (--agent NAME | --team NAME) [--env NAME]`: talk to an agent or a team.

Role: the terminal face of the runtime (`runner.Lifecycle`): one session, each message sent as a
turn, each reply printed with the agent that answered (`access-agent: ...`), and what happens
around it as it happens: handoffs (`-- handoff: triage-agent -> access-agent (account-access)`),
escalations, state changes. On a terminal it prompts (`you> `); otherwise it reads one message per
line from stdin, so a conversation can be scripted (`printf '...' | runner chat --team t`).
End of input (Ctrl-D) ends the session with reason `user_ended`; Ctrl-C does too, then exits 130.

The session runs on the environment's provider (the local provider by default, which answers by
echoing) against what was applied; an agent declared but never applied is applied on demand,
except in a protected environment, which runs only what was applied (`runner apply` first).
Channels are told of escalations and alerts as `runner serve` would tell them; `--no-notify`
shows what they would be told instead. The caller is the local user with `chat:access` in
`--workspace` (default: the team's declared workspace, else `default`). Exit 0 when the session
ended, 1 when it could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any, TextIO

from runner.cli._workspace import DEFAULT_SPECS, require_spec_folder, use_colour
from runner.errors import EXIT_OK, UserError
from runner.runtime.monitoring import RecordingNotifier

EXIT_INTERRUPTED = 130
USER_ENDED = "user_ended"
_DIM, _BOLD, _RESET = "\033[2m", "\033[1m", "\033[0m"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", default=DEFAULT_SPECS, help="spec folder (default: ./specs)"
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--agent", metavar="NAME", help="talk to this agent alone")
    who.add_argument("--team", metavar="NAME", help="talk to this team (its primary answers)")
    parser.add_argument("--env", default=None, help="environment (default: the default one)")
    parser.add_argument(
        "--workspace",
        default=None,
        metavar="ID",
        help="workspace to act in (default: the team's declared workspace, else 'default')",
    )
    parser.add_argument(
        "--no-notify",
        action="store_true",
        help="show what the channels would be told instead of telling them (as runner test)",
    )
    parser.add_argument(
        "--pref",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a session preference the agents declare (repeatable)",
    )


class Transcript:
    """Prints replies and events in the order they happen; colour only where allowed."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.colour = use_colour(out)

    def _write(self, text: str, style: str = "") -> None:
        if self.colour and style:
            text = f"{style}{text}{_RESET}"
        self.out.write(text + "\n")
        self.out.flush()

    def reply(self, agent: str | None, text: str) -> None:
        who = agent or "(no agent)"
        self._write(f"{who}: {text}", _BOLD if not text else "")

    def note(self, text: str) -> None:
        self._write(f"-- {text}", _DIM)

    def event(self, event: Any) -> None:
        data = event.data
        kind = event.type
        if kind == "handoff:initiated":
            trigger = f" ({data['trigger']})" if data.get("trigger") else ""
            self.note(f"handoff: {data.get('from') or '?'} -> {data.get('to')}{trigger}")
        elif kind == "handoff:completed":
            self.note(f"handoff completed: {data.get('to')} has the conversation")
        elif kind.startswith("escalation:"):
            level = f" level {data['level']}" if data.get("level") is not None else ""
            target = f" to {data['target']}" if data.get("target") else ""
            self.note(f"{kind}{level}{target}")
        elif kind == "session:state-changed":
            reason = f" ({data['reason']})" if data.get("reason") else ""
            self.note(f"session {data.get('from') or 'new'} -> {data.get('to')}{reason}")


class ShowingNotifier(RecordingNotifier):
    """Holds back every notification (as `runner test` does) and shows it in the transcript."""

    def __init__(self, transcript: Transcript) -> None:
        super().__init__()
        self.transcript = transcript

    def notify(self, channel_names: list[str], note: Any) -> None:
        super().notify(channel_names, note)
        for name in channel_names:
            self.transcript.note(f"would notify {name}: {note.summary}")


def _preferences(items: list[str]) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UserError(f"--pref {item!r}: write NAME=VALUE", exit_code=2)
        prefs[name] = value
    return prefs


async def _lines(stream: TextIO, prompt: bool) -> Any:
    """The user's messages, one per line, until end of input."""
    while True:
        if prompt:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                return
        else:
            line = await asyncio.to_thread(stream.readline)
            if not line:
                return
        text = line.strip()
        if text:
            yield text


async def converse(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from runner import Lifecycle

    transcript = Transcript(out)
    prompt = stdin.isatty()
    notifier = ShowingNotifier(transcript) if args.no_notify else None
    async with Lifecycle.open(args.path, env=args.env, notifier=notifier) as lc:
        workspace = args.workspace
        if workspace is None:
            team = lc.project.teams.get(args.team) if args.team else None
            workspace = (team.workspace if team is not None else None) or "default"
        auth = {
            "user_id": _user(),
            "workspace_id": workspace,
            "permissions": ["chat:access"],
        }
        for pattern in ("handoff:*", "escalation:*", "session:state-changed"):
            lc.on(pattern, transcript.event)
        session = await lc.create_agent_session(
            agent=args.agent,
            team=args.team,
            auth=auth,
            preferences=_preferences(args.pref) or None,
        )
        target = f"team {args.team!r}" if args.team else f"agent {args.agent!r}"
        transcript.note(
            f"session {session.id} with {target} in {lc.env.name!r}"
            + (" (type a message; Ctrl-D ends)" if prompt else "")
        )
        try:
            async for text in _lines(stdin, prompt):
                reply = await session.send(text)
                await lc.drain()
                if reply.agent is not None or reply.text:
                    transcript.reply(reply.agent, reply.text)
                if reply.state == "ended":
                    transcript.note(f"the session ended ({reply.reason or 'ended'})")
                    return EXIT_OK
                if reply.state == "awaiting_human":
                    transcript.note("waiting for a human operator (runner serve's console)")
        except (KeyboardInterrupt, asyncio.CancelledError):
            await session.end(USER_ENDED)
            await lc.drain()
            return EXIT_INTERRUPTED
        await session.end(USER_ENDED)
        await lc.drain()
    return EXIT_OK


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a bare container
        return "cli"


def run(args: argparse.Namespace) -> int:
    require_spec_folder(args.path)
    try:
        return asyncio.run(converse(args, sys.stdout, sys.stdin))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
