"""Which store serves a collector.yaml: the factory above the store interface and its implementations."""

from __future__ import annotations

from pathlib import Path

from checks.config_error import ConfigError
from collector.config import CollectorConfig
from collector.store import Store


def store_location(config: CollectorConfig) -> Path:
    """The SQLite file of `config`'s store (the only backend of this version)."""
    path = config.sqlite_path()
    if path is None:
        raise ConfigError("only SQLite stores are available in this version", field="store.url")
    return path


def open_store(config: CollectorConfig) -> Store:
    """Open (creating and migrating as needed) the store `config` names."""
    from collector.sqlite import open_sqlite

    return open_sqlite(store_location(config), history=config.store.history)
