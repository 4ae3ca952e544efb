"""The operator store in PostgreSQL: human queue, transcript, availability, escalation history.

Role: the PostgreSQL backend of `runner.state.operators_sql.SqlOperatorStore` (statements,
records and the escalation buffer live there), on the same database as the registry and the
sessions (`runner.state.backends`): a pooled connection per statement, `%s` placeholders, and
the database's project keys (`PgDatabase` is the store's `EnvKeys`: environments stored as
`PROJECT#ENV`, another project's rows invisible).

Invariants: a batch (the escalation buffer) is one transaction (`PgDatabase.write`); closing
the store leaves the database's pool open (its owner closes it).
"""

from __future__ import annotations

from runner.state.operators_sql import SqlOperatorStore
from runner.state.pg_database import PgDatabase
from runner.state.sql_dialect import POSTGRESQL

__all__ = ["PostgresOperatorStore"]


class PostgresOperatorStore(SqlOperatorStore):
    """The `rt_hq_*` and `rt_esc_*` tables of a PostgreSQL state database (an `OperatorStore`)."""

    def __init__(self, db: PgDatabase) -> None:
        super().__init__(db, dialect=POSTGRESQL, keys=db)

    def _release(self) -> None:
        pass  # the pool is the database's, closed by its owner
