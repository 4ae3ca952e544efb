"""`runner report` end to end: sessions run through the runtime on a project's own state (its
turn log written behind), then the report of that project read back as JSON, as columns and as
an HTML page; another project's state is refused, an unwritable --html is one line."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.runtime.lifecycle import Lifecycle

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT.parent / "shared" / "contract" / "specs"
AUTH = {"user_id": "u1", "workspace_id": "workspace-123", "permissions": ["chat:access"]}
PRICING = """
pricing:
  currency: EUR
  models:
    gpt-4o: {input_per_1k: 2.5, output_per_1k: 10.0}
    gpt-4o-mini: {input_per_1k: 0.15, output_per_1k: 0.6}
"""


def runner(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "RUNNER_HOME"}
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=environ,
    )


async def run_sessions(specs: Path) -> list[float]:
    costs: list[float] = []
    async with Lifecycle.open(str(specs), env="local", environ={}, background=False) as lc:
        for reason in ("resolved", "user_ended"):
            session = await lc.create_agent_session(team="customer-support", auth=AUTH)
            for text in ("Hi, a question about my account", "The dashboard shows an Error"):
                reply = await session.send(text)
                costs.append(reply.cost or 0.0)
            await session.end(reason)
    return costs


def test_a_projects_report_reads_its_turn_log(tmp_path: Path) -> None:
    specs = tmp_path / "shop" / "specs"
    shutil.copytree(CONTRACT, specs)
    environments = specs / "environments.yaml"
    text = environments.read_text()
    environments.write_text(text.replace("default: true", "default: true" + PRICING, 1))
    costs = asyncio.run(run_sessions(specs))
    html = tmp_path / "report.html"
    done = runner("report", str(specs), "--format", "json", "--html", str(html), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    total = report["total"]
    assert (total["sessions"], total["ended"], total["resolved"], total["turns"]) == (2, 2, 1, 4)
    assert total["errors"] == 0 and total["resolution_rate"] == 0.5
    assert total["cost"] == pytest.approx(sum(costs)) and sum(costs) > 0
    assert report["currency"] == "EUR" and report["priced"] is True
    assert {a["label"] for a in report["agents"]} == {"general-agent-1", "tech-agent-1"}
    assert [t["label"] for t in report["teams"]] == ["customer-support"]
    assert len(report["days"]) == 7
    page = html.read_text()
    assert page.count("<figure data-chart=") == 7 and "customer-support" in page
    columns = runner("report", str(specs), "--days", "1", cwd=tmp_path)
    assert columns.returncode == 0, columns.stderr
    assert "sessions 2 started, 2 ended, resolution rate 50%" in columns.stdout
    assert "turns 4 (0 failed)" in columns.stdout


def test_report_refuses_what_a_user_got_wrong_in_one_line(tmp_path: Path) -> None:
    specs = tmp_path / "shop" / "specs"
    shutil.copytree(CONTRACT, specs)
    nowhere = runner(
        "report", str(specs), "--html", str(tmp_path / "no" / "such" / "r.html"), cwd=tmp_path
    )
    assert nowhere.returncode == 1 and "cannot write it" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr and len(nowhere.stderr.strip().splitlines()) == 1
    days = runner("report", str(specs), "--days", "0", cwd=tmp_path)
    assert days.returncode == 2 and "--days takes 1 to 366" in days.stderr
    assert not (specs.parent / ".runner").exists()  # a report creates no state
