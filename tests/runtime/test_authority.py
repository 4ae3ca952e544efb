"""Issue 9 finding 8: authority on every call.

A session needs a workspace; operator calls need the `operator` permission and a workspace the
operator covers (another workspace's session looks missing); the operator recorded is the
caller's user id; cleanup and teams from code need `admin`."""

from __future__ import annotations

from typing import Any

import pytest
from runtime_support import ADMIN, AUTH, OPS, operator

from runner.runtime.auth import AuthContext
from runner.runtime.errors import (
    PermissionDeniedError,
    SessionNotFoundError,
    UnknownTeamError,
    WorkspaceRequiredError,
)

NO_WORKSPACE = {"user_id": "drifter", "permissions": ["chat:access"]}
OTHER_TEAM = """
apiVersion: runner/v1
kind: Team
name: other-desk
workspace: workspace-999
members:
  - agent: general-agent-1
    role: primary
    specialization: customer_service
"""


async def _waiting_for_a_person(lc: Any) -> Any:
    session = await lc.create_agent_session(team="customer-support", auth=AUTH)
    await session.send("there is a bug in the export")  # to the technical member first
    await session.send("I want to talk to a human")
    assert session.state == "awaiting_human"
    return session


async def test_a_session_without_a_workspace_enters_no_team(open_lc: Any) -> None:
    async with open_lc(OTHER_TEAM) as lc:
        with pytest.raises(WorkspaceRequiredError, match="needs a workspace"):
            await lc.create_agent_session(agent="general-agent-1", auth=NO_WORKSPACE)
        # before: no workspace_id meant no check, and the caller entered any team's workspace
        with pytest.raises((WorkspaceRequiredError, PermissionDeniedError)):
            await lc.create_agent_session(team="other-desk", auth=NO_WORKSPACE)
        with pytest.raises(PermissionDeniedError, match="workspace-999"):
            await lc.create_agent_session(team="other-desk", auth=AUTH)
        # a caller of several workspaces names one, or gets the team's declared one it covers
        several = {"user_id": "u", "workspaces": ["workspace-123", "workspace-999"]}
        several["permissions"] = ["chat:access"]
        session = await lc.create_agent_session(team="other-desk", auth=several)
        assert session.workspace_id == "workspace-999"
        with pytest.raises(WorkspaceRequiredError):
            await lc.create_agent_session(agent="general-agent-1", auth=several)


async def test_operator_calls_need_the_operator_permission(open_lc: Any) -> None:
    async with open_lc() as lc:
        session = await _waiting_for_a_person(lc)
        user = AUTH  # chat:access only: a user is not an operator
        calls = [
            lambda: lc.claim(session.id, auth=user),
            lambda: lc.answer(session.id, auth=user, text="hi"),
            lambda: lc.hand_back(session.id, auth=user),
            lambda: lc.approve_escalation(session.id, auth=user),
            lambda: lc.reject_escalation(session.id, auth=user),
            lambda: lc.accept_escalation(session.id, auth=user),
            lambda: lc.handle_agent_handoff(
                session.id, target_specialization="billing", reason="r", auth=user
            ),
        ]
        for call in calls:
            with pytest.raises(PermissionDeniedError, match="'operator'"):
                await call()
        with pytest.raises(PermissionDeniedError):
            lc.human_queue(auth=user)
        with pytest.raises(PermissionDeniedError):
            lc.pending_escalations(auth=user)
        with pytest.raises(PermissionDeniedError):
            lc.set_member_availability("customer-support", "tech-agent-1", "busy", auth=user)
        # a free-text name is not an identity any more
        with pytest.raises(TypeError):
            await lc.claim(session.id, operator="dana")  # type: ignore[call-arg]
        assert [i.session_id for i in lc.human_queue(auth=OPS)] == [session.id]


async def test_another_workspaces_operator_sees_nothing(open_lc: Any) -> None:
    async with open_lc() as lc:
        session = await _waiting_for_a_person(lc)
        stranger = operator("eve", "workspace-999")
        assert lc.human_queue(auth=stranger) == []
        assert lc.pending_escalations(auth=stranger) == []
        for call in (
            lambda: lc.claim(session.id, auth=stranger),
            lambda: lc.hand_back(session.id, auth=stranger),
            lambda: lc.approve_escalation(session.id, auth=stranger),
        ):
            with pytest.raises(SessionNotFoundError):  # exactly like a missing session
                await call()
        with pytest.raises(SessionNotFoundError):
            lc.transcript(session.id, auth=stranger)
        # the operator of the session's workspace acts, and is recorded by their user id
        item = await lc.claim(session.id, auth=operator("dana"))
        assert item.claimed_by == "dana"
        entry = await lc.answer(session.id, auth=operator("dana"), text="Dana here")
        assert entry.author == "dana"


async def test_team_availability_is_an_operators_call_in_the_teams_workspace(
    open_lc: Any,
) -> None:
    async with open_lc(OTHER_TEAM) as lc:
        with pytest.raises(UnknownTeamError):  # another workspace's team looks missing
            lc.set_member_availability("other-desk", "general-agent-1", "busy", auth=OPS)
        lc.set_member_availability(
            "other-desk", "general-agent-1", "busy", auth=operator("o", "workspace-999")
        )
        every = AuthContext(
            user_id="lead", permissions=frozenset({"operator"}), workspaces=frozenset({"*"})
        )
        assert lc.operators.member_availability("other-desk", auth=every) == {
            "general-agent-1": "busy"
        }


async def test_cleanup_and_teams_from_code_need_admin(open_lc: Any) -> None:
    async with open_lc() as lc:
        await lc.get_or_create_agent("scratch", model="gpt-4o", instructions="Scratch.")
        for who in (AUTH, OPS):
            with pytest.raises(PermissionDeniedError, match="'admin'"):
                await lc.cleanup_all(auth=who)
            with pytest.raises(PermissionDeniedError, match="'admin'"):
                await lc.cleanup_agent("scratch", auth=who)
            with pytest.raises(PermissionDeniedError, match="'admin'"):
                await lc.create_team({"name": "t", "members": []}, auth=who)
        assert "scratch" in lc.get_agent_stats()["agents"]  # nothing was deleted
        result = await lc.cleanup_agent("scratch", auth=ADMIN)
        assert result["agent"] == "scratch"
