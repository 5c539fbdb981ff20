"""Audit events and jobs leave the full-text index.

Every download and upload writes an event, and indexing it cost more than the rest of
its write. Events and jobs are searched by their fields (category, href, state), never by
words, so the index now skips both collections (``tether.filters.fulltext.UNINDEXED``);
every other resource is indexed exactly as before.

SQLite: the triggers are recreated with a ``WHEN`` on the collection and the index is
rebuilt without events and jobs. PostgreSQL: the generated column is re-added as NULL for
those collections (PostgreSQL 16 cannot change a generation expression in place, so the
table is rewritten once, as in 0002) and the GIN index leaves the NULLs out.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from tether.filters.fulltext import UNINDEXED, fulltext_ddl, fulltext_drop_ddl

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _recreate(unindexed: tuple[str, ...]) -> None:
    dialect = op.get_bind().dialect.name
    for statement in [*fulltext_drop_ddl(dialect), *fulltext_ddl(dialect, unindexed)]:
        op.execute(statement)


def upgrade() -> None:
    _recreate(UNINDEXED)


def downgrade() -> None:
    _recreate(())
