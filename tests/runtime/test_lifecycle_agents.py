"""Agent reuse (seed 001): get_or_create_agent creates only when nothing matching exists, in any
number of threads or processes; cleanup; stats; sessions pinned to their version across applies."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from runtime_support import ADMIN, AUTH

from runner.runtime.errors import LifecycleError, NotAppliedError
from runner.runtime.lifecycle import Lifecycle

CHANGED_ADVISOR = """
apiVersion: runner/v1
kind: Agent
name: tech-advisor
model: gpt-4o-mini
instructions: You advise engineering teams on architecture choices, briefly.
"""


async def test_declared_agent_is_created_once_and_reused(lc: Lifecycle) -> None:
    first = await lc.get_or_create_agent("tech-advisor")
    again = await lc.get_or_create_agent("tech-advisor")
    assert first == again and first.version == "1" and first.foundry_name == "tech-advisor"
    assert [v.version for v in lc.provider.list_versions("tech-advisor")] == ["1"]
    stats = lc.get_agent_stats()
    assert stats["total_agents"] == 1
    entry = stats["agents"]["tech-advisor"]
    assert entry["use_count"] == 2 and entry["sessions"] == 0 and entry["version"] == "1"
    assert set(entry) >= {"use_count", "sessions", "created_at", "last_used_at", "version"}


async def test_agent_defined_in_code(lc: Lifecycle) -> None:
    fields: dict[str, Any] = {
        "model": "gpt-4o",
        "instructions": "You are a market analyst.",
        "tools": [{"type": "web_search"}],
    }
    handle = await lc.get_or_create_agent("analyst-2", **fields)
    assert handle.version == "1"
    assert (await lc.get_or_create_agent("analyst-2", **fields)).version == "1"
    changed = await lc.get_or_create_agent("analyst-2", **{**fields, "temperature": 0.2})
    assert changed.version == "2"
    version = lc.provider.get_agent("analyst-2")
    assert version is not None and version.managed
    session = await lc.create_agent_session(agent="analyst-2", auth=AUTH)
    assert (await session.send("how is the market?")).text.startswith("[analyst-2 v2]")
    with pytest.raises(LifecycleError, match="invalid definition"):
        await lc.get_or_create_agent("analyst-3", model="gpt-4o")  # no instructions
    with pytest.raises(LifecycleError, match="declared in the specs"):
        await lc.get_or_create_agent("tech-advisor", model="gpt-4o", instructions="x")


async def test_cleanup_agent_and_cleanup_all_delete_managed_agents_only(lc: Lifecycle) -> None:
    await lc.get_or_create_agent("tech-advisor")
    await lc.get_or_create_agent("scratch", model="m", instructions="temporary")
    session = await lc.create_agent_session(agent="scratch", auth=AUTH)
    lc.provider.create_version(
        "hand-made", definition={"kind": "prompt", "model": "m"}, metadata={}
    )
    result = await lc.cleanup_agent("scratch", auth=ADMIN)
    assert result["deleted"] and result["ended_sessions"] == 1
    assert session.state == "ended" and session.reason == "agent_cleanup"
    assert lc.provider.get_agent("scratch") is None
    assert "scratch" not in lc.get_agent_stats()["agents"]
    everything = await lc.cleanup_all(auth=ADMIN)
    assert everything["deleted"] == ["tech-advisor"]
    assert lc.provider.get_agent("hand-made") is not None  # not runner's: untouched


async def test_sessions_stay_pinned_to_their_version_across_an_apply(open_lc: Any) -> None:
    async with open_lc() as lc:
        old = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        assert (await old.send("hello")).agent_version == "1"
        # another runtime (or `runner apply`) applies a changed spec
        async with open_lc(CHANGED_ADVISOR) as other:
            assert (await other.get_or_create_agent("tech-advisor")).version == "2"
        reply = await old.send("still the old one?")
        assert reply.text.startswith("[tech-advisor v1]") and reply.agent_version == "1"
        new = await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        assert new.versions == {"tech-advisor": "2"}
        assert (await new.send("hello")).text.startswith("[tech-advisor v2]")
        assert old.conversation_id != new.conversation_id


async def test_protected_environment_runs_only_what_was_applied(
    tmp_path: Path, registry_file: Path, clock: Any, make_project: Any
) -> None:
    protected = f"""
apiVersion: runner/v1
kind: Environment
name: staging
provider: local
protected: true
data_dir: {tmp_path / "store"}
"""
    project = make_project(protected)
    async with Lifecycle.open(
        project, env="staging", registry_path=registry_file, clock=clock, background=False
    ) as lc:
        with pytest.raises(NotAppliedError, match="protected"):
            await lc.create_agent_session(agent="tech-advisor", auth=AUTH)
        with pytest.raises(NotAppliedError):
            await lc.get_or_create_agent("new-one", model="m", instructions="x")
        assert lc.get_system_status()["active_sessions"] == 0


async def test_threads_share_one_agent(lc: Lifecycle) -> None:
    results = await asyncio.gather(*(lc.get_or_create_agent("tech-advisor") for _ in range(8)))
    assert {r.version for r in results} == {"1"}
    assert len(lc.provider.list_versions("tech-advisor")) == 1


def _worker(specs: str, registry: str, go: str, results: Any) -> None:
    """One process: wait for the endpoint, then get_or_create three agents at once with others."""
    import time

    while not os.path.exists(go) or not Path(go).read_text():
        time.sleep(0.002)
    environ = {**os.environ, "EMU_ENDPOINT": Path(go).read_text()}

    async def main() -> dict[str, list[str]]:
        from runtime_support import project_from

        project = project_from(Path(specs).read_text())
        out: dict[str, list[str]] = {}
        async with Lifecycle.open(
            project, env="emu", registry_path=registry, environ=environ, background=False
        ) as lc:
            for name in ("tech-advisor", "market-analyst"):
                h = await lc.get_or_create_agent(name)
                out[name] = [h.foundry_name, h.version]
            h = await lc.get_or_create_agent("coded", model="gpt-4o", instructions="made in code")
            out["coded"] = [h.foundry_name, h.version]
        return out

    try:
        results.put(("ok", asyncio.run(main())))
    except BaseException as exc:  # reported to the parent, which fails the test
        import traceback

        results.put(("error", f"{exc!r}\n{traceback.format_exc()}"))


EMU_SPECS = """
apiVersion: runner/v1
kind: Environment
name: emu
provider: foundry
endpoint: ${EMU_ENDPOINT}
---
apiVersion: runner/v1
kind: Agent
name: tech-advisor
model: gpt-4o-mini
instructions: You advise engineering teams on architecture choices.
---
apiVersion: runner/v1
kind: Agent
name: market-analyst
model: gpt-4o
instructions: You are a market analyst.
tools:
  - type: web_search
"""


def test_eight_processes_leave_one_agent_with_one_version_each(tmp_path: Path) -> None:
    """Eight processes call get_or_create_agent for the same agents at the same moment.

    They are forked from a fresh fork server that has imported the SDK once (so the test measures
    contention, not imports), never from pytest's own process: threads other tests left running
    there could hold a lock at the moment of the fork and hang a child."""
    from runner.providers.emulator import serve_emulator
    from runner.providers.foundry import FoundryProvider

    specs = tmp_path / "specs.yaml"
    specs.write_text(EMU_SPECS)
    go = tmp_path / "go"
    registry = tmp_path / "state.db"
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        ["azure.ai.projects", "openai", "runner.runtime.lifecycle", _worker.__module__]
    )
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(str(specs), str(registry), str(go), results))
        for _ in range(8)
    ]
    for proc in procs:
        proc.start()
    try:
        with serve_emulator(data_dir=tmp_path / "emu") as emulator:
            go.write_text(emulator.endpoint)  # all start at once
            outputs = [results.get(timeout=120) for _ in procs]
            for proc in procs:
                proc.join(timeout=30)
            assert [status for status, _ in outputs] == ["ok"] * 8, outputs
            first = outputs[0][1]
            assert all(out == first for _, out in outputs)
            assert first == {
                "tech-advisor": ["tech-advisor", "1"],
                "market-analyst": ["market-analyst", "1"],
                "coded": ["coded", "1"],
            }
            # checked with the real SDK against the emulator
            sdk = FoundryProvider(emulator.endpoint)
            try:
                for name in ("tech-advisor", "market-analyst", "coded"):
                    versions = sdk.list_versions(name)
                    assert [v.version for v in versions] == ["1"], name
                    assert versions[0].managed
            finally:
                sdk.close()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
