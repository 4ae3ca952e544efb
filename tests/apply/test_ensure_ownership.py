"""The runtime's on-demand agent (`ensure_agent`) under ownership by project: it updates its own
project's agent, and refuses another project's, leaving it untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from runner.apply.executor import ApplyError, ensure_agent
from runner.plan.desired import DesiredAgent, managed_metadata
from runner.providers.local import LocalProvider
from runner.state.base import AppliedResource
from runner.state.sqlite import SqliteRegistry


def desired(instructions: str, owner: str) -> DesiredAgent:
    definition = {"kind": "prompt", "model": "gpt-4o", "instructions": instructions}
    content_hash = hashlib.sha256(instructions.encode()).hexdigest()
    return DesiredAgent(
        address="agent.desk",
        name="desk",
        foundry_name="desk",
        definition=definition,
        description=None,
        metadata=managed_metadata(
            {}, address="agent.desk", env="local", content_hash=content_hash, owner=owner
        ),
        hash=content_hash,
    )


def test_ensure_updates_its_own_projects_agent_and_refuses_another(tmp_path: Path) -> None:
    provider = LocalProvider.open(tmp_path / "store.db")
    registry = SqliteRegistry(tmp_path / "state.db")
    try:
        first = ensure_agent(
            provider=provider, registry=registry, env="local", desired_agent=desired("v1", "a/s")
        )
        assert first.foundry_version == "1"
        second = ensure_agent(
            provider=provider, registry=registry, env="local", desired_agent=desired("v2", "a/s")
        )
        assert second.foundry_version == "2"
        live = provider.get_agent("desk")
        assert live is not None and live.project == "a/s"

        other = SqliteRegistry(tmp_path / "other.db")
        other.record_applied(
            "local",
            AppliedResource("agent.desk", "Agent", "desk", "0" * 64, foundry_name="desk"),
            apply_id="x",
            action="create",
        )
        with pytest.raises(ApplyError, match="belongs to runner project 'a/s'"):
            ensure_agent(
                provider=provider, registry=other, env="local", desired_agent=desired("v3", "b/s")
            )
        live = provider.get_agent("desk")
        assert live is not None and live.version == "2" and live.project == "a/s"
        other.close()
    finally:
        provider.close()
        registry.close()
