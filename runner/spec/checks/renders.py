"""Every agent renders in every environment: template errors found before plan or apply.

Role in the flow: the last concern `check_project` runs. Each agent whose references resolve is
prepared once (`runner.spec.render.prepare_agent`) and its instructions rendered for every
environment (or the implicit `local` one); a `RenderError` becomes a `render.template` problem
(`render.limit` when the text overran its budget: `runner.spec.render_limits`)
at the faulty text, in the document that holds it (the agent, its template or its personality).

Invariants: one mistake is one problem: the same error in the same text, from several agents
(a template's) or environments, is reported once, naming how many agents and environments it
affects; it sits at the line and column where the variable is written (`text_position`), not at
the start of the text; a `render.limit` problem inside a literal block scalar (`|`) sits on the
file line where the text line that overran is written. Rendering resolves no `${VAR}` (env vars
render as written).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from runner.spec.checks.context import CheckContext
from runner.spec.models import address_of
from runner.spec.project import Position, Problem, SpecDocument, dotted

__all__ = ["check_renders", "text_position"]

_UNDEFINED = (
    re.compile(r"^'(?P<owner>[^']+)' has no attribute '(?P<name>[^']+)'"),
    re.compile(r"^'(?P<name>[^']+)' is undefined"),
    re.compile(r"^(?P<name>[A-Za-z_]\w*(?:\.[\w-]+)+): "),
)


@dataclass
class _Failure:
    doc: SpecDocument
    path: tuple[Any, ...]
    message: str
    line: int | None
    detail: str | None
    code: str
    agents: list[str] = field(default_factory=list)
    envs: list[str] = field(default_factory=list)


def check_renders(ctx: CheckContext, broken_agents: Collection[str]) -> None:
    """Render every agent not in `broken_agents` in every environment; report what fails."""
    project = ctx.project
    agents = [n for n in project.agents if n not in broken_agents]
    if not agents:
        return
    from runner.spec.render import PreparedAgent, prepare_agent
    from runner.spec.render_resolve import RenderError

    envs = list(project.environments.values()) or [project.environment()]
    failures: dict[tuple[Any, ...], _Failure] = {}
    for name in agents:
        # Resolution and the checks before any text is rendered do not depend on the
        # environment: done once per agent, their error is reported as render_agent's would
        # be (for every environment, grouped below).
        prepared: PreparedAgent | None = None
        failure: RenderError | None = None
        try:
            prepared = prepare_agent(project, name)
        except RenderError as exc:
            failure = exc
        for env in envs:
            try:
                if prepared is None:
                    assert failure is not None
                    raise failure
                prepared.instructions(env)
            except RenderError as exc:
                key = (exc.address, tuple(exc.path), exc.line, exc.code, exc.detail or exc.message)
                found = failures.get(key)
                if found is None:
                    doc = project.document(exc.address) or project.document(
                        address_of("Agent", name)
                    )
                    assert doc is not None
                    found = failures[key] = _Failure(
                        doc, tuple(exc.path), exc.message, exc.line, exc.detail, exc.code
                    )
                if name not in found.agents:
                    found.agents.append(name)
                if env.name not in found.envs:
                    found.envs.append(env.name)
    for found in failures.values():
        ctx.problems.append(_problem(found))


def _problem(found: _Failure) -> Problem:
    doc = found.doc
    where = dotted(found.path)
    line = f" (line {found.line} of the text)" if found.line is not None else ""
    subject = f"{where}{line}: " if where else ""
    if len(found.agents) == 1 and len(found.envs) == 1:
        scope = f"rendering agent {found.agents[0]!r}, environment {found.envs[0]!r}"
    else:
        scope = f"affects {_count(found.agents, 'agent')} in {_count(found.envs, 'environment')}"
    text = doc.spec
    for item in found.path:
        text = text.get(item) if isinstance(text, dict) else _item(text, item)
    position = doc.position_of(found.path)
    if found.code == "render.limit":  # the line that overran, as written
        position = _written_at(position, found.line)
    elif isinstance(text, str) and found.line is not None:
        position = text_position(position, text, found.line, _token(found.detail or found.message))
    label = f"{doc.kind} {doc.spec.name!r}"
    text_message = found.message
    if len(found.agents) > 1:  # the hint names where to set a value: any of them
        text_message = text_message.replace(f"agent.{found.agents[0]}, ", "each agent, ")
        text_message = text_message.replace(f"agent.{found.agents[0]} or ", "each agent or ")
    if len(found.envs) > 1:
        text_message = text_message.replace(f"environment.{found.envs[0]}", "each environment")
    message = f"{label}: {subject}{text_message} ({scope})"
    return Problem.at(position, found.code, message)


def _written_at(pos: Position, line: int | None) -> Position:
    """Where line `line` of the text at `pos` is written: in a literal block scalar (`|`), the
    text's lines are the file's lines after the indicator, so the problem sits on its own line
    (at its first character); anywhere else (or unreadable), at the value itself."""
    if line is None or line < 1:
        return pos
    try:
        with open(pos.file, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return pos
    if pos.line > len(lines) or lines[pos.line - 1][pos.column - 1 : pos.column] != "|":
        return pos
    target = pos.line + line
    if target > len(lines) or not lines[target - 1].strip():
        return pos
    text = lines[target - 1]
    return Position(pos.file, target, len(text) - len(text.lstrip()) + 1)


def _item(value: Any, item: Any) -> Any:
    if isinstance(item, int):
        try:
            return value[item]
        except (IndexError, KeyError, TypeError):
            return None
    return getattr(value, str(item), None)


def _count(names: list[str], noun: str) -> str:
    listed = ", ".join(names)
    return f"{len(names)} {noun}{'' if len(names) == 1 else 's'} ({listed})"


def _token(detail: str | None) -> str | None:
    """The variable an undefined-variable error is about (`vars.signature`), else None."""
    for pattern in _UNDEFINED:
        match = pattern.match(detail or "")
        if match is not None:
            owner = match.groupdict().get("owner")
            return f"{owner}.{match['name']}" if owner else match["name"]
    return None


def _source_lines(file: str) -> list[str] | None:
    """The file's lines as they are now (read only to place an error; no cache: a watched file
    changes between checks)."""
    try:
        with open(file, encoding="utf-8-sig") as handle:
            return handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None


def text_position(start: Position, text: str, line: int, token: str | None) -> Position:
    """Where line `line` of a text written at `start` sits in its file, at `token` when the line
    shows it (else at the line's first character); `start` itself when the file does not show
    the text (a folded or quoted scalar spread differently, a file changed since)."""
    lines = _source_lines(start.file)
    if lines is None or not 1 <= line <= len(text.splitlines() or [""]):
        return start
    wanted = (text.splitlines() or [""])[line - 1].strip()
    first = start.line - 1
    block = first < len(lines) and lines[first][start.column - 1 : start.column].strip() in "|>"
    # A block scalar's text starts on the next line; a plain or quoted one on the same line.
    candidates = [first + line] if block else [first + line - 1]
    candidates += range(first, min(len(lines), first + len(text.splitlines()) + 2))
    needles = [n for n in (token, token.rsplit(".", 1)[-1] if token else None, wanted) if n]
    for index in candidates:
        if not 0 <= index < len(lines):
            continue
        source = lines[index]
        if wanted and wanted not in source and index != candidates[0]:
            continue
        for needle in needles:
            column = source.find(needle, start.column - 1 if index == first else 0)
            if column >= 0:
                return Position(start.file, index + 1, column + 1)
    return start
