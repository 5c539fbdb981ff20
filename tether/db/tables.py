"""The database schema: every resource is one JSON document plus the columns queries touch.

``resources.doc`` holds the whole document as the API shows it (JSONB on PostgreSQL,
JSON text on SQLite). The other columns copy what every query needs, so that they can be
indexed: the collection, state, timestamps, and the optimistic-locking version.
``resource_principals`` lists, for each resource, every principal named in its ACL; since
every right implies view-meta, a caller may see a resource when one of its claims is there.
Search filters on it inside SQL, never in Python.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# JSONB on PostgreSQL (indexable, binary), JSON text on SQLite.
DocType = JSON().with_variant(JSONB(), "postgresql")

resources = Table(
    "resources",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("collection", String(64), nullable=False),
    Column("doc", DocType, nullable=False),
    Column("state", String(32), nullable=True),
    # ISO 8601 UTC with milliseconds and 'Z': text order is time order.
    Column("created", String(32), nullable=False),
    Column("updated", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    # A per-type natural key that must be unique (a username, a prefix's uri), or NULL.
    Column("unique_key", String(512), nullable=True, unique=True),
    Index("ix_resources_collection_created", "collection", "created"),
    Index("ix_resources_collection_updated", "collection", "updated"),
    Index("ix_resources_collection_state", "collection", "state"),
)

resource_principals = Table(
    "resource_principals",
    metadata,
    Column("principal", String(255), primary_key=True),
    Column(
        "resource_id",
        String(255),
        ForeignKey("resources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Index("ix_resource_principals_resource", "resource_id"),
)

# Secrets that belong to a resource but never appear in its document (password hashes,
# token hashes, encrypted store credentials), so no search or filter can reach them.
resource_secrets = Table(
    "resource_secrets",
    metadata,
    Column(
        "resource_id",
        String(255),
        ForeignKey("resources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("value", DocType, nullable=False),
)

# Bookkeeping that is not a resource: server key material, schema facts.
server_state = Table(
    "server_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
