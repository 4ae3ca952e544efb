"""Admission: starting a session with one agent or with a team.

Role: `Admission.start` (behind `Lifecycle.create_agent_session`) settles the session's
workspace (`session_workspace`: every session has one), checks the session's preferences and
feature toggles and computes its effective configuration
(`runner.runtime.sessions.configuration`), pins the agent version of every member
(`runner.runtime.sessions.agents`), takes pool slots for all of them (waiting up to `wait`,
served by `priority`), opens the provider conversation, writes the session row and hands the
session to the table (`runner.runtime.sessions.table`).

Invariants:
  - A session keeps one provider conversation and the agent versions it started with: an
    apply during a conversation changes new sessions only.
  - Nothing is held when admission fails: pool slots are released if the conversation or the
    row cannot be created.
  - The row is written before the session is live, so a new process finds it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Literal

from runner.providers.base import Provider
from runner.runtime.auth import AuthContext
from runner.runtime.context import RuntimeContext
from runner.runtime.errors import (
    LifecycleError,
    PermissionDeniedError,
    UnknownTeamError,
    WorkspaceRequiredError,
)
from runner.runtime.monitoring import PerformanceMonitor
from runner.runtime.pools import PoolManager
from runner.runtime.sessions.agents import AgentCatalog
from runner.runtime.sessions.applied import AppliedState, Pin
from runner.runtime.sessions.configuration import SessionConfigs, public_configuration
from runner.runtime.sessions.leases import SessionLeases
from runner.runtime.sessions.provider_calls import call_provider
from runner.runtime.sessions.table import LiveSessions, session_subjects
from runner.runtime.teams import primary_member
from runner.spec.models import parse_duration
from runner.spec.vocabulary import ALL_WORKSPACES, Priority
from runner.state.sessions import SessionRow, SessionStore

__all__ = ["Admission", "session_workspace"]


def session_workspace(auth: AuthContext, *, declared: str | None, what: str) -> str:
    """The workspace a new session belongs to: the one the caller acts in, else the team's
    declared one (if the caller covers it), else the caller's only workspace. A session needs
    one: without it, it would be outside every workspace check."""
    workspace = auth.workspace_id
    if workspace is None:
        concrete = sorted(w for w in auth.workspaces if w != ALL_WORKSPACES)
        if declared is not None and auth.covers(declared):
            workspace = declared
        elif len(concrete) == 1 and not auth.every_workspace:
            workspace = concrete[0]
        else:
            raise WorkspaceRequiredError(
                f"a session needs a workspace: {auth.user_id!r} "
                + (
                    "works in several; give auth a workspace_id"
                    if concrete or auth.every_workspace
                    else "has none; give auth a workspace_id"
                )
            )
    if declared is not None and workspace != declared:
        raise PermissionDeniedError(f"{what} belongs to workspace {declared!r}, not {workspace!r}")
    return workspace


def _new_session_id() -> str:
    return "sess_" + secrets.token_hex(12)


class Admission:
    """Starts sessions (see the module docstring)."""

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        provider: Provider,
        store: SessionStore,
        pools: PoolManager,
        monitor: PerformanceMonitor,
        applied: AppliedState,
        table: LiveSessions,
        agents: AgentCatalog,
        configs: SessionConfigs,
        leases: SessionLeases | None = None,
    ) -> None:
        self._ctx = ctx
        self._leases = leases
        self._configs = configs
        self._provider = provider
        self._store = store
        self._pools = pools
        self._monitor = monitor
        self._applied = applied
        self._table = table
        self._agents = agents

    async def start(
        self,
        auth: AuthContext,
        *,
        agent: str | None,
        team: str | None,
        max_turns: int | None,
        idle_timeout: float | str | None,
        preferences: Mapping[str, Any] | None,
        priority: Priority | None,
        wait: float | None,
        features: Mapping[str, Any] | None = None,
    ) -> SessionRow:
        """The new session's row (live from now on)."""
        rt = self._ctx
        if (agent is None) == (team is None):
            raise LifecycleError("a session is with exactly one of agent= or team=")
        if team is not None:
            team_spec = self._applied.declared.teams.get(team)
            if team_spec is None:
                raise UnknownTeamError(f"team.{team} is neither applied nor declared")
            workspace = session_workspace(auth, declared=team_spec.workspace, what=f"team.{team}")
            members = tuple(dict.fromkeys(m.agent for m in team_spec.members))
            first = primary_member(team_spec)
            kind: Literal["agent", "team"] = "team"
            target = team
        else:
            assert agent is not None
            workspace = session_workspace(auth, declared=None, what=f"agent.{agent}")
            members = (agent,)
            first = agent
            kind = "agent"
            target = agent
        config = self._configs.admit(
            members, workspace_id=workspace, preferences=preferences, features=features
        )
        pins: dict[str, tuple[str, str]] = {}
        for name in members:
            pin = await self._agents.pin(name)
            pins[name] = (pin.foundry_name, pin.version)
        pools_manager = self._pools
        pools = pools_manager.pools_of(members)
        session_id = _new_session_id()
        await pools_manager.acquire(
            agents=members, pools=pools, wait=wait, priority=priority, holder=session_id
        )
        provider = self._provider
        try:
            conversation_id = await call_provider(
                provider,
                provider.create_conversation,
                metadata={"runner-session": session_id, "runner-env": rt.env.name},
            )
        except Exception as exc:
            pools_manager.release(agents=members, pools=pools, holder=session_id)
            raise LifecycleError(f"session could not start: the provider said: {exc}") from exc
        now = rt.clock.now()
        row = SessionRow(
            id=session_id,
            env=rt.env.name,
            kind=kind,
            target=target,
            user_id=auth.user_id,
            workspace_id=workspace,
            state="active",
            conversation_id=conversation_id,
            current_agent=first,
            pins=pins,
            created_at=now,
            last_activity_at=now,
            pools=pools,
            max_turns=max_turns if max_turns is not None else self._default_max_turns(first),
            idle_timeout=self._idle_seconds(idle_timeout),
            preferences=dict(preferences or {}),
            priority=priority,
            features=dict(features or {}),
            config=config,
        )
        leases = self._leases
        until = None if leases is None else leases.new_lease()
        try:
            self._store.save(row, lease_until=until)
        except Exception:
            pools_manager.release(agents=members, pools=pools, holder=session_id)
            raise
        live = self._table.add(row, members)
        if leases is not None and until is not None:
            leases.created(live, until)  # its first turn takes no lease round trip
        agents = self._agents
        for name in members:
            foundry_name, version = pins[name]
            stat = agents.stat(name, Pin(foundry_name, version))
            stat.sessions += 1
            stat.use_count += 1
            stat.last_used_at = now
        subjects = session_subjects(row)
        self._monitor.record_session(subjects)
        self._monitor.evaluate_subjects(subjects, now)
        events = rt.events
        if events.has_listeners("lifecycle:session_created"):
            rt.emit(
                "lifecycle:session_created",
                {
                    "session_id": session_id,
                    "agent": first,
                    "team": team,
                    "user_id": auth.user_id,
                    "workspace_id": workspace,
                    "conversation_id": conversation_id,
                    "versions": {n: p[1] for n, p in pins.items()},
                    "configuration": public_configuration(config, workspace=workspace),
                },
            )
        if events.has_listeners("session:state-changed"):
            rt.emit(
                "session:state-changed",
                {"session_id": session_id, "from": None, "to": "active", "reason": "created"},
            )
        return row

    def _idle_seconds(self, idle_timeout: float | str | None) -> float | None:
        if idle_timeout is None:
            default = self._ctx.config.default_idle_timeout_s
            return default or None
        seconds = parse_duration(idle_timeout) if isinstance(idle_timeout, str) else idle_timeout
        return float(seconds) or None

    def _default_max_turns(self, agent: str) -> int | None:
        declared = self._applied.declared
        spec = declared.agents.get(agent)
        if spec is None:
            return None
        if spec.max_turns is not None:
            return spec.max_turns
        template = declared.templates.get(spec.template or "")
        return None if template is None else template.max_turns
