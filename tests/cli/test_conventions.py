"""The CLI a Terraform user trusts: no crash paths, the conventions people expect.

Each test runs `runner` as a user does (a subprocess in a project folder, the local provider)
and asserts the exit code and the exact line a user reads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SPECS = Path(__file__).resolve().parents[2] / "specs"


def runner(
    cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("RUNNER_HOME", "NO_COLOR")}
    environ.pop("FORCE_COLOR", None)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        input=stdin if stdin is not None else "",
        timeout=120,
    )


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose specs were applied to the local provider (shared: read-only tests)."""
    root = tmp_path_factory.mktemp("applied")
    shutil.copytree(SPECS, root / "specs")
    done = runner(root, "apply", "--auto-approve")
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(SPECS, tmp_path / "specs")
    return tmp_path


def _one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("usage:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return lines[0]


# ------------------------------------------------------------------ no crash paths


@pytest.mark.parametrize("args", [("state", "list"), ("history", "agent.triage-agent")])
def test_a_closed_pipe_ends_quietly(applied: Path, args: tuple[str, ...]) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "RUNNER_HOME"}
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=applied,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before anything is written (`| head -0`)
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0
    assert err == ""


def test_unwritable_plan_out_is_a_usage_error(project: Path) -> None:
    line = _one_line(runner(project, "plan", "--out", "/nonexistent/p.json"), 2)
    assert line == "runner: error: --out /nonexistent/p.json: folder '/nonexistent' does not exist"


def test_unwritable_junit_is_a_usage_error(project: Path) -> None:
    line = _one_line(runner(project, "test", "--junit", "/nonexistent/x.xml"), 2)
    assert line == "runner: error: --junit /nonexistent/x.xml: folder '/nonexistent' does not exist"


def test_a_saved_plan_missing_a_key_is_a_usage_error(project: Path) -> None:
    assert runner(project, "plan", "--out", "plan.json").returncode == 0
    document = json.loads((project / "plan.json").read_text())
    del document["fingerprint"]
    (project / "bad.json").write_text(json.dumps(document))
    line = _one_line(runner(project, "apply", "bad.json"), 2)
    assert line == (
        "runner: error: bad.json: not a complete saved plan (missing 'fingerprint'); "
        "write one with `runner plan --out FILE`"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("emulator", "--port", "99999"), "argument --port: must be between 0 and 65535"),
        (("apply", "--parallelism", "0"), "argument --parallelism: must be 1 or more, not 0"),
        (("apply", "--parallelism", "-5"), "argument --parallelism: must be 1 or more, not -5"),
        (("destroy", "--lock-timeout", "-1"), "argument --lock-timeout: must be 0 or more"),
        (("watch", "--parallelism", "0"), "argument --parallelism: must be 1 or more, not 0"),
    ],
)
def test_out_of_range_numbers_are_usage_errors(
    project: Path, args: tuple[str, ...], message: str
) -> None:
    line = _one_line(runner(project, *args), 2)
    assert message in line, line


# ------------------------------------------------------------------ conventions


def test_version(project: Path) -> None:
    from runner import __version__

    done = runner(project, "--version")
    assert done.returncode == 0 and done.stdout == f"runner {__version__}\n"


@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        ((), {"FORCE_COLOR": "1"}, True),
        ((), {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
        (("--no-color",), {"FORCE_COLOR": "1"}, False),
        (("--no-colour",), {"FORCE_COLOR": "1"}, False),
        ((), {}, False),  # not a terminal
    ],
)
def test_colour_follows_no_color_force_color_and_the_flag(
    project: Path, args: tuple[str, ...], env: dict[str, str], coloured: bool
) -> None:
    done = runner(project, "plan", *args, env=env)
    assert done.returncode == 0, done.stderr
    assert ("\033[" in done.stdout) is coloured
    before = runner(project, *args, "plan", env=env)  # the flag also goes before the verb
    assert ("\033[" in before.stdout) is coloured


def test_term_dumb_and_no_color_turn_off_colour_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runner.cli._workspace import use_colour

    class Terminal:
        def isatty(self) -> bool:
            return True

    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    assert use_colour(Terminal())  # type: ignore[arg-type]
    monkeypatch.setenv("TERM", "dumb")
    assert not use_colour(Terminal())  # type: ignore[arg-type]
    monkeypatch.delenv("TERM")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Terminal())  # type: ignore[arg-type]


def test_a_saved_plan_is_applied_without_confirmation(project: Path) -> None:
    assert runner(project, "plan", "--out", "plan.json").returncode == 0
    done = runner(project, "apply", "plan.json")  # no terminal, no --auto-approve
    assert done.returncode == 0, done.stderr
    assert "Apply complete!" in done.stdout


def test_apply_takes_the_lock_before_it_plans(project: Path) -> None:
    from runner.state.sqlite import SqliteRegistry

    registry = SqliteRegistry(project / ".runner" / "state.db")
    with registry.lock("local", holder="alice@elsewhere pid 1", timeout=0):
        done = runner(project, "apply", "--auto-approve", "--lock-timeout", "0")
    assert done.returncode == 1
    assert done.stdout == ""  # no plan printed before failing on the lock
    assert "alice@elsewhere pid 1" in done.stderr
    registry.close()


def test_destroy_says_destroy_and_counts_as_its_plan(project: Path) -> None:
    assert runner(project, "apply", "--auto-approve").returncode == 0
    done = runner(project, "destroy", "--auto-approve")
    assert done.returncode == 0, done.stderr
    planned = re.search(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy", done.stdout)
    assert planned is not None, done.stdout
    summary = done.stdout.splitlines()[-1]
    assert summary.startswith(
        f"Destroy complete! Resources: {planned[1]} added, {planned[2]} changed, "
        f"{planned[3]} destroyed."
    ), summary
    assert "Apply complete" not in done.stdout


def test_json_plans_carry_before_and_after_for_every_change(project: Path) -> None:
    created = json.loads(runner(project, "plan", "--format", "json").stdout)
    assert created["changes"]
    for change in created["changes"]:
        assert change["before"] is None and isinstance(change["after"], dict), change


def test_runner_test_with_nothing_to_run_exits_5(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    done = runner(tmp_path, "test")
    assert done.returncode == 5
    assert "nothing to run" in done.stdout
    as_json = runner(tmp_path, "test", "--format", "json")
    assert as_json.returncode == 5
    assert json.loads(as_json.stdout) == {"passed": 0, "failed": 0, "scenarios": []}


def test_runner_test_json(project: Path) -> None:
    done = runner(project, "test", "--format", "json")
    document = json.loads(done.stdout)
    assert done.returncode == (1 if document["failed"] else 0)
    assert document["passed"] + document["failed"] == len(document["scenarios"]) > 0
    assert {"name", "passed", "message", "seconds", "steps", "file"} <= set(
        document["scenarios"][0]
    )


@pytest.mark.parametrize("verb", [("state", "show"), ("history",)])
def test_unknown_addresses_exit_1_with_did_you_mean(applied: Path, verb: tuple[str, ...]) -> None:
    line = _one_line(runner(applied, *verb, "agent.triage-agnet"), 1)
    assert line == (
        "runner: error: agent.triage-agnet: not in the registry for environment 'local' "
        "(did you mean 'agent.triage-agent'?)"
    )


def test_state_and_history_speak_json(applied: Path) -> None:
    listing = json.loads(runner(applied, "state", "list", "--format", "json").stdout)
    addresses = {r["address"] for r in listing}
    assert "agent.triage-agent" in addresses and "team.service-desk" in addresses
    shown = json.loads(
        runner(applied, "state", "show", "agent.triage-agent", "--format", "json").stdout
    )
    assert shown["address"] == "agent.triage-agent" and shown["foundry_version"] == "1"
    history = json.loads(
        runner(applied, "history", "agent.triage-agent", "--format", "json").stdout
    )
    assert history["journal"][0]["action"] == "create"
    assert [v["version"] for v in history["foundry_versions"]] == ["1"]


def test_help_is_complete_with_defaults(project: Path) -> None:
    emulator = " ".join(runner(project, "emulator", "--help").stdout.split())
    assert "(default: 8765)" in emulator and "(default: 127.0.0.1)" in emulator
    assert "(default: .runner/emulator)" in emulator
    state_list = runner(project, "state", "list", "--help").stdout
    assert "spec folder" in state_list and "--format" in state_list
    destroy = runner(project, "--help").stdout
    assert "registry resources" in destroy and "every managed agent" not in destroy


def test_plan_and_validate_create_no_files(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    assert runner(tmp_path, "validate").returncode == 0
    planned = runner(tmp_path, "plan")
    assert planned.returncode == 0, planned.stderr
    assert runner(tmp_path, "state", "list").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["specs"]


def test_a_one_line_long_text_says_1_line() -> None:
    from runner.plan.desired import DesiredAgent
    from runner.plan.ops import CreateAgent, Plan
    from runner.plan.render import render_text

    def plan_of(instructions: str) -> str:
        agent = DesiredAgent(
            address="agent.a",
            name="a",
            foundry_name="a",
            definition={"kind": "prompt", "model": "m", "instructions": instructions},
            description=None,
            metadata={},
            hash="h",
        )
        return render_text(Plan(env="dev", ops=(CreateAgent(agent),)))

    assert "(1 line)" in plan_of("x" * 100) and "(1 lines)" not in plan_of("x" * 100)
    assert "(2 lines)" in plan_of("a\nb")


def test_credential_failure_is_one_short_line() -> None:
    from azure.identity import CredentialUnavailableError

    from runner.providers.base import ProviderError
    from runner.providers.foundry import FoundryProvider

    class NoCredential:
        def get_token(self, *scopes: str, **kwargs: object) -> object:
            chain = "DefaultAzureCredential failed to retrieve a token.\n" + "\n".join(
                f"Attempted credential {i} failed." for i in range(12)
            )
            raise CredentialUnavailableError(chain)

        def get_token_info(self, *scopes: str, **kwargs: object) -> object:
            return self.get_token(*scopes)

    provider = FoundryProvider(
        "https://example.invalid/api/projects/p1", credential=NoCredential(), timeout=5
    )
    try:
        with pytest.raises(ProviderError) as raised:
            provider.list_agents()
    finally:
        provider.close()
    message = str(raised.value)
    assert "\n" not in message
    assert message.endswith(
        "no Azure credential found; sign in with `az login`, or set "
        "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
    ), message


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion(project: Path, shell: str) -> None:
    done = runner(project, "completion", shell)
    assert done.returncode == 0, done.stderr
    assert "plan" in done.stdout and "auto-approve" in done.stdout
    if shell == "bash":
        script = done.stdout + "\nCOMP_WORDS=(runner plan --fo); COMP_CWORD=2; _runner\n"
        script += 'echo "${COMPREPLY[@]}"\n'
        completed = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=30, cwd=project
        )
        assert completed.stdout.split() == ["--format"], completed.stderr


def test_retries_are_told_as_they_wait(capsys: pytest.CaptureFixture[str]) -> None:
    import random

    from runner.apply.fence import CURRENT_ADDRESS, OpContext
    from runner.apply.retry import RetryPolicy
    from runner.cli.apply import tell_retry
    from runner.providers.base import TransientError

    ctx = OpContext(
        provider=None,  # type: ignore[arg-type]
        registry=None,  # type: ignore[arg-type]
        env="dev",
        apply_id="a1",
        policy=RetryPolicy(attempts=5, base_delay=2.0, jitter=0.0),
        sleep=lambda seconds: None,
        rng=random.Random(1),
        on_retry=tell_retry,
    )
    answers = iter([TransientError("503 Service Unavailable", status=503)] * 2)

    def flaky() -> str:
        error = next(answers, None)
        if error is not None:
            raise error
        return "done"

    token = CURRENT_ADDRESS.set("agent.x")
    try:
        assert ctx.retry(flaky) == "done"
    finally:
        CURRENT_ADDRESS.reset(token)
    assert capsys.readouterr().err.splitlines() == [
        "runner: retrying agent.x in 2.0 s (2/5): 503 Service Unavailable",
        "runner: retrying agent.x in 4.0 s (3/5): 503 Service Unavailable",
    ]


def test_a_drift_and_an_import_count_as_the_plan_counted_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from runner.apply.executor import ApplyResult
    from runner.apply.ops_run import OpOutcome
    from runner.cli.apply import report
    from runner.plan.desired import DesiredAgent
    from runner.plan.ops import Drift, Plan, UpdateAgent
    from runner.plan.render import render_summary

    def agent(name: str) -> DesiredAgent:
        return DesiredAgent(
            address=f"agent.{name}",
            name=name,
            foundry_name=name,
            definition={"kind": "prompt", "model": "m"},
            description=None,
            metadata={},
            hash="h",
        )

    drift = Drift(
        agent("a"),
        live_version="3",
        live_hash=None,
        applied_version="2",
        applied_hash="h",
        spec_changed=False,
        diff=(),
    )
    imported = UpdateAgent(agent("b"), "1", ())
    plan = Plan(env="dev", ops=(drift, imported))
    assert render_summary(plan).startswith("Plan: 0 to add, 2 to change, 0 to destroy.")
    outcomes = (OpOutcome("agent.a", "revert", "ok"), OpOutcome("agent.b", "update", "ok"))
    assert report(ApplyResult("id1", "dev", plan, outcomes)) == 0
    assert capsys.readouterr().out.startswith(
        "Apply complete! Resources: 0 added, 2 changed, 0 destroyed"
    )


FAILING = ("--fail-rate", "0.3", "--fail-status", "503", "--seed", "7")


def test_a_retrying_apply_says_so(project: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "emulator", "--port", "0", "--data", "emu", *FAILING],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    endpoint = next(line.split()[1] for line in process.stdout if line.startswith("endpoint:"))
    try:
        (project / "specs" / "emu.yaml").write_text(
            "apiVersion: runner/v1\nkind: Environment\nname: emu\nprovider: foundry\n"
            f"endpoint: {endpoint}\n"
        )
        done = runner(project, "apply", "--env", "emu", "--auto-approve", "--parallelism", "1")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    told = [line for line in done.stderr.splitlines() if line.startswith("runner: retrying ")]
    assert told, done.stderr
    pattern = r"runner: retrying (agent\.[\w-]+|Foundry) in \d+\.\d s \(\d/8\): .*503 .*"
    assert all(re.fullmatch(pattern, line) for line in told), told


def test_no_color_is_accepted_by_every_verb_and_command(applied: Path) -> None:
    assert runner(applied, "state", "list", "--no-color").returncode == 0
    assert runner(applied, "validate", "--no-color").returncode == 0
    line = _one_line(runner(applied, "plan", "--parallelism", "2"), 2)
    assert line == "runner: error: unrecognized arguments: --parallelism (see `runner plan --help`)"
