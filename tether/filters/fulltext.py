"""Full-text search: ``fulltext=='word other*'`` through the database's own text index.

A query is a list of words (runs of letters and digits; anything else separates them);
a word ending in ``*`` matches as a prefix. Every word must match (AND). Matching is
case-insensitive and does not fold accents.

What is searched: ``name`` (``name=='w'``), ``description``, ``tags`` (the string values
under each), or, for ``fulltext=='w'``, every string value in the document. Resources of
the collections in :data:`UNINDEXED` (``event``, ``job``: written by the server on hot
paths, many per request, and searched by their fields instead) are not indexed at all, so
a full-text condition on them matches nothing; every other collection is indexed in full.

The index is outside ``resources`` itself and must be created by a migration with the
statements of :func:`fulltext_ddl`:

- SQLite: a contentless FTS5 table ``resources_fts(name, description, tags, body)`` whose
  rowid is the ``resources`` rowid, kept in step by triggers that extract the string
  values with ``json_tree``; the triggers skip unindexed collections. ``resources`` has a
  text primary key, so ``VACUUM`` may renumber its rowids: run
  :func:`fulltext_rebuild_ddl` after a ``VACUUM``. Rows must not be replaced with
  ``INSERT OR REPLACE`` (SQLite skips delete triggers then).
- PostgreSQL: a stored generated ``tsvector`` column ``resources.fulltext_tsv`` with the
  weights A (name), B (description), C (tags), D (all strings), NULL for unindexed
  collections, and a GIN index on it that leaves the NULLs out (a ``@@`` match implies
  ``IS NOT NULL``, so the planner uses it). Text is split on every non-alphanumeric
  character before PostgreSQL's ``simple`` configuration sees it, so both databases cut
  words the same way; at most :data:`PG_MAX_TEXT` characters of each part are indexed
  (tsvector size limit).

Known differences: SQLite's ``unicode61`` and PostgreSQL's case folding agree on
letters in common use; exotic scripts and words longer than 2,047 characters (which
PostgreSQL does not index) may differ.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from tether.errors import FilterError

MAX_WORDS = 32
PG_MAX_TEXT = 200_000
FTS_TABLE = "resources_fts"
TSV_COLUMN = "fulltext_tsv"
# Collections left out of the index. A change here needs a migration that re-runs
# fulltext_ddl (see migration 0004).
UNINDEXED: tuple[str, ...] = ("event", "job")

_WORD_RE = re.compile(r"([^\W_]+)(\*?)")
# FTS5 column and tsquery weight for each searchable attribute; fulltext: every column.
_SQLITE_COLUMNS = {"name": "name", "description": "description", "tags": "tags"}
_PG_WEIGHTS = {"name": "A", "description": "B", "tags": "C"}


def query_terms(query: str) -> list[tuple[str, bool]]:
    """The (word, is_prefix) terms of a full-text query; FilterError when it has none."""
    terms = [(m.group(1), bool(m.group(2))) for m in _WORD_RE.finditer(query)]
    if not terms:
        raise FilterError("full-text query has no words")
    if len(terms) > MAX_WORDS:
        raise FilterError(f"full-text query has more than {MAX_WORDS} words")
    return terms


def _sqlite_query(attribute: str, terms: list[tuple[str, bool]]) -> str:
    # Words hold letters and digits only, so quoting them cannot break the syntax.
    column = _SQLITE_COLUMNS.get(attribute)
    parts = []
    for word, prefix in terms:
        phrase = f'"{word}"' + (" *" if prefix else "")
        parts.append(f"{column} : {phrase}" if column else phrase)
    return " AND ".join(parts)


def _pg_query(attribute: str, terms: list[tuple[str, bool]]) -> str:
    weight = _PG_WEIGHTS.get(attribute, "")
    return " & ".join(f"'{word}':{'*' if prefix else ''}{weight}" for word, prefix in terms)


def match(attribute: str, query: str, dialect: str) -> ColumnElement[bool]:
    """``attribute=='query'`` as a condition on ``resources`` (the query is bound)."""
    terms = query_terms(query)
    if dialect == "postgresql":
        tsv: ColumnElement[Any] = sa.literal_column(f"resources.{TSV_COLUMN}")
        tsquery = sa.func.to_tsquery(
            sa.literal_column("'simple'::regconfig"), _pg_query(attribute, terms)
        )
        return tsv.bool_op("@@")(tsquery)
    fts = sa.table(FTS_TABLE, sa.column("rowid"))
    matching = sa.select(fts.c.rowid).where(
        sa.literal_column(FTS_TABLE).bool_op("MATCH")(_sqlite_query(attribute, terms))
    )
    rowid: ColumnElement[Any] = sa.literal_column("resources.rowid")
    return rowid.in_(matching)


def _sqlite_text(row: str, json_path: str) -> str:
    return (
        f"(SELECT group_concat(value, ' ') FROM json_tree({row}.doc, '{json_path}') "
        "WHERE type = 'text')"
    )


def _sqlite_values(row: str) -> str:
    return ", ".join(
        [
            _sqlite_text(row, '$."name"'),
            _sqlite_text(row, '$."description"'),
            _sqlite_text(row, '$."tags"'),
            _sqlite_text(row, "$"),
        ]
    )


_SQLITE_COLUMNS_LIST = "name, description, tags, body"


def _indexed(row: str, unindexed: tuple[str, ...]) -> str:
    """SQL that is true when ``row`` belongs to an indexed collection."""
    if not unindexed:
        return "TRUE"
    # Collection names are this module's constants, never user input.
    names = ", ".join(f"'{name}'" for name in unindexed)
    return f"{row}collection NOT IN ({names})"


def _pg_text(value: str) -> str:
    # Strings under a JSON value, split on non-alphanumerics, cut to PG_MAX_TEXT.
    return (
        "(SELECT left(regexp_replace(coalesce(string_agg(s #>> '{}', ' '), ''), "
        f"'[^[:alnum:]]+', ' ', 'g'), {PG_MAX_TEXT}) "
        f"FROM jsonb_path_query({value}, 'strict $.** ? (@.type() == \"string\")') AS s)"
    )


_PG_PARTS = (("doc -> 'name'", "A"), ("doc -> 'description'", "B"), ("doc -> 'tags'", "C"))
_PG_VECTOR = " || ".join(
    f"setweight(to_tsvector('simple'::regconfig, {_pg_text(value)}), '{weight}')"
    for value, weight in (*_PG_PARTS, ("doc", "D"))
)
# The weighted vector of one document. PL/pgSQL, not SQL: PostgreSQL tries to inline a
# SQL function each time it sets up the generated column, on every INSERT and UPDATE and
# even where the CASE never calls it, and those attempts cost more than indexing a small
# document; a PL/pgSQL function is never inlined and keeps its plan for the session.
# It calls built-ins only, so it works under any search_path (pg_restore empties it).
_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION tether_fts_vector(doc jsonb) RETURNS tsvector "
    f"LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$ BEGIN RETURN {_PG_VECTOR}; END $$"
)


def fulltext_ddl(dialect: str, unindexed: tuple[str, ...] = UNINDEXED) -> list[str]:
    """Statements that create the text index (idempotent); run them in a migration.

    ``unindexed`` are the collections left out; ``()`` indexes every collection (as
    migration 0002 did). Statements already applied with other ``unindexed`` change
    nothing: drop the index with :func:`fulltext_drop_ddl` first.
    """
    if dialect == "postgresql":
        tsvector = "tether_fts_vector(doc)"
        if unindexed:
            tsvector = f"CASE WHEN {_indexed('', unindexed)} THEN {tsvector} END"
        return [
            _PG_FUNCTION,
            f"ALTER TABLE resources ADD COLUMN IF NOT EXISTS {TSV_COLUMN} tsvector "
            f"GENERATED ALWAYS AS ({tsvector}) STORED",
            "CREATE INDEX IF NOT EXISTS ix_resources_fulltext ON resources "
            f"USING gin ({TSV_COLUMN})" + (f" WHERE {TSV_COLUMN} IS NOT NULL" if unindexed else ""),
        ]
    new_indexed, old_indexed = _indexed("new.", unindexed), _indexed("old.", unindexed)
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
        f"{_SQLITE_COLUMNS_LIST}, content='', tokenize='unicode61 remove_diacritics 0')",
        # WHEN on the trigger: an unindexed row does not even start the trigger program.
        f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_insert AFTER INSERT ON resources "
        f"WHEN {new_indexed} BEGIN "
        f"INSERT INTO {FTS_TABLE}(rowid, {_SQLITE_COLUMNS_LIST}) "
        f"VALUES (new.rowid, {_sqlite_values('new')}); END",
        f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON resources "
        f"WHEN {old_indexed} BEGIN "
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_SQLITE_COLUMNS_LIST}) "
        f"VALUES ('delete', old.rowid, {_sqlite_values('old')}); END",
        # Each half checks its own row, so the index stays exact even if a row's
        # collection changed.
        f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update AFTER UPDATE OF doc ON resources "
        f"WHEN {new_indexed} OR {old_indexed} BEGIN "
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_SQLITE_COLUMNS_LIST}) "
        f"SELECT 'delete', old.rowid, {_sqlite_values('old')} WHERE {old_indexed}; "
        f"INSERT INTO {FTS_TABLE}(rowid, {_SQLITE_COLUMNS_LIST}) "
        f"SELECT new.rowid, {_sqlite_values('new')} WHERE {new_indexed}; END",
        *fulltext_rebuild_ddl(dialect, unindexed),
    ]


def fulltext_rebuild_ddl(dialect: str, unindexed: tuple[str, ...] = UNINDEXED) -> list[str]:
    """Statements that re-index every row (SQLite: after VACUUM; PostgreSQL: nothing)."""
    if dialect == "postgresql":
        return []
    return [
        f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('delete-all')",
        f"INSERT INTO {FTS_TABLE}(rowid, {_SQLITE_COLUMNS_LIST}) "
        f"SELECT rowid, {_sqlite_values('resources')} FROM resources "
        f"WHERE {_indexed('', unindexed)}",
    ]


def fulltext_drop_ddl(dialect: str) -> list[str]:
    """Statements that remove the text index again (for a downgrade)."""
    if dialect == "postgresql":
        return [
            "DROP INDEX IF EXISTS ix_resources_fulltext",
            f"ALTER TABLE resources DROP COLUMN IF EXISTS {TSV_COLUMN}",
            "DROP FUNCTION IF EXISTS tether_fts_vector(jsonb)",
            # Made by migration 0002 and dropped by 0004.
            "DROP FUNCTION IF EXISTS tether_fts_text(jsonb)",
        ]
    return [
        f"DROP TRIGGER IF EXISTS {FTS_TABLE}_insert",
        f"DROP TRIGGER IF EXISTS {FTS_TABLE}_delete",
        f"DROP TRIGGER IF EXISTS {FTS_TABLE}_update",
        f"DROP TABLE IF EXISTS {FTS_TABLE}",
    ]
