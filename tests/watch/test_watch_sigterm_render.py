"""Issue 9 finding 4 under watch: a template that renders (practically) forever holds no core
hostage. SIGTERM ends `runner watch` while it renders, with exit 0 and no traceback, and
nothing is planned or applied from the save that was rendering.

The subprocess runs `runner watch` with the time and step budgets raised far out of reach
(the template would otherwise stop at its budget): what ends it is the signal alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from watch_support import Workspace

SLOW = """\
apiVersion: runner/v1
kind: Agent
name: billing
template: desk
instructions: |
  {% set l = range(100000)|list %}{{ l|select('in', l)|list|length }}
"""

SCRIPT = """
import sys
from runner.spec import render_limits
render_limits.LIMITS = render_limits.Limits(seconds=10**6, steps=10**12)
from runner.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc for CPU time")
def test_sigterm_ends_watch_while_a_template_renders(workspace: Workspace) -> None:
    env = {**os.environ, "RUNNER_HOME": str(workspace.root / ".runner")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SCRIPT,
            "watch",
            str(workspace.specs),
            "--apply",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    try:
        first: dict[str, Any] = json.loads(proc.stdout.readline())
        assert first["event"] == "applied"
        workspace.write("agents/billing.yaml", SLOW)
        # rendering burns CPU without pause: wait until it has for a while (the watcher
        # itself idles), so the signal certainly lands in the middle of the render
        start = cpu_seconds(proc.pid)
        deadline = time.monotonic() + 120
        while cpu_seconds(proc.pid) - start < 1.5:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the save never started rendering"
            time.sleep(0.05)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)  # without cancelling: hours
        stopped = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert out.strip() == "", out  # no outcome: nothing planned or applied from that save
    # the whole point: far sooner than the render would have ended on its own
    print(f"stopped {stopped:.2f} s after SIGTERM")
    assert stopped < 30, stopped
