"""The registry's journal in SQLite: every outcome of every apply, in order, per resource.

Role in the flow: `SqliteRegistry.record_*` append an entry in the same transaction as the
change to the applied state it journals (so the journal never disagrees with the state);
`runner history ADDRESS` reads a resource's entries back (`read_history`).

Invariants: entries are only ever appended (an autoincrement id keeps their order); an entry
carries its environment, address, action, outcome (`ok` or `failed`), hash and Foundry version
when known, time, apply id and a detail (the error of a failed op).
"""

from __future__ import annotations

import sqlite3

from runner.state.base import JournalEntry

__all__ = ["append_entry", "read_history"]


def append_entry(
    conn: sqlite3.Connection,
    env: str,
    address: str,
    *,
    action: str,
    outcome: str,
    hash_: str | None,
    version: str | None,
    at: float,
    apply_id: str,
    detail: str = "",
) -> None:
    """Append one entry, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO registry_journal (env, address, action, outcome, hash, foundry_version, "
        "at, apply_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (env, address, action, outcome, hash_, version, at, apply_id, detail),
    )


def read_history(conn: sqlite3.Connection, env: str, address: str) -> list[JournalEntry]:
    """Every entry of `address` in `env`, oldest first."""
    rows = conn.execute(
        "SELECT env, address, action, outcome, hash, foundry_version, at, apply_id, "
        "detail FROM registry_journal WHERE env = ? AND address = ? ORDER BY id",
        (env, address),
    ).fetchall()
    return [
        JournalEntry(
            env=r[0],
            address=r[1],
            action=r[2],
            outcome=r[3],
            hash=r[4],
            foundry_version=r[5],
            at=r[6],
            apply_id=r[7],
            detail=r[8],
        )
        for r in rows
    ]
