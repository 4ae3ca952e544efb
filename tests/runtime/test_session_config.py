"""Session configuration in the runtime: preferences, features and workspace overlays are
checked when a session starts, fixed for its life (rows, restarts), shape every turn, and
are visible in events; a switched-off tool is refused through the seam the function-call loop
asks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from runtime_support import AUTH

from runner.runtime.errors import SessionConfigError
from runner.runtime.lifecycle import Lifecycle
from runner.state.sessions_sqlite import SqliteSessionStore

# customer-service (general-agent-1, billing-agent-1) gets preferences and a feature; the
# team's tech-agent-1 (another template) declares none.
CONFIGURED = """
apiVersion: runner/v1
kind: Template
name: customer-service
model: gpt-4o-mini
max_turns: 50
personality: friendly-expert
instructions: |
  You are a customer service agent for {{ vars.company }}.
  Reply in a {{ prefs.formality }} tone.
  {% if features.refunds %}
  You may refund orders with issue_refund.
  {% endif %}
preferences:
  formality: {values: [casual, formal], default: formal}
  ticket: {schema: {type: string, pattern: "^T-[0-9]+$"}, required: true}
features:
  refunds: {description: Refunds, default: true, tools: [issue_refund]}
tools:
  - {type: function, name: issue_refund, parameters: {type: object}}
---
apiVersion: runner/v1
kind: Workspace
name: workspace-123
vars: {company: Contoso Retail}
preferences: {formality: casual}
features: {refunds: false}
"""

TICKET = {"ticket": "T-1"}


async def test_bad_values_are_refused_before_anything_is_held(open_lc: Any) -> None:
    async with open_lc(CONFIGURED) as lc:
        cases: list[tuple[dict[str, Any], dict[str, Any], str, str]] = [
            ({"formality": "rude", **TICKET}, {}, "invalid_preferences", "allowed values"),
            ({"colour": "red", **TICKET}, {}, "invalid_preferences", "unknown preference"),
            ({}, {}, "invalid_preferences", "'ticket' is required"),
            ({"ticket": "X"}, {}, "invalid_preferences", "does not match"),
            (TICKET, {"beta": True}, "invalid_features", "unknown feature"),
            (TICKET, {"refunds": "yes"}, "invalid_features", "true or false"),
            ({str(i): i for i in range(65)}, {}, "invalid_preferences", "at most 64"),
            ({"formality": float("nan"), **TICKET}, {}, "invalid_preferences", "JSON values"),
        ]
        for prefs, features, code, words in cases:
            with pytest.raises(SessionConfigError) as info:
                await lc.create_agent_session(
                    agent="general-agent-1", auth=AUTH, preferences=prefs, features=features
                )
            assert info.value.code == code and words in str(info.value), (prefs, str(info.value))
        assert lc.active_sessions == 0
        assert lc.open_rows() == []


async def test_precedence_and_effect_and_one_version(open_lc: Any) -> None:
    async with open_lc(CONFIGURED) as lc:
        created: list[Any] = []
        lc.on("lifecycle:session_created", created.append)
        overlay = await lc.create_agent_session(
            agent="general-agent-1", auth=AUTH, preferences=TICKET
        )
        other = {**AUTH, "workspace_id": "elsewhere"}
        plain = await lc.create_agent_session(
            agent="general-agent-1", auth=other, preferences=TICKET
        )
        asked = await lc.create_agent_session(
            agent="general-agent-1",
            auth=AUTH,
            preferences={"formality": "formal", **TICKET},
            features={"refunds": True},
        )
        texts = [(await s.send("hello")).text for s in (overlay, plain, asked)]
        # workspace over the declared default; the session over the workspace
        assert "Reply in a casual tone." in texts[0] and "You may refund" not in texts[0]
        assert "unavailable in this session; do not call them: issue_refund" in texts[0]
        assert "Contoso Retail" in texts[0] and "Contoso Retail" not in texts[1]
        assert "Reply in a formal tone." in texts[1] and "You may refund" in texts[1]
        assert "Reply in a formal tone." in texts[2] and "You may refund" in texts[2]
        assert {s.versions["general-agent-1"] for s in (overlay, plain, asked)} == {"1"}
        row = overlay.row
        assert row.config["workspace"] == "workspace-123"
        assert row.config["overlay"] == "workspace-123"
        assert row.config["preferences"] == {"formality": "casual", "ticket": "T-1"}
        assert row.config["features"] == {"refunds": False}
        assert row.config["agents"]["general-agent-1"]["disabled_tools"] == ["issue_refund"]
        assert created[0].data["configuration"] == {
            "workspace": "workspace-123",
            "overlay": "workspace-123",
            "preferences": {"formality": "casual", "ticket": "T-1"},
            "features": {"refunds": False},
            "disabled_tools": {"general-agent-1": ["issue_refund"]},
        }


async def test_team_sessions_check_against_every_member(open_lc: Any) -> None:
    async with open_lc(CONFIGURED) as lc:
        session = await lc.create_agent_session(
            team="customer-support", auth=AUTH, preferences={"formality": "formal", **TICKET}
        )
        agents = session.row.config["agents"]
        # tech-agent-1 declares no preference: the session's are not its; the others share them
        assert "formality" not in agents.get("tech-agent-1", {}).get("inputs", {})
        assert {"general-agent-1", "billing-agent-1"} <= set(agents)
        assert agents["billing-agent-1"]["preferences"]["formality"] == "formal"
        reply = await session.send("I have a question about my bill")
        assert "Reply in a formal tone." in reply.text
        with pytest.raises(SessionConfigError, match="general-agent-1"):
            await lc.create_agent_session(team="customer-support", auth=AUTH, preferences={"x": 1})


async def test_the_tool_seam_refuses_a_switched_off_tool_and_says_so(open_lc: Any) -> None:
    async with open_lc(CONFIGURED) as lc:
        refused: list[Any] = []
        lc.on("tool:refused", refused.append)
        off = await lc.create_agent_session(agent="general-agent-1", auth=AUTH, preferences=TICKET)
        on = await lc.create_agent_session(
            agent="general-agent-1", auth=AUTH, preferences=TICKET, features={"refunds": True}
        )
        configs = lc.parts.configs
        assert configs.tool_refusal(on.row, "general-agent-1", "issue_refund") is None
        output = configs.tool_refusal(off.row, "general-agent-1", "issue_refund")
        assert output is not None and "unavailable in this session" in output
        assert configs.tool_refusal(off.row, "general-agent-1", "other_tool") is None
        assert [e.data for e in refused] == [
            {
                "session_id": off.id,
                "agent": "general-agent-1",
                "tool": "issue_refund",
                "reason": "feature_off",
            }
        ]


async def test_a_switched_off_tool_called_in_a_turn_is_refused_and_never_run(
    open_lc: Any,
) -> None:
    async with open_lc(CONFIGURED) as lc:
        runs: list[dict[str, Any]] = []
        lc.register_tool("issue_refund", lambda **args: runs.append(args) or "refunded")
        seen: list[Any] = []
        lc.on("tool:*", seen.append)
        off = await lc.create_agent_session(agent="general-agent-1", auth=AUTH, preferences=TICKET)
        reply = await off.send('please @issue_refund{"order": "A1"}')
        assert runs == []  # never run
        assert [e.type for e in seen] == ["tool:refused"]  # and never reported as called
        assert "issue_refund -> The tool 'issue_refund' is unavailable in this session" in (
            reply.text
        )
        seen.clear()
        on = await lc.create_agent_session(
            agent="general-agent-1", auth=AUTH, preferences=TICKET, features={"refunds": True}
        )
        reply = await on.send('please @issue_refund{"order": "A1"}')
        assert runs == [{"order": "A1"}]
        assert [e.type for e in seen] == ["tool:called", "tool:completed"]
        assert "issue_refund -> refunded" in reply.text


async def test_a_restarted_runtime_keeps_each_sessions_configuration(open_lc: Any) -> None:
    async with open_lc(CONFIGURED) as lc:
        session = await lc.create_agent_session(
            agent="general-agent-1", auth=AUTH, preferences=TICKET, features={"refunds": True}
        )
        first = await session.send("hello")
        session_id = session.id
    changed = CONFIGURED.replace("preferences: {formality: casual}", "preferences: {}")
    async with open_lc(changed) as lc:
        again = lc.get_session(session_id, auth=AUTH)
        assert again.row.features == {"refunds": True}
        assert again.row.preferences == TICKET
        reply = await again.send("hello")
        # the configuration was fixed when the session started: the edited overlay is not read
        assert first.text.split("]", 1)[1] == reply.text.split("]", 1)[1]
        assert "Reply in a casual tone." in reply.text
        fresh = await lc.create_agent_session(
            agent="general-agent-1", auth=AUTH, preferences=TICKET
        )
        assert "Reply in a formal tone." in (await fresh.send("hello")).text


def test_an_older_session_table_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE rt_sessions (
            id TEXT PRIMARY KEY, env TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL,
            user_id TEXT NOT NULL, workspace_id TEXT, state TEXT NOT NULL, reason TEXT,
            conversation_id TEXT NOT NULL, current_agent TEXT, pins TEXT NOT NULL,
            pools TEXT NOT NULL, max_turns INTEGER, idle_timeout REAL, preferences TEXT NOT NULL,
            priority TEXT, turns INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL, last_activity_at REAL NOT NULL, ended_at REAL,
            escalation TEXT, router_state TEXT NOT NULL DEFAULT '{}'
        ) WITHOUT ROWID;
        """
    )
    conn.execute(
        "INSERT INTO rt_sessions (id, env, kind, target, user_id, state, conversation_id, pins, "
        "pools, preferences, created_at, last_activity_at) VALUES "
        "('s1', 'local', 'agent', 'a', 'u', 'active', 'conv_1', ?, '[]', ?, 1, 2)",
        (json.dumps({"a": ["a", "3"]}), json.dumps({"formality": "casual"})),
    )
    conn.commit()
    conn.close()
    store = SqliteSessionStore(path)
    try:
        row = store.load("s1")
        assert row is not None
        assert (row.pins, row.preferences) == ({"a": ("a", "3")}, {"formality": "casual"})
        assert (row.features, row.config) == ({}, {})
        assert [r.id for r in store.load_open("local")] == ["s1"]
        row.config = {"workspace": None}
        row.id = "s2"
        store.save(row)
        assert store.load("s2").config == {"workspace": None}  # type: ignore[union-attr]
    finally:
        store.close()
    # opening it again does not add them twice
    SqliteSessionStore(path).close()


async def test_sessions_without_configuration_send_no_inputs(lc: Lifecycle) -> None:
    created: list[Any] = []
    lc.on("lifecycle:session_created", created.append)
    session = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
    assert session.row.config == {}
    assert created[0].data["configuration"] == {
        "workspace": AUTH["workspace_id"],
        "overlay": None,
        "preferences": {},
        "features": {},
        "disabled_tools": {},
    }
    reply = await session.send("hello")
    assert reply.text == "[tech-advisor v1] hello"


async def test_sessions_with_one_configuration_store_it_once(
    open_lc: Any, registry_file: Path
) -> None:
    async with open_lc(CONFIGURED) as lc:
        for _ in range(5):
            await lc.create_agent_session(agent="general-agent-1", auth=AUTH, preferences=TICKET)
        other = await lc.create_agent_session(
            agent="general-agent-1", auth=AUTH, preferences={"ticket": "T-2"}
        )
        assert other.row.config["agents"]["general-agent-1"]["preferences"]["ticket"] == "T-2"
    with sqlite3.connect(registry_file) as db:
        assert db.execute("SELECT COUNT(*) FROM rt_session_config").fetchone()[0] == 2
        hashes = [r[0] for r in db.execute("SELECT config_hash FROM rt_sessions")]
    assert len(hashes) == 6 and len(set(hashes)) == 2
    async with open_lc(CONFIGURED) as lc:
        restored = lc.get_session(other.id, auth=AUTH)
        assert restored.row.config == other.row.config
