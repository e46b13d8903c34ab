"""MirrorClient / AsyncMirrorClient: writes to both, reads from the primary, the secondary's failures
journaled and replayed; a later migration does not duplicate what the mirror already wrote."""

from __future__ import annotations

import asyncio
import secrets
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from imbridge import AsyncIMClient, Conversation, IMClient, RetryPolicy, Text
from imbridge.cli import main
from imbridge.emulators._base import EmulatorTransport
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.migration import AsyncMirrorClient, Migration, MirrorClient, SecondaryFailure
from imbridge.migration.ids import ORIGIN_KEY, target_id
from imbridge.migration.mirror import replay_journal
from imbridge.migration.state import StateDB


def replay(tmp_path: Path, state: str, switch: Switch) -> tuple[dict[str, Any], StateDB]:
    """replay_journal on a fresh async client to the secondary (as the CLI does)."""

    async def run() -> dict[str, Any]:
        async with AsyncIMClient("wukong", base_url="http://wukong.test", enforce_policy=False,
                                 store=str(tmp_path / "imbridge-wukong.db"),
                                 http_client=httpx.AsyncClient(transport=switch)) as replayer:  # fmt: skip
            return await replay_journal(db, replayer)

    db = StateDB(state)
    return asyncio.run(run()), db


class Switch(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An emulator that can be cut off (every request then fails to connect), or that breaks with an error
    that is not a network error (``crash``: what a defect below imbridge's error mapping looks like)."""

    def __init__(self, inner: EmulatorTransport) -> None:
        self.inner, self.down = inner, False
        self.crash: BaseException | None = None

    def _check(self, request: httpx.Request) -> None:
        if self.crash is not None:
            raise self.crash
        if self.down:
            raise httpx.ConnectError("secondary down", request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._check(request)
        return self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._check(request)
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
    async with AsyncMirrorClient(primary, secondary, str(tmp_path / "state.db")) as mirror:
        await mirror.users.register(["ann", "ben"])
        switch.down = True
        sent = await mirror.messages.send("ann", Conversation.user("ben"), "hi")
        assert sent.provider == "tencent"
        assert len(mirror.state.journal()) == 1
        switch.down = False
        result = await replay_journal(mirror.state, secondary)
        assert result == {"replayed": 1, "failed": 0, "pending": 0, "not_replayable": 0, "errors": []}
        history = [m async for m in secondary.messages.iter_history(Conversation.user("ben"), "ann")]
        assert [m.metadata[ORIGIN_KEY]["id"] for m in history] == [sent.ref.key]
    await primary.aclose()
    await secondary.aclose()


def primary_count(tencent: TencentEmulator, conversation: str) -> int:
    return len(tencent.store.messages(conversation, limit=-1))


def test_a_secondary_error_that_is_not_an_imbridge_error_is_journaled_reported_and_not_raised(
    tmp_path: Path, sides: Any
) -> None:
    tencent, _, switch, _ = sides
    primary, secondary = sync_pair(tmp_path, sides)
    reported: list[SecondaryFailure] = []
    state = str(tmp_path / "state.db")
    with MirrorClient(primary, secondary, state, on_secondary_error=reported.append) as mirror:
        mirror.users.register(["ann", "ben"])
        crash = RuntimeError("a defect below the error mapping")
        switch.crash = crash
        sent = mirror.messages.send("ann", Conversation.user("ben"), "hello")  # returns: the primary has it
        switch.crash = None
        assert sent.provider == "tencent"
        # the caller had no reason to retry: the primary holds the message once
        assert primary_count(tencent, "u:ann|ben") == 1
        assert [(f.resource, f.method, f.error, f.replayable) for f in reported] == [("messages", "send", crash, True)]
        (entry,) = mirror.state.journal()
        assert entry.id == reported[0].journal_id and entry.error.startswith("RuntimeError: a defect")

        # an interrupt is not swallowed, but the call is journaled before it goes on
        switch.crash = KeyboardInterrupt()
        with pytest.raises(KeyboardInterrupt):
            mirror.messages.send("ben", Conversation.user("ann"), "bye")
        switch.crash = None
        assert [e.method for e in mirror.state.journal()] == ["send", "send"]

    result, db = replay(tmp_path, state, switch)
    db.close()
    assert (result["replayed"], result["failed"]) == (2, 0), result
    replayed = origins(secondary, Conversation.user("ben"), "ann")
    assert len(replayed) == 2 and replayed[0] == sent.ref.key
    primary.close()
    secondary.close()


def test_replay_keeps_metadata_that_looks_like_a_tag_and_one_bad_entry_blocks_nothing(
    tmp_path: Path, sides: Any
) -> None:
    _, _, switch, _ = sides
    primary, secondary = sync_pair(tmp_path, sides)
    state = str(tmp_path / "state.db")
    tagged = {"$td": 5, "$conv": "user:x", "list": [{"$ref": "nope"}], "$map": {"$el": None}}
    with MirrorClient(primary, secondary, state) as mirror:
        mirror.users.register(["ann", "ben"])
        switch.down = True
        # an entry that can never be replayed, journaled first: it must not block the ones after it
        mirror.state.journal_add("messages", "send", {"v": 2, "args": [{"$nonsense": 1}], "kwargs": {}}, "x")
        with mirror.state.db.write() as connection:
            connection.exec_driver_sql("INSERT INTO journal (created, resource, method, args, error) "
                                       "VALUES (0, 'groups', 'mute', '{not json', 'x')")  # fmt: skip
        first = mirror.messages.send("ann", Conversation.user("ben"), "one", metadata=tagged)
        second = mirror.messages.send("ben", Conversation.user("ann"), "two", metadata={"plain": True})
        switch.down = False
        assert len(mirror.state.journal()) == 4

    result, db = replay(tmp_path, state, switch)
    assert (result["replayed"], result["not_replayable"], result["pending"]) == (2, 2, 0), result
    failed = db.journal("failed")
    assert [e.id for e in failed] == [1, 2] and all(e.last_error for e in failed)
    db.close()
    again, db = replay(tmp_path, state, switch)
    db.close()
    assert again["failed"] == 0  # entries marked failed are not retried
    history = list(secondary.messages.iter_history(Conversation.user("ben"), "ann", direction="forward"))
    assert [m.metadata.get(ORIGIN_KEY, {}).get("id") for m in history] == [first.ref.key, second.ref.key]
    kept = {k: v for k, v in history[0].metadata.items() if k != ORIGIN_KEY}
    assert kept == tagged
    primary.close()
    secondary.close()


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


class Holding(Switch):
    """Message sends held on the way: the client times out at once, the request reaches the secondary
    ``hold`` seconds later (issue 13, point 1)."""

    def __init__(self, inner: EmulatorTransport, hold: float) -> None:
        super().__init__(inner)
        self.hold, self.holding = hold, True
        self.timers: list[threading.Timer] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.holding and request.url.path == "/message/send":
            request.read()
            timer = threading.Timer(self.hold, self.inner.handle_request, [request])
            timer.start()
            self.timers.append(timer)
            raise httpx.ReadTimeout("held on the way", request=request)
        return super().handle_request(request)


def test_a_secondary_send_that_may_have_landed_is_journaled_and_replayed_once(tmp_path: Path, sides: Any) -> None:
    tencent, wukong, _, key = sides
    holding = Holding(wukong.transport(), hold=1.5)
    primary = IMClient("tencent", sdk_app_id=tencent.sdk_app_id, secret_key=key, base_url="http://tencent.test",
                       http_client=httpx.Client(transport=tencent.transport()))  # fmt: skip
    secondary = IMClient(
        "wukong", base_url="http://wukong.test", store=str(tmp_path / "imbridge-wukong.db"), enforce_policy=False,
        retry=RetryPolicy.none(), http_client=httpx.Client(transport=holding),
    )  # fmt: skip
    state = str(tmp_path / "state.db")
    with MirrorClient(primary, secondary, state) as mirror:
        mirror.users.register(["ann", "ben"])
        sent = mirror.messages.send("ann", Conversation.user("ben"), "held")  # the caller sees no error
    journal = StateDB(state)
    [entry] = journal.journal()
    assert (entry.resource, entry.method) == ("messages", "send") and "MessageMayHaveLandedError" in entry.error
    journal.close()
    for timer in holding.timers:
        timer.join()  # the held request has landed by now
    holding.holding = False
    _, db = replay(tmp_path, state, holding)
    assert db.journal() == []
    assert origins(secondary, Conversation.user("ben"), "ann") == [sent.ref.key]  # once: found, not re-sent
    db.close()
    primary.close()
    secondary.close()
