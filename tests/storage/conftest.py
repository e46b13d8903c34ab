"""The store tests run on both backends: a fresh SQLite file, and a fresh database on a real PostgreSQL
(the session's throwaway cluster from the ``imbridge_postgres`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imbridge.testing.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    server: PostgresServer = request.getfixturevalue("imbridge_postgres")
    return server.fresh_database()
