"""Applying a plan: each op done against a provider and recorded in the registry, safely.

`executor.apply_plan` runs a Plan under the environment's lock, stage by stage with bounded
concurrency; `ops_run.run_op` does one op within the apply's `fence.OpContext`; `retry` says
which failures are retried and how long to wait.

May import: `runner.errors`, `runner.spec`, `runner.plan`, `runner.providers.base`,
`runner.state.base` (providers and registries only through their Protocols).
"""

__all__: list[str] = []
