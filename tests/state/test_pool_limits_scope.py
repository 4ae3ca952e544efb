"""Where pool limits are held, by state backend, with no `redis:`: the SQLite registry holds them
for the processes of the host (the default); PostgreSQL state without Redis keeps them per
process and says so when the runtime opens, naming the Environment (issue 12, item 5)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from pg_support import fresh_schema_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtime_support import AUTH, contract_project

from runner import Lifecycle
from runner.runtime.errors import PoolLimitError

ENV = """
apiVersion: runner/v1
kind: Environment
name: prod
provider: local
default: true
data_dir: {data_dir}
{state}
"""

POOL = """
apiVersion: runner/v1
kind: ResourcePool
name: desk
agents: [tech-advisor]
limits: {max_concurrent_sessions: 1}
"""


async def test_postgres_state_without_redis_warns_that_limits_are_per_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {"TEST_STATE_URL": fresh_schema_url()}
    project = contract_project(
        ENV.format(data_dir=tmp_path / "store", state="state: ${TEST_STATE_URL}"), POOL
    )
    with caplog.at_level(logging.WARNING, logger="runner.runtime"):
        async with (
            Lifecycle.open(
                project, env="prod", registry_path=tmp_path / "a.db", environ=environ
            ) as a,
            Lifecycle.open(
                project, env="prod", registry_path=tmp_path / "b.db", environ=environ
            ) as b,
        ):
            status = a.get_system_status()
            config = status["components"]["config"]
            assert config["status"] == "degraded"
            detail = config.get("detail", "")
            assert "environment.prod" in detail and "redis:" in detail
            assert "each runtime process" in detail
            assert a.pools.shared is None  # per process, as said
            await a.create_agent_session(agent="tech-advisor", auth=AUTH)
            await b.create_agent_session(agent="tech-advisor", auth=AUTH)  # its own count
    assert any("environment.prod" in r.getMessage() for r in caplog.records)


async def test_sqlite_state_shares_limits_between_runtimes_by_default(tmp_path: Path) -> None:
    project = contract_project(ENV.format(data_dir=tmp_path / "store", state=""), POOL)
    registry = tmp_path / "state.db"
    async with (
        Lifecycle.open(project, env="prod", registry_path=registry, environ={}) as a,
        Lifecycle.open(project, env="prod", registry_path=registry, environ={}) as b,
    ):
        assert a.get_system_status()["components"]["config"]["status"] == "healthy"
        await a.create_agent_session(agent="tech-advisor", auth=AUTH)
        with pytest.raises(PoolLimitError):
            await b.create_agent_session(agent="tech-advisor", auth=AUTH)
