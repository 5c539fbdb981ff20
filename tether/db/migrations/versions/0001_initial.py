"""The initial schema: resources, their principals and secrets, server state.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_doc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("collection", sa.String(64), nullable=False),
        sa.Column("doc", _doc, nullable=False),
        sa.Column("state", sa.String(32), nullable=True),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("updated", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("unique_key", sa.String(512), nullable=True, unique=True),
    )
    op.create_index("ix_resources_collection_created", "resources", ["collection", "created"])
    op.create_index("ix_resources_collection_updated", "resources", ["collection", "updated"])
    op.create_index("ix_resources_collection_state", "resources", ["collection", "state"])
    op.create_table(
        "resource_principals",
        sa.Column("principal", sa.String(255), primary_key=True),
        sa.Column(
            "resource_id",
            sa.String(255),
            sa.ForeignKey("resources.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_resource_principals_resource", "resource_principals", ["resource_id"])
    op.create_table(
        "resource_secrets",
        sa.Column(
            "resource_id",
            sa.String(255),
            sa.ForeignKey("resources.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("value", _doc, nullable=False),
    )
    op.create_table(
        "server_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_state")
    op.drop_table("resource_secrets")
    op.drop_table("resource_principals")
    op.drop_table("resources")
