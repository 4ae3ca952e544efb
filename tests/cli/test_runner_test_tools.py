"""`runner test` with function tools: the offline model calls `@tool`s, the runtime runs the
spec's implementations; Scenarios expect tools called, refused, failed and a round-limit error,
and a wrong expectation fails naming what was seen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SPECS = """\
apiVersion: runner/v1
kind: Environment
name: local
provider: local
default: true
---
apiVersion: runner/v1
kind: Agent
name: weather-agent
model: gpt-4o-mini
instructions: You report the weather.
max_tool_rounds: 2
tools:
  - type: function
    name: forecast
    implementation: "weather_tools:forecast"
    strict: true
    parameters:
      type: object
      properties: {city: {type: string}}
      required: [city]
      additionalProperties: false
  - type: function
    name: redirect
    implementation: "weather_tools:redirect"
    strict: false
    parameters: {type: object}
---
apiVersion: runner/v1
kind: Scenario
name: two-forecasts-in-one-turn
agent: weather-agent
steps:
  - user: '@forecast{"city": "Oslo"} and @forecast{"city": "Rome"}'
    expect:
      tools: {called: [forecast]}
      reply: {contains: ["forecast -> Oslo: rain", "forecast -> Rome: sun"]}
---
apiVersion: runner/v1
kind: Scenario
name: a-wrong-argument-fails
agent: weather-agent
steps:
  - user: '@forecast{"town": "Oslo"}'
    expect:
      tools: {failed: [forecast], not_called: [forecast]}
      reply: {contains: ["'city' is a required property"]}
---
apiVersion: runner/v1
kind: Scenario
name: endless-redirects-hit-the-round-limit
agent: weather-agent
steps:
  - user: '@redirect'
    expect:
      error: "after 2 tool rounds (max_tool_rounds 2)"
      tools: {called: [redirect]}
  - user: still there?
    expect:
      reply: {contains: ["still there?"]}
---
apiVersion: runner/v1
kind: Scenario
name: wrongly-expects-a-call
agent: weather-agent
steps:
  - user: no tools here
    expect:
      tools: {called: [forecast]}
---
apiVersion: runner/v1
kind: Scenario
name: wrongly-expects-an-error
agent: weather-agent
steps:
  - user: '@forecast{"city": "Oslo"}'
    expect:
      error: max_tool_rounds
"""

TOOLS = """\
def forecast(city):
    return f"{city}: " + ("rain" if city == "Oslo" else "sun")


def redirect():
    return "ask again: @redirect"
"""


def test_tool_scenarios_pass_and_wrong_expectations_fail(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "weather.yaml").write_text(SPECS)
    (specs / "weather_tools.py").write_text(TOOLS)
    result = subprocess.run(
        [sys.executable, "-m", "runner", "test", str(specs)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in (
        "two-forecasts-in-one-turn",
        "a-wrong-argument-fails",
        "endless-redirects-hit-the-round-limit",
    ):
        assert f"PASS {name}" in lines, result.stdout
    assert "FAIL wrongly-expects-a-call" in lines
    assert "expected tool forecast to be called, saw [none]" in result.stdout
    assert "FAIL wrongly-expects-an-error" in lines
    assert "expected the step to fail with 'max_tool_rounds', it succeeded" in result.stdout
    assert lines[-1] == "3 passed, 2 failed"


def test_a_bad_implementation_fails_the_run_naming_the_position(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "weather.yaml").write_text(
        SPECS.replace("weather_tools:forecast", "weather_tools:nope")
    )
    (specs / "weather_tools.py").write_text(TOOLS)
    result = subprocess.run(
        [sys.executable, "-m", "runner", "test", str(specs)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        "weather.yaml:16:21: agent.weather-agent tool 'forecast': implementation " in result.stdout
    )
    assert "has no attribute 'nope'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
