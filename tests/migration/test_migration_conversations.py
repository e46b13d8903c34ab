"""The conversations phase on seeded emulators: every user's list and unread counts carried, checked against
what each emulator holds (read straight from their stores and raw routes, not through the migration's code)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from migration_support import World

from imbridge.migration import Migration, MigrationOptions
from imbridge.migration.ids import target_id
from imbridge.providers.local.store import conversation_key

WINDOW = 20  # the Tencent provider reads this many newest messages to apply "a reply reads what came before"


@pytest.fixture
def world(tmp_path: Path) -> Any:
    w = World.make(tmp_path, store_delay=1)
    yield w
    w.close()


def _source_unread(world: World, user: str) -> dict[str, int]:
    """What imbridge documents for Tencent, computed from the emulator's store: Tencent's own count (messages
    from others after the read position), brought to the neutral rule within the newest WINDOW messages."""
    store = world.tencent.store
    state = json.loads(store.meta("tencent.conversations." + user) or "{}")
    expected: dict[str, int] = {}
    for conv in store.conversations("u:"):
        low, _, high = conv[2:].partition("|")
        if user not in (low, high):
            continue
        peer = high if user == low else low
        rows = sorted(store.messages(conv, limit=-1), key=lambda r: (int(r.time), r.metadata["MsgSeq"]), reverse=True)
        read = state.get("c2c", {}).get(peer, {})
        counted = sum(1 for r in rows if r.sender == peer and r.seq > int(read.get("s", 0)))
        expected[f"user:{target_id(peer)}"] = _neutral(counted, [r.sender for r in rows], user)
    for group_id in store.groups_of(user):
        rows = store.messages(conversation_key("group", group_id), limit=-1)  # newest first
        member = store.member(group_id, user)
        assert member is not None
        seen = state.get("grp", {}).get(group_id)
        read = int(seen["s"]) if seen and seen.get("j") == member.joined_at else max(
            (r.seq for r in rows if r.time < member.joined_at), default=0)  # fmt: skip
        counted = max((rows[0].seq if rows else 0) - read, 0)
        expected[f"group:{target_id(group_id)}"] = _neutral(counted, [r.sender for r in rows], user)
    return expected


def _neutral(counted: int, senders_newest_first: list[str], user: str) -> int:
    if counted == 0:
        return 0
    window = senders_newest_first[: min(counted, WINDOW - 1) + 1]
    others = 0
    for sender in window:
        if sender == user:
            return min(others, counted)
        others += 1
    return min(others, counted) if len(window) == len(senders_newest_first) else counted


def _target_unread(world: World, user: str) -> dict[str, int]:
    """The WuKongIM emulator's own answer to POST /conversation/sync for the migrated user."""
    with httpx.Client(transport=world.wukong.transport(), base_url="http://wukong.test") as http:
        rows = http.post("/conversation/sync", json={"uid": target_id(user), "msg_count": 1}).json()
    kinds = {1: "user", 2: "group"}
    return {f"{kinds[row['channel_type']]}:{row['channel_id']}": row["unread"] for row in rows}


def test_every_users_list_and_unread_counts_are_carried(world: World, tmp_path: Path) -> None:
    users = world.users()
    migration = Migration(world.source(), world.target(), str(tmp_path / "state.db"), MigrationOptions(concurrency=4))
    status = migration.run(users)
    assert status["complete"], migration.failures()
    assert status["phases"]["conversations"]["done"] == len(users)
    result = migration.verify()
    assert result["ok"], result.get("conversation_lists")
    lists = result["conversation_lists"]
    assert lists["users"] == len(users) and lists["mismatch_count"] == 0
    compared = 0
    for user in users:
        expected = _source_unread(world, user)
        assert _target_unread(world, user) == expected, user
        compared += len(expected)
    assert compared == lists["conversations"] > 0
    # The seed leaves some conversations read, some partly, some not at all.
    counts = [n for user in users for n in _target_unread(world, user).values()]
    assert 0 in counts and max(counts) > 1
    migration.close()


def test_a_conversation_deleted_at_the_source_is_deleted_on_the_target(world: World, tmp_path: Path) -> None:
    users = world.users()
    store = world.tencent.store
    user = next(u for u in users if any(u in conv for conv in store.conversations("u:")))
    conv = next(c for c in store.conversations("u:") if user in c[2:].split("|"))
    peer = next(p for p in conv[2:].split("|") if p != user)
    with httpx.Client(transport=world.tencent.transport(), base_url="http://tencent.test") as http:
        from imbridge import IMClient

        with IMClient("tencent", sdk_app_id=world.tencent.sdk_app_id, secret_key=world.key,
                      base_url="http://tencent.test", http_client=http) as im:  # fmt: skip
            im.provider.call("recentcontact", "delete", {"From_Account": user, "Type": 1, "To_Account": peer})
    migration = Migration(world.source(), world.target(), str(tmp_path / "state.db"), MigrationOptions(concurrency=4))
    assert migration.run(users)["complete"], migration.failures()
    assert f"user:{target_id(peer)}" not in _target_unread(world, user)
    assert f"user:{target_id(user)}" in _target_unread(world, peer)  # the peer still has it
    detail = migration.state.item("conversations", user)
    assert detail is not None and "deleted" in detail.detail
    assert migration.verify()["ok"]
    migration.close()
