"""Socket.io with the official JavaScript client (`socket.io-client` from npm, run by Node):
it joins its session, is refused another workspace's, and receives `handoff:initiated` for
the one it joined and nothing for the other.

Needs `node` and `npm ci` in tests/serve/js (`.ci/run` does it). Without them the test is
skipped with the reason, unless RUNNER_REQUIRE_NODE=1, when it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from serve_support import KEYS, LiveServer, new_session, send

JS = Path(__file__).resolve().parent / "js"
LOCKED_OUT = "I typed my password wrong and now I am locked out"


def node_or_skip() -> str:
    node = shutil.which("node")
    installed = (JS / "node_modules" / "socket.io-client").is_dir()
    if node and installed:
        return node
    reason = "node is not installed" if not node else f"run `npm ci` in {JS}"
    if os.environ.get("RUNNER_REQUIRE_NODE") == "1":
        pytest.fail(f"RUNNER_REQUIRE_NODE=1 but {reason}")
    pytest.skip(reason)


def test_the_javascript_client_follows_its_session_only(live: LiveServer) -> None:
    node = node_or_skip()
    mine = new_session(live)
    theirs = new_session(live, "OTHER_KEY", team="other-desk")
    process = subprocess.Popen(
        [node, str(JS / "client.mjs"), live.url, KEYS["APP_KEY"], mine["id"], theirs["id"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=JS,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["ready"]["joined"] == {"ok": True, "sessionId": mine["id"]}
        refused = ready["ready"]["refused"]
        assert refused["ok"] is False and refused["error"]["code"] == "not_found"
        send(live, theirs["id"], LOCKED_OUT, "OTHER_KEY")
        send(live, mine["id"], LOCKED_OUT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    events = json.loads(out.strip().splitlines()[-1])["events"]
    handoffs = [e for e in events if e["event"] == "handoff:initiated"]
    assert [h["data"]["session_id"] for h in handoffs] == [mine["id"]]
    assert handoffs[0]["data"]["to"] == "access-agent"
    assert all(e["data"].get("session_id") != theirs["id"] for e in events)
