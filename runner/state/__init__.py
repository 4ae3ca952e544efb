"""What runner keeps between runs, each store behind a Protocol with its SQLite implementation.

  base / sqlite                   the registry: what was applied per environment, the journal,
                                  the apply lock, the project owning each environment
                                  (`Registry`, `SqliteRegistry`, over `sqlite_database`,
                                  `sqlite_journal`, `sqlite_lock`; `processes` tells whether a
                                  lock holder still runs)
  errors                          a state file that cannot be used -> `StateFileError`, one line
                                  naming the file and what to do
  sessions / sessions_sqlite      the runtime's sessions (`SessionStore`, `SqliteSessionStore`)
  operators / operators_sqlite    the human queue and transcript, escalation history and member
                                  availability (`OperatorStore`, `SqliteOperatorStore`)

All live in one SQLite file (the project's `.runner/state.db`, `runner.paths`); the runtime's
stores share one connection. `SqliteRegistry.open_read_only` (plan, state, history) creates and
writes nothing.
May import: `runner.errors`, `runner.paths`, `runner.sqlitefile`, `runner.spec`,
`runner.providers.base`. Import names from the modules above; the package exports nothing.
"""

__all__: list[str] = []
