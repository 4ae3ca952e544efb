"""The real PostgreSQL server the state tests use: a database per test run, a schema per test.

`RUNNER_TEST_POSTGRES_URL` points at the server (default: this machine's, trust auth, user
postgres). The run's database is created on first use and dropped at exit; every test gets a
fresh schema in it (the URL carries `options=-csearch_path=...`), so tests never see each
other's tables. With `RUNNER_REQUIRE_POSTGRES=1` (CI) an unreachable server fails the tests
instead of skipping them.
"""

from __future__ import annotations

import atexit
import os
import uuid
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

BASE_URL = os.environ.get(
    "RUNNER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_state: dict[str, Any] = {}


def _with(url: str, *, dbname: str | None = None, schema: str | None = None) -> str:
    parts = urlsplit(url)
    path = f"/{dbname}" if dbname else parts.path
    query = parts.query
    if schema:
        option = quote(f"-csearch_path={schema}", safe="")
        query = f"{query}&options={option}" if query else f"options={option}"
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _admin() -> Any:
    import psycopg

    return psycopg.connect(BASE_URL, autocommit=True, connect_timeout=3)


def run_database_url() -> str:
    """The URL of this test run's database (created on first call, dropped at exit)."""
    if "url" in _state:
        return str(_state["url"])
    if "error" in _state:
        _unavailable(_state["error"])
    name = f"runner_test_{uuid.uuid4().hex[:12]}"
    try:
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        _state["error"] = str(exc)
        _unavailable(str(exc))
    _state["url"] = _with(BASE_URL, dbname=name)
    atexit.register(_drop, name)
    return str(_state["url"])


def _drop(name: str) -> None:
    try:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:
        pass


def _unavailable(error: str) -> None:
    message = f"PostgreSQL at RUNNER_TEST_POSTGRES_URL is not reachable: {error}"
    if os.environ.get("RUNNER_REQUIRE_POSTGRES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def fresh_schema_url() -> str:
    """A URL whose connections see only a new, empty schema of the run's database."""
    import psycopg

    url = run_database_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return _with(url, schema=schema)
