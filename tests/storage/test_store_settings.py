"""How a store is chosen and shown: the WuKongIM store is never guessed, from_env reads it, and a
PostgreSQL password never appears in describe(), doctor, reprs or errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imbridge import IMClient, UnsupportedOperationError
from imbridge.capabilities import Operation, Support
from imbridge.cli import main
from imbridge.config import WukongSettings
from imbridge.testing.postgres import PostgresServer


def _password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def test_wukong_without_a_store_guesses_no_file_and_says_how_to_set_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert WukongSettings.model_fields["store"].default == ""
    with IMClient("wukong", base_url="http://127.0.0.1:5001", manager_token="t") as im:
        capability = im.capabilities[Operation.GROUPS_UPDATE]
        assert capability.support is Support.UNSUPPORTED
        assert "IMBRIDGE_WUKONG_STORE" in capability.notes and "postgresql://" in capability.notes
        assert im.capabilities[Operation.GROUPS_MUTE].support is Support.UNSUPPORTED
        assert im.describe()["store"].startswith("none")
        with pytest.raises(UnsupportedOperationError):
            im.groups.update("g1", name="x")
    assert list(tmp_path.iterdir()) == []  # no store file appeared in the working directory


def test_from_env_reads_the_wukong_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "wukong")
    monkeypatch.setenv("IMBRIDGE_WUKONG_STORE", f"sqlite:///{tmp_path / 'wk.db'}")
    with IMClient.from_env() as im:
        assert im.capabilities[Operation.GROUPS_UPDATE].support is Support.EMULATED
        assert im.describe()["store"] == str(tmp_path / "wk.db")
    assert (tmp_path / "wk.db").exists()


def test_a_postgres_password_is_masked_everywhere_settings_are_shown(
    imbridge_postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    url = imbridge_postgres.fresh_database()
    secret = _password(url)
    with IMClient("wukong", base_url="http://127.0.0.1:5001", manager_token="t", store=url) as im:
        shown = [json.dumps(im.describe()), repr(im._provider), repr(im._provider.settings)]
        assert all(secret not in text and "***" in text for text in shown), shown
    with IMClient("local", database=url) as im:
        assert secret not in json.dumps(im.describe()) and secret not in im.health()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "local")
    monkeypatch.setenv("IMBRIDGE_LOCAL_DATABASE", url)
    assert main(["doctor"]) == 0
    printed = capsys.readouterr().out
    assert secret not in printed and "postgresql" in printed and "***" in printed
