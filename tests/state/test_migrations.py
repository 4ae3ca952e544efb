"""Versioned schema migrations on both backends: from empty, from the previous version, from a
file made before migrations existed, concurrently, and refusing a newer schema."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from runner.state.schema_sql import LATEST, SchemaTooNewError
from runner.state.sessions_sqlite import SqliteSessionStore
from runner.state.sqlite import SqliteRegistry
from runner.state.sqlite_schema import applied_versions, migrate

_SESSION_V1 = (
    "INSERT INTO rt_sessions (id, env, kind, target, user_id, state, conversation_id, pins, "
    "pools, preferences, created_at, last_activity_at, turns) VALUES ('s1', 'dev', 'agent', "
    "'triage', 'u', 'active', 'c1', '{}', '[]', '{}', 1.0, 2.0, 4)"
)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}


def test_sqlite_from_empty_applies_every_version_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    assert migrate(conn) == LATEST
    assert migrate(conn) == LATEST
    assert applied_versions(conn) == list(range(1, LATEST + 1))
    assert {"lease_owner", "lease_until", "written_by"} <= _columns(conn, "rt_sessions")


def test_sqlite_from_the_previous_version_keeps_every_row(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    assert migrate(conn, target=1) == 1
    assert "lease_owner" not in _columns(conn, "rt_sessions")
    conn.execute(_SESSION_V1)
    assert migrate(conn, target=3) == 3  # step by step, rows kept
    assert "lease_owner" in _columns(conn, "rt_sessions")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "registry_projects" in tables and "rt_turns" not in tables  # 4 adds the turn log
    assert migrate(conn, target=LATEST - 1) == LATEST - 1
    conn.close()
    store = SqliteSessionStore(tmp_path / "s.db", owner="i1")  # opening migrates
    row = store.load("s1")
    assert row is not None and row.turns == 4
    lease = store.take_lease("s1", until=1e12)
    assert lease is not None and not lease.stale
    store.close()
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    assert "rt_turns" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()


def test_sqlite_file_from_before_migrations_comes_up_to_date(tmp_path: Path) -> None:
    """A file as the previous release wrote it: no migrations table, older columns."""
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        """
        CREATE TABLE registry_locks (env TEXT PRIMARY KEY, holder TEXT NOT NULL,
            token TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
            acquired_at REAL NOT NULL);
        CREATE TABLE rt_sessions (id TEXT PRIMARY KEY, env TEXT NOT NULL, kind TEXT NOT NULL,
            target TEXT NOT NULL, user_id TEXT NOT NULL, workspace_id TEXT,
            state TEXT NOT NULL, reason TEXT, conversation_id TEXT NOT NULL,
            current_agent TEXT, pins TEXT NOT NULL, pools TEXT NOT NULL, max_turns INTEGER,
            idle_timeout REAL, preferences TEXT NOT NULL, priority TEXT,
            turns INTEGER NOT NULL DEFAULT 0, input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
            last_activity_at REAL NOT NULL, ended_at REAL, escalation TEXT,
            router_state TEXT NOT NULL DEFAULT '{}') WITHOUT ROWID;
        """
    )
    conn.execute(_SESSION_V1)
    conn.close()
    registry = SqliteRegistry(path)
    with registry.lock("dev", holder="me", timeout=1.0):
        registry.record_write_started("dev", request_timeout=1.0)
    store = SqliteSessionStore(path, owner="i1")
    row = store.load("s1")
    assert row is not None and row.turns == 4 and row.features == {}
    conn = sqlite3.connect(path)
    assert applied_versions(conn) == list(range(1, LATEST + 1))
    assert "writes_in_flight" in _columns(conn, "registry_locks")
    store.close()
    registry.close()


def test_sqlite_concurrent_openers_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            SqliteSessionStore(path).close()
        except BaseException as exc:  # pragma: no cover - the failure is the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    conn = sqlite3.connect(path)
    assert applied_versions(conn) == list(range(1, LATEST + 1))


def test_sqlite_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    migrate(conn)
    conn.execute("INSERT INTO runner_migrations VALUES (?, 'future', 0)", (LATEST + 1,))
    with pytest.raises(SchemaTooNewError, match="upgrade runner"):
        migrate(conn)


def test_postgres_from_empty_and_from_the_previous_version(pg_url: str) -> None:
    import psycopg

    from runner.state.pg_database import PgDatabase
    from runner.state.pg_schema import applied_versions as pg_versions
    from runner.state.pg_schema import migrate as pg_migrate
    from runner.state.pg_sessions import PostgresSessionStore

    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert pg_versions(conn) == []
        assert pg_migrate(conn, target=1) == 1
        conn.execute(_SESSION_V1)
        assert pg_migrate(conn, target=LATEST - 1) == LATEST - 1
    db = PgDatabase(pg_url)  # opening migrates the rest
    try:
        with db.connect() as conn:
            assert pg_versions(conn) == list(range(1, LATEST + 1))
        store = PostgresSessionStore(db, owner="i1")
        row = store.load("s1")
        assert row is not None and row.turns == 4
        assert store.take_lease("s1", until=1e12) is not None
        with db.connect() as conn:
            conn.execute("INSERT INTO runner_migrations VALUES (%s, 'future', 0)", (LATEST + 1,))
            with pytest.raises(SchemaTooNewError):
                pg_migrate(conn)
    finally:
        db.close()


def test_postgres_concurrent_openers_migrate_once(pg_url: str) -> None:
    from runner.state.pg_database import PgDatabase

    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            PgDatabase(pg_url, max_size=1).close()
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = PgDatabase(pg_url)
    with db.connect() as conn:
        rows = conn.execute("SELECT version FROM runner_migrations ORDER BY 1").fetchall()
    db.close()
    assert [r[0] for r in rows] == list(range(1, LATEST + 1))


def test_an_unreachable_postgres_state_is_a_clear_error_without_the_password() -> None:
    from runner.state.pg_database import PgDatabase, StateUnavailableError

    with pytest.raises(StateUnavailableError) as caught:
        PgDatabase("postgresql://alice:s3cret@127.0.0.1:1/db", timeout=1.0)
    message = str(caught.value)
    assert "s3cret" not in message and "alice" not in message
    assert "127.0.0.1:1/db" in message


def test_a_lost_postgres_connection_is_a_clear_error_then_recovers(pg_url: str) -> None:
    """The server drops the runtime's connections (a restart, a failover): the call in flight
    fails with a user-facing error naming the database, and the next one works again."""
    import psycopg

    from runner.state.pg_database import PgDatabase, StateUnavailableError
    from runner.state.pg_sessions import PostgresSessionStore

    db = PgDatabase(pg_url + "&application_name=runner_outage_test", min_size=1, max_size=1)
    try:
        store = PostgresSessionStore(db, owner="i1")
        assert store.load("nope") is None
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'runner_outage_test'"
            )
        with pytest.raises(StateUnavailableError, match="not answering"):
            store.load("nope")
        assert store.load("nope") is None
    finally:
        db.close()


# ---------------------------------------------------------------- 5: project scopes, from 4

_OWNED_V4 = (
    "INSERT INTO registry_projects (env, project, claimed_at) VALUES ('prod', 'shop', 1.0)",
    "INSERT INTO registry_resources (env, address, kind, name, hash, body, applied_at) "
    "VALUES ('prod', 'agent.triage', 'Agent', 'triage', 'h1', '{}', 1.0)",
    "INSERT INTO registry_resources (env, address, kind, name, hash, body, applied_at) "
    "VALUES ('dev', 'agent.free', 'Agent', 'free', 'h2', '{}', 1.0)",
    "INSERT INTO registry_journal (env, address, action, outcome, at, apply_id) "
    "VALUES ('prod', 'agent.triage', 'create', 'ok', 1.0, 'a1')",
    "INSERT INTO rt_hq_items (session_id, env, user_id, enqueued_at) VALUES ('s1', 'prod', 'u', 1)",
    "INSERT INTO rt_hq_availability (env, team, agent, status, updated_at) "
    "VALUES ('prod', 'support', 'ann', 'online', 1.0)",
    "INSERT INTO rt_turns (env, session_id, at, ms, input_tokens, output_tokens) "
    "VALUES ('prod', 's1', 5.0, 1.0, 1, 1)",
)


def test_sqlite_from_4_keeps_one_project_per_environment(tmp_path: Path) -> None:
    """5 changes nothing in a SQLite file: its rows stay, and another project is refused."""
    from runner.state.base import ProjectMismatchError

    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    assert migrate(conn, target=4) == 4
    conn.execute(_SESSION_V1.replace("'dev'", "'prod'"))
    for statement in _OWNED_V4:
        conn.execute(statement)
    conn.close()
    registry = SqliteRegistry(tmp_path / "s.db")
    try:
        assert list(registry.applied("prod")) == ["agent.triage"]
        assert [e.apply_id for e in registry.history("prod", "agent.triage")] == ["a1"]
        with pytest.raises(ProjectMismatchError, match="shop"):
            registry.claim_project("prod", "blog")
        store = SqliteSessionStore(tmp_path / "s.db", owner="i1")
        assert [r.id for r in store.load_open("prod")] == ["s1"]
        store.close()
    finally:
        registry.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    assert applied_versions(conn) == list(range(1, LATEST + 1))
    conn.close()


def test_postgres_from_4_moves_each_owned_environment_under_its_project(pg_url: str) -> None:
    """5 adopts what a shared database holds: `prod`, claimed by `shop`, becomes shop's (every
    table); `blog` starts with an empty `prod` beside it; `dev`, never claimed, stays bare."""
    import psycopg

    from runner.state.pg_database import PgDatabase
    from runner.state.pg_operators import PostgresOperatorStore
    from runner.state.pg_registry import PostgresRegistry
    from runner.state.pg_schema import applied_versions as pg_versions
    from runner.state.pg_schema import migrate as pg_migrate
    from runner.state.pg_sessions import PostgresSessionStore
    from runner.state.pg_turn_log import PostgresTurnLog

    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert pg_migrate(conn, target=4) == 4
        conn.execute(_SESSION_V1.replace("'dev'", "'prod'"))
        for statement in _OWNED_V4:
            conn.execute(statement)
    shop_db = PgDatabase(pg_url, project="shop")  # opening migrates to 5
    blog_db = PgDatabase(pg_url, project="blog")
    bare_db = PgDatabase(pg_url)
    try:
        with shop_db.connect() as conn:
            assert pg_versions(conn) == list(range(1, LATEST + 1))
        shop = PostgresRegistry(shop_db)
        assert list(shop.applied("prod")) == ["agent.triage"]
        assert [e.apply_id for e in shop.history("prod", "agent.triage")] == ["a1"]
        assert shop.project_of("prod") == "shop"
        sessions = PostgresSessionStore(shop_db, owner="i1")
        assert [(r.id, r.env) for r in sessions.load_open("prod")] == [("s1", "prod")]
        operators = PostgresOperatorStore(shop_db)
        assert [i.session_id for i in operators.items("prod")] == ["s1"]
        assert operators.availability("prod") == {"support": {"ann": "online"}}
        assert len(PostgresTurnLog(shop_db).turns_between("prod", 0.0, 10.0)) == 1
        blog = PostgresRegistry(blog_db)
        assert blog.applied("prod") == {} and blog.project_of("prod") is None
        blog.claim_project("prod", "blog")  # coexists with shop's
        assert PostgresSessionStore(blog_db).load_open("prod") == []
        bare = PostgresRegistry(bare_db)
        assert list(bare.applied("dev")) == ["agent.free"] and bare.applied("prod") == {}
    finally:
        for db in (shop_db, blog_db, bare_db):
            db.close()


_POOLS_OUTSIDE_MIGRATIONS = (  # as SqliteLimits created them before migration 6
    "CREATE TABLE pool_holders (pool TEXT NOT NULL, holder TEXT NOT NULL, "
    "expires REAL NOT NULL, PRIMARY KEY (pool, holder))",
    "CREATE TABLE pool_tokens (pool TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL, "
    "tokens INTEGER NOT NULL, PRIMARY KEY (pool, id))",
    "INSERT INTO pool_holders VALUES ('prod/shared', 's1', 9e9)",
    "INSERT INTO pool_tokens VALUES ('prod/shared', 'r1', 5.0, 120)",
)


def test_sqlite_6_holds_the_pool_limits_tables(tmp_path: Path) -> None:
    """From empty: the three tables. From 5, with the tables a runner from before made outside
    the migrations (and rows in them): the rows stay and the missing table and index come."""
    fresh = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    assert migrate(fresh) == LATEST == 6
    names = {r[0] for r in fresh.execute("SELECT name FROM sqlite_master")}
    assert {"pool_holders", "pool_waiters", "pool_tokens", "pool_tokens_at"} <= names
    fresh.close()

    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    assert migrate(conn, target=5) == 5
    assert "pool_holders" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    for statement in _POOLS_OUTSIDE_MIGRATIONS:
        conn.execute(statement)
    assert migrate(conn) == 6
    assert conn.execute("SELECT holder FROM pool_holders").fetchall() == [("s1",)]
    assert conn.execute("SELECT tokens FROM pool_tokens").fetchall() == [(120,)]
    assert {"pool_waiters", "pool_tokens_at"} <= {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master")
    }
    assert applied_versions(conn) == list(range(1, LATEST + 1))
    conn.close()


async def test_sqlite_limits_on_a_file_at_5_bring_it_to_6(tmp_path: Path) -> None:
    from runner.runtime.clock import FakeClock
    from runner.runtime.pools.sqlite_limits import SqliteLimits

    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    assert migrate(conn, target=5) == 5
    conn.close()
    limits = SqliteLimits(tmp_path / "s.db", clock=FakeClock(), namespace="prod")
    try:
        assert await limits.take("s1", [("shared", 1)], rank=2, queue=False) is None
        assert await limits.held("shared") == 1
    finally:
        await limits.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    assert applied_versions(conn) == list(range(1, LATEST + 1))
    conn.close()
