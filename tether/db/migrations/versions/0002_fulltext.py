"""Full-text index over name, description, tags and every string value.

SQLite: an FTS5 table kept in step by triggers; PostgreSQL: a generated tsvector column
with a GIN index. The statements live with the filter compiler that queries them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from tether.filters.fulltext import fulltext_ddl, fulltext_drop_ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in fulltext_ddl(dialect):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in fulltext_drop_ddl(dialect):
        op.execute(statement)
