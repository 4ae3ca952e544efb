"""The `runner test` engine: Scenario documents run through the real runtime, no model.

Role: a client of the runtime beside `runner.watch`: `run_scenarios` gives each scenario a
throwaway local store and registry, a virtual clock and a recording notifier, drives one
session through the public `Lifecycle` API (and its operators) step by step, and checks each
step's `expect`; `render_junit` writes the results for CI.

May import: `runner.spec`, `runner.runtime` (the facade and its public value types). Nothing
below imports it; only `runner.cli.test` does.

Modules: `run` (the engine), `expect` (checking a step's expectations), `junit`.
"""

from runner.scenarios.junit import render_junit
from runner.scenarios.run import (
    ScenarioResult,
    describe_step,
    run_scenario,
    run_scenarios,
    scenario_project,
)

__all__ = [
    "ScenarioResult",
    "describe_step",
    "render_junit",
    "run_scenario",
    "run_scenarios",
    "scenario_project",
]
