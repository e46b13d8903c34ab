"""``imbridge migrate`` follows the exit-code table: a verification that finds differences exits 4 (verify, and
report after it), in text and JSON mode; a mistyped ``--state`` is an error that creates nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "migration"))
from migration_support import World

from imbridge.cli import ExitCode, main


def test_a_verification_that_finds_differences_exits_4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import imbridge.migration.cli as migrate_cli

    world = World.make(tmp_path)
    monkeypatch.setenv("IMBRIDGE_TENCENT_SDK_APP_ID", str(world.tencent.sdk_app_id))
    monkeypatch.setenv("IMBRIDGE_TENCENT_SECRET_KEY", world.key)
    monkeypatch.setenv("IMBRIDGE_TENCENT_BASE_URL", "http://tencent.test")
    monkeypatch.setenv("IMBRIDGE_WUKONG_BASE_URL", "http://wukong.test")
    monkeypatch.setenv("IMBRIDGE_WUKONG_STORE", str(tmp_path / "imbridge-wukong.db"))
    real_settings = migrate_cli._settings

    def settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        source, target = real_settings(config)
        source["http_client"] = httpx.AsyncClient(transport=world.tencent.transport())
        target["http_client"] = httpx.AsyncClient(transport=world.wukong.transport())
        return source, target

    monkeypatch.setattr(migrate_cli, "_settings", settings)
    users = tmp_path / "users.txt"
    users.write_text("\n".join(world.users()[:4]) + "\n")
    state = str(tmp_path / "state.db")
    try:
        assert main(["migrate", "plan", "--state", state, "--users", str(users), "--progress", "none"]) == 0
        # Only the accounts: the history is missing on the target, which verify must report.
        assert main(["migrate", "run", "--state", state, "--progress", "none", "--phase", "accounts"]) == 1
        capsys.readouterr()
        assert main(["migrate", "verify", "--state", state, "--progress", "none", "--json"]) == ExitCode.MISMATCH
        assert json.loads(capsys.readouterr().out)["ok"] is False
        assert main(["migrate", "report", "--state", state]) == ExitCode.MISMATCH
    finally:
        world.close()
