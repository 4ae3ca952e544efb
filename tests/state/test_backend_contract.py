"""The state backends' contract: every test runs on the embedded SQLite file and on PostgreSQL.

What the runtime and the CLI rely on, whatever `state:` says: the registry (applied state, a
journal that never disagrees with it, the apply lock naming its holder), the session store
(rows as written, open sessions, leases that let many instances share sessions) and the
operator store (queue order, atomic claims, transcript, escalation history, availability).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest

from runner.state.base import AppliedResource, LockTimeoutError
from runner.state.operators import QueueItem
from runner.state.sessions import SessionRow


def _resource(name: str, hash_: str, version: str = "1") -> AppliedResource:
    return AppliedResource(
        address=f"agent.{name}",
        kind="Agent",
        name=name,
        hash=hash_,
        body={"model": "gpt-4o", "instructions": "${SECRET_REF}", "ünï": "cödé"},
        foundry_name=f"dev-{name}",
        foundry_version=version,
    )


def _session(sid: str, *, env: str = "dev", config: dict[str, Any] | None = None) -> SessionRow:
    return SessionRow(
        id=sid,
        env=env,
        kind="team",
        target="support",
        user_id="u1",
        workspace_id="w1",
        state="active",
        conversation_id=f"conv-{sid}",
        current_agent="triage",
        pins={"triage": ("dev-triage", "3")},
        created_at=100.0,
        last_activity_at=100.0,
        pools=["default"],
        preferences={"tone": "warm"},
        features={"beta": True},
        config=config or {},
        router_state={"queue": [1, 2]},
    )


# ---------------------------------------------------------------- registry


def test_registry_records_journals_and_reads_back(backend: Any) -> None:
    reg = backend.registry()
    before = reg.data_version() if hasattr(reg, "data_version") else None
    reg.record_applied("dev", _resource("triage", "h1"), apply_id="a1", action="create")
    reg.record_failure("dev", "agent.triage", apply_id="a2", action="update", detail="boom")
    reg.record_applied("dev", _resource("triage", "h2", "2"), apply_id="a3", action="update")
    reg.record_version_removed("dev", "agent.triage", version="9", apply_id="a3")
    reg.record_applied("prod", _resource("triage", "p1"), apply_id="a4", action="create")
    got = reg.get("dev", "agent.triage")
    assert got is not None and got.hash == "h2" and got.foundry_version == "2"
    assert got.body["instructions"] == "${SECRET_REF}" and got.body["ünï"] == "cödé"
    assert list(reg.applied("dev")) == ["agent.triage"]
    assert reg.environments() == ["dev", "prod"]
    history = reg.history("dev", "agent.triage")
    assert [(e.action, e.outcome, e.apply_id) for e in history] == [
        ("create", "ok", "a1"),
        ("update", "failed", "a2"),
        ("update", "ok", "a3"),
        ("delete_version", "ok", "a3"),
    ]
    assert history[1].detail == "boom" and history[3].foundry_version == "9"
    reg.record_deleted("dev", "agent.triage", apply_id="a5")
    assert reg.get("dev", "agent.triage") is None
    assert reg.history("dev", "agent.triage")[-1].hash == "h2"
    if before is not None:
        assert reg.data_version() != before


def test_a_second_registry_sees_the_first_ones_writes(backend: Any) -> None:
    one, two = backend.registry(), backend.registry()
    one.record_applied("dev", _resource("a", "h1"), apply_id="a1", action="create")
    found = two.get("dev", "agent.a")
    assert found is not None and found.hash == "h1"


def test_apply_lock_excludes_and_names_its_holder(backend: Any) -> None:
    one, two = backend.registry(), backend.registry()
    with one.lock("dev", holder="alice@ci", timeout=1.0):
        assert "alice@ci" in (one.lock_holder("dev") or "")
        with pytest.raises(LockTimeoutError) as caught, two.lock("dev", holder="bob", timeout=0.2):
            pass
        assert "alice@ci" in str(caught.value)
        with two.lock("staging", holder="bob", timeout=0.5):  # another environment is free
            pass
    assert one.lock_holder("dev") is None
    with two.lock("dev", holder="bob", timeout=0.5):
        assert "bob" in (two.lock_holder("dev") or "")


def test_apply_lock_waits_for_the_holder_then_proceeds(backend: Any) -> None:
    one, two = backend.registry(), backend.registry()
    held = threading.Event()
    order: list[str] = []

    def first() -> None:
        with one.lock("dev", holder="first", timeout=1.0):
            held.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(5)
    with two.lock("dev", holder="second", timeout=10.0):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]


# ---------------------------------------------------------------- sessions


def test_sessions_round_trip_and_open_ones_are_listed(backend: Any) -> None:
    state = backend.runtime(owner="i1")
    store = state.sessions
    config = {"workspace": "w1", "preferences": {"tone": "warm"}}
    row = _session("s1", config=config)
    store.save(row)
    store.save(_session("s2", config=config))
    store.save(_session("s3", env="prod"))
    row.state = "awaiting_human"
    row.turns = 3
    row.input_tokens = 30
    row.escalation = {"level": 1}
    store.save_state(row)
    loaded = store.load("s1")
    assert loaded == row
    other = store.load("s2")
    assert other is not None
    other.state = "ended"
    other.reason = "user"
    other.ended_at = 200.0
    store.save_counters([other])
    assert [r.id for r in store.load_open("dev")] == ["s1"]
    assert store.load("missing") is None


def test_a_lease_keeps_other_instances_out_until_released_or_expired(backend: Any) -> None:
    a = backend.runtime(owner="inst-a").sessions
    b = backend.runtime(owner="inst-b").sessions
    now = time.time()
    a.save(_session("s1"))
    lease = a.take_lease("s1", until=now + 30)
    assert lease is not None and not lease.stale
    assert b.take_lease("s1", until=now + 30) is None  # a holds it
    copy_b = b.load("s1")
    assert copy_b is not None
    copy_b.state = "ended"
    b.save_state(copy_b)  # refused: a holds it
    stored = a.load("s1")
    assert stored is not None and stored.state == "active"
    row = a.load("s1")
    assert row is not None
    row.turns = 1
    assert a.release(row)
    assert not a.release(row)  # no longer held: nothing written
    lease_b = b.take_lease("s1", until=now + 30)
    assert lease_b is not None and lease_b.stale  # a wrote last: b must re-read its copy
    row_b = b.load("s1")
    assert row_b is not None and row_b.turns == 1
    row_b.turns = 2
    assert b.release(row_b)
    lease_a = a.take_lease("s1", until=now - 1)  # already expired: anyone may take it
    assert lease_a is not None and lease_a.stale  # b wrote since a did
    assert a.written_elsewhere(["s1", "nope"]) == {"s1": "active"}
    lease_b = b.take_lease("s1", until=now + 30)  # a's lease ran out
    assert lease_b is not None
    assert a.take_lease("unknown", until=now + 30) is None


def test_a_stale_copy_never_overwrites_what_another_instance_wrote(backend: Any) -> None:
    a = backend.runtime(owner="inst-a").sessions
    b = backend.runtime(owner="inst-b").sessions
    a.save(_session("s1"))
    stale = a.load("s1")
    row = b.load("s1")
    assert stale is not None and row is not None
    assert b.take_lease("s1", until=time.time() + 30) is not None
    row.turns = 5
    assert b.release(row)
    stale.state = "ended"
    a.save_counters([stale])  # a's copy is older than b's write: refused
    a.save_state(stale)
    final = b.load("s1")
    assert final is not None and final.turns == 5 and final.state == "active"


def test_renewing_keeps_a_lease_past_its_first_expiry(backend: Any) -> None:
    a = backend.runtime(owner="inst-a").sessions
    b = backend.runtime(owner="inst-b").sessions
    a.save(_session("s1"))
    assert a.take_lease("s1", until=time.time() - 1) is not None
    a.renew_leases(["s1"], until=time.time() + 30)
    assert b.take_lease("s1", until=time.time() + 30) is None


# ---------------------------------------------------------------- operators


def _item(sid: str, priority: str | None, at: float) -> QueueItem:
    return QueueItem(
        session_id=sid,
        env="dev",
        team="support",
        workspace_id="w1",
        user_id="u",
        reason="asked",
        trigger=None,
        escalation_id=None,
        level=None,
        previous_agent="triage",
        priority=priority,
        enqueued_at=at,
    )


def test_operator_queue_orders_claims_once_and_keeps_the_transcript(backend: Any) -> None:
    one = backend.runtime(owner="i1").operators
    two = backend.runtime(owner="i2").operators
    one.enqueue(_item("s1", "low", 1.0))
    one.enqueue(_item("s2", "urgent", 2.0))
    one.enqueue(_item("s3", None, 0.5))
    one.enqueue(_item("s1", "low", 9.0))  # already queued: keeps its place
    assert [i.session_id for i in two.items("dev")] == ["s2", "s3", "s1"]
    assert two.items("dev", workspace="other") == []
    assert one.claim("s2", operator="ann", at=3.0)
    assert not two.claim("s2", operator="bob", at=3.1)
    claimed = two.get("s2")
    assert claimed is not None and claimed.claimed_by == "ann"
    assert one.remove("s2") and not two.remove("s2")
    one.add_message("s1", role="user", author=None, text="hello", at=1.0)
    two.add_message("s1", role="operator", author="ann", text="hi", at=2.0)
    assert [(m.role, m.text) for m in one.messages("s1")] == [("user", "hello"), ("operator", "hi")]


def test_escalation_history_and_availability(backend: Any) -> None:
    store = backend.runtime(owner="i1").operators
    other = backend.runtime(owner="i2").operators
    esc = {"id": "e1", "session_id": "s1", "level": 1, "target": "tier2", "status": "open"}
    store.record_escalation("dev", esc, team="support", at=5.0)
    store.record_escalation("dev", {**esc, "status": "accepted"}, team="support", at=6.0)
    store.session_closed("s1")
    store.flush()
    found = other.escalations("dev")
    assert [(e.status, e.session_open) for e in found] == [("accepted", False)]
    assert other.escalations("dev", statuses=["open"]) == []
    assert other.escalations("dev", open_sessions_only=True) == []
    store.set_availability("dev", "support", "triage", "away", at=1.0)
    store.set_availability("dev", "support", "triage", "busy", at=2.0)
    assert other.availability("dev") == {"support": {"triage": "busy"}}


def test_expired_sessions_are_found_by_idle_time_or_age(backend: Any) -> None:
    store = backend.runtime(owner="i1").sessions
    idle = _session("idle")
    idle.idle_timeout = 10.0
    idle.last_activity_at = 100.0
    busy = _session("busy")
    busy.idle_timeout = 10.0
    busy.last_activity_at = 150.0
    old = _session("old")
    old.created_at = 10.0
    old.last_activity_at = 155.0
    for row in (idle, busy, old):
        store.save(row)
    assert [r.id for r in store.load_expired("dev", now=155.0, max_age=None)] == ["idle"]
    found = store.load_expired("dev", now=155.0, max_age=100.0)
    assert sorted(r.id for r in found) == ["idle", "old"]
    assert store.load_expired("prod", now=155.0, max_age=100.0) == []


def test_an_environment_is_owned_by_one_project(backend: Any) -> None:
    from runner.state.base import ProjectMismatchError

    one, two = backend.registry(), backend.registry()
    assert one.project_of("dev") is None
    one.claim_project("dev", "shop")
    one.claim_project("dev", "shop")  # the owner again: nothing changes
    two.check_project("dev", "shop")
    assert two.project_of("dev") == "shop"
    with pytest.raises(ProjectMismatchError, match="shop"):
        two.claim_project("dev", "blog")
    with pytest.raises(ProjectMismatchError):
        two.check_project("dev", "blog")
    two.claim_project("prod", "blog")  # another environment is free
    assert one.project_of("prod") == "blog"


# ---------------------------------------------------------------- turn log


def test_the_turn_log_appends_reads_a_period_and_prunes(backend: Any) -> None:
    from runner.state.turn_log import TurnFigures

    state = backend.runtime(owner="i1")
    ended = _session("s1")
    ended.state, ended.reason, ended.ended_at = "ended", "resolved", 250.0
    state.sessions.save(ended)
    state.sessions.save(_session("s2", env="other"))
    rows = [
        TurnFigures("dev", "s1", 110.0, "triage", "support", 120.5, 10, 20, 0.25, False),
        TurnFigures("dev", "s1", 120.0, "tech", "support", 0.0, 0, 0, None, True),
        TurnFigures("dev", "s1", 300.0, "tech", "support", 80.0, 5, 5, 0.1, False),
        TurnFigures("other", "s2", 115.0, "triage", None, 50.0, 1, 1, None, False),
    ]
    state.turns.append(rows)
    state.turns.append([])  # nothing to write: no statement
    assert state.turns.turns_between("dev", 100.0, 200.0) == rows[:2]  # in order, env's own
    spans = state.turns.sessions_between("dev", 200.0, 400.0)  # s1 ended in this period
    assert [(s.id, s.kind, s.target, s.ended_at, s.reason) for s in spans] == [
        ("s1", "team", "support", 250.0, "resolved")
    ]
    assert state.turns.sessions_between("dev", 300.0, 400.0) == []
    assert state.turns.prune("dev", 200.0) == 2
    assert state.turns.turns_between("dev", 0.0, 1000.0) == rows[2:3]
    assert state.turns.turns_between("other", 0.0, 1000.0) == rows[3:]


# ---------------------------------------------------------------- projects sharing a database


def test_two_projects_with_the_same_environment_name_in_one_database(backend: Any) -> None:
    """PostgreSQL is shared: projects `shop` and `blog` both have a `prod`, and neither sees
    nor touches the other's applied state, journal, apply lock, sessions or operator records.
    A SQLite file keeps one project per environment: the second project is refused, with
    nothing changed (`runner.state.backends`)."""
    from runner.state.base import ProjectMismatchError

    shop, blog = backend.registry(project="shop"), backend.registry(project="blog")
    shop.claim_project("prod", "shop")
    shop.record_applied("prod", _resource("triage", "shop-1"), apply_id="s1", action="create")
    if backend.name == "sqlite":
        with pytest.raises(ProjectMismatchError, match="shop"):
            blog.claim_project("prod", "blog")
        assert list(blog.applied("prod")) == ["agent.triage"]  # the one project's, untouched
        assert blog.project_of("prod") == "shop"
        return
    blog.claim_project("prod", "blog")  # applying: both claim their own `prod`
    blog.check_project("prod", "blog")
    shop.check_project("prod", "shop")
    assert (shop.project_of("prod"), blog.project_of("prod")) == ("shop", "blog")
    blog.record_applied("prod", _resource("faq", "blog-1"), apply_id="b1", action="create")
    blog.record_applied("prod", _resource("triage", "blog-2"), apply_id="b2", action="create")
    blog.record_deleted("prod", "agent.triage", apply_id="b3")  # blog's triage, not shop's
    # listing: each project sees its own resources, journal and environments
    assert list(shop.applied("prod")) == ["agent.triage"]
    assert list(blog.applied("prod")) == ["agent.faq"]
    found = shop.get("prod", "agent.triage")
    assert found is not None and found.hash == "shop-1"
    assert blog.get("prod", "agent.triage") is None
    assert [(e.env, e.apply_id) for e in shop.history("prod", "agent.triage")] == [("prod", "s1")]
    assert [e.apply_id for e in blog.history("prod", "agent.triage")] == ["b2", "b3"]
    assert shop.environments() == ["prod"] and blog.environments() == ["prod"]
    # locking: each project's `prod` has its own apply lock
    with shop.lock("prod", holder="shop-ci", timeout=1.0):
        assert blog.lock_holder("prod") is None
        with blog.lock("prod", holder="blog-ci", timeout=0.5):
            assert "blog-ci" in (blog.lock_holder("prod") or "")
            assert "shop-ci" in (shop.lock_holder("prod") or "")
        again = backend.registry(project="shop")  # shop's own `prod` is held: it waits
        with pytest.raises(LockTimeoutError) as caught, again.lock("prod", holder="x", timeout=0.2):
            pass
        assert "'prod'" in str(caught.value) and "#" not in str(caught.value)  # as users name it
    # running sessions: each runtime sees, leases and queues only its project's sessions
    a = backend.runtime(owner="shop-1", project="shop")
    b = backend.runtime(owner="blog-1", project="blog")
    a.sessions.save(_session("shop-s", env="prod"))
    b.sessions.save(_session("blog-s", env="prod"))
    assert [r.id for r in a.sessions.load_open("prod")] == ["shop-s"]
    assert [(r.id, r.env) for r in b.sessions.load_open("prod")] == [("blog-s", "prod")]
    loaded = a.sessions.load("shop-s")
    assert loaded is not None and loaded.env == "prod"
    assert b.sessions.load("shop-s") is None  # another project's session looks missing
    assert b.sessions.take_lease("shop-s", until=time.time() + 60) is None
    assert a.sessions.take_lease("shop-s", until=time.time() + 60) is not None
    assert [r.id for r in b.sessions.load_expired("prod", now=1e12, max_age=1.0)] == ["blog-s"]
    a.operators.enqueue(dataclasses.replace(_item("shop-s", None, 1.0), env="prod"))
    assert [i.env for i in a.operators.items("prod")] == ["prod"]
    assert b.operators.items("prod") == [] and b.operators.get("shop-s") is None
    assert not b.operators.claim("shop-s", operator="eve", at=2.0)
    assert not b.operators.remove("shop-s")
    assert a.operators.claim("shop-s", operator="ann", at=2.0)
    a.operators.set_availability("prod", "support", "ann", "online", at=1.0)
    assert b.operators.availability("prod") == {}
    assert a.operators.availability("prod") == {"support": {"ann": "online"}}
    escalation = {"id": "e1", "session_id": "shop-s", "level": 1, "target": "t", "status": "open"}
    a.operators.record_escalation("prod", escalation, team="support", at=2.0)
    assert [e.env for e in a.operators.escalations("prod")] == ["prod"]
    assert b.operators.escalations("prod") == []
    # the turn log (runner report): each project's own turns
    from runner.state.turn_log import TurnFigures

    turn = TurnFigures("prod", "shop-s", 110.0, "triage", "support", 12.0, 1, 2, None, False)
    a.turns.append([turn])
    assert a.turns.turns_between("prod", 0.0, 1e12) == [turn]
    assert b.turns.turns_between("prod", 0.0, 1e12) == []
    assert b.turns.prune("prod", 1e12) == 0 and a.turns.prune("prod", 1e12) == 1
