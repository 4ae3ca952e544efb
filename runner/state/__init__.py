"""What runner keeps between runs, each store behind a Protocol, on SQLite or PostgreSQL.

  base / registry_sql / sqlite /  the registry: what was applied per environment, the journal,
    pg_registry                   the apply lock, the project owning each environment
                                  (`Registry`; `SqlRegistry` written once over SQL;
                                  `SqliteRegistry` over `sqlite_database` and `sqlite_lock`,
                                  with `processes` telling whether a lock holder still runs;
                                  `PostgresRegistry` with `pg_lock`, an advisory lock)
  apply_lock                      the apply lock written once (waiting, dead holder's takeover,
                                  write fence, holder row); `sqlite_lock` and `pg_lock` say
                                  only what holds the lock
  errors                          a state file that cannot be used -> `StateFileError`, one line
                                  naming the file and what to do
  sessions / sessions_sql /       the runtime's sessions and their leases (`SessionStore`;
    sessions_sqlite /             `SqlSessionStore` written once over SQL, `SqliteSessionStore`,
    pg_sessions, sessions_codec   `PostgresSessionStore`; one row codec)
  operators / operators_sql /     the human queue and transcript, escalation history and member
    operators_sqlite /            availability (`OperatorStore`; `SqlOperatorStore` written once
    pg_operators                  over SQL, `SqliteOperatorStore`, `PostgresOperatorStore`)
  sql_dialect                     what differs in SQL between the backends (placeholders, a few
                                  words, how environment names are stored) and how a store's
                                  statements reach its database (`SqlRunner`)
  schema_sql / sqlite_schema /    the schema as numbered migrations, applied under a lock
    pg_schema                     (`schema_sql`: the versions and the tables both backends
                                  hold, written once; each backend its lock and its own steps)
  pg_database                     the PostgreSQL connection pool (psycopg 3, the `postgres` extra)
  backends                        which backend an Environment's `state:` URL names, and opening
                                  its stores

SQLite: one file (the project's `.runner/state.db`, `runner.paths`), the runtime's stores
sharing one connection; `SqliteRegistry.open_read_only` (plan, state, history) creates and
writes nothing. PostgreSQL: one database shared by any number of processes and hosts, every
store on one pool.
May import: `runner.errors`, `runner.paths`, `runner.sqlitefile`, `runner.spec`,
`runner.providers.base`. Import names from the modules above; the package exports nothing.
"""

__all__: list[str] = []
