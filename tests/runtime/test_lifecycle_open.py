"""Lifecycle.open from spec files: the contract folder as written, spec errors at file:line:col,
an environment that cannot be built, and the default registry location."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_support import AUTH, CONTRACT, copy_contract

from runner import Lifecycle
from runner.runtime.clock import FakeClock
from runner.runtime.errors import LifecycleError, SpecProblemsError


async def test_open_the_contract_folder_and_run_its_max_turns_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_HOME", str(tmp_path / "home"))
    async with Lifecycle.open([CONTRACT], env="local", clock=FakeClock(), environ={}) as lc:
        session = await lc.create_agent_session(team="customer-support", auth=AUTH, max_turns=3)
        for _ in range(3):
            assert (await session.send("hello")).agent == "general-agent-1"
        last = await session.send("one more question")
        assert (last.state, last.reason) == ("ended", "max_turns")
    assert (tmp_path / "home" / "state.db").exists()  # paths.registry_path()


async def test_spec_errors_are_reported_with_positions(tmp_path: Path) -> None:
    specs = copy_contract(tmp_path / "specs")
    (specs / "broken.yaml").write_text(
        "apiVersion: runner/v1\nkind: Agent\nname: broken\nmodel: m\n"
    )
    with pytest.raises(SpecProblemsError, match=r"broken\.yaml:\d+:\d+"):
        async with Lifecycle.open(specs, env="local", registry_path=tmp_path / "s.db"):
            pass


async def test_an_environment_whose_endpoint_is_unset_says_so(tmp_path: Path) -> None:
    with pytest.raises(LifecycleError, match="FOUNDRY_PROJECT_ENDPOINT"):
        async with Lifecycle.open(
            CONTRACT, env="prod", registry_path=tmp_path / "s.db", environ={}
        ):
            pass
