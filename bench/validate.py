"""Benchmark: `runner validate` vs `check-jsonschema` on 1,000 generated spec files.

Generates a project of 1,000 single-document files (check-jsonschema reads one document per
file) mixing every referencing kind: personalities, templates with Jinja instructions, agents
built on them, teams with handoff triggers, escalation paths, pools, channels, alerts and an
environment with a name prefix. Both tools run as cold subprocesses of this interpreter, a few
times each. runner does strictly more work (references, Foundry names per environment, every
agent rendered in every environment).

Baseline: `check-jsonschema --schemafile schemas/runner.schema.json FILE...` (schema checks
only). Reported for each tool: the best wall time and the best CPU time (user + system of the
child, from `getrusage(RUSAGE_CHILDREN)`); the CPU ratio is the figure that does not move with
the load other processes put on the machine. The target is runner >= 5x faster.

    python bench/validate.py [--files 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "schemas" / "runner.schema.json"
HEADER = "apiVersion: runner/v1\n"


def _personality(i: int) -> str:
    return (
        f"{HEADER}kind: Personality\nname: persona-{i}\ntraits:\n  formality: professional\n"
        "  empathy: high\nprompt_modifiers:\n  - Be warm with {{ agent.name }}'s users\n"
        "  - Cite sources\nresponse_templates:\n  greeting: Hello from {{ vars.company }}!\n"
    )


def _template(i: int, personalities: int) -> str:
    return (
        f"{HEADER}kind: Template\nname: template-{i}\nmodel: gpt-4o-mini\ntemperature: 0.5\n"
        f"personality: persona-{i % personalities}\n"
        "instructions: |\n  You are {{ agent.name }} for {{ vars.company }}.\n"
        "  {% if vars.tier == 'gold' %}Prioritise speed.{% endif %}\n"
        "  Product: {{ vars.product | default('our software') }}.\n"
        "guidelines:\n  - condition: the user is angry\n    action: apologise once\n"
        "tools:\n  - type: code_interpreter\n"
        "vars:\n  company: Contoso\n  tier: gold\n"
    )


def _agent(i: int, templates: int) -> str:
    return (
        f"{HEADER}kind: Agent\nname: agent-{i}\ntemplate: template-{i % templates}\n"
        f"description: Agent number {i}\nvars:\n  product: Product {i}\n"
        "temperature: 0.2\nmetadata:\n  team: bench\n"
    )


def _team(i: int, agents: int) -> str:
    members = ""
    for j, spec in enumerate(("general", "technical", "billing")):
        role = "primary" if j == 0 else "specialist"
        members += (
            f"  - agent: agent-{(i * 3 + j) % agents}\n    role: {role}\n"
            f"    specialization: {spec}\n    handoff_triggers:\n"
            f"      - name: to-{spec}-{i}\n        when: {{keywords: [{spec}, help]}}\n"
            f"        target: {'technical' if j == 0 else 'human'}\n"
        )
    return (
        f"{HEADER}kind: Team\nname: team-{i}\nmembers:\n{members}"
        f"workflow:\n  escalation_path: escalation-{i}\n"
    )


def _escalation(i: int) -> str:
    return (
        f"{HEADER}kind: EscalationPath\nname: escalation-{i}\nlevels:\n"
        f"  - level: 1\n    target: technical\n    when: {{trigger: to-general-{i}}}\n"
        "    notify: [slack]\n"
        "  - level: 2\n    target: human\n    when: {turns_above: 20}\n"
        "    requires_approval: true\n"
    )


def _pool(i: int, members: list[int]) -> str:
    listed = ", ".join(f"agent-{m}" for m in members)
    return (
        f"{HEADER}kind: ResourcePool\nname: pool-{i}\nagents: [{listed}]\n"
        "limits: {max_concurrent_sessions: 10, max_tokens_per_minute: 5000}\n"
        "allocation:\n  priority_weights: {response_time: 0.4, throughput: 0.3, quality: 0.2, "
        "cost: 0.1}\n  elastic_limits: {min_memory_mb: 256, max_memory_mb: 1024}\n"
        "scaling:\n  enabled: true\n  min_instances: 1\n  max_instances: 4\n"
        "  triggers:\n    - {name: busy, metric: cpu, condition: above, threshold: 80, "
        "duration: 60s, action: scale_up}\n"
    )


def _alert(i: int, agents: int) -> str:
    return (
        f"{HEADER}kind: Alert\nname: alert-{i}\nagent: agent-{i % agents}\n"
        "metric: average_response_time\ncondition: above\nthreshold: 5000\nwindow: 5m\n"
        "notify: [slack, email]\n"
    )


FIXED = {
    "channel-slack.yaml": f"{HEADER}kind: Channel\nname: slack\ntype: slack\nurl: ${{SLACK_URL}}\n",
    "channel-email.yaml": f"{HEADER}kind: Channel\nname: email\ntype: email\nto: [a@b.example]\n",
    "env-local.yaml": f"{HEADER}kind: Environment\nname: local\ndefault: true\n",
    "env-prod.yaml": (
        f"{HEADER}kind: Environment\nname: prod\nprovider: foundry\n"
        "endpoint: ${FOUNDRY_ENDPOINT}\nname_prefix: prod-\nvars: {company: Contoso Ltd}\n"
    ),
}


def generate(folder: Path, total: int) -> list[Path]:
    """Write `total` spec files (one document each) into `folder`; return their paths."""
    personalities, templates = 20, 30
    teams = total // 10
    pools = total // 20
    alerts = total // 10
    agents = total - len(FIXED) - personalities - templates - 2 * teams - pools - alerts
    files: dict[str, str] = dict(FIXED)
    files.update({f"personality-{i}.yaml": _personality(i) for i in range(personalities)})
    files.update({f"template-{i}.yaml": _template(i, personalities) for i in range(templates)})
    files.update({f"agent-{i}.yaml": _agent(i, templates) for i in range(agents)})
    files.update({f"team-{i}.yaml": _team(i, agents) for i in range(teams)})
    files.update({f"escalation-{i}.yaml": _escalation(i) for i in range(teams)})
    per_pool = agents // pools
    files.update(
        {
            f"pool-{i}.yaml": _pool(i, list(range(i * per_pool, (i + 1) * per_pool)))
            for i in range(pools)
        }
    )
    files.update({f"alert-{i}.yaml": _alert(i, agents) for i in range(alerts)})
    assert len(files) == total, len(files)
    paths = []
    for name, text in sorted(files.items()):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def _best(cmd: list[str], *, repeat: int, expect: int = 0) -> tuple[float, float]:
    """Best wall time and best CPU time (user + system) of `repeat` cold runs of `cmd`.

    One untimed run first, allowed to write bytecode (even under PYTHONDONTWRITEBYTECODE): an
    installed tool runs from compiled modules, and neither tool should be timed compiling its
    sources (an edited checkout otherwise recompiles each changed module on every run)."""
    warm = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, capture_output=True, check=False, env=warm)
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != expect:
            raise SystemExit(f"{cmd[:3]} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best_wall = min(best_wall, elapsed)
        best_cpu = min(best_cpu, cpu)
    return best_wall, best_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    checker = shutil.which("check-jsonschema") or str(
        Path(sys.executable).with_name("check-jsonschema")
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "specs"
        folder.mkdir()
        paths = generate(folder, args.files)
        env_free = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK", "FOUNDRY"))}
        os.environ.clear()
        os.environ.update(env_free)
        runner_wall, runner_cpu = _best(
            [sys.executable, "-m", "runner", "validate", str(folder)], repeat=args.repeat
        )
        schema_wall, schema_cpu = _best(
            [checker, "--schemafile", str(SCHEMA), *map(str, paths)], repeat=args.repeat
        )
    print(f"{args.files} files, best of {args.repeat} cold runs each")
    print(f"  runner validate:              wall {runner_wall:.3f} s, cpu {runner_cpu:.3f} s")
    print(f"  check-jsonschema (baseline):  wall {schema_wall:.3f} s, cpu {schema_cpu:.3f} s")
    print(
        f"  runner is {schema_wall / runner_wall:.1f}x faster by wall time, "
        f"{schema_cpu / runner_cpu:.1f}x by CPU time (target >= 5x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
