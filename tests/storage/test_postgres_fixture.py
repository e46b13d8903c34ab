"""The PostgreSQL fixture never skips silently: without PostgreSQL its tests fail with the remedy, unless
the developer opted out with IMBRIDGE_TEST_POSTGRES=0."""

from __future__ import annotations

import pytest

TEST = """
def test_needs_postgres(imbridge_postgres):
    assert imbridge_postgres.fresh_database().startswith("postgresql://")
"""


def test_without_postgres_binaries_the_tests_fail_saying_how_to_get_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMBRIDGE_TEST_POSTGRES_URL", raising=False)
    monkeypatch.delenv("IMBRIDGE_TEST_POSTGRES", raising=False)
    monkeypatch.setenv("IMBRIDGE_POSTGRES_BIN", str(pytester.path / "no-postgres-here"))
    pytester.makepyfile(TEST)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*no PostgreSQL binaries found*apt-get install postgresql-15*IMBRIDGE_TEST_POSTGRES=0*"]
    )


def test_opting_out_skips_with_the_reason(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMBRIDGE_TEST_POSTGRES", "0")
    pytester.makepyfile(TEST)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*PostgreSQL tests skipped on request (IMBRIDGE_TEST_POSTGRES=0)*"])


def test_the_throwaway_cluster_listens_on_loopback_only() -> None:
    from imbridge.testing.postgres import PostgresCluster, find_bindir

    bindir = find_bindir()
    assert bindir is not None, "PostgreSQL binaries are needed here (see README)"
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
        import psycopg

        with psycopg.connect(cluster.url()) as connection:
            assert connection.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
            assert connection.execute("SHOW unix_socket_directories").fetchone() == (str(cluster.directory),)
    finally:
        cluster.stop()
    assert not cluster.directory.exists()
