"""Reads the serve layer needs beyond the facade's session and operator methods.

Role: the REST and Socket.io layers must know which workspace a session, a team or an agent
belongs to *before* they call the runtime (an operator may hold several workspaces, the
runtime's auth value names one), and the console shows a session's transcript. The facade
offers these reads only as its "for the operator side" members (`session_row`, `open_rows`,
`declared`, `operators`); they are used here and nowhere else in `runner/serve`, so a change of
the facade touches this module only.
"""

from __future__ import annotations

from runner import Lifecycle
from runner.state.operators import TranscriptEntry
from runner.state.sessions import SessionRow

__all__ = [
    "agent_declared",
    "open_session_workspaces",
    "session_row",
    "session_workspace",
    "team_workspace",
    "transcript",
]


def session_row(lc: Lifecycle, session_id: str) -> SessionRow | None:
    """The session's row in this environment (None: unknown here)."""
    if not session_id or len(session_id) > 200:
        return None
    row = lc.session_row(session_id)
    if row is None or row.env != lc.env.name:
        return None
    return row


def session_workspace(lc: Lifecycle, session_id: str) -> tuple[bool, str | None]:
    """(known, workspace) of a session of this environment."""
    row = session_row(lc, session_id)
    return (False, None) if row is None else (True, row.workspace_id)


def open_session_workspaces(lc: Lifecycle) -> list[str | None]:
    """The workspaces that have open sessions in this environment, sorted (None last)."""
    found = {row.workspace_id for row in lc.open_rows()}
    return sorted(w for w in found if w is not None) + ([None] if None in found else [])


def team_workspace(lc: Lifecycle, team: str) -> tuple[bool, str | None]:
    """(known, workspace) of a team the runtime runs (workspace None: any workspace)."""
    spec = lc.declared.teams.get(team)
    return (False, None) if spec is None else (True, spec.workspace)


def agent_declared(lc: Lifecycle, agent: str) -> bool:
    return agent in lc.declared.agents


def transcript(lc: Lifecycle, session_id: str) -> list[TranscriptEntry]:
    """What the user and the operators wrote while a person had the session."""
    return lc.operators.transcript(session_id)
