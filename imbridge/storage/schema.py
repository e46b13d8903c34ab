"""Versioned schemas: what a database must contain, and the steps that bring an older one up to date.

Each :class:`Schema` records its version in the ``meta`` table under its own key, so several schemas can
share one database and upgrade independently (the store's core tables under ``schema_version``, the key
the first SQLite files already use; a later schema, such as the migration state, under
``schema_version:<name>``). :meth:`imbridge.storage.Database.ensure` creates or upgrades a schema under
the database's writer lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a transaction-scoped advisory lock),
so processes and hosts that open one database at the same moment upgrade it exactly once.

Why not Alembic: it brings a migration environment (``env.py``, a script directory, its own version table)
meant for a developer's workflow, not an upgrade that runs when an app opens its database; it offers no
lock for many processes opening one database at once; and these schemas are a few tables whose steps are
a handful of portable SQLAlchemy statements. A step is a plain function of a connection, run inside the
same transaction as the version bump, so a failed upgrade leaves the database as it was (SQLite and
PostgreSQL both have transactional DDL).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Column, MetaData, Table, Text
from sqlalchemy.engine import Connection

#: Shared by every schema: one row per schema version, plus small settings (a generated token key...).
META = MetaData()
meta_table = Table(
    "meta",
    META,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

Upgrade = Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class Schema:
    """A set of tables at ``version``; ``upgrades[n]`` turns version ``n`` into ``n + 1``."""

    name: str
    metadata: MetaData
    version: int
    upgrades: Mapping[int, Upgrade] = field(default_factory=dict)

    @property
    def version_key(self) -> str:
        """The ``meta`` key holding this schema's version."""
        return "schema_version" if self.name == "core" else f"schema_version:{self.name}"
