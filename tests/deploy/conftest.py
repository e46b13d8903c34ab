"""Fixtures of the deployment tests (issue 15): a store on each backend, as in tests/storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from imbridge.testing.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh SQLite file, or a fresh database on the session's throwaway PostgreSQL cluster."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    server: PostgresServer = request.getfixturevalue("imbridge_postgres")
    return server.fresh_database()
