"""Every agent renders in every environment: template errors found before plan or apply.

Role in the flow: the last concern `check_project` runs. Each agent whose references resolve is
prepared once (`runner.spec.render.prepare_agent`) and its instructions rendered for every
environment (or the implicit `local` one); a `RenderError` becomes a `render.template` problem
(`render.limit` when the text overran its budget: `runner.spec.render_limits`)
at the faulty text, in the document that holds it (the agent, its template or its personality).

Invariants: the same error from several environments is reported once (the first environment
is named); rendering resolves no `${VAR}` (env vars render as written); a `render.limit` problem
inside a literal block scalar (`|`) sits on the file line where the text line that overran is
written.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from runner.spec.checks.context import CheckContext
from runner.spec.models import address_of
from runner.spec.project import Position, Problem, dotted

__all__ = ["check_renders"]


def check_renders(ctx: CheckContext, broken_agents: Collection[str]) -> None:
    """Render every agent not in `broken_agents` in every environment; report what fails."""
    project = ctx.project
    agents = [n for n in project.agents if n not in broken_agents]
    if not agents:
        return
    from runner.spec.render import PreparedAgent, prepare_agent
    from runner.spec.render_resolve import RenderError

    envs = list(project.environments.values()) or [project.environment()]
    seen: set[tuple[str, str, tuple[Any, ...], str]] = set()
    for name in agents:
        # Resolution and the checks before any text is rendered do not depend on the
        # environment: done once per agent, their error is reported as render_agent's would
        # be (for every environment, deduplicated below).
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
                key = (exc.address, exc.message, tuple(exc.path), "")
                if key in seen:
                    continue
                seen.add(key)
                doc = project.document(exc.address) or project.document(address_of("Agent", name))
                assert doc is not None
                where = dotted(exc.path)
                line = f" (line {exc.line} of the text)" if exc.line is not None else ""
                context = f"agent {name!r}, environment {env.name!r}"
                subject = f"{where}{line}: " if where else ""
                label = f"{doc.kind} {doc.spec.name!r}"
                at = doc.position_of(tuple(exc.path))
                if exc.code == "render.limit":  # the line that overran, as written
                    at = _written_at(at, exc.line)
                ctx.problems.append(
                    Problem.at(
                        at, exc.code, f"{label}: {subject}{exc.message} (rendering {context})"
                    )
                )


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
