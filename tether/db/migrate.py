"""Brings a database to the current schema with Alembic; safe to run at every start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

_SCRIPTS = Path(__file__).parent / "migrations"


def upgrade(engine: Engine) -> None:
    """Applies every migration not yet applied, in one transaction."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Serializes concurrent starts of several servers on one fresh database.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(72016)")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
