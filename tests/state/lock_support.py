"""Helpers of the apply lock tests: virtual wall time (a 30 s write fence is waited out at
once) and a holder process killed with SIGKILL while it holds a lock."""

from __future__ import annotations

import subprocess
import sys
import time


class VirtualTime:
    """A wall clock that starts now and only moves when slept on."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.start = time.time()
        self.slept = 0.0

    def wall(self) -> float:
        return self.start + self.offset

    def sleep(self, seconds: float) -> None:
        self.offset += seconds
        self.slept += seconds


def kill_while_holding(script: str, *args: str) -> float:
    """Run `script` (Python, given `args`), which prints `held` once it holds a lock, then kill
    it with SIGKILL; the wall time just before it started."""
    before = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    finally:
        proc.kill()
        proc.wait()
    return before
