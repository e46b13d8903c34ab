"""Store URLs: which backend a string names, and how to show it without its password."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from imbridge._masking import mask_url
from imbridge.errors import ConfigurationError

Backend = Literal["sqlite", "postgresql"]

MEMORY = ":memory:"
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_ACCEPTED = "a file path, ':memory:', sqlite:///path, or postgresql://user:password@host:port/database"


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL. ``path`` is the SQLite file (or ``:memory:``); None on PostgreSQL."""

    backend: Backend
    url: URL
    path: str | None

    @property
    def shown(self) -> str:
        """The URL with its password masked, for settings, logs and errors."""
        if self.backend == "sqlite":
            return self.path or MEMORY
        return self.url.render_as_string(hide_password=True)

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY


def parse_store_url(text: str) -> StoreURL:
    """``:memory:``, a plain path, ``sqlite:///path`` (``sqlite:////abs/path``), ``sqlite://`` (memory),
    ``postgresql://…``, ``postgresql+psycopg://…`` (``postgres://`` is read as ``postgresql://``)."""
    if not text:
        raise ConfigurationError(f"empty store URL: give {_ACCEPTED}")
    if text == MEMORY:
        return StoreURL("sqlite", URL.create("sqlite"), MEMORY)
    if "://" not in text:
        path = str(Path(text).expanduser())
        return StoreURL("sqlite", URL.create("sqlite", database=path), path)
    scheme = text.split("://", 1)[0].lower()
    if scheme == "sqlite":
        database = text[len("sqlite://") :]
        if database.startswith("/"):
            database = database[1:]  # sqlite:///relative, sqlite:////absolute
        database = database.split("?", 1)[0]
        path = str(Path(database).expanduser()) if database and database != MEMORY else MEMORY
        return StoreURL("sqlite", URL.create("sqlite", database=None if path == MEMORY else path), path)
    if scheme in _POSTGRES_SCHEMES:
        try:
            url = make_url("postgresql+psycopg://" + text.split("://", 1)[1])
        except ArgumentError as error:
            raise ConfigurationError(f"invalid PostgreSQL URL {mask_url(text)!r}: {error}") from None
        if not url.database:
            raise ConfigurationError(f"PostgreSQL URL {mask_url(text)!r} names no database")
        return StoreURL("postgresql", url, None)
    raise ConfigurationError(f"unsupported store URL scheme {scheme!r} in {mask_url(text)!r}: give {_ACCEPTED}")
