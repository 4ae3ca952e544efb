"""Benchmark a turn with one function call against a plain turn, through the real SDK over HTTP.

Both run through the runtime (`Lifecycle`, the foundry provider, the azure-ai-projects/openai
clients) against `runner emulator` at 20 ms latency per request. A plain turn is one request; a
turn with one function call is two requests (the call, then its output chained to the response)
plus running the function (a sync Python function: a worker thread) and checking its arguments
against the tool's schema. The floor is therefore 2.0x; the target is at most 2.2x.

Baseline: the plain turn, measured in the same process, interleaved with the tool turns
(median of per-pair ratios, so load on the machine moves both alike).

Run: python bench/tools.py [--quick]   (BENCH_LATENCY_MS=0 to see the runtime's own overhead)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from runner.providers.emulator import serve_emulator
from runner.runtime.lifecycle import Lifecycle

LATENCY_MS = int(__import__("os").environ.get("BENCH_LATENCY_MS", "20"))
TARGET = 2.2
AUTH = {"user_id": "bench", "workspace_id": "bench", "permissions": ["chat:access"]}

SPECS = """\
apiVersion: runner/v1
kind: Environment
name: emu
provider: foundry
endpoint: ${EMU_ENDPOINT}
---
apiVersion: runner/v1
kind: Agent
name: desk
model: gpt-4o-mini
instructions: You look up accounts.
tools:
  - type: function
    name: lookup_account
    parameters:
      type: object
      properties: {employee_id: {type: string, pattern: "^E[0-9]+$"}}
      required: [employee_id]
      additionalProperties: false
"""


def lookup_account(employee_id: str) -> dict[str, object]:
    return {"employee_id": employee_id, "locked": False}


async def measure(pairs: int, root: Path) -> tuple[list[float], float, float]:
    (root / "specs.yaml").write_text(SPECS)
    with serve_emulator(data_dir=root / "emu", latency_ms=LATENCY_MS) as emulator:
        async with Lifecycle.open(
            root / "specs.yaml",
            env="emu",
            registry_path=root / "state.db",
            environ={"EMU_ENDPOINT": emulator.endpoint},
            background=False,
        ) as lc:
            lc.register_tool("lookup_account", lookup_account)
            session = await lc.create_agent_session(agent="desk", auth=AUTH, max_turns=10**6)
            for _ in range(3):  # warm connections and caches
                await session.send("hello")
                await session.send('@lookup_account{"employee_id": "E1"}')
            ratios: list[float] = []
            plain_total = tool_total = 0.0
            for _ in range(pairs):
                started = time.perf_counter()
                await session.send("My laptop will not boot")
                plain = time.perf_counter() - started
                started = time.perf_counter()
                reply = await session.send('Check @lookup_account{"employee_id": "E12345"}')
                tool = time.perf_counter() - started
                assert reply.text.startswith("[desk v1] lookup_account -> "), reply.text
                ratios.append(tool / plain)
                plain_total += plain
                tool_total += tool
            return ratios, plain_total / pairs, tool_total / pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs")
    args = parser.parse_args()
    pairs = 10 if args.quick else 40
    with tempfile.TemporaryDirectory(prefix="bench-tools-") as tmp:
        ratios, plain, tool = asyncio.run(measure(pairs, Path(tmp)))
    ratio = statistics.median(ratios)
    print(
        f"tool turn vs plain turn at {LATENCY_MS} ms latency: {ratio:.2f}x "
        f"(median of {pairs} pairs; mean plain {plain * 1000:.1f} ms, "
        f"mean with one call {tool * 1000:.1f} ms; target <= {TARGET}x)"
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
