"""The Tencent IM emulator: auth, limits, paging, windows, seeds, and the loopback server, driven through
imbridge's real Tencent provider (IMClient) or raw v4 calls."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from imbridge import AsyncIMClient, Conversation, IMClient, Text
from imbridge.emulators import EmulatorRequest, serve
from imbridge.emulators.tencent import TencentEmulator
from imbridge.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
)
from imbridge.providers.tencent.usersig import generate_usersig
from imbridge.retry import RetryPolicy
from imbridge.testing import FakeClock

KEY = "emulator-test-key-not-a-secret"
APP = 1400000001
ADMIN = "administrator"


def make(
    emulator: TencentEmulator | None = None, *, clock: FakeClock | None = None, key: str = KEY, app: int = APP,
    admin: str = ADMIN, attempts: int = 1, **settings: Any,
) -> IMClient:  # fmt: skip
    emulator = emulator or TencentEmulator(sdk_app_id=APP, secret_key=KEY, clock=clock)
    return IMClient(
        "tencent", sdk_app_id=app, secret_key=key, admin=admin, base_url="http://tencent.emulator",
        http_client=httpx.Client(transport=emulator.transport()), clock=clock or FakeClock(),
        retry=RetryPolicy(initial_backoff=0, max_attempts=attempts), **settings,
    )  # fmt: skip


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[TencentEmulator]:
    emu = TencentEmulator(sdk_app_id=APP, secret_key=KEY, clock=clock)
    yield emu
    emu.close()


@pytest.fixture
def im(emulator: TencentEmulator, clock: FakeClock) -> Iterator[IMClient]:
    client = make(emulator, clock=clock)
    yield client
    client.close()


def raw(im: IMClient, path: str, body: dict[str, Any]) -> Any:
    service, command = path.split("/")
    return im.provider.call(service, command, body)


def direct(emulator: TencentEmulator, path: str, body: dict[str, Any]) -> Any:
    """The emulator's answer as it is, without the provider decoding (and raising on) it."""
    sig = generate_usersig(APP, KEY, ADMIN, 3600, now=emulator.clock.now().timestamp())
    query = {"sdkappid": str(APP), "identifier": ADMIN, "usersig": sig, "random": "7", "contenttype": "json"}
    reply = emulator.handle(EmulatorRequest("POST", f"/v4/{path}", query, {}, json.dumps(body).encode()))
    assert reply.status == 200
    return json.loads(reply.body)


def code_of(call: Any) -> int:
    with pytest.raises(ProviderError) as caught:
        call()
    assert isinstance(caught.value.native_code, int)
    return caught.value.native_code


def team(im: IMClient, *extra: str) -> str:
    im.users.register(["own", "adm", "mem", "out", *extra])
    return im.groups.create("Team", owner="own", admins=["adm"], members=["mem", *extra], group_id="team").id


# -- UserSig and identity ------------------------------------------------------------------------


def test_usersig_signed_with_another_key_is_refused(emulator: TencentEmulator, clock: FakeClock) -> None:
    with make(emulator, clock=clock, key="some-other-apps-key") as im, pytest.raises(AuthenticationError) as caught:
        im.users.register(["alice"])
    assert caught.value.native_code == 70009
    assert emulator.store.existing_users(["alice"]) == set()


def test_another_app_and_non_admin_are_refused(emulator: TencentEmulator, clock: FakeClock) -> None:
    with make(emulator, clock=clock, app=APP + 1) as im, pytest.raises(AuthenticationError) as caught:
        im.users.register(["alice"])
    assert caught.value.native_code == 70014
    # A valid sig of an ordinary account: the identifier must be an App admin.
    with make(emulator, clock=clock, admin="bob") as im, pytest.raises(PermissionDeniedError) as denied:
        im.users.register(["alice"])
    assert denied.value.native_code == 60010


def _raw_request(query: dict[str, str], body: bytes = b"{}") -> EmulatorRequest:
    return EmulatorRequest("POST", "/v4/im_open_login_svc/multiaccount_import", query, {}, body)


@pytest.mark.parametrize(
    ("usersig", "identifier", "code"),
    [
        ("", ADMIN, 70002),
        ("not-a-usersig", ADMIN, 70003),
        (generate_usersig(APP, KEY, "someone", 3600, now=FakeClock().now().timestamp()), ADMIN, 70013),
        (generate_usersig(APP, KEY, ADMIN, 60, now=FakeClock().now().timestamp() - 120), ADMIN, 70001),
    ],
)
def test_usersig_checks(emulator: TencentEmulator, usersig: str, identifier: str, code: int) -> None:
    query = {"sdkappid": str(APP), "identifier": identifier, "usersig": usersig, "random": "1", "contenttype": "json"}
    reply = emulator.handle(_raw_request(query))
    assert reply.status == 200
    answer = json.loads(reply.body)
    assert (answer["ActionStatus"], answer["ErrorCode"]) == ("FAIL", code)


def test_expired_sig_is_renewed_by_the_client(emulator: TencentEmulator, clock: FakeClock) -> None:
    with make(emulator, clock=clock, attempts=2, usersig_ttl=3600) as im:
        im.users.register(["alice"])
        clock.advance(3600 * 2)  # the cached sig is now past its renew time: a new one is made
        assert im.users.register(["bob"]).ok
    # A sig that expired at the server although the client thought it fresh: 70001, renewed once.
    late = FakeClock()
    with make(emulator, clock=late, attempts=2, usersig_ttl=3600) as im:
        clock.advance(3600 * 5)
        with pytest.raises(AuthenticationError) as caught:
            im.users.register(["carol"])
        assert caught.value.native_code == 70001 and caught.value.credentials_expired


# -- frequency limits ----------------------------------------------------------------------------


def test_burst_above_the_configured_rate_gets_a_frequency_code(clock: FakeClock) -> None:
    emulator = TencentEmulator(sdk_app_id=APP, secret_key=KEY, clock=clock,
                               rate_limits={"sendmsg": 5, "get_group_info": 5})  # fmt: skip
    # The client paces far above the server's limit, so the burst reaches the server.
    with make(emulator, clock=FakeClock(), rate_limits={"sendmsg": 10_000, "get_group_info": 10_000}) as im:
        im.users.register(["alice", "bob"])
        for i in range(5):
            im.messages.send("alice", Conversation.user("bob"), f"m{i}")
        with pytest.raises(RateLimitError) as caught:
            im.messages.send("alice", Conversation.user("bob"), "one too many")
        assert caught.value.native_code == 60007
        clock.advance(1)  # a second later the bucket has refilled
        im.messages.send("alice", Conversation.user("bob"), "later")
        # Group commands answer with the group family's code.
        im.groups.create("G", owner="alice", group_id="g1")
        for _ in range(4):
            im.groups.get("g1")
        with pytest.raises(RateLimitError) as group_caught:
            im.groups.get("g1")
        assert group_caught.value.native_code == 10006


def test_group_list_default_limit_is_one_per_second(emulator: TencentEmulator, clock: FakeClock) -> None:
    # The client's own pacing (1/s too) would wait; this one runs on its own clock and paces faster.
    with make(emulator, clock=FakeClock(), rate_limits={"get_appid_group_list": 1000}) as im:
        raw(im, "group_open_http_svc/get_appid_group_list", {})
        assert code_of(lambda: raw(im, "group_open_http_svc/get_appid_group_list", {})) == 10006
        clock.advance(1)
        assert raw(im, "group_open_http_svc/get_appid_group_list", {})["TotalCount"] == 0


def test_group_message_frequency_drop_is_reported(emulator: TencentEmulator, clock: FakeClock) -> None:
    with make(emulator, clock=FakeClock()) as im:
        team(im)
        body = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "x"}}]
        for i in range(40):
            raw(im, "group_open_http_svc/send_group_msg", {"GroupId": "team", "Random": i, "MsgBody": body})
        with pytest.raises(RateLimitError) as caught:
            im.messages.send("own", Conversation.group("team"), "41st in one second")
        assert caught.value.native_code == "MsgFreqCtrl"
        assert len(emulator.store.messages("g:team", limit=-1)) == 40


# -- batch sizes ---------------------------------------------------------------------------------


def test_documented_batch_sizes(im: IMClient) -> None:
    many = [f"u{i}" for i in range(501)]
    assert code_of(lambda: raw(im, "im_open_login_svc/multiaccount_import", {"Accounts": many[:101]})) == 70206
    raw(im, "im_open_login_svc/multiaccount_import", {"Accounts": many[:100]})
    body = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "x"}}]
    assert code_of(lambda: raw(im, "openim/batchsendmsg",
                               {"To_Account": many, "MsgRandom": 1, "MsgBody": body})) == 90011  # fmt: skip
    team(im)
    members = [{"Member_Account": uid} for uid in many[:101]]
    code = code_of(lambda: raw(im, "group_open_http_svc/add_group_member", {"GroupId": "team", "MemberList": members}))
    assert code == 10005
    seqs = [{"MsgSeq": i} for i in range(1, 12)]
    assert code_of(lambda: raw(im, "group_open_http_svc/group_msg_recall",
                               {"GroupId": "team", "MsgSeqList": seqs})) == 10004  # fmt: skip
    ids = [f"g{i}" for i in range(51)]
    assert code_of(lambda: raw(im, "group_open_http_svc/get_group_info", {"GroupIdList": ids})) == 10004
    # Through the client, which splits into documented chunks, everything goes through.
    assert im.users.register(many).ok
    assert im.messages.send_batch("u0", many[1:], "notice").ok


# -- group history pages -------------------------------------------------------------------------


def test_group_msg_get_simple_caps_pages_at_20(im: IMClient) -> None:
    team(im)
    for i in range(30):
        im.messages.send("mem", Conversation.group("team"), f"m{i}")
    page = raw(im, "group_open_http_svc/group_msg_get_simple", {"GroupId": "team", "ReqMsgNumber": 50})
    seqs = [m["MsgSeq"] for m in page["RspMsgList"]]
    assert seqs == list(range(30, 10, -1)) and page["IsFinished"] == 0
    rest = raw(im, "group_open_http_svc/group_msg_get_simple",
               {"GroupId": "team", "ReqMsgNumber": 20, "ReqMsgSeq": min(seqs) - 1})  # fmt: skip
    assert [m["MsgSeq"] for m in rest["RspMsgList"]] == list(range(10, 0, -1)) and rest["IsFinished"] == 1
    # The client walks the pages: all 30, newest first.
    history = list(im.messages.iter_history(Conversation.group("team"), viewer="own", page_size=25))
    assert [m.seq for m in history] == list(range(30, 0, -1))


def test_recalled_group_messages_are_placeholders(im: IMClient) -> None:
    team(im)
    first = im.messages.send("mem", Conversation.group("team"), "keep")
    oops = im.messages.send("mem", Conversation.group("team"), "oops")
    im.messages.revoke(oops.ref)
    im.messages.revoke(oops.ref)  # twice succeeds: the provider confirms the 10032 is "already recalled"
    again = raw(im, "group_open_http_svc/group_msg_recall", {"GroupId": "team", "MsgSeqList": [{"MsgSeq": oops.seq}]})
    assert again["RecallRetList"] == [{"MsgSeq": oops.seq, "RetCode": 10032}]
    plain = raw(im, "group_open_http_svc/group_msg_get_simple", {"GroupId": "team", "ReqMsgNumber": 5})
    assert [m["MsgSeq"] for m in plain["RspMsgList"]] == [first.seq]
    full = raw(im, "group_open_http_svc/group_msg_get_simple",
               {"GroupId": "team", "ReqMsgNumber": 5, "WithRecalledMsg": 1})  # fmt: skip
    assert [(m["MsgSeq"], m["IsPlaceMsg"]) for m in full["RspMsgList"]] == [(oops.seq, 2), (first.seq, 0)]
    missing = raw(im, "group_open_http_svc/group_msg_recall", {"GroupId": "team", "MsgSeqList": [{"MsgSeq": 99}]})
    assert missing["RecallRetList"] == [{"MsgSeq": 99, "RetCode": 10030}]


# -- retention -----------------------------------------------------------------------------------


def test_retention_window(im: IMClient, clock: FakeClock) -> None:
    team(im)
    old_group = im.messages.send("mem", Conversation.group("team"), "old")
    im.messages.send("own", Conversation.user("mem"), "old dm")
    clock.advance(timedelta(days=6))
    im.messages.send("mem", Conversation.group("team"), "new")
    im.messages.send("own", Conversation.user("mem"), "new dm")
    clock.advance(timedelta(days=2))  # the first two are 8 days old now, past the 7-day default
    # The expired one comes back as a placeholder ("IsPlaceMsg 为1 ... 过期"), and the window is whole (IsFinished 1).
    page = raw(im, "group_open_http_svc/group_msg_get_simple", {"GroupId": "team", "ReqMsgNumber": 20})
    assert [(m["MsgSeq"], m["IsPlaceMsg"]) for m in page["RspMsgList"]] == [(2, 0), (1, 1)]
    assert page["RspMsgList"][1]["MsgBody"] == [] and page["IsFinished"] == 1
    older = raw(im, "group_open_http_svc/group_msg_get_simple", {"GroupId": "team", "ReqMsgNumber": 20, "ReqMsgSeq": 1})
    assert [m["IsPlaceMsg"] for m in older["RspMsgList"]] == [1] and older["IsFinished"] == 1
    group_history = im.messages.history(Conversation.group("team"), viewer="own", limit=10)
    assert [m.elements for m in group_history.items] == [[Text("new")]]
    dm = im.messages.history(Conversation.user("mem"), viewer="own", limit=10)
    assert [m.elements for m in dm.items] == [[Text("new dm")]]
    recall = raw(im, "group_open_http_svc/group_msg_recall",
                 {"GroupId": "team", "MsgSeqList": [{"MsgSeq": old_group.seq}]})  # fmt: skip
    assert recall["RecallRetList"][0]["RetCode"] == 10031
    contacts = raw(im, "recentcontact/get_list", {"From_Account": "own", "TimeStamp": 0, "StartIndex": 0})
    assert {(s["Type"], s.get("To_Account", s.get("GroupId"))) for s in contacts["SessionItem"]} == {
        (1, "mem"),
        (2, "team"),
    }


# -- dedupe windows ------------------------------------------------------------------------------


def test_c2c_dedupe_window(im: IMClient, clock: FakeClock) -> None:
    im.users.register(["alice", "bob"])
    body = {"From_Account": "alice", "To_Account": "bob", "MsgSeq": 7, "MsgRandom": 42,
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]}  # fmt: skip
    first = raw(im, "openim/sendmsg", body)
    assert first["MsgKey"] == f"7_42_{first['MsgTime']}"  # "{MsgSeq}_{MsgRandom}_{MsgTime}"
    clock.advance(119)
    assert raw(im, "openim/sendmsg", body)["MsgKey"] == first["MsgKey"]  # the duplicate names the original
    other = {**body, "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "other"}}]}
    assert raw(im, "openim/sendmsg", other)["MsgKey"] != first["MsgKey"]  # other content: not a duplicate
    clock.advance(2)  # 121 s after the first: the window is over, the same message is stored again
    assert raw(im, "openim/sendmsg", body)["MsgKey"] != first["MsgKey"]
    history = im.messages.history(Conversation.user("bob"), viewer="alice", limit=10)
    assert [m.elements[0] for m in history.items] == [Text("hi"), Text("other"), Text("hi")]


def test_group_dedupe_window(im: IMClient, clock: FakeClock) -> None:
    team(im)
    body = {"GroupId": "team", "From_Account": "mem", "Random": 5,
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]}  # fmt: skip
    first = raw(im, "group_open_http_svc/send_group_msg", body)
    clock.advance(299)
    assert raw(im, "group_open_http_svc/send_group_msg", body)["MsgSeq"] == first["MsgSeq"]
    assert raw(im, "group_open_http_svc/send_group_msg", {**body, "From_Account": "own"})["MsgSeq"] == 2
    clock.advance(2)
    assert raw(im, "group_open_http_svc/send_group_msg", body)["MsgSeq"] == 3


# -- group rules ---------------------------------------------------------------------------------


def test_send_rules_and_error_codes(im: IMClient) -> None:
    team(im)
    group = Conversation.group("team")
    assert code_of(lambda: im.messages.send("out", group, "let me in")) == 10007
    im.groups.mute("team", ["mem"], timedelta(minutes=5))
    assert code_of(lambda: im.messages.send("mem", group, "muted")) == 10017
    im.groups.unmute("team", ["mem"])
    im.groups.mute_all("team", True)
    assert code_of(lambda: im.messages.send("mem", group, "all muted")) == 10017
    im.messages.send("adm", group, "admins may")
    with pytest.raises(NotFoundError) as unknown_group:
        im.messages.send("own", Conversation.group("nope"), "?")
    assert unknown_group.value.native_code == 10010
    with pytest.raises(NotFoundError) as unknown_user:
        im.messages.send("own", Conversation.user("ghost"), "?")
    assert unknown_user.value.native_code == 90012
    sent = im.messages.send("own", Conversation.user("mem"), "regret")
    im.messages.revoke(sent.ref)
    again = {"From_Account": "own", "To_Account": "mem", "MsgKey": sent.ref.key}
    assert code_of(lambda: raw(im, "openim/admin_msgwithdraw", again)) == 20023
    assert code_of(lambda: raw(im, "openim/admin_msgwithdraw", {**again, "MsgKey": "1_2_3"})) == 20022
    with pytest.raises(InvalidRequestError):
        raw(im, "openim/admin_msgwithdraw", {**again, "MsgKey": "garbage"})


# -- export commands -----------------------------------------------------------------------------


def test_export_commands_page(im: IMClient, emulator: TencentEmulator, clock: FakeClock) -> None:
    team(im, "m1", "m2", "m3")
    for gid in ("g2", "g3"):
        im.groups.create(gid, owner="own", group_id=gid)
    groups: list[str] = []
    cursor = 0
    while True:
        clock.advance(1)  # 1 call per second
        page = raw(im, "group_open_http_svc/get_appid_group_list", {"Limit": 2, "Next": cursor})
        assert page["TotalCount"] == 3
        groups += [g["GroupId"] for g in page["GroupIdList"]]
        cursor = page["Next"]
        if cursor == 0:
            break
    assert sorted(groups) == ["g2", "g3", "team"]
    members = raw(im, "group_open_http_svc/get_group_member_info", {"GroupId": "team", "Limit": 4, "Offset": 4})
    assert members["MemberNum"] == 6 and len(members["MemberList"]) == 2
    im.groups.mute("team", ["m1"], timedelta(hours=1))
    muted = raw(im, "group_open_http_svc/get_group_muted_account", {"GroupId": "team"})
    assert [m["Member_Account"] for m in muted["MutedAccountList"]] == ["m1"]
    for i in range(7):
        im.messages.send("own" if i % 2 else "mem", Conversation.user("mem" if i % 2 else "own"), f"c{i}")
        clock.advance(0.4)
    keys: list[str] = []
    request = {"Operator_Account": "own", "Peer_Account": "mem", "MaxCnt": 3, "MinTime": 0,
               "MaxTime": int(clock.now().timestamp())}  # fmt: skip
    while True:
        roam = raw(im, "openim/admin_getroammsg", request)
        keys += [m["MsgKey"] for m in roam["MsgList"]]
        if roam["Complete"] == 1:
            break
        request.update(MaxTime=roam["LastMsgTime"], LastMsgKey=roam["LastMsgKey"])
    assert len(keys) == len(set(keys)) == 7
    profile = direct(
        emulator, "profile/portrait_get", {"To_Account": ["own", "ghost"], "TagList": ["Tag_Profile_IM_Nick"]}
    )
    assert profile["ErrorCode"] == 0 and profile["Fail_Account"] == ["ghost"]
    assert [item["ResultCode"] for item in profile["UserProfileItem"]] == [0, 40003]


# -- seeds ---------------------------------------------------------------------------------------


def _snapshot(emulator: TencentEmulator) -> list[Any]:
    with make(emulator, clock=FakeClock()) as im:
        ids = [g["GroupId"] for g in raw(im, "group_open_http_svc/get_appid_group_list", {})["GroupIdList"]]
        infos = raw(im, "group_open_http_svc/get_group_info", {"GroupIdList": ids})["GroupInfo"]
        pages = [raw(im, "group_open_http_svc/group_msg_get_simple",
                     {"GroupId": gid, "ReqMsgNumber": 20, "WithRecalledMsg": 1}) for gid in ids]  # fmt: skip
        return [infos, pages]


def test_seed_small_and_determinism() -> None:
    start = FakeClock().now()
    emulators = [
        TencentEmulator(
            secret_key=KEY, sdk_app_id=APP, clock=FakeClock(start), rate_limits={"get_appid_group_list": 1000}
        )
        for _ in range(3)
    ]
    counts = [emu.seed("small", rng_seed=s) for emu, s in zip(emulators, (3, 3, 4), strict=True)]
    assert counts[0]["users"] == 20 and counts[0]["groups"] == 3 and counts[0]["messages"] == 300
    assert counts[0] == counts[1]
    assert _snapshot(emulators[0]) == _snapshot(emulators[1])
    assert _snapshot(emulators[0]) != _snapshot(emulators[2])
    with pytest.raises(ValueError):
        emulators[0].seed("small")
    with pytest.raises(ValueError):
        emulators[2].seed("huge")


def test_seed_demo(tmp_path: Any) -> None:
    clock = FakeClock()
    emulator = TencentEmulator(secret_key=KEY, sdk_app_id=APP, clock=clock, store=str(tmp_path / "demo.db"))
    began = time.perf_counter()
    counts = emulator.seed("demo")
    assert time.perf_counter() - began < 10
    assert counts["users"] >= 200 and counts["groups"] == 20 and counts["messages"] == 20_000
    assert counts["group_messages"] > 0 and counts["c2c_messages"] > 0 and counts["revoked"] > 0
    assert counts["mutes"] > 0
    with make(emulator, clock=clock, profile_custom_keys=["Level"]) as im:
        clock.advance(1)
        ids = [g["GroupId"] for g in raw(im, "group_open_http_svc/get_appid_group_list", {})["GroupIdList"]]
        assert len(ids) == 20
        infos = raw(im, "group_open_http_svc/get_group_info", {"GroupIdList": ids})["GroupInfo"]
        assert sum(i["MuteAllMember"] == "On" for i in infos) == 1
        roles = {m["Role"] for i in infos for m in i["MemberList"]}
        assert roles == {"Owner", "Admin", "Member"}
        assert sum(len(im.groups.muted(gid)) for gid in ids) > 0
        owner = infos[0]["Owner_Account"]
        (profile,) = im.users.get_profiles([owner])
        assert profile.nickname and profile.gender and profile.custom["Level"]
        sessions = raw(im, "recentcontact/get_list", {"From_Account": owner})["SessionItem"]
        assert any(s["Type"] == 1 for s in sessions) and any(s["Type"] == 2 for s in sessions)
        oldest = min(s["MsgTime"] for s in sessions)
        assert clock.now().timestamp() - oldest < 5 * 86400
        # Group history is complete inside the retention window, with some recalled.
        seqs, placeholders = [], 0
        request: dict[str, Any] = {"GroupId": ids[0], "ReqMsgNumber": 20, "WithRecalledMsg": 1}
        while True:  # the doc's walk: next ask at the smallest seq returned minus 1, down to seq 1
            page = raw(im, "group_open_http_svc/group_msg_get_simple", request)
            seqs += [m["MsgSeq"] for m in page["RspMsgList"]]
            placeholders += sum(m["IsPlaceMsg"] == 2 for m in page["RspMsgList"])
            assert page["IsFinished"] == 1
            if min(seqs) == 1:
                break
            request["ReqMsgSeq"] = min(seqs) - 1
        assert seqs == list(range(len(seqs), 0, -1)) and len(seqs) > 100


# -- provider fixes found by the emulator --------------------------------------------------------


def test_messages_of_one_second_keep_send_order(im: IMClient) -> None:
    im.users.register(["alice", "bob"])
    for i in range(6):  # the fake clock does not move: all in one second
        im.messages.send("alice", Conversation.user("bob"), f"m{i}")
    page = im.messages.history(Conversation.user("bob"), viewer="alice", limit=10)
    assert [m.elements[0] for m in page.items] == [Text(f"m{i}") for i in range(5, -1, -1)]


def test_custom_profile_keys_set_by_the_client_are_read_back(im: IMClient) -> None:
    im.users.register(["alice"])
    im.users.set_profile("alice", custom={"Level": "3"})
    (profile,) = im.users.get_profiles(["alice"])
    assert profile.custom == {"Level": "3"}


# -- loopback server -----------------------------------------------------------------------------


async def test_loopback_server_sync_and_async() -> None:
    emulator = TencentEmulator(sdk_app_id=APP, secret_key=KEY)
    emulator.seed("small")
    with serve(emulator) as server:
        settings = {"sdk_app_id": APP, "secret_key": KEY, "admin": ADMIN, "base_url": server.url}
        with IMClient("tencent", **settings) as im:
            im.users.register(["zed", "yan"])
            im.messages.send("zed", Conversation.user("yan"), "over real HTTP")
            page = im.messages.history(Conversation.user("yan"), viewer="zed", limit=5)
            assert [m.elements for m in page.items] == [[Text("over real HTTP")]]
            with IMClient("tencent", **{**settings, "secret_key": "wrong"}) as bad, pytest.raises(AuthenticationError):
                bad.users.register(["x"])
        async with AsyncIMClient("tencent", **settings) as aim:  # the default aiohttp driver
            await aim.messages.send("yan", Conversation.user("zed"), "async reply")
            page = await aim.messages.history(Conversation.user("yan"), viewer="zed", limit=5)
            assert [m.elements for m in page.items] == [[Text("async reply")], [Text("over real HTTP")]]
    emulator.close()


async def test_async_client_in_process(emulator: TencentEmulator, clock: FakeClock) -> None:
    async with AsyncIMClient(
        "tencent", sdk_app_id=APP, secret_key=KEY, admin=ADMIN, base_url="http://tencent.emulator", clock=clock,
        http_client=httpx.AsyncClient(transport=emulator.transport()),
    ) as aim:  # fmt: skip
        await aim.users.register(["a", "b"])
        group = await aim.groups.create("Async", owner="a", members=["b"])
        assert group.id.startswith("@TGS#")
        sent = await aim.messages.send("b", Conversation.group(group.id), "hello")
        assert sent.seq == 1


def test_get_role_in_group_answers_each_account_as_documented(im: IMClient, emulator: TencentEmulator) -> None:
    """https://cloud.tencent.com/document/product/269/1626: Owner/Admin/Member, or NotMember, per account."""
    im.users.register(["own", "adm", "mem", "out"])
    im.groups.create("Roles", owner="own", members=["mem"], admins=["adm"], group_id="roles")
    reply = raw(im, "group_open_http_svc/get_role_in_group", {"GroupId": "roles", "User_Account": ["own", "adm",
                                                                                                    "mem", "out"]})
    assert {row["Member_Account"]: row["Role"] for row in reply["UserIdList"]} == {
        "own": "Owner", "adm": "Admin", "mem": "Member", "out": "NotMember",
    }  # fmt: skip
    too_many = direct(emulator, "group_open_http_svc/get_role_in_group",
                      {"GroupId": "roles", "User_Account": [f"u{i}" for i in range(501)]})  # fmt: skip
    assert too_many["ErrorCode"] == 10004
    unknown = direct(emulator, "group_open_http_svc/get_role_in_group", {"GroupId": "nope", "User_Account": ["own"]})
    assert unknown["ErrorCode"] == 10010
