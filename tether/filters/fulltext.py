"""Full-text search (``fulltext=='word*'``): placeholder until the text index lands."""

from __future__ import annotations

from typing import Any

from sqlalchemy.sql.elements import ColumnElement

from tether.errors import FilterError


def match(attribute: str, query: str, dialect: str) -> ColumnElement[Any]:
    raise FilterError("full-text search is not available yet")
