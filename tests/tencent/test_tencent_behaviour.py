"""Tencent provider behaviour over httpx.MockTransport: errors, renewal, dedupe keys, pacing, paging."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tencent_support import TEST_APP, TEST_KEY, Sent, fail, make_client, official, ok

from imbridge import AsyncIMClient, Conversation, IMClient
from imbridge._flow import Request, Response
from imbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    IMBridgeError,
    InvalidRequestError,
    MessageMayHaveLandedError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
)
from imbridge.models import Custom, Face, File, Image, Location, Sound, Text, Video
from imbridge.providers.tencent._core import HOSTS
from imbridge.providers.tencent.mapping import ERROR_TABLE, element_from_wire, element_to_wire, error_for
from imbridge.providers.tencent.usersig import verify_usersig
from imbridge.providers.tencent.wire import MsgElement
from imbridge.retry import RetryPolicy
from imbridge.testing import FakeClock

# -- the error table, row by row -------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(ERROR_TABLE))
def test_error_table_row(code: int) -> None:
    rule = ERROR_TABLE[code]
    im, _ = make_client(lambda s: fail(code))
    provider = im.provider._provider
    request = Request("POST", "v4/openim/sendmsg", json={}, api="sendmsg")
    with pytest.raises(ProviderError) as caught:
        provider.decode(request, Response(200, {}, json.dumps(fail(code, "x")).encode()))
    error = caught.value
    assert type(error) is rule.kind
    assert error.native_code == code
    assert error.retryable == (rule.retryable or rule.retry_after is not None)
    if isinstance(error, AuthenticationError):
        assert error.credentials_expired == (code in (70001, 20002))


def test_retryable_codes_of_the_reference_are_retryable() -> None:
    listed = {60007, 60008, 60011, 60014, 60018, 60019, 70169, 70202, 70500, 20004, 20005, 20028, 90992, 90994,
              90995, 91000, 10002, 10006, 10023, 30006, 30007, 40006, 50004, 50005, 1003}  # fmt: skip
    assert all(error_for(code).retryable for code in listed)
    assert not error_for(70107).retryable and not error_for(10010).retryable
    assert isinstance(error_for(123456), ProviderError) and not error_for(123456).retryable  # webhook range
    assert type(error_for(99999)) is ProviderError


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [(429, RateLimitError, True), (502, ServiceUnavailableError, True), (503, ServiceUnavailableError, True),
     (404, ProviderError, False)],
)  # fmt: skip
def test_http_status_mapping(status: int, kind: type[Exception], retryable: bool) -> None:
    im, server = make_client(lambda s: httpx.Response(status, headers={"Retry-After": "2"}, text="busy"))
    with pytest.raises(IMBridgeError) as caught:
        im.messages.send("a", Conversation.user("b"), "x")
    error: BaseException = caught.value
    if status >= 500:
        # a 5xx may come after the server processed the send: said as such, the mapped error as its cause
        assert isinstance(error, MessageMayHaveLandedError) and error.__cause__ is not None
        error = error.__cause__
    assert type(error) is kind and error.retryable == retryable  # type: ignore[attr-defined]
    assert len(server.sent) == (3 if retryable else 1)
    if status == 429:
        assert error.retry_after == timedelta(seconds=2)  # type: ignore[attr-defined]


def test_non_json_200_is_retryable() -> None:
    im, server = make_client(lambda s: httpx.Response(200, text="<html>"))
    with pytest.raises(MessageMayHaveLandedError) as caught:  # processed, perhaps: the answer was garbled
        im.messages.send("a", Conversation.user("b"), "x")
    assert isinstance(caught.value.__cause__, ServiceUnavailableError)
    assert len(server.sent) == 3


def test_unknown_fields_are_tolerated() -> None:
    im, _ = make_client(lambda s: ok(MsgTime=1, MsgKey="k", RequestId="r-1", Whatever={"x": 1}))
    assert im.messages.send("a", Conversation.user("b"), "x").ref.key == "k"


# -- renewal, dedupe keys --------------------------------------------------------------------------


def test_expired_usersig_renews_and_retries_once() -> None:
    clock = FakeClock()
    replies = iter([fail(70001, "expired"), ok(MsgTime=1, MsgKey="k1")])
    im, server = make_client(lambda s: next(replies), clock=clock)
    assert im.messages.send("a", Conversation.user("b"), "x").ref.key == "k1"
    assert len(server.sent) == 2
    second = server.sent[1].params["usersig"]
    # The second request was signed anew (the cache was dropped), still valid for the admin.
    verify_usersig(second, TEST_APP, TEST_KEY, now=clock.now().timestamp(), identifier="administrator")
    assert im.provider._provider._sigs.generated == 2


def test_expired_usersig_twice_gives_up_after_one_renewal() -> None:
    im, server = make_client(lambda s: fail(70001))
    with pytest.raises(AuthenticationError) as caught:
        im.messages.send("a", Conversation.user("b"), "x")
    assert caught.value.credentials_expired and len(server.sent) == 2


def test_msgrandom_and_msgseq_unchanged_across_retries() -> None:
    replies = iter([fail(20005), fail(91000), ok(MsgTime=1, MsgKey="k")])
    im, server = make_client(lambda s: next(replies))
    im.messages.send("a", Conversation.user("b"), "x", idempotency_key="order-42")
    assert len(server.sent) == 3
    assert len({(s.body["MsgRandom"], s.body["MsgSeq"]) for s in server.sent}) == 1
    assert len({s.params["random"] for s in server.sent}) == 3  # the URL random is per request
    # Same idempotency key -> same numbers on a later call too.
    im2, server2 = make_client(lambda s: ok(MsgTime=1, MsgKey="k"))
    im2.messages.send("a", Conversation.user("b"), "x", idempotency_key="order-42")
    assert server2.sent[0].body["MsgRandom"] == server.sent[0].body["MsgRandom"]


def test_group_random_unchanged_across_retries_and_transport_errors() -> None:
    calls = Counter[str]()

    def respond(sent: Sent) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ReadTimeout("slow")
        if calls["n"] == 2:
            return fail(10002)
        return ok(MsgTime=1, MsgSeq=7)

    im, server = make_client(respond, retry=RetryPolicy(initial_backoff=0, max_attempts=4))
    sent = im.messages.send("a", Conversation.group("g1"), "x")
    assert sent.seq == 7 and len({s.body["Random"] for s in server.sent}) == 1 and len(server.sent) == 3


def test_msg_drop_reason_surfaces_after_retries() -> None:
    im, server = make_client(lambda s: ok(MsgTime=1, MsgSeq=3, MsgDropReason="MsgFreqCtrl"))
    with pytest.raises(RateLimitError) as caught:
        im.messages.send("a", Conversation.group("g1"), "x")
    assert caught.value.native_code == "MsgFreqCtrl" and caught.value.attempts == 3
    assert len({s.body["Random"] for s in server.sent}) == 1


# -- pacing ----------------------------------------------------------------------------------------


def _max_in_window(times: list[float], width: float = 1.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= width - 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("limit", [None, 50.0])
def test_burst_of_1000_sends_never_exceeds_the_rate(limit: float | None) -> None:
    clock = FakeClock()
    settings = {"rate_limits": {"sendmsg": limit}} if limit else {}
    im, server = make_client(lambda s: ok(MsgTime=1, MsgKey="k"), clock=clock, **settings)
    for i in range(1000):
        im.messages.send("a", Conversation.user("b"), f"m{i}")
    rate = int(limit or 200)
    assert len(server.sent) == 1000
    assert _max_in_window([s.at for s in server.sent]) <= rate
    assert clock.elapsed == pytest.approx(999 / rate, rel=0.01)  # spread out, not slower than needed


def test_batchsendmsg_paced_by_recipients() -> None:
    clock = FakeClock()
    im, server = make_client(lambda s: ok(MsgKey="k", ErrorList=[]), clock=clock)
    recipients = [f"u{i}" for i in range(1200)]
    for _ in range(10):  # 12,000 recipient-messages
        assert im.messages.send_batch("sys", recipients, "notice").ok
    assert [len(s.body["To_Account"]) for s in server.sent[:3]] == [500, 500, 200]
    # Count recipients per 60 s window: never over 12,000.
    events = [(s.at, len(s.body["To_Account"])) for s in server.sent]
    for t0, _ in events:
        assert sum(n for t, n in events if t0 <= t < t0 + 60) <= 12_000


def test_get_appid_group_list_paced_at_one_per_second() -> None:
    clock = FakeClock()
    im, server = make_client(lambda s: ok(TotalCount=0, GroupIdList=[], Next=0), clock=clock)
    for _ in range(5):
        im.provider.call("group_open_http_svc", "get_appid_group_list", {"Limit": 10})
    assert _max_in_window([s.at for s in server.sent]) == 1


# -- escape hatch, settings ------------------------------------------------------------------------


def test_call_escape_hatch_uses_auth_and_error_mapping() -> None:
    replies = [fail(70500), ok(ResultItem=[{"UserID": "a", "AccountStatus": "Imported"}])]
    im, server = make_client(lambda s: replies.pop(0) if replies else ok(Echo=1))
    reply = im.provider.call("im_open_login_svc", "account_check", {"CheckItem": [{"UserID": "a"}]})
    assert reply["ResultItem"][0]["AccountStatus"] == "Imported"
    assert server.sent[0].path == "/v4/im_open_login_svc/account_check" and len(server.sent) == 2
    assert im.provider.call("openim", "noop")["Echo"] == 1 and server.sent[-1].body == {}
    with pytest.raises(InvalidRequestError):
        im.provider.call("../x", "y")


def test_region_hosts_and_base_url() -> None:
    for region, host in HOSTS.items():
        im, server = make_client(lambda s: ok(FailAccounts=[]), region=region)
        with im:
            im.users.register(["a"])
        assert server.sent[0].path.startswith("/v4/")
        assert im.provider._provider.base_url == f"https://{host}"
    im, _ = make_client(lambda s: ok(), region="Silicon Valley")
    assert im.provider._provider.base_url == "https://adminapiusa.im.qcloud.com"
    im, _ = make_client(lambda s: ok(), base_url="http://127.0.0.1:9/")
    assert im.provider._provider.base_url == "http://127.0.0.1:9"
    with pytest.raises(ConfigurationError):
        make_client(lambda s: ok(), region="atlantis")


def test_secret_never_in_repr_or_describe() -> None:
    im, _ = make_client(lambda s: ok())
    assert TEST_KEY not in repr(im) + repr(im.describe()) + repr(im.provider._provider)


def test_login_credentials_is_a_user_usersig() -> None:
    clock = FakeClock()
    im, server = make_client(lambda s: ok(), clock=clock)
    creds = im.users.login_credentials("alice", ttl=3600)
    assert not server.sent
    document = verify_usersig(creds.token.get_secret_value(), TEST_APP, TEST_KEY, now=clock.now().timestamp(),
                              identifier="alice")  # fmt: skip
    assert document["TLS.expire"] == 3600
    assert creds.expires_at == clock.now() + timedelta(seconds=3600)
    assert creds.token.get_secret_value() not in repr(creds)


# -- elements, metadata, options -------------------------------------------------------------------

ELEMENTS = [
    Text("hello"), Location(latitude=29.34, longitude=116.77, description="someinfo"), Face(index=1, data="content"),
    Custom(data="message", description="notification", ext="url", sound="dingdong.aiff"),
    Sound(url="https://x/s", duration=1, size=62351, uuid="u1"),
    Image(url="https://x/i/0", width=2448, height=3264, size=1853095, format="jpg", uuid="u2",
          thumbnail_url="https://x/i/198"),
    File(url="https://x/f", name="a.mov", size=1773552, uuid="u3"),
    Video(url="https://x/v", duration=5, size=1194603, format="mp4", uuid="u4", thumbnail_url="https://x/t",
          thumbnail_width=720, thumbnail_height=1280, thumbnail_size=13907, thumbnail_format="JPG",
          thumbnail_uuid="u5"),
]  # fmt: skip


@pytest.mark.parametrize("element", ELEMENTS, ids=lambda e: e.type)
def test_elements_round_trip(element: Any) -> None:
    wire_element = element_to_wire(element)
    assert element_from_wire(MsgElement.model_validate(wire_element)) == element


def test_official_element_examples_parse_and_match_field_names() -> None:
    examples = [e for e in official("msg_elements")["elements"] if e.get("msg_type")]
    ours = {element_to_wire(e)["MsgType"]: element_to_wire(e)["MsgContent"] for e in ELEMENTS}
    for example in examples:
        body = example["body"]
        parsed = element_from_wire(MsgElement.model_validate(body))
        if "2.X and 3.X" in example["title"] or body["MsgType"] not in ours:
            # No URL, or a type REST cannot send (TIMRelayElem): kept whole as Custom data, never dropped.
            assert isinstance(parsed, Custom) and json.loads(parsed.data)["MsgType"] == body["MsgType"]
            continue
        assert parsed.type != "custom" or body["MsgType"] == "TIMCustomElem"
        official_keys = set(body["MsgContent"])
        assert set(ours[body["MsgType"]]) == official_keys, body["MsgType"]
        if body["MsgType"] == "TIMImageElem":
            assert len(body["MsgContent"]["ImageInfoArray"][0]) == len(ours["TIMImageElem"]["ImageInfoArray"][0])


def test_metadata_travels_as_cloudcustomdata_and_conflicts_are_refused() -> None:
    im, server = make_client(lambda s: ok(MsgTime=1, MsgKey="k"))
    im.messages.send("a", Conversation.user("b"), "x", metadata={"order": 42})
    assert json.loads(server.sent[0].body["CloudCustomData"]) == {"order": 42}
    push = {"PushFlag": 0, "Title": "t", "Desc": "d"}
    im.messages.send("a", Conversation.user("b"), "x", options={"OfflinePushInfo": push, "SyncOtherMachine": 2})
    assert server.sent[1].body["OfflinePushInfo"] == push and server.sent[1].body["SyncOtherMachine"] == 2
    with pytest.raises(InvalidRequestError):
        im.messages.send("a", Conversation.user("b"), "x", metadata={"a": 1}, options={"CloudCustomData": "raw"})
    with pytest.raises(InvalidRequestError):
        im.messages.send("a", Conversation.user("b"), "x", options={"MsgRandom": 1})
    with pytest.raises(InvalidRequestError):
        im.messages.send("a", Conversation.user("b"), "x", options={"NoSuchField": 1})
    with pytest.raises(InvalidRequestError):
        im.messages.send("a", Conversation.user("b"), [Custom(data="1"), Custom(data="2")])
    assert len(server.sent) == 2


# -- history paging --------------------------------------------------------------------------------


def _roam(n: int, t: int) -> dict[str, Any]:
    return {"From_Account": "a", "To_Account": "b", "MsgSeq": n, "MsgRandom": n, "MsgTimeStamp": t,
            "MsgFlagBits": 8 if n == 3 else 0, "MsgKey": f"{n}_{n}_{t}",
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": f"m{n}"}}]}  # fmt: skip


class RoamServer:
    """A tiny admin_getroammsg: messages 1..10 at times 1000+n; pages of at most ``page`` walking backward."""

    def __init__(self, page: int = 3) -> None:
        self.page = page
        self.messages = [_roam(n, 1000 + n) for n in range(1, 11)]

    def __call__(self, sent: Sent) -> Any:
        body = sent.body
        pool = [m for m in self.messages if body["MinTime"] <= m["MsgTimeStamp"] <= body["MaxTime"]]
        pool.sort(key=lambda m: m["MsgTimeStamp"], reverse=True)
        if body.get("LastMsgKey"):
            keys = [m["MsgKey"] for m in pool]
            pool = pool[keys.index(body["LastMsgKey"]) + 1 :]
        chunk = pool[: min(self.page, body["MaxCnt"])]
        last = chunk[-1] if chunk else {"MsgTimeStamp": 0, "MsgKey": ""}
        return ok(Complete=int(len(pool) <= len(chunk)), MsgCnt=len(chunk), LastMsgTime=last["MsgTimeStamp"],
                  LastMsgKey=last["MsgKey"], MsgList=sorted(chunk, key=lambda m: m["MsgTimeStamp"]))  # fmt: skip


@pytest.mark.parametrize("direction", ["backward", "forward"])
def test_c2c_history_pages_both_ways(direction: str) -> None:
    clock = FakeClock(datetime.fromtimestamp(2000, UTC))
    im, _ = make_client(RoamServer(), clock=clock)
    seen = [m.seq or int(m.ref.key.split("_")[0]) for m in
            im.messages.iter_history(Conversation.user("b"), viewer="a", page_size=4, direction=direction)]  # fmt: skip
    expected = list(range(10, 0, -1)) if direction == "backward" else list(range(1, 11))
    assert seen == expected
    page = im.messages.history(Conversation.user("b"), viewer="a", limit=10, direction=direction)
    revoked = [m for m in page.items if m.revoked]
    assert len(revoked) == 1 and revoked[0].elements == []


def _gmsg(seq: int) -> dict[str, Any]:
    return {"From_Account": "a", "IsPlaceMsg": 2 if seq == 5 else (1 if seq <= 2 else 0), "MsgRandom": seq,
            "MsgSeq": seq, "MsgTimeStamp": 1000 + seq,
            "MsgBody": [] if seq == 5 else [{"MsgType": "TIMTextElem", "MsgContent": {"Text": f"g{seq}"}}]}  # fmt: skip


def _group_server(newest: int = 45) -> Any:
    """Group history as documented: NextMsgSeq from get_group_info; each window comes back whole (IsFinished 1)."""

    def respond(sent: Sent) -> Any:
        if sent.command == "get_role_in_group":  # the reader's membership, asked when a read starts
            return ok(UserIdList=[{"Member_Account": uid, "Role": "Member"} for uid in sent.body["User_Account"]])
        if sent.command == "get_group_info":
            return ok(GroupInfo=[{"GroupId": "g", "ErrorCode": 0, "ErrorInfo": "", "NextMsgSeq": newest + 1}])
        top = sent.body.get("ReqMsgSeq", newest)
        assert sent.body["ReqMsgNumber"] <= 20 and sent.body["WithRecalledMsg"] == 1
        seqs = [s for s in range(top, max(top - sent.body["ReqMsgNumber"], 0), -1)]
        return ok(GroupId="g", IsFinished=1, RspMsgList=[_gmsg(s) for s in seqs])

    return respond


@pytest.mark.parametrize("direction", ["backward", "forward"])
def test_group_history_pages_both_ways(direction: str) -> None:
    im, _ = make_client(_group_server())
    seen = [m.seq for m in im.messages.iter_history(Conversation.group("g"), viewer="a", page_size=7,
                                                      direction=direction)]  # fmt: skip
    expected = list(range(45, 2, -1)) if direction == "backward" else list(range(3, 46))  # 1, 2 expired
    assert seen == expected
    page = im.messages.history(Conversation.group("g"), viewer="a", limit=50, direction=direction)
    (revoked,) = [m for m in page.items if m.revoked]
    assert revoked.seq == 5 and revoked.elements == []


def test_history_cursor_of_the_other_direction_is_refused() -> None:
    im, _ = make_client(_group_server())
    page = im.messages.history(Conversation.group("g"), viewer="a", limit=5)
    assert page.next_cursor
    with pytest.raises(InvalidRequestError):
        im.messages.history(Conversation.group("g"), viewer="a", limit=5, cursor=page.next_cursor, direction="forward")


def test_revoke_already_recalled_is_success() -> None:
    im, _ = make_client(lambda s: fail(20023, "already"))
    sent_ref = official("admin_msgwithdraw")["request_examples"][0]["body"]
    from imbridge.providers.tencent.mapping import c2c_ref

    im.messages.revoke(c2c_ref(sent_ref["From_Account"], sent_ref["To_Account"], sent_ref["MsgKey"]))
    im2, _ = make_client(lambda s: fail(20022, "missing"))
    with pytest.raises(ProviderError):
        im2.messages.revoke(c2c_ref("a", "b", "1_2_3"))


def test_message_ref_string_round_trip_revokes() -> None:
    im, server = make_client(lambda s: ok(MsgTime=1, MsgKey="9_8_7") if s.command == "sendmsg" else ok())
    sent = im.messages.send("a", Conversation.user("b"), "x")
    im.messages.revoke(str(sent.ref))
    assert server.sent[-1].body == {"From_Account": "a", "To_Account": "b", "MsgKey": "9_8_7"}


# -- async -----------------------------------------------------------------------------------------


async def test_async_client_with_injected_httpx_async_client() -> None:
    replies = iter([fail(70001), ok(MsgTime=1, MsgSeq=9)])
    randoms: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        randoms.append(json.loads(request.content)["Random"])
        return httpx.Response(200, json=next(replies))

    async with AsyncIMClient(
        "tencent", sdk_app_id=TEST_APP, secret_key=TEST_KEY, clock=FakeClock(),
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(initial_backoff=0),
    ) as im:  # fmt: skip
        sent = await im.messages.send("a", Conversation.group("g"), "x")
    assert sent.seq == 9 and len(randoms) == 2 and len(set(randoms)) == 1


def test_sync_client_type() -> None:
    im, _ = make_client(lambda s: ok())
    assert isinstance(im, IMClient) and im.provider_name == "tencent"
    caps = im.capabilities
    assert all(cap.available for cap in caps.values())
