"""Every WuKongIM operation against cassettes recorded from a real WuKongIM v2.2.5 server.

Replay (default): the network is blocked and vcrpy answers from ``cassettes/wukong/`` (record_mode
"none": an unrecorded request fails the test). Record (any running server, wiped or not):
``IMBRIDGE_WUKONG_RECORD=1 IMBRIDGE_WUKONG_MANAGER_TOKEN=… .venv/bin/pytest tests/wukong -k cassette``
(see cassettes/wukong/PROVENANCE.md). Requests match on method, path, query and body (not host).
Every id and idempotency key starts with a per-recording prefix, saved in ``cassettes/wukong/cassette-run.json``
and read back on replay, so a recording never meets the data of an earlier one; message seqs are asserted
relative to the first one sent. The only generated values in bodies (tokens sent to /user/token) are
replaced by a placeholder before matching and recording.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import time
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
from imbridge.providers.wukong.provider import WukongProvider
from imbridge.retry import RetryPolicy

RECORD = os.environ.get("IMBRIDGE_WUKONG_RECORD") == "1"
#: Record only these tests (comma-separated names), each under a prefix of its own kept in the run file, so
#: that one recording can be redone without redoing (and re-prefixing) the others.
RECORD_ONLY = {name for name in os.environ.get("IMBRIDGE_WUKONG_RECORD_ONLY", "").split(",") if name}
CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "wukong"
BASE_URL = os.environ.get("IMBRIDGE_WUKONG_BASE_URL", "http://127.0.0.1:5001")
TOKEN_PLACEHOLDER = "<MANAGER_TOKEN>"
ISSUED_PLACEHOLDER = "<ISSUED_TOKEN>"
_JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")
RUN_FILE = CASSETTES / "cassette-run.json"


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
    drop_unused_requests=RECORD,  # a recording replaces a cassette's old interactions instead of adding to them
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


@pytest.fixture(scope="module")
def run_prefix() -> str:
    """The recording's id prefix: new (and saved) when recording every test, read back otherwise."""
    if not RECORD or RECORD_ONLY:
        prefix: str = json.loads(RUN_FILE.read_text())["prefix"]
        return prefix
    prefix = "cst" + secrets.token_hex(3)
    RUN_FILE.write_text(json.dumps({"prefix": prefix}) + "\n")
    return prefix


@pytest.fixture
def p(run_prefix: str, request: pytest.FixtureRequest) -> str:
    """This test's id prefix: the recording's, or its own when it was recorded apart (IMBRIDGE_WUKONG_RECORD_ONLY)."""
    test = request.node.name
    document = json.loads(RUN_FILE.read_text())
    own: dict[str, str] = document.setdefault("prefixes", {})
    if RECORD and RECORD_ONLY:
        if test not in RECORD_ONLY:
            pytest.skip("recording other tests only (IMBRIDGE_WUKONG_RECORD_ONLY)")
        own[test] = "cst" + secrets.token_hex(3)
        RUN_FILE.write_text(json.dumps(document, sort_keys=True) + "\n")
    return own.get(test, run_prefix)


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


def test_cassette_users(im: IMClient, p: str) -> None:
    alice, bob = f"{p}-u-alice", f"{p}-u-bob"
    with cassette("users"):
        result = im.users.register([alice, bob])
        assert result.ok and result.succeeded == [alice, bob]
        again = im.users.register([alice])
        assert again.items[0].detail == "already registered"
        creds = im.users.login_credentials(alice, ttl=3600)
        assert creds.extra["device_flag"] == 0 and creds.expires_at > datetime.now(UTC)
        assert im.provider.authenticate(creds.token.get_secret_value()) == alice
        im.users.set_profile(alice, nickname="Alice", custom={"team": "blue"})
        [profile] = im.users.get_profiles([alice])
        assert profile.nickname == "Alice" and profile.custom == {"team": "blue"}
        with pytest.raises(NotFoundError):  # GET /cluster/users: HTTP 500, empty body, for an unknown uid
            im.users.get_profiles([f"{p}-u-nobody"])
        with pytest.raises(InvalidRequestError):  # WuKongIM refuses the system uid (FACTS §2)
            im.provider.call("POST", "/user/token", {"uid": "____system", "token": "x"})


def test_cassette_person_messages(im: IMClient, p: str) -> None:
    a, b = f"{p}-pa", f"{p}-pb"
    with cassette("person_messages"):
        im.users.register([a, b])
        first = im.messages.send(sender=a, to=Conversation.user(b), content=[Text("hi b")], idempotency_key=f"{p}-p-1")
        assert first.confirmed and first.seq is not None and first.seq >= 1
        base = first.seq
        im.messages.send(sender=b, to=Conversation.user(a), content=[Image(url="https://example.com/i.png", width=4,
                         height=3)], idempotency_key=f"{p}-p-2")  # fmt: skip
        im.messages.send(sender=a, to=Conversation.user(b), content=[Sound(url="https://example.com/s.amr",
                         duration=3), File(url="https://example.com/f.pdf", name="f.pdf")],
                         metadata={"order": 1}, idempotency_key=f"{p}-p-3")  # fmt: skip
        im.messages.send(sender=b, to=Conversation.user(a), content=Location(latitude=1.0, longitude=2.0),
                         idempotency_key=f"{p}-p-4")  # fmt: skip
        unconfirmed = im.messages.send(sender=a, to=Conversation.user(b), content="fire and forget",
                                       idempotency_key=f"{p}-p-5", confirm=False)  # fmt: skip
        assert not unconfirmed.confirmed and unconfirmed.seq is None
        # the caller's key again: found by GET /message/byclientmsgno, not sent a second time
        again = im.messages.send(sender=a, to=Conversation.user(b), content=[Text("hi b")], idempotency_key=f"{p}-p-1")
        assert again.ref == first.ref and again.seq == base
        for viewer, peer in ((a, b), (b, a)):
            page = im.messages.history(Conversation.user(peer), viewer=viewer, limit=50)
            assert [m.seq - base for m in page] == [4, 3, 2, 1, 0]  # (seq values are relative to the first)
        newest = im.messages.history(Conversation.user(b), viewer=a, limit=2)
        assert [m.seq - base for m in newest] == [4, 3] and newest.next_cursor
        older = im.messages.history(Conversation.user(b), viewer=a, limit=2, cursor=newest.next_cursor)
        assert [m.seq - base for m in older] == [2, 1]
        third = im.messages.history(Conversation.user(b), viewer=a, limit=2, cursor=older.next_cursor)
        assert [m.seq - base for m in third] == [0] and third.next_cursor is None
        forward = im.messages.history(Conversation.user(b), viewer=a, limit=3, direction="forward")
        assert [m.seq - base for m in forward] == [0, 1, 2]
        msg3 = forward.items[2]
        assert msg3.elements == [Sound(url="https://example.com/s.amr", duration=3),
                                 File(url="https://example.com/f.pdf", name="f.pdf")]  # fmt: skip
        assert msg3.metadata == {"order": 1} and msg3.sender == a
        rest = im.messages.history(Conversation.user(b), viewer=a, limit=3, direction="forward",
                                   cursor=forward.next_cursor)  # fmt: skip
        assert [m.seq - base for m in rest] == [3, 4] and rest.next_cursor is None
        assert rest.items[0].elements == [Location(latitude=1.0, longitude=2.0)]
        im.messages.revoke(first.ref)
        after = im.messages.history(Conversation.user(a), viewer=b, limit=50)
        assert [(m.seq, m.revoked) for m in after][-1] == (base, True)
        assert len(after) == 5  # the revoke notice (the sixth message) is not shown as a message
        # users are checked first: an unknown recipient is refused without a send
        with pytest.raises(NotFoundError, match="nobody"):
            im.messages.send(sender=a, to=Conversation.user(f"{p}-nobody"), content="x", idempotency_key=f"{p}-p-x")
        # a user registered on WuKongIM directly (not through imbridge) is found by GET /cluster/users
        outsider = f"{p}-outsider"
        im.provider.call("POST", "/user/token", {"uid": outsider, "token": "direct", "device_flag": 0})
        hello = im.messages.send(sender=a, to=Conversation.user(outsider), content="hi", idempotency_key=f"{p}-p-6")
        assert hello.confirmed


def test_cassette_group_lifecycle(im: IMClient, p: str) -> None:
    gid, owner, m1, m2, m3, admin = (f"{p}-{n}" for n in ("g-life", "o", "m1", "m2", "m3", "ad"))
    with cassette("group_lifecycle"):
        group = im.groups.create(name="Life", owner=owner, members=[m1], admins=[admin], group_id=gid,
                                 introduction="intro")  # fmt: skip
        assert group.member_count == 3 and group.owner == owner and not group.mute_all
        with pytest.raises(ConflictError):
            im.groups.create(name="Again", owner=owner, group_id=gid)
        assert im.groups.get(gid).name == "Life"
        assert im.groups.update(gid, name="Renamed", notification="n").name == "Renamed"
        added = im.groups.add_members(gid, [m2, m1])
        assert [(i.target, i.ok, i.detail) for i in added.items] == [(m2, True, ""), (m1, True, "already a member")]
        roles = {m.user_id: m.role for m in im.groups.members(gid)}
        assert roles == {owner: Role.OWNER, admin: Role.ADMIN, m1: Role.MEMBER, m2: Role.MEMBER}
        nobody = f"{p}-nobody"
        removed = im.groups.remove_members(gid, [m2, owner, nobody])
        assert [(i.target, i.ok) for i in removed.items] == [(m2, True), (owner, False), (nobody, False)]
        assert isinstance(removed.items[1].error, PermissionDeniedError)
        assert isinstance(removed.items[2].error, NotFoundError)
        im.groups.dismiss(gid)
        with pytest.raises(NotFoundError):
            im.groups.get(gid)
        with pytest.raises(NotFoundError):
            im.groups.dismiss(gid)
        with pytest.raises(NotFoundError):
            im.groups.get(f"{p}-g-never")
        owner2 = f"{p}-o2"
        revived = im.groups.create(name="Second life", owner=owner2, members=[m3], group_id=gid)
        assert revived.name == "Second life"
        assert sorted(m.user_id for m in im.groups.members(gid)) == sorted([m3, owner2])  # reset=1


def test_cassette_group_policy_and_mutes(im: IMClient, tmp_path: Path, clock: CassetteClock, p: str) -> None:
    gid = f"{p}-g-pol"
    group = Conversation.group(gid)
    own, m, n, stranger = (f"{p}-{x}" for x in ("own", "m", "n", "stranger"))
    with cassette("group_policy_mutes"):
        im.users.register([own, m, n, stranger])
        im.groups.create(name="Policy", owner=own, members=[m, n], group_id=gid)
        sent = im.messages.send(sender=m, to=group, content="hello", idempotency_key=f"{p}-gp-1")
        assert sent.confirmed and sent.seq is not None
        base = sent.seq
        with pytest.raises(PermissionDeniedError, match="not a member"):
            im.messages.send(sender=stranger, to=group, content="x", idempotency_key=f"{p}-gp-x")
        im.groups.mute(gid, [m], duration=60)
        [muted] = im.groups.muted(gid)
        assert muted.user_id == m and muted.muted_until is not None
        with pytest.raises(PermissionDeniedError, match="muted"):
            im.messages.send(sender=m, to=group, content="x", idempotency_key=f"{p}-gp-x")
        clock.offset = 61  # the mute falls due: the next send lifts it on WuKongIM first
        assert im.messages.send(sender=m, to=group, content="free", idempotency_key=f"{p}-gp-2").seq == base + 1
        assert im.groups.muted(gid) == []
        im.groups.mute(gid, [n], duration=3600)
        im.groups.unmute(gid, [n])
        assert im.groups.muted(gid) == []
        with pytest.raises(NotFoundError):
            im.groups.mute(gid, [stranger], duration=60)
        # a denylist entry made outside imbridge has no expiry: reported as muted with no end
        im.provider.call("POST", "/channel/blacklist_add", {"channel_id": gid, "channel_type": 2, "uids": [n]})
        [outside] = im.groups.muted(gid)
        assert outside.user_id == n and outside.muted and outside.muted_until is None
        im.provider.call("POST", "/channel/blacklist_remove", {"channel_id": gid, "channel_type": 2, "uids": [n]})
        im.provider.call("POST", "/channel/info",
                         {"channel_id": gid, "channel_type": 2, "large": 1, "allow_stranger": 1})  # fmt: skip
        im.groups.mute_all(gid, True)
        assert im.groups.get(gid).mute_all
        with pytest.raises(PermissionDeniedError, match="muted as a whole"):
            im.messages.send(sender=own, to=group, content="x", idempotency_key=f"{p}-gp-x")
        # without imbridge's policy the server takes the send and silently drops it: surfaced as an error
        loose = IMClient(WukongProvider(_settings(tmp_path, enforce_policy=False), clock=clock),
                         http_client=httpx.Client(), clock=clock)  # fmt: skip
        with pytest.raises(PermissionDeniedError, match="did not store it"):
            loose.messages.send(sender=own, to=group, content="dropped", idempotency_key=f"{p}-gp-drop")
        loose.close()
        im.groups.mute_all(gid, False)
        assert not im.groups.get(gid).mute_all
        assert im.messages.send(sender=own, to=group, content="back", idempotency_key=f"{p}-gp-3").seq == base + 2
        channel = im.provider.call("GET", "/cluster/channels", params={"channel_id": gid, "channel_type": 2})
        assert channel["data"][0]["ban"] == 0 and channel["data"][0]["disband"] == 0


def test_cassette_group_history_and_revoke(im: IMClient, p: str) -> None:
    gid, own, member = f"{p}-g-hist", f"{p}-h-own", f"{p}-h-m"
    group = Conversation.group(gid)
    with cassette("group_history_revoke"):
        im.users.register([own, member])
        im.groups.create(name="History", owner=own, members=[member], group_id=gid)
        refs = [
            im.messages.send(sender=member, to=group, content=f"m{i}", idempotency_key=f"{p}-gh-{i}").ref
            for i in range(1, 8)
        ]
        seqs = [ref.seq for ref in refs]
        assert seqs[0] is not None and seqs == list(range(seqs[0], seqs[0] + 7))
        backward = [m.seq for m in im.messages.iter_history(group, viewer=own, page_size=3)]
        assert backward == seqs[::-1]
        forward = [m.seq for m in im.messages.iter_history(group, viewer=own, page_size=3,
                                                           direction="forward")]  # fmt: skip
        assert forward == seqs
        im.messages.revoke(refs[2])
        im.messages.revoke(refs[2])  # already revoked: no second notice
        page = im.messages.history(group, viewer=member, limit=50)
        assert [(m.seq, m.revoked) for m in page] == [(seq, seq == seqs[2]) for seq in seqs[::-1]]
        assert page.items[4].elements == []
        raw = im.provider.call("POST", "/channel/messagesync",
                               {"login_uid": member, "channel_id": gid, "channel_type": 2, "limit": 20})  # fmt: skip
        assert len(raw["messages"]) == 7  # WuKongIM keeps the content; the notice is not in the chat...
        notice = im.provider.call("GET", "/message/byclientmsgno", params={  # ...but in its command channel
            "channel_id": f"{gid}____cmd", "channel_type": 2, "client_msg_no": f"revoke-{refs[2].key}"})  # fmt: skip
        assert notice["from_uid"] == member and notice["channel_id"] == f"{gid}____cmd"
        with pytest.raises(NotFoundError):
            im.messages.history(Conversation.group(f"{p}-g-none"), viewer=member, limit=5)


def test_cassette_send_batch(im: IMClient, p: str) -> None:
    sender, one, two, ghost, bad = (f"{p}-{x}" for x in ("b-from", "b-1", "b-2", "b-ghost", "b@bad"))
    with cassette("send_batch"):
        im.users.register([sender, one, two])
        result = im.messages.send_batch(sender=sender, recipients=[one, two, ghost, bad], content="notice",
                                        idempotency_key=f"{p}-batch-1")  # fmt: skip
        assert result.succeeded == [one, two]
        failed = {item.target: item.error for item in result.failed}
        assert isinstance(failed[ghost], NotFoundError)  # not registered: looked up, never sent
        assert isinstance(failed[bad], InvalidRequestError)  # refused by WuKongIM in its answer
        for _ in range(50):  # sendbatch stores asynchronously (FACTS §7): read until it is there
            page = im.messages.history(Conversation.user(sender), viewer=one, limit=5)
            if page.items:
                break
            time.sleep(0.05 if RECORD else 0)  # a replay reads the recorded answers in the same order
        assert [m.elements for m in page] == [[Text("notice")]]


def test_cassette_errors(im: IMClient, tmp_path: Path, clock: CassetteClock, p: str) -> None:
    with cassette("errors"):
        with pytest.raises(InvalidRequestError, match="no route") as route:
            im.provider.call("GET", "/cst/nosuch")
        assert route.value.http_status == 404
        with pytest.raises(InvalidRequestError) as empty:
            im.provider.call("POST", "/message/send", {"channel_id": f"{p}-x", "channel_type": 2})
        assert empty.value.http_status == 400
        with pytest.raises(NotFoundError):
            im.provider.call("GET", "/message/byclientmsgno",
                             params={"channel_id": f"{p}-x", "channel_type": 2, "client_msg_no": "none"})  # fmt: skip
        assert im.provider.call("GET", "/health") == {"status": "ok"}
        wrong = WukongProvider(_settings(tmp_path).model_copy(update={"manager_token": SecretStr("wrong-on-purpose")}))
        bad = IMClient(wrong, http_client=httpx.Client(), clock=clock)
        with pytest.raises(AuthenticationError):
            bad.groups.get(f"{p}-x")
        bad.close()
        wrong.close()


async def test_cassette_async_send(tmp_path: Path, clock: CassetteClock, p: str) -> None:
    provider = WukongProvider(_settings(tmp_path), clock=clock)
    provider.registration_token = lambda uid: f"cst-registration-{uid}"
    a, b = f"{p}-as-a", f"{p}-as-b"
    with cassette("async_send"):
        async with AsyncIMClient(provider, http_client=httpx.AsyncClient(), clock=clock) as im:
            await im.users.register([a, b])
            sent = await im.messages.send(sender=a, to=Conversation.user(b), content="async",
                                          idempotency_key=f"{p}-as-1")  # fmt: skip
            assert sent.confirmed and sent.seq is not None
            page = await im.messages.history(Conversation.user(a), viewer=b, limit=5)
            assert [(m.seq, m.elements) for m in page] == [(sent.seq, [Text("async")])]
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
