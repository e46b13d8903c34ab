"""``imbridge conversations list USER`` (text and ``--json``) on the local provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imbridge import Conversation, IMClient
from imbridge.cli import EXIT_OK, EXIT_USAGE, main


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = str(tmp_path / "cli.db")
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "local")
    monkeypatch.setenv("IMBRIDGE_LOCAL_DATABASE", path)
    with IMClient("local", database=path) as im:
        im.users.register(["alice", "bob", "carol"])
        im.messages.send("alice", Conversation.user("bob"), "hello bob")
        im.messages.send("alice", Conversation.user("bob"), "are you there?")
        im.messages.send("carol", Conversation.user("bob"), "hi")
    return path


def test_list_as_text(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conversations", "list", "bob"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("user:carol") and "1 unread" in lines[0] and lines[0].endswith("carol: hi")
    assert lines[1].startswith("user:alice") and "2 unread" in lines[1] and lines[1].endswith("are you there?")


def test_list_as_json_pages(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "conversations", "list", "bob", "--limit", "1"]) == EXIT_OK
    first = json.loads(capsys.readouterr().out)
    assert [(i["conversation"]["id"], i["unread"]) for i in first["items"]] == [("carol", 1)]
    assert first["items"][0]["last_message"]["sender"] == "carol" and "raw" not in first["items"][0]
    assert main(["--json", "conversations", "list", "bob", "--cursor", first["next_cursor"]]) == EXIT_OK
    second = json.loads(capsys.readouterr().out)
    assert [i["conversation"]["id"] for i in second["items"]] == ["alice"] and second["next_cursor"] is None


def test_bad_input_is_a_usage_error(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conversations", "list", "bob", "--limit", "0"]) == EXIT_USAGE
    assert "limit" in capsys.readouterr().err
