"""What runner keeps: the registry of applied state (behind `base.Registry`) and runtime tables.

`base` is the seam the planner, the executor and the runtime use; `sqlite` implements it on one
SQLite file (with `sqlite_journal`, `sqlite_lock`, `sqlite_database`); `processes` tells whether
a lock holder still runs. The runtime's own tables (sessions, the human queue) live in the same
file.

May import: `runner.errors`, `runner.paths`, `runner.sqlitefile`, `runner.spec`,
`runner.providers.base`.
"""
