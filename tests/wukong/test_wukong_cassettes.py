"""Every WuKongIM operation against cassettes recorded from a real WuKongIM v2.2.5 server.

Replay (default): the network is blocked and vcrpy answers from ``cassettes/wukong/`` (record_mode
"none": an unrecorded request fails the test). Record: ``/work/wk/reset.sh`` (a clean server), then
``IMBRIDGE_WUKONG_RECORD=1 IMBRIDGE_WUKONG_MANAGER_TOKEN=… .venv/bin/pytest tests/wukong -k cassette``
(see cassettes/wukong/PROVENANCE.md). Requests match on method, path, query and body (not host).
Ids are fixed (``cst-``), every send has a fixed idempotency key, and the only generated values in
bodies (tokens sent to /user/token) are replaced by a placeholder before matching and recording.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr  # type: ignore[import-untyped]
from pydantic import SecretStr

from imbridge import AsyncIMClient, Conversation, File, Image, IMClient, Location, Sound, Text
from imbridge._clock import SystemClock
from imbridge.config import WukongSettings
from imbridge.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from imbridge.models import Role
from imbridge.providers.wukong.provider import MUTED_INDEFINITELY, WukongProvider
from imbridge.retry import RetryPolicy

RECORD = os.environ.get("IMBRIDGE_WUKONG_RECORD") == "1"
CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "wukong"
BASE_URL = os.environ.get("IMBRIDGE_WUKONG_BASE_URL", "http://127.0.0.1:5001")
TOKEN_PLACEHOLDER = "<MANAGER_TOKEN>"
ISSUED_PLACEHOLDER = "<ISSUED_TOKEN>"
_JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


def _scrub_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ISSUED_PLACEHOLDER if k == "token" and v else _scrub_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(v) for v in value]
    return value


def _scrub_body(body: bytes | str | None) -> bytes | str | None:
    if not body:
        return body
    text = body.decode() if isinstance(body, bytes) else body
    try:
        scrubbed = json.dumps(_scrub_json(json.loads(text)), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        scrubbed = text
    scrubbed = _JWT.sub(ISSUED_PLACEHOLDER, scrubbed)
    return scrubbed.encode() if isinstance(body, bytes) else scrubbed


def _before_record_request(request: Any) -> Any:
    # Also applied to live requests before matching, so a fresh JWT matches its placeholder.
    request.body = _scrub_body(request.body)
    return request


def _before_record_response(response: dict[str, Any]) -> dict[str, Any]:
    response["body"]["string"] = _scrub_body(response["body"]["string"])
    return response


RECORDER = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="all" if RECORD else "none",
    match_on=("method", "path", "query", "body"),
    filter_headers=[("token", TOKEN_PLACEHOLDER)],
    before_record_request=_before_record_request,
    before_record_response=_before_record_response,
    decode_compressed_response=True,
)


class CassetteClock(SystemClock):
    """Real time, shiftable (to let a timed mute fall due); sleeps only while recording."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return super().monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        if RECORD:
            super().sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        if RECORD:
            await super().asleep(seconds)


@pytest.fixture(autouse=True)
def _no_network_on_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    if not RECORD:

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("network access during cassette replay")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        monkeypatch.setattr(socket, "create_connection", refuse)


def _settings(tmp_path: Path, **extra: Any) -> WukongSettings:
    token = os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN", "") if RECORD else TOKEN_PLACEHOLDER
    if RECORD and not token:
        pytest.fail("recording needs IMBRIDGE_WUKONG_MANAGER_TOKEN")
    return WukongSettings(
        base_url=BASE_URL, manager_token=token, store=str(tmp_path / "wk-store.db"), policy_cache_seconds=0,
        token_secret="cassette-test-secret-not-a-real-one-0123", **extra,
    )  # fmt: skip


@pytest.fixture
def clock() -> CassetteClock:
    return CassetteClock()


@pytest.fixture
def im(tmp_path: Path, clock: CassetteClock) -> Iterator[IMClient]:
    provider = WukongProvider(_settings(tmp_path), clock=clock)
    provider.registration_token = lambda uid: f"cst-registration-{uid}"
    client = IMClient(provider, http_client=httpx.Client(), clock=clock, retry=RetryPolicy(initial_backoff=0))
    yield client
    client.close()
    provider.close()


def cassette(name: str) -> Any:
    return RECORDER.use_cassette(f"{name}.yaml")


# -- the recordings ------------------------------------------------------------------------------


def test_cassette_users(im: IMClient) -> None:
    with cassette("users"):
        result = im.users.register(["cst-u-alice", "cst-u-bob"])
        assert result.ok and result.succeeded == ["cst-u-alice", "cst-u-bob"]
        again = im.users.register(["cst-u-alice"])
        assert again.items[0].detail == "already registered"
        creds = im.users.login_credentials("cst-u-alice", ttl=3600)
        assert creds.extra["device_flag"] == 0 and creds.expires_at > datetime.now(UTC)
        assert im.provider.verify_token(creds.token.get_secret_value()) == "cst-u-alice"
        im.users.set_profile("cst-u-alice", nickname="Alice", custom={"team": "blue"})
        [profile] = im.users.get_profiles(["cst-u-alice"])
        assert profile.nickname == "Alice" and profile.custom == {"team": "blue"}
        with pytest.raises(InvalidRequestError):  # WuKongIM refuses the system uid (FACTS §2)
            im.provider.call("POST", "/user/token", {"uid": "____system", "token": "x"})


def test_cassette_person_messages(im: IMClient) -> None:
    a, b = "cst-pa", "cst-pb"
    with cassette("person_messages"):
        first = im.messages.send(sender=a, to=Conversation.user(b), content=[Text("hi b")], idempotency_key="cst-p-1")
        assert first.confirmed and first.seq == 1
        im.messages.send(sender=b, to=Conversation.user(a), content=[Image(url="https://example.com/i.png", width=4,
                         height=3)], idempotency_key="cst-p-2")  # fmt: skip
        im.messages.send(sender=a, to=Conversation.user(b), content=[Sound(url="https://example.com/s.amr",
                         duration=3), File(url="https://example.com/f.pdf", name="f.pdf")],
                         metadata={"order": 1}, idempotency_key="cst-p-3")  # fmt: skip
        im.messages.send(sender=b, to=Conversation.user(a), content=Location(latitude=1.0, longitude=2.0),
                         idempotency_key="cst-p-4")  # fmt: skip
        unconfirmed = im.messages.send(sender=a, to=Conversation.user(b), content="fire and forget",
                                       idempotency_key="cst-p-5", confirm=False)  # fmt: skip
        assert not unconfirmed.confirmed and unconfirmed.seq is None
        for viewer, peer in ((a, b), (b, a)):
            page = im.messages.history(Conversation.user(peer), viewer=viewer, limit=50)
            assert [m.seq for m in page] == [5, 4, 3, 2, 1]
        newest = im.messages.history(Conversation.user(b), viewer=a, limit=2)
        assert [m.seq for m in newest] == [5, 4] and newest.next_cursor
        older = im.messages.history(Conversation.user(b), viewer=a, limit=2, cursor=newest.next_cursor)
        assert [m.seq for m in older] == [3, 2]
        third = im.messages.history(Conversation.user(b), viewer=a, limit=2, cursor=older.next_cursor)
        assert [m.seq for m in third] == [1] and third.next_cursor is None
        forward = im.messages.history(Conversation.user(b), viewer=a, limit=3, direction="forward")
        assert [m.seq for m in forward] == [1, 2, 3]
        msg3 = forward.items[2]
        assert msg3.elements == [Sound(url="https://example.com/s.amr", duration=3),
                                 File(url="https://example.com/f.pdf", name="f.pdf")]  # fmt: skip
        assert msg3.metadata == {"order": 1} and msg3.sender == a
        rest = im.messages.history(Conversation.user(b), viewer=a, limit=3, direction="forward",
                                   cursor=forward.next_cursor)  # fmt: skip
        assert [m.seq for m in rest] == [4, 5] and rest.next_cursor is None
        assert rest.items[0].elements == [Location(latitude=1.0, longitude=2.0)]
        im.messages.revoke(first.ref)
        after = im.messages.history(Conversation.user(a), viewer=b, limit=50)
        assert [(m.seq, m.revoked) for m in after][-1] == (1, True)
        assert len(after) == 5  # the revoke notice (seq 6) is not shown as a message


def test_cassette_group_lifecycle(im: IMClient) -> None:
    gid = "cst-g-life"
    with cassette("group_lifecycle"):
        group = im.groups.create(name="Life", owner="cst-o", members=["cst-m1"], admins=["cst-ad"], group_id=gid,
                                 introduction="intro")  # fmt: skip
        assert group.member_count == 3 and group.owner == "cst-o" and not group.mute_all
        with pytest.raises(ConflictError):
            im.groups.create(name="Again", owner="cst-o", group_id=gid)
        assert im.groups.get(gid).name == "Life"
        assert im.groups.update(gid, name="Renamed", notification="n").name == "Renamed"
        added = im.groups.add_members(gid, ["cst-m2", "cst-m1"])
        assert [(i.target, i.ok, i.detail) for i in added.items] == [("cst-m2", True, ""),
                                                                     ("cst-m1", True, "already a member")]  # fmt: skip
        roles = {m.user_id: m.role for m in im.groups.members(gid)}
        assert roles == {"cst-o": Role.OWNER, "cst-ad": Role.ADMIN, "cst-m1": Role.MEMBER, "cst-m2": Role.MEMBER}
        removed = im.groups.remove_members(gid, ["cst-m2", "cst-o", "cst-nobody"])
        assert [(i.target, i.ok) for i in removed.items] == [("cst-m2", True), ("cst-o", False), ("cst-nobody", False)]
        assert isinstance(removed.items[1].error, PermissionDeniedError)
        assert isinstance(removed.items[2].error, NotFoundError)
        im.groups.dismiss(gid)
        with pytest.raises(NotFoundError):
            im.groups.get(gid)
        with pytest.raises(NotFoundError):
            im.groups.dismiss(gid)
        with pytest.raises(NotFoundError):
            im.groups.get("cst-g-never")
        revived = im.groups.create(name="Second life", owner="cst-o2", members=["cst-m3"], group_id=gid)
        assert revived.name == "Second life"
        assert sorted(m.user_id for m in im.groups.members(gid)) == ["cst-m3", "cst-o2"]  # reset=1


def test_cassette_group_policy_and_mutes(im: IMClient, tmp_path: Path, clock: CassetteClock) -> None:
    gid, group = "cst-g-pol", Conversation.group("cst-g-pol")
    with cassette("group_policy_mutes"):
        im.groups.create(name="Policy", owner="cst-own", members=["cst-m", "cst-n"], group_id=gid)
        sent = im.messages.send(sender="cst-m", to=group, content="hello", idempotency_key="cst-gp-1")
        assert sent.confirmed and sent.seq == 1
        with pytest.raises(PermissionDeniedError, match="not a member"):
            im.messages.send(sender="cst-stranger", to=group, content="x", idempotency_key="cst-gp-x")
        im.groups.mute(gid, ["cst-m"], duration=60)
        [muted] = im.groups.muted(gid)
        assert muted.user_id == "cst-m" and muted.muted_until is not None
        with pytest.raises(PermissionDeniedError, match="muted"):
            im.messages.send(sender="cst-m", to=group, content="x", idempotency_key="cst-gp-x")
        clock.offset = 61  # the mute falls due: the next send lifts it on WuKongIM first
        assert im.messages.send(sender="cst-m", to=group, content="free", idempotency_key="cst-gp-2").seq == 2
        assert im.groups.muted(gid) == []
        im.groups.mute(gid, ["cst-n"], duration=3600)
        im.groups.unmute(gid, ["cst-n"])
        assert im.groups.muted(gid) == []
        with pytest.raises(NotFoundError):
            im.groups.mute(gid, ["cst-stranger"], duration=60)
        # a denylist entry made outside imbridge has no expiry: reported as muted indefinitely
        im.provider.call("POST", "/channel/blacklist_add", {"channel_id": gid, "channel_type": 2, "uids": ["cst-n"]})
        [outside] = im.groups.muted(gid)
        assert outside.user_id == "cst-n" and outside.muted_until == MUTED_INDEFINITELY
        im.provider.call("POST", "/channel/blacklist_remove", {"channel_id": gid, "channel_type": 2, "uids": ["cst-n"]})
        im.provider.call("POST", "/channel/info",
                         {"channel_id": gid, "channel_type": 2, "large": 1, "allow_stranger": 1})  # fmt: skip
        im.groups.mute_all(gid, True)
        assert im.groups.get(gid).mute_all
        with pytest.raises(PermissionDeniedError, match="muted as a whole"):
            im.messages.send(sender="cst-own", to=group, content="x", idempotency_key="cst-gp-x")
        # without imbridge's policy the server takes the send and silently drops it: surfaced as an error
        loose = IMClient(WukongProvider(_settings(tmp_path, enforce_policy=False), clock=clock),
                         http_client=httpx.Client(), clock=clock)  # fmt: skip
        with pytest.raises(PermissionDeniedError, match="did not store it"):
            loose.messages.send(sender="cst-own", to=group, content="dropped", idempotency_key="cst-gp-drop")
        loose.close()
        im.groups.mute_all(gid, False)
        assert not im.groups.get(gid).mute_all
        assert im.messages.send(sender="cst-own", to=group, content="back", idempotency_key="cst-gp-3").seq == 3
        channel = im.provider.call("GET", "/cluster/channels", params={"channel_id": gid, "channel_type": 2})
        assert channel["data"][0]["ban"] == 0 and channel["data"][0]["disband"] == 0


def test_cassette_group_history_and_revoke(im: IMClient) -> None:
    gid, group = "cst-g-hist", Conversation.group("cst-g-hist")
    with cassette("group_history_revoke"):
        im.groups.create(name="History", owner="cst-h-own", members=["cst-h-m"], group_id=gid)
        refs = [
            im.messages.send(sender="cst-h-m", to=group, content=f"m{i}", idempotency_key=f"cst-gh-{i}").ref
            for i in range(1, 8)
        ]
        backward = [m.seq for m in im.messages.iter_history(group, viewer="cst-h-own", page_size=3)]
        assert backward == [7, 6, 5, 4, 3, 2, 1]
        forward = [m.seq for m in im.messages.iter_history(group, viewer="cst-h-own", page_size=3,
                                                           direction="forward")]  # fmt: skip
        assert forward == [1, 2, 3, 4, 5, 6, 7]
        im.messages.revoke(refs[2])
        im.messages.revoke(refs[2])  # already revoked: no second notice
        page = im.messages.history(group, viewer="cst-h-m", limit=50)
        assert [(m.seq, m.revoked) for m in page] == [(7, False), (6, False), (5, False), (4, False), (3, True),
                                                      (2, False), (1, False)]  # fmt: skip
        assert page.items[4].elements == []
        raw = im.provider.call("POST", "/channel/messagesync",
                               {"login_uid": "cst-h-m", "channel_id": gid, "channel_type": 2, "limit": 20})  # fmt: skip
        assert len(raw["messages"]) == 8  # WuKongIM keeps the content; the notice is message 8
        with pytest.raises(NotFoundError):
            im.messages.history(Conversation.group("cst-g-none"), viewer="cst-h-m", limit=5)


def test_cassette_send_batch(im: IMClient) -> None:
    with cassette("send_batch"):
        result = im.messages.send_batch(sender="cst-b-from", recipients=["cst-b-1", "cst-b-2", "cst-b@bad"],
                                        content="notice", idempotency_key="cst-batch-1")  # fmt: skip
        assert result.succeeded == ["cst-b-1", "cst-b-2"]
        [failed] = result.failed
        assert failed.target == "cst-b@bad" and isinstance(failed.error, InvalidRequestError)
        page = im.messages.history(Conversation.user("cst-b-from"), viewer="cst-b-1", limit=5)
        assert [m.elements for m in page] == [[Text("notice")]]


def test_cassette_errors(im: IMClient, tmp_path: Path, clock: CassetteClock) -> None:
    with cassette("errors"):
        with pytest.raises(InvalidRequestError, match="no route") as route:
            im.provider.call("GET", "/cst/nosuch")
        assert route.value.http_status == 404
        with pytest.raises(InvalidRequestError) as empty:
            im.provider.call("POST", "/message/send", {"channel_id": "cst-x", "channel_type": 2})
        assert empty.value.http_status == 400
        with pytest.raises(NotFoundError):
            im.provider.call("GET", "/message/byclientmsgno",
                             params={"channel_id": "cst-x", "channel_type": 2, "client_msg_no": "none"})  # fmt: skip
        assert im.provider.call("GET", "/health") == {"status": "ok"}
        wrong = WukongProvider(_settings(tmp_path).model_copy(update={"manager_token": SecretStr("wrong-on-purpose")}))
        bad = IMClient(wrong, http_client=httpx.Client(), clock=clock)
        with pytest.raises(AuthenticationError):
            bad.groups.get("cst-x")
        bad.close()
        wrong.close()


async def test_cassette_async_send(tmp_path: Path, clock: CassetteClock) -> None:
    provider = WukongProvider(_settings(tmp_path), clock=clock)
    with cassette("async_send"):
        async with AsyncIMClient(provider, http_client=httpx.AsyncClient(), clock=clock) as im:
            sent = await im.messages.send(sender="cst-as-a", to=Conversation.user("cst-as-b"), content="async",
                                          idempotency_key="cst-as-1")  # fmt: skip
            assert sent.confirmed and sent.seq == 1
            page = await im.messages.history(Conversation.user("cst-as-a"), viewer="cst-as-b", limit=5)
            assert [m.elements for m in page] == [[Text("async")]]
    provider.close()


def test_cassettes_hold_no_secret() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        text = path.read_text()
        assert not _JWT.search(text), path.name
        tokens = re.findall(r"token:\s*\n\s*-\s*(.+)", text)
        assert tokens and set(tokens) == {TOKEN_PLACEHOLDER}, path.name
        assert "cst-registration-" not in text, path.name
        for body in re.findall(r'"token":"([^"]*)"', text.replace('\\"', '"')):
            assert body == ISSUED_PLACEHOLDER, path.name
