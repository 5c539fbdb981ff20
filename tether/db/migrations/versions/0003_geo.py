"""Functions behind the geo operators of the filter language (PostgreSQL only).

SQLite registers its geo function on every connection instead (tether.db.engine). The
statements live with the filter compiler that calls them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

from tether.filters.geo_ddl import geo_ddl, geo_drop_ddl

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in geo_ddl(dialect):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in geo_drop_ddl(dialect):
        op.execute(statement)
