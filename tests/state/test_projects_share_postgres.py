"""Two runner projects, each with an environment called `prod`, in one PostgreSQL database.

End to end through the CLI: `shop` and `blog` (two spec folders, each its own project
identity) apply, list, plan and destroy their own `prod` in one shared database; neither is
refused, neither sees or touches the other's records. The same two folders on one SQLite file
are refused (the one-project rule of a state file) — `tests/state/test_backend_contract.py`
holds both rules at the store level.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pg_support import fresh_schema_url

SPECS = """\
apiVersion: runner/v1
kind: Environment
name: prod
provider: local
default: true
data_dir: {data_dir}
state: ${{SHARED_STATE_URL}}
---
apiVersion: runner/v1
kind: Agent
name: {agent}
model: gpt-4o
instructions: You help.
"""


def _runner(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _project(root: Path, name: str, agent: str) -> Path:
    specs = root / name / "specs"  # identity `NAME/specs`, derived from the folder
    specs.mkdir(parents=True)
    (specs / "all.yaml").write_text(SPECS.format(data_dir=root / name / "store", agent=agent))
    return specs


def test_two_projects_apply_list_and_destroy_their_own_prod(tmp_path: Path) -> None:
    env = {**os.environ, "SHARED_STATE_URL": fresh_schema_url()}
    env.pop("RUNNER_HOME", None)
    shop = _project(tmp_path, "shop", "triage")
    blog = _project(tmp_path, "blog", "writer")
    for specs in (shop, blog):
        done = _runner("apply", str(specs), "--auto-approve", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    listed = {
        name: _runner("state", "list", str(specs), cwd=tmp_path, env=env)
        for name, specs in (("shop", shop), ("blog", blog))
    }
    assert listed["shop"].returncode == 0 and listed["blog"].returncode == 0
    assert "agent.triage" in listed["shop"].stdout and "agent.writer" not in listed["shop"].stdout
    assert "agent.writer" in listed["blog"].stdout and "agent.triage" not in listed["blog"].stdout
    for specs in (shop, blog):  # each is up to date: the other's apply changed nothing of it
        plan = _runner("plan", str(specs), "--detailed-exitcode", cwd=tmp_path, env=env)
        assert plan.returncode == 0, plan.stdout + plan.stderr
    gone = _runner("destroy", str(blog), "--auto-approve", cwd=tmp_path, env=env)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    after = _runner("state", "list", str(shop), cwd=tmp_path, env=env)
    assert "agent.triage" in after.stdout  # blog's destroy left shop's prod alone
    plan = _runner("plan", str(shop), "--detailed-exitcode", cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
