"""MirrorClient / AsyncMirrorClient: writes to both, reads from the primary, the secondary's failures
journaled and replayed; a later migration does not duplicate what the mirror already wrote."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from imbridge import AsyncIMClient, Conversation, IMClient, RetryPolicy, Text
from imbridge.cli import main
from imbridge.emulators._base import EmulatorTransport
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.migration import AsyncMirrorClient, Migration, MirrorClient
from imbridge.migration.ids import ORIGIN_KEY, target_id
from imbridge.migration.state import StateDB


class Switch(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An emulator that can be cut off (every request then fails to connect)."""

    def __init__(self, inner: EmulatorTransport) -> None:
        self.inner, self.down = inner, False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("secondary down", request=request)
        return self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("secondary down", request=request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def sides(tmp_path: Path) -> Any:
    key = secrets.token_hex(16)
    tencent = TencentEmulator(secret_key=key)
    wukong = WukongEmulator(store=str(tmp_path / "wukong.db"))
    switch = Switch(wukong.transport())
    yield tencent, wukong, switch, key
    tencent.close()
    wukong.close()


def sync_pair(tmp_path: Path, sides: Any) -> tuple[IMClient, IMClient]:
    tencent, _, switch, key = sides
    primary = IMClient("tencent", sdk_app_id=tencent.sdk_app_id, secret_key=key, base_url="http://tencent.test",
                       http_client=httpx.Client(transport=tencent.transport()))  # fmt: skip
    secondary = IMClient(
        "wukong", base_url="http://wukong.test", store=str(tmp_path / "imbridge-wukong.db"), enforce_policy=False,
        retry=RetryPolicy.none(), http_client=httpx.Client(transport=switch),
    )  # fmt: skip
    return primary, secondary


def origins(secondary: IMClient, conversation: Conversation, viewer: str) -> list[Any]:
    return [m.metadata.get(ORIGIN_KEY, {}).get("id") for m in
            secondary.messages.iter_history(conversation, viewer, direction="forward")]  # fmt: skip


def test_mirror_writes_both_reads_primary_journals_and_replays(tmp_path: Path, sides: Any) -> None:
    tencent, wukong, switch, key = sides
    primary, secondary = sync_pair(tmp_path, sides)
    state = str(tmp_path / "state.db")
    with MirrorClient(primary, secondary, state) as mirror:
        mirror.users.register(["ann", "ben", "cid"])
        assert [p.user_id for p in secondary.users.get_profiles(["ann", "ben", "cid"])] == ["ann", "ben", "cid"]
        mirror.users.set_profile("ann", nickname="Ann")
        assert secondary.users.get_profiles(["ann"])[0].nickname == "Ann"
        group = mirror.groups.create("Team", owner="ann", members=["ben"])
        assert group.id.startswith("@TGS#")  # Tencent made the id; the secondary got the translated one
        mirrored = secondary.groups.get(target_id(group.id))
        assert (mirrored.name, mirrored.owner) == ("Team", "ann")
        chat = Conversation.group(group.id)
        sent = mirror.messages.send("ann", chat, [Text("hello")])
        on_secondary = Conversation.group(target_id(group.id))
        assert origins(secondary, on_secondary, "ann") == [sent.seq]
        page = mirror.messages.history(chat, viewer="ann")
        assert page.provider == "tencent" and [m.seq for m in page.items] == [sent.seq]  # reads: primary only

        switch.down = True
        lost = mirror.messages.send("ben", chat, "while the secondary is down")  # the caller sees no error
        mirror.groups.add_members(group.id, ["cid"])
        direct = mirror.messages.send("ann", Conversation.user("ben"), "psst")
        assert lost.seq == sent.seq + 1
        journal = StateDB(state)
        pending = journal.journal()
        assert [(e.resource, e.method) for e in pending] == [("messages", "send"), ("groups", "add_members"),
                                                              ("messages", "send")]  # fmt: skip
        assert all("ConnectError" in e.error or "TransportError" in e.error for e in pending)
        switch.down = False

        # replayed by the CLI command, with the target from the environment
        journal.close()
    import imbridge.migration.cli as migrate_cli

    def settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return ({"sdk_app_id": tencent.sdk_app_id, "secret_key": key},
                {"base_url": "http://wukong.test", "store": str(tmp_path / "imbridge-wukong.db"),
                 "http_client": httpx.AsyncClient(transport=switch)})  # fmt: skip

    original = migrate_cli._settings
    migrate_cli._settings = settings
    try:
        assert main(["migrate", "replay-journal", "--state", state, "--progress", "none"]) == 0
        assert main(["migrate", "replay-journal", "--state", state, "--progress", "none"]) == 0  # nothing left
    finally:
        migrate_cli._settings = original
    assert origins(secondary, on_secondary, "ann") == [sent.seq, lost.seq]
    assert {m.user_id for m in secondary.groups.members(target_id(group.id))} == {"ann", "ben", "cid"}
    assert origins(secondary, Conversation.user("ben"), "ann") == [direct.ref.key]
    assert StateDB(state).journal() == []

    # a revoke reaches the secondary's copy
    with MirrorClient(primary, secondary, state) as mirror:
        mirror.messages.revoke(sent.ref)
    assert [m.revoked for m in secondary.messages.iter_history(on_secondary, "ann", direction="forward")] == [
        True, False]  # fmt: skip

    # the migration that follows the cut-over finds the mirrored messages and does not copy them again
    migration = Migration({"sdk_app_id": tencent.sdk_app_id, "secret_key": key, "base_url": "http://tencent.test",
                           "http_client": httpx.AsyncClient(transport=tencent.transport())},
                          {"base_url": "http://wukong.test", "store": str(tmp_path / "imbridge-wukong.db"),
                           "http_client": httpx.AsyncClient(transport=switch)}, state)  # fmt: skip
    assert migration.run(["ann", "ben", "cid"])["complete"], migration.failures()
    assert origins(secondary, on_secondary, "ann") == [sent.seq, lost.seq]
    assert origins(secondary, Conversation.user("ben"), "ann") == [direct.ref.key]
    assert migration.verify()["ok"]
    migration.close()
    primary.close()
    secondary.close()
    del wukong


async def test_async_mirror_journals_and_replays(tmp_path: Path, sides: Any) -> None:
    tencent, _, switch, key = sides
    primary = AsyncIMClient("tencent", sdk_app_id=tencent.sdk_app_id, secret_key=key, base_url="http://t.test",
                            http_client=httpx.AsyncClient(transport=tencent.transport()))  # fmt: skip
    secondary = AsyncIMClient("wukong", base_url="http://w.test", store=str(tmp_path / "imbridge-wukong.db"),
                              enforce_policy=False, retry=RetryPolicy.none(),
                              http_client=httpx.AsyncClient(transport=switch))  # fmt: skip
    from imbridge.migration.mirror import replay_journal

    async with AsyncMirrorClient(primary, secondary, str(tmp_path / "state.db")) as mirror:
        await mirror.users.register(["ann", "ben"])
        switch.down = True
        sent = await mirror.messages.send("ann", Conversation.user("ben"), "hi")
        assert sent.provider == "tencent"
        assert len(mirror.state.journal()) == 1
        switch.down = False
        result = await replay_journal(mirror.state, secondary)
        assert result == {"replayed": 1, "failed": 0, "errors": []}
        history = [m async for m in secondary.messages.iter_history(Conversation.user("ben"), "ann")]
        assert [m.metadata[ORIGIN_KEY]["id"] for m in history] == [sent.ref.key]
    await primary.aclose()
    await secondary.aclose()


def test_mirror_carries_member_administration_and_delivery(tmp_path: Path, sides: Any) -> None:
    from imbridge import Delivery, Role

    switch = sides[2]
    primary, secondary = sync_pair(tmp_path, sides)
    state = str(tmp_path / "state.db")
    with MirrorClient(primary, secondary, state) as mirror:
        mirror.users.register(["ann", "ben", "cid"])
        group = mirror.groups.create("Team", owner="ann", members=["ben", "cid"])
        gid = target_id(group.id)
        mirror.groups.set_role(group.id, "ben", "admin")
        mirror.groups.set_name_card(group.id, "cid", "Cid")
        mirror.groups.transfer_owner(group.id, "ben")
        mirror.groups.mute(group.id, ["cid"], None)
        mirror.groups.notify(group.id, "hello all", to=["cid"])
        switch.down = True
        mirror.messages.send("ann", Conversation.group(group.id), "typing", delivery=Delivery(online_only=True))
        switch.down = False
        [entry] = StateDB(state).journal()
        assert (entry.resource, entry.method) == ("messages", "send")  # journaled with its delivery, encoded
        from imbridge.migration.mirror import decode

        assert decode(entry.args["kwargs"])["delivery"] == Delivery(online_only=True)
    members = {m.user_id: m for m in secondary.groups.members(gid)}
    assert {u: m.role for u, m in members.items()} == {"ann": Role.MEMBER, "ben": Role.OWNER, "cid": Role.MEMBER}
    assert members["cid"].name_card == "Cid" and members["cid"].muted and members["cid"].muted_until is None
    assert secondary.groups.get(gid).owner == "ben"
