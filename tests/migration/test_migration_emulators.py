"""The migration on in-process emulators with seeded data: run, re-run, resume after a crash, verify."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import secrets
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from migration_support import World

from imbridge.cli import main
from imbridge.emulators._base import EmulatorTransport
from imbridge.emulators.wukong import WukongEmulator
from imbridge.migration import Migration, MigrationOptions
from imbridge.migration import verify as verify_module
from imbridge.migration.ids import ORIGIN_KEY, target_id
from imbridge.migration.progress import make_progress
from imbridge.models import Conversation, Text
from imbridge.providers.wukong.wire import fake_channel_id


class Switch(httpx.AsyncBaseTransport):
    """The WuKongIM emulator behind a switch: down, every request fails to connect (the server is gone)."""

    def __init__(self, inner: EmulatorTransport) -> None:
        self.inner, self.down = inner, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
def world(tmp_path: Path) -> Any:
    w = World.make(tmp_path, store_delay=1)  # sends are stored one request late, as on the real server
    yield w
    w.close()


def migration(world: World, state: Path, **options: Any) -> Migration:
    return Migration(world.source(), world.target(), str(state), MigrationOptions(**options) if options else None)


def test_full_run_migrates_everything_once_in_order_and_verifies(world: World, tmp_path: Path) -> None:
    m = migration(world, tmp_path / "state.db", concurrency=4)
    status = m.run(world.users())
    assert status["complete"], m.failures()
    expected = world.expected()
    assert status["messages_migrated"] == sum(len(v) for v in expected.values())
    assert world.actual(list(expected)) == expected
    result = m.verify()
    assert result["ok"], result["mismatches"]
    assert result["source_messages"] == result["target_messages"] == status["messages_migrated"]
    m.close()

    with world.target_client() as im:
        # groups: name, owner, roles as at the source; mutes and mute_all applied after the history
        for group_id in world.tencent.store.group_ids():
            source_group = world.tencent.store.group(group_id)
            assert source_group is not None
            group = im.groups.get(target_id(group_id))
            assert (group.name, group.owner, group.mute_all) == (
                source_group.name,
                source_group.owner,
                bool(source_group.mute_all),
            )
            roles = {m.user_id: m.role.value for m in im.groups.members(target_id(group_id))}
            assert roles == {m.user_id: m.role for m in world.tencent.store.members(group_id)}
            now = datetime.now(UTC).timestamp()
            source_mutes = world.tencent.store.mutes(group_id, now)
            target_mutes = {m.user_id: m.muted_until for m in im.groups.muted(target_id(group_id))}
            assert set(target_mutes) == set(source_mutes)
            for uid, until in source_mutes.items():  # remaining duration kept (capped at 100 years)
                got = target_mutes[uid]
                assert got is not None
                assert abs(got.timestamp() - min(until, now + 36500 * 86400)) < 5
        # profiles in imbridge's store; original time and sender inside the metadata
        user = world.users()[0]
        profile = im.users.get_profiles([user])[0]
        assert profile.nickname == world.tencent.store.profile(user)["Tag_Profile_IM_Nick"]
        assert profile.custom == {"Level": world.tencent.store.profile(user)["Tag_Profile_Custom_Level"]}
        group_id = world.tencent.store.group_ids()[0]
        first = world.tencent.store.messages(f"g:{group_id}", limit=1, descending=False)[0]
        message = next(
            iter(im.messages.iter_history(Conversation.group(target_id(group_id)), "x", direction="forward"))
        )
        origin = message.metadata[ORIGIN_KEY]
        assert (origin["id"], origin["sender"], origin["time"]) == (first.seq, first.sender, int(first.time))
        assert message.sender == target_id(first.sender)


def test_revoked_messages_are_migrated_revoked_or_skipped(world: World, tmp_path: Path) -> None:
    revoked_total = sum(1 for conv in world.tencent.store.conversations() for r in
                        world.tencent.store.messages(conv, limit=-1) if r.revoked)  # fmt: skip
    assert revoked_total > 0
    m = migration(world, tmp_path / "state.db")
    assert m.run(world.users())["complete"]
    m.close()
    with world.target_client() as im:
        revoked_seen = 0
        for conv in world.tencent.store.conversations("g:"):
            for message in im.messages.iter_history(Conversation.group(target_id(conv[2:])), "x"):
                if message.metadata[ORIGIN_KEY]["revoked"]:
                    assert message.revoked and message.elements == []
                    revoked_seen += 1
        assert revoked_seen == sum(r.revoked for c in world.tencent.store.conversations("g:")
                                   for r in world.tencent.store.messages(c, limit=-1))  # fmt: skip

    skipping = World.make(tmp_path / "skip")
    try:
        m2 = migration(skipping, tmp_path / "skip" / "state.db", revoked="skip")
        status = m2.run(skipping.users())
        assert status["messages_skipped"] == revoked_total
        expected = skipping.expected(with_revoked=False)
        assert skipping.actual(list(expected)) == expected
        assert m2.verify()["ok"]
        m2.close()
    finally:
        skipping.close()


def test_rerun_is_a_no_op_and_replan_keeps_progress(world: World, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    m = migration(world, state)
    first = m.run(world.users())
    m.close()
    stored = world.wukong.store.message_count()
    again = migration(world, state)
    plan = again.plan(world.users())
    assert plan["new_items"] == {"accounts": 0, "profiles": 0, "groups": 0, "history": 0, "mutes": 0}
    second = again.run()
    assert second["messages_migrated"] == first["messages_migrated"]
    assert world.wukong.store.message_count() == stored
    assert again.verify()["ok"]
    again.close()


class Crashing(httpx.AsyncBaseTransport):
    """The WuKongIM emulator, until the ``after``-th message send: then the process 'dies' mid-flight."""

    def __init__(self, inner: EmulatorTransport, after: int) -> None:
        self.inner, self.after, self.sends = inner, after, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/message/send":
            self.sends += 1
            if self.sends == self.after:
                await self.inner.handle_async_request(request)  # it lands, but nobody hears the answer
                raise SystemExit("killed")
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("crash_at", [1, 37, 150])
def test_resume_after_a_crash_mid_send_yields_each_message_once(world: World, tmp_path: Path, crash_at: int) -> None:
    state = tmp_path / "state.db"
    crashing = Migration(world.source(), world.target(Crashing(world.wukong.transport(), crash_at)), str(state),
                         MigrationOptions(concurrency=3, checkpoint_every=1000))  # fmt: skip
    with pytest.raises(SystemExit):
        crashing.run(world.users())
    crashing.state.close()
    resumed = migration(world, state)
    status = resumed.run()
    assert status["complete"], resumed.failures()
    expected = world.expected()
    actual = world.actual(list(expected))
    assert actual == expected
    assert all(count == 1 for ids in actual.values() for count in Counter(ids).values())
    assert resumed.verify()["ok"]
    resumed.close()


def test_verify_finds_a_duplicate_and_an_altered_message(world: World, tmp_path: Path) -> None:
    m = migration(world, tmp_path / "state.db")
    assert m.run(world.users())["complete"]
    assert m.verify()["ok"]
    group_id = next(g for g in world.tencent.store.group_ids() if not world.tencent.store.group(g).mute_all)
    with world.target_client() as im:
        conv = Conversation.group(target_id(group_id))
        first = next(iter(im.messages.iter_history(conv, "x", direction="forward")))
        im.with_options().messages.send(first.sender, conv, [Text("tampered")], metadata=first.metadata)
    result = m.verify()
    assert not result["ok"]
    assert [x["channel"] for x in result["mismatches"]] == [f"g:{group_id}"]
    assert result["mismatches"][0]["target_count"] == result["mismatches"][0]["source_count"] + 1
    m.close()


def test_cli_plan_run_verify_status_report(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    # The CLI reads settings from the environment; the emulators are served in-process through a patched
    # factory, so this test needs no socket.
    import imbridge.migration.cli as migrate_cli

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
    users.write_text("\n".join(world.users()[:5]) + "\n")
    state = str(tmp_path / "cli-state.db")
    assert main(["migrate", "plan", "--state", state, "--users", str(users), "--progress", "none"]) == 0
    assert "users" in capsys.readouterr().out
    assert main(["migrate", "run", "--state", state, "--progress", "json", "--phase", "accounts"]) == 1  # not complete
    err = capsys.readouterr().err
    assert any(json.loads(line)["phase"] == "accounts" for line in err.splitlines())
    assert main(["migrate", "run", "--state", state, "--progress", "none"]) == 0
    assert "messages: " in capsys.readouterr().out
    assert main(["--json", "migrate", "verify", "--state", state, "--progress", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["--json", "migrate", "status", "--state", state]) == 0
    assert json.loads(capsys.readouterr().out)["complete"] is True
    assert main(["migrate", "report", "--state", state]) == 0
    assert "zero mismatches" in capsys.readouterr().out


async def test_async_api_inside_a_running_loop(world: World, tmp_path: Path) -> None:
    m = migration(world, tmp_path / "state.db")
    try:
        status = await m.arun(world.users())
        assert status["complete"]
        assert (await m.averify())["ok"]
    finally:
        await m.aclose()
        m.close()
    await asyncio.sleep(0)


class Killed(BaseException):
    """The process dies at this point (not an error anything may catch)."""


class KillAfterFirstRevokeNotice(httpx.AsyncBaseTransport):
    """The WuKongIM emulator; the first revoke notice lands, then the process 'dies' before imbridge can
    record the revocation (the window of issue 13, point 5)."""

    def __init__(self, inner: EmulatorTransport) -> None:
        self.inner = inner
        self.notice: dict[str, Any] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.notice is None and request.url.path == "/message/send":
            body = json.loads(request.content)
            if str(body["client_msg_no"]).startswith("revoke-"):
                self.notice = body
                raise Killed()
        return response


def test_a_revoke_killed_between_its_notice_and_its_record_sends_one_notice(world: World, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    killer = KillAfterFirstRevokeNotice(world.wukong.transport())
    first = Migration(world.source(), world.target(killer), str(state), MigrationOptions(concurrency=1))
    with pytest.raises(Killed):
        first.run(world.users())
    first.close()
    assert killer.notice is not None

    resumed = Migration(world.source(), world.target(), str(state))
    assert resumed.run()["complete"], resumed.failures()
    resumed.close()
    # Read the emulator's store: how many notices revoke that message? They are sent sync_once, so they are
    # stored in the conversation's command channel (<stored id>____cmd), which messagesync cannot name for a
    # one-to-one chat (it derives the stored id from login_uid and channel_id).
    notice = killer.notice
    assert notice["header"].get("sync_once") == 1
    stored = notice["channel_id"] if notice["channel_type"] == 2 else fake_channel_id(notice["from_uid"],
                                                                                     notice["channel_id"])  # fmt: skip
    rows = world.wukong.store.messages(f"wk:{notice['channel_type']}:{stored}____cmd", limit=-1)
    notices = [r for r in rows if r.metadata["client_msg_no"] == notice["client_msg_no"]]
    assert len(notices) == 1, f"{len(notices)} revoke notices for one message"
    expected = world.expected()
    assert world.actual(list(expected)) == expected


def wipe_target(world: World) -> None:
    """The WuKongIM server restarted empty (imbridge's own store on the app's side survives)."""
    world.wukong.close()
    world.wukong = WukongEmulator(store=str(world.tmp / f"wukong-{secrets.token_hex(3)}.db"), store_delay_requests=1)


def test_a_run_after_the_target_lost_everything_notices_and_copies_it_again(world: World, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    m = migration(world, state, concurrency=4)
    first = m.run(world.users())
    m.close()
    assert first["complete"]
    expected = world.expected()
    wipe_target(world)
    assert not any(world.actual(list(expected)).values())

    again = migration(world, state)
    status = again.run()
    report = again.report()
    again.close()
    assert status["complete"], report["failures"]
    assert report["recheck"]["lost_groups"] == len(world.tencent.store.group_ids())
    assert report["recheck"]["lost_channels"] == len(expected)
    assert world.actual(list(expected)) == expected  # every message, once, in order
    with world.target_client() as im:  # groups as at the source again, muted-all included
        for group_id in world.tencent.store.group_ids():
            source_group = world.tencent.store.group(group_id)
            assert source_group is not None
            assert im.groups.get(target_id(group_id)).mute_all == bool(source_group.mute_all)
    checked = migration(world, state)
    assert checked.verify()["ok"]
    checked.close()


def test_verify_repair_copies_again_what_verify_finds_missing(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "MAX_LISTED", 5)  # a report lists 5 mismatches: the repair needs all
    state = tmp_path / "state.db"
    first = migration(world, state, concurrency=4, recheck=False)  # only verify can notice now
    assert first.run(world.users())["complete"]
    first.close()
    expected = world.expected()
    wipe_target(world)
    m = migration(world, state)
    assert m.run()["complete"]  # nothing re-checked: the run believes it
    assert not any(world.actual(list(expected)).values())
    repaired = m.repair()
    assert repaired["mismatches_before"] > 5 and repaired["ok"], repaired["verify"]["mismatches"]
    assert repaired["rounds"] == 1
    assert repaired["requeued_channels"] == len(expected)
    assert world.actual(list(expected)) == expected
    again = m.repair()  # nothing left to repair: one verify, nothing sent
    assert again["ok"] and again["rounds"] == 0
    assert world.actual(list(expected)) == expected
    m.close()


def test_a_target_outage_during_the_accounts_phase_fails_items_instead_of_the_run(world: World, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    switch = Switch(world.wukong.transport())
    switch.down = True
    m = Migration(world.source(), world.target(switch), str(state))
    status = m.run(world.users())  # returns: every item that needed the target is marked failed
    assert not status["complete"]
    assert status["phases"]["accounts"]["failed"] == len(world.users())
    assert all("TransportError" in f["error"] or "connect" in f["error"].lower() for f in m.failures())
    m.close()
    switch.down = False
    resumed = Migration(world.source(), world.target(switch), str(state))
    assert resumed.run()["complete"], resumed.failures()
    expected = world.expected()
    assert world.actual(list(expected)) == expected
    resumed.close()


def test_history_progress_has_totals_from_the_plan_and_an_eta_over_messages(world: World, tmp_path: Path) -> None:
    out = io.StringIO()
    ticks = itertools.count(0.0, 0.05)  # a clock that moves 50 ms at each reading: rates however fast the machine
    m = Migration(world.source(), world.target(), str(tmp_path / "state.db"), MigrationOptions(concurrency=4),
                  progress=make_progress("json", out, interval=0, clock=lambda: next(ticks)))  # fmt: skip
    plan = m.plan(world.users())
    expected = world.expected()
    total = sum(len(v) for v in expected.values())
    assert plan["group_messages"] == sum(len(v) for k, v in expected.items() if k[0] == "group")
    assert m.run()["complete"]
    m.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    messages = [line for line in lines if line["phase"] == "messages"]
    assert messages and all(line["total"] is not None for line in messages)  # never "1326/?"
    assert messages[0]["total_estimated"] and messages[0]["total"] >= plan["group_messages"]
    assert any(line["eta_seconds"] is not None for line in messages if line["event"] == "progress")
    assert (messages[-1]["done"], messages[-1]["total"]) == (total, total)
    channels = [line for line in lines if line["phase"] == "channels"]
    assert channels and all(line["eta_seconds"] is None for line in channels)
