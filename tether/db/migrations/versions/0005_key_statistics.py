"""Statistics on the typed values of every indexed metadata key (PostgreSQL).

The B-tree indexes of an indexed key are partial (one per JSON type), and the planner
ignores the statistics of a partial index's expression: a range on the key was estimated
at a fixed 0.5 % of the table, and with many records a data set's page walked the
(collection, created) index instead of the key's. New keys get extended statistics on
the same expressions (``tether.filters.indexes``); this adds them for keys indexed
before. SQLite's indexes are not partial, so it needs nothing.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tether.filters.indexes import metadata_key_index_ddl, metadata_key_index_drop_ddl
from tether.resources.metadata import index_name

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_INDEXED_KEYS = sa.text(
    "SELECT id, doc ->> 'full-key' FROM resources "
    "WHERE collection = 'data-record-key' AND doc -> 'indexed' = 'true'::jsonb"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for rid, key in bind.execute(_INDEXED_KEYS).all():
        # Every statement is IF NOT EXISTS: only the statistics are new.
        for statement in metadata_key_index_ddl(key, "postgresql", index_name(rid)):
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for rid, _ in bind.execute(_INDEXED_KEYS).all():
        for statement in metadata_key_index_drop_ddl(index_name(rid), "postgresql"):
            if statement.startswith("DROP STATISTICS"):
                op.execute(statement)
