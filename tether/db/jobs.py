"""Claiming queued jobs: one worker per job, even with several processes on one database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from tether.db.store import Row
from tether.db.tables import resources


def queued(conn: Connection, limit: int = 50) -> list[Row]:
    """Queued jobs, oldest first, locked for this transaction.

    PostgreSQL skips rows another worker holds (``FOR UPDATE SKIP LOCKED``); SQLite
    serializes writers at BEGIN IMMEDIATE, so the caller's write transaction is enough.
    """
    query = (
        sa.select(resources.c.doc, resources.c.version)
        .where(resources.c.collection == "job", resources.c.state == "QUEUED")
        .order_by(resources.c.created)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [Row(r.doc, r.version) for r in conn.execute(query)]


def in_states(conn: Connection, collection: str, states: list[str], before: str) -> list[Row]:
    """Resources of ``collection`` in one of ``states`` not updated since ``before``."""
    query = sa.select(resources.c.doc, resources.c.version).where(
        resources.c.collection == collection,
        resources.c.state.in_(states),
        resources.c.updated < before,
    )
    return [Row(r.doc, r.version) for r in conn.execute(query)]
