"""Issue 14 on the emulators: cut group history windows and groups of thousands migrate whole, and verify
passes only because every seq is accounted for; a reader that drops a message is caught by verify."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from migration_support import World

from imbridge import IMClient
from imbridge.migration import Migration, MigrationOptions
from imbridge.migration.ids import target_id
from imbridge.migration.pipeline import PHASES
from imbridge.migration.source import TencentSource
from imbridge.models import Conversation, Message

BIG = "big-group"
MEMBERS = 2_500
LONG = 40


def _grow(world: World) -> None:
    """A group of 2,500 members whose history windows the emulator cuts (long messages, a small budget)."""
    store = world.tencent.store
    now = world.tencent.clock.now().timestamp()
    users = [f"m{i:05d}" for i in range(MEMBERS)]
    store.add_users(users, now)
    store.create_group(BIG, name="Big", owner=users[0], introduction="", notification="", face_url="", now=now,
                       members=[(uid, "owner" if i == 0 else "member") for i, uid in enumerate(users)])  # fmt: skip
    # Each answer of group_msg_get_simple holds about three of these messages: every 20-seq window is cut.
    world.tencent.history_answer_bytes = 4_000
    with IMClient("tencent", sdk_app_id=world.tencent.sdk_app_id, secret_key=world.key, base_url="http://t.test",
                  http_client=httpx.Client(transport=world.tencent.transport())) as im:  # fmt: skip
        for i in range(LONG):
            im.messages.send(users[i % 7], Conversation.group(BIG), f"{i} " + "long text " * 100)


def _raw(world: World, command: str, body: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(transport=world.tencent.transport()) as http, IMClient(
        "tencent", sdk_app_id=world.tencent.sdk_app_id, secret_key=world.key, base_url="http://t.test",
        http_client=http,
    ) as im:  # fmt: skip
        reply: dict[str, Any] = im.provider.call("group_open_http_svc", command, body)
        return reply


#: The conversation lists of 2,507 members are not what these tests are about (test_migration_conversations.py is),
#: and reading them twice at Tencent's 200 calls/s would take minutes.
HISTORY_PHASES = [phase for phase in PHASES if phase != "conversations"]


@pytest.fixture
def world(tmp_path: Path) -> Any:
    w = World.make(tmp_path)
    _grow(w)
    yield w
    w.close()


def test_cut_windows_and_thousands_of_members_migrate_whole_and_verify(world: World, tmp_path: Path) -> None:
    cut = _raw(world, "group_msg_get_simple", {"GroupId": BIG, "ReqMsgNumber": 20, "WithRecalledMsg": 1})
    assert cut["IsFinished"] == 0 and 0 < len(cut["RspMsgList"]) < 20  # the windows really are cut
    m = Migration(world.source(), world.target(), str(tmp_path / "state.db"))
    status = m.run(world.users(), phases=HISTORY_PHASES)
    assert status["complete"], m.failures()
    expected = world.expected()
    assert world.actual(list(expected)) == expected
    assert expected[("group", BIG, "")] == [str(seq) for seq in range(1, LONG + 1)]
    with world.target_client() as im:
        assert len(im.groups.members(target_id(BIG))) == MEMBERS
    result = m.verify()
    assert result["ok"], result["mismatches"]
    # Zero mismatches because every seq 1..NextMsgSeq-1 of every group is accounted for, by verify's own count.
    groups = world.tencent.store.conversations("g:")
    seqs = sum(len(world.tencent.store.messages(conv, limit=-1)) for conv in groups)
    assert result["unaccounted_at_source"] == 0
    assert result["source_messages"] == sum(len(v) for v in expected.values())
    assert seqs == sum(len(v) for (kind, _, _), v in expected.items() if kind == "group")
    m.close()


def test_verify_reports_a_message_the_reader_dropped(world: World, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    reader = TencentSource.group_messages

    async def drops_seq_7(self: TencentSource, group_id: str, after: int, last: int) -> AsyncIterator[Message]:
        async for message in reader(self, group_id, after, last):
            if not (group_id == BIG and message.seq == 7):
                yield message

    # A reader that skips a message; it stays in place for verify too, which must not depend on it.
    monkeypatch.setattr(TencentSource, "group_messages", drops_seq_7)
    m = Migration(world.source(), world.target(), str(tmp_path / "state.db"), MigrationOptions())
    assert m.run(world.users(), phases=HISTORY_PHASES)["complete"], m.failures()
    result = m.verify()
    assert not result["ok"]
    (mismatch,) = [x for x in result["mismatches"] if x.get("channel") == f"g:{BIG}"]
    assert mismatch["missing"] == ["7"] and mismatch["missing_count"] == 1
    assert mismatch["source_count"] == LONG and mismatch["target_count"] == LONG - 1
    assert "1 missing on the target" in mismatch["reason"]
    assert result["missing_total"] == 1 and json.dumps(result)  # the report stays JSON for the CLI and a repair
    m.close()
