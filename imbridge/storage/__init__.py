"""imbridge's storage layer: one database on SQLite (one process or one host) or PostgreSQL (several
instances on several hosts), chosen by URL, on SQLAlchemy Core 2. ``docs/storage.md`` says which URLs,
what is race-free and how, and how older files are upgraded in place.

:class:`Database` opens a URL; :class:`Schema` is a versioned set of tables a database is brought up to
(``Database.ensure``); :data:`CORE_SCHEMA` is the store's own (used by
:class:`imbridge.providers.local.store.Store`).
"""

from imbridge._masking import mask_url
from imbridge.storage._url import StoreURL, parse_store_url
from imbridge.storage.core import CORE_SCHEMA, SCHEMA_VERSION
from imbridge.storage.database import Database, SQLiteWriter
from imbridge.storage.schema import Schema

__all__ = [
    "CORE_SCHEMA",
    "SCHEMA_VERSION",
    "Database",
    "SQLiteWriter",
    "Schema",
    "StoreURL",
    "mask_url",
    "parse_store_url",
]
