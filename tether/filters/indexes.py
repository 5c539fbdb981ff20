"""Indexes on metadata keys inside ``resources.doc``, asked for by an admin.

:func:`metadata_key_index_ddl` gives the statements that index one key path:

- SQLite: a B-tree on ``(json_type(doc, P), json_extract(doc, P))`` plus a partial index
  of the rows where the key holds an array. The filter compiler tests the type and the
  value of the same expressions, so an equality (and a range) on the key is an index
  search, and the "or an array element matches" branch is a search of the partial
  index, letting SQLite answer the whole OR from indexes.
- PostgreSQL: a GIN index (``jsonb_path_ops``) on ``doc #> '{a,b}'``, which serves the
  containment test ``(doc #> path) @> value`` the compiler uses for ``=`` and value lists,
  for scalars and arrays alike; for orderings (``<``, ``>=``, date ranges), B-trees on the
  typed scalars the compiler compares (the value as ``numeric`` when it is a JSON number,
  its text in code-point order when it is a string; see
  :class:`tether.filters.jsonsql.PostgresDoc`), each partial to the rows that hold that
  type, and a partial index of the rows where the key holds an array, for the "any
  element" arm. Which of the typed indexes fills depends on
  the values actually stored, so the index does not need the key's declared subtype, and
  an index of a type nobody stores stays empty.

DDL cannot take bound parameters, so the key path is rendered into the statement; it is
validated first by the attribute rule (letters, digits, ``_ . - :`` and ``/``), which
excludes every quoting character, and index names must be plain identifiers.

SQLite only uses an expression index when the query contains the very same constant
expression, so the compiler renders the JSON path of a *registered* key as a constant
(see :func:`register_indexed_key`). The process-wide registry is filled by
:func:`create_metadata_key_index` and, at start-up or after another node created an
index, by :func:`sync_indexed_keys`, which reads the index definitions back from SQLite's
schema. A stale registry only costs speed, never correctness: the constant path is the
same path the bound parameter would carry.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.sql.elements import ColumnElement

from tether.errors import FilterError

# Names of the indexes this module creates start with this, so they can be found again.
INDEX_PREFIX = "ixm_"
_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,50}")
_ARRAYS_SUFFIX = "_arrays"
_NUMBERS_SUFFIX = "_numbers"
_STRINGS_SUFFIX = "_strings"
_STATS_SUFFIX = "_stats"
# Exactly what sqlite_json_path produces for validated segments.
_SQLITE_PATH_RE = re.compile(r"""json_extract\(doc, '(\$(?:\."[A-Za-z][A-Za-z0-9_.:\-]*")+)'\)""")
_SEGMENT_RE = re.compile(r'\."([^"]*)"')

_lock = threading.Lock()
_indexed: set[tuple[str, ...]] = set()
_version = 0


def registry_version() -> int:
    """Changes whenever the registry does; compiled-filter caches key on it."""
    return _version


def is_indexed(path: tuple[str, ...]) -> bool:
    return path in _indexed


def indexed_keys() -> list[str]:
    """The registered key paths, as ``a/b`` strings."""
    return sorted("/".join(p) for p in _indexed)


def _set_registry(paths: set[tuple[str, ...]]) -> None:
    global _version
    with _lock:
        if paths != _indexed:
            _indexed.clear()
            _indexed.update(paths)
            _version += 1


def register_indexed_key(key_path: str) -> None:
    """Marks a key as indexed, so SQLite filters on it render the path as a constant."""
    path = _validated_path(key_path)
    _set_registry(_indexed | {path})


def unregister_indexed_key(key_path: str) -> None:
    path = _validated_path(key_path)
    _set_registry(_indexed - {path})


def constant_path(text: str) -> ColumnElement[Any]:
    """A registered key's SQLite JSON path as a constant SQL string literal.

    ``text`` comes from :func:`tether.filters.jsonsql.sqlite_json_path` over segments that
    passed the attribute rule; the check below makes sure it can never close the quote.
    """
    if "'" in text or "\\" in text:
        raise FilterError("invalid attribute path")
    return sa.literal_column(f"'{text}'", sa.String)


def _validated_path(key_path: str) -> tuple[str, ...]:
    from tether.filters.parser import parse_attribute

    return parse_attribute(key_path, "metadata key").path


def _validated_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise FilterError(f"invalid index name {name!r}: use lowercase letters, digits and _")
    return name if name.startswith(INDEX_PREFIX) else INDEX_PREFIX + name


def index_name(name: str) -> str:
    """The index name actually used for ``name`` (prefixed with :data:`INDEX_PREFIX`)."""
    return _validated_name(name)


def metadata_key_index_ddl(
    key_path: str, dialect: str, name: str, concurrently: bool = False
) -> list[str]:
    """The statements that create an index on one metadata key path (``a/b``, ``ns:key``).

    ``concurrently`` (PostgreSQL) builds the index without blocking writes; such a
    statement must run outside a transaction (autocommit).
    """
    path = _validated_path(key_path)
    full_name = _validated_name(name)
    if dialect == "postgresql":
        return _postgres_ddl(path, full_name, concurrently)
    from tether.filters.jsonsql import sqlite_json_path

    json_path = sqlite_json_path(path)
    json_type = f"json_type(doc, '{json_path}')"
    return [
        f'CREATE INDEX IF NOT EXISTS "{full_name}" ON resources '
        f"({json_type}, json_extract(doc, '{json_path}'))",
        # The documents where the key holds an array, for the "any element" branch. A
        # partial index stays tiny when arrays are rare, and its statistics say so; with
        # the main index alone, SQLite's statistics make "json_type = 'array'" look like
        # a scan when every value has the same type, and it would scan the table.
        f'CREATE INDEX IF NOT EXISTS "{full_name}{_ARRAYS_SUFFIX}" ON resources '
        f"({json_type}) WHERE {json_type} = 'array'",
    ]


def _postgres_ddl(path: tuple[str, ...], full_name: str, concurrently: bool) -> list[str]:
    array = "{" + ",".join(f'"{segment}"' for segment in path) + "}"
    value = f"(doc #> '{array}'::text[])"
    text = f"(doc #>> '{array}'::text[])"
    json_type = f"jsonb_typeof{value}"
    # Exactly the compiler's typed scalars (PostgresDoc.number / .string): the planner
    # matches an index only to the same expression. Each index is partial to its own
    # type; "expr >= $1" implies "expr IS NOT NULL" (the operator is strict), which
    # lets the planner use it.
    number = f"(CASE WHEN {json_type} = 'number' THEN {text}::numeric END)"
    string = f"(CASE WHEN {json_type} = 'string' THEN {text} END)"
    create = f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}IF NOT EXISTS"
    return [
        f'{create} "{full_name}" ON resources USING gin ({value} jsonb_path_ops)',
        f'{create} "{full_name}{_NUMBERS_SUFFIX}" ON resources ({number}) '
        f"WHERE {number} IS NOT NULL",
        f'{create} "{full_name}{_STRINGS_SUFFIX}" ON resources ({string} COLLATE "C") '
        f"WHERE {string} IS NOT NULL",
        # As on SQLite: tiny while arrays are rare, and it makes the array arm of an
        # ordering an index search, so the planner can OR it with the B-tree range.
        f'{create} "{full_name}{_ARRAYS_SUFFIX}" ON resources (({json_type})) '
        f"WHERE {json_type} = 'array'",
        # The planner ignores the statistics of a partial index's expression, so without
        # these a range on the key is estimated at a fixed 0.5 % of the table: enough to
        # prefer walking (collection, created) for a page and filtering every row.
        f'CREATE STATISTICS IF NOT EXISTS "{full_name}{_NUMBERS_SUFFIX}{_STATS_SUFFIX}" '
        f"ON ({number}) FROM resources",
        f'CREATE STATISTICS IF NOT EXISTS "{full_name}{_STRINGS_SUFFIX}{_STATS_SUFFIX}" '
        f"ON ({string}) FROM resources",
        # And of the array arm's type test: guessed at 0.5 % too, which at a million
        # records made a range look like thousands of matches.
        f'CREATE STATISTICS IF NOT EXISTS "{full_name}{_ARRAYS_SUFFIX}{_STATS_SUFFIX}" '
        f"ON ({json_type}) FROM resources",
    ]


def metadata_key_index_drop_ddl(name: str, dialect: str) -> list[str]:
    """The statements that drop an index made by :func:`metadata_key_index_ddl`."""
    full_name = _validated_name(name)
    suffixes = ["", _ARRAYS_SUFFIX]
    if dialect == "postgresql":
        suffixes += [_NUMBERS_SUFFIX, _STRINGS_SUFFIX]
    drops = [f'DROP INDEX IF EXISTS "{full_name}{suffix}"' for suffix in suffixes]
    if dialect == "postgresql":
        drops += [
            f'DROP STATISTICS IF EXISTS "{full_name}{suffix}{_STATS_SUFFIX}"'
            for suffix in (_NUMBERS_SUFFIX, _STRINGS_SUFFIX, _ARRAYS_SUFFIX)
        ]
    return drops


def create_metadata_key_index(conn: Connection, key_path: str, name: str) -> None:
    """Creates the index and registers the key for this process."""
    for statement in metadata_key_index_ddl(key_path, conn.dialect.name, name):
        conn.exec_driver_sql(statement)
    register_indexed_key(key_path)


def drop_metadata_key_index(conn: Connection, key_path: str, name: str) -> None:
    for statement in metadata_key_index_drop_ddl(name, conn.dialect.name):
        conn.exec_driver_sql(statement)
    unregister_indexed_key(key_path)


def sync_indexed_keys(conn: Connection) -> list[str]:
    """Reloads the registry from the database's own index definitions (SQLite only).

    PostgreSQL needs no registry, since it matches indexes with bound paths; there the
    registry is left as it is. Returns the registered keys.
    """
    if conn.dialect.name != "sqlite":
        return indexed_keys()
    rows = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'resources' "
        "AND name LIKE ? ESCAPE '\\' AND sql IS NOT NULL",
        (INDEX_PREFIX.replace("_", "\\_") + "%",),
    )
    found: set[tuple[str, ...]] = set()
    for (sql,) in rows:
        match = _SQLITE_PATH_RE.search(sql)
        if match:
            found.add(tuple(_SEGMENT_RE.findall(match.group(1))))
    _set_registry(found)
    return indexed_keys()
