"""The running Tether: settings, database, resource kinds and the services built on them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from tether import filters
from tether.auth.identity import Identity
from tether.auth.secretbox import load_server_key
from tether.db.engine import make_engine, transaction
from tether.db.migrate import upgrade
from tether.resources import session as session_mod
from tether.resources.bootstrap import bootstrap
from tether.resources.credential import CredentialKind
from tether.resources.data_object import DataObjectKind
from tether.resources.data_record import DataRecordKind
from tether.resources.data_set import DataSetKind
from tether.resources.event import EventKind
from tether.resources.infrastructure import InfrastructureServiceKind
from tether.resources.job import JobKind
from tether.resources.metadata import DataRecordKeyKind, DataRecordKeyPrefixKind
from tether.resources.module import ModuleKind
from tether.resources.registry import Registry
from tether.resources.service import ResourceService
from tether.resources.session import SessionKind
from tether.resources.storage import Storage
from tether.resources.user import GroupKind, UserKind
from tether.settings import Settings


def default_registry() -> Registry:
    return Registry(
        [
            UserKind(),
            GroupKind(),
            SessionKind(),
            CredentialKind(),
            EventKind(),
            ModuleKind(),
            InfrastructureServiceKind(),
            DataObjectKind(),
            DataRecordKeyPrefixKind(),
            DataRecordKeyKind(),
            DataRecordKind(),
            DataSetKind(),
            JobKind(),
        ]
    )


@dataclass
class Tether:
    settings: Settings
    engine: Engine
    registry: Registry
    resources: ResourceService

    def authenticate(self, cookie: str | None) -> Identity:
        with transaction(self.engine) as conn:
            return session_mod.authenticate(conn, cookie)

    def close(self) -> None:
        self.resources.storage.close()
        self.engine.dispose()


def prepare(settings: Settings) -> str | None:
    """Migrates the database and creates first-start resources; returns a new admin password."""
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine)
        return bootstrap(engine, default_registry(), settings.admin_password, settings.data_dir)
    finally:
        engine.dispose()


def build(settings: Settings) -> Tether:
    """A Tether on an already prepared database."""
    engine = make_engine(settings.effective_database_url)
    registry = default_registry()
    public_url = settings.public_url or f"http://{settings.host}:{settings.port}"
    storage = Storage(load_server_key(settings), public_url)
    with transaction(engine) as conn:
        # Indexes another process made: SQLite matches them only by their exact path.
        filters.indexes.sync_indexed_keys(conn)
    return Tether(settings, engine, registry, ResourceService(engine, settings, registry, storage))
