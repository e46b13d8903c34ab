"""The issue 17 commands of the ``imbridge`` CLI on the local provider: text and --json output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imbridge.cli import EXIT_OK, EXIT_USAGE, main


@pytest.fixture(autouse=True)
def local_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "local")
    monkeypatch.setenv("IMBRIDGE_LOCAL_DATABASE", str(tmp_path / "cli.db"))
    monkeypatch.chdir(tmp_path)  # no .env of the repository is read


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_role_transfer_and_members(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "users", "register", "alice", "bob", "carol")[0] == EXIT_OK
    assert run(capsys, "groups", "create", "Team", "--owner", "alice", "--member", "bob", "--member", "carol",
               "--id", "g1")[0] == EXIT_OK  # fmt: skip
    code, text = run(capsys, "groups", "role", "g1", "bob", "admin")
    assert code == EXIT_OK and text.strip() == "bob is now admin of g1"
    code, text = run(capsys, "groups", "transfer", "g1", "carol")
    assert code == EXIT_OK and text.strip() == "carol now owns g1"
    assert run(capsys, "groups", "mute", "g1", "alice", "--forever")[1].strip() == "muted alice until unmuted"
    code, text = run(capsys, "--json", "groups", "members", "g1")
    roles = {m["user_id"]: (m["role"], m["muted"], m["muted_until"]) for m in json.loads(text)}
    assert roles == {"alice": ("member", True, None), "bob": ("admin", False, None), "carol": ("owner", False, None)}
    assert "muted (no end)" in run(capsys, "groups", "members", "g1")[1]
    code, _ = run(capsys, "groups", "role", "g1", "carol", "member")  # the owner: refused as bad input
    assert code == EXIT_USAGE


def test_presence_and_kick(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "users", "register", "alice")
    code, text = run(capsys, "users", "presence", "alice")
    assert code == EXIT_OK and text.split() == ["alice", "offline"]
    code, text = run(capsys, "--json", "users", "presence", "alice")
    assert json.loads(text)[0]["state"] == "offline"
    code, text = run(capsys, "users", "kick", "alice", "--device", "web")
    assert code == EXIT_OK and text.strip() == "kicked alice off web devices"
    assert run(capsys, "users", "kick", "ghost")[0] == 1  # NotFoundError: a provider failure
    assert main(["users", "kick", "alice", "--device", "fridge"]) == 2  # a usage error, as every command exits
