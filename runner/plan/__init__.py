"""The plan: desired state vs Foundry vs the registry -> ops as data, pure and renderable.

`desired.compute_desired` renders the specs of one environment; `planner.compute_plan` compares
it with Foundry's agents and the registry's applied state into a `ops.Plan`; `render` shows it
as text or JSON. Nothing here does I/O.

May import: `runner.errors`, `runner.spec`, `runner.providers.base`, `runner.state.base`.
"""

__all__: list[str] = []
