"""Property-based tests on response parsing: whatever a server (or something in front of it) answers,
with whatever status, nothing but an imbridge error escapes an operation."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imbridge import Conversation, IMClient
from imbridge.errors import IMBridgeError
from imbridge.models import MessageRef
from imbridge.retry import RetryPolicy
from imbridge.testing import FakeClock

FUZZ_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64) | st.floats(allow_nan=False) | st.text(max_size=12)
TENCENT_KEYS = [
    "ActionStatus", "ErrorCode", "ErrorInfo", "MsgKey", "MsgTime", "MsgSeq", "MsgDropReason", "ErrorList", "GroupInfo",
    "UserProfileItem", "MemberList", "MsgList", "RspMsgList", "Complete", "LastMsgKey", "LastMsgTime", "GroupId",
    "ResultItem", "Next", "ShuttedUinList", "MemberNum", "FailAccounts", "To_Account", "ProfileItem", "IsPeerRead",
    "From_Account", "MsgBody", "MsgRandom", "MsgTimeStamp", "MsgFlagBits", "Member_Account", "Role", "MsgType",
]  # fmt: skip
WUKONG_KEYS = [
    "status", "data", "message_id", "client_msg_no", "message_seq", "messages", "uid", "channel_id", "channel_type",
    "timestamp", "payload", "from_uid", "start_message_seq", "end_message_seq", "more", "ban", "disband",
    "subscribers", "msg", "fail_uids", "reason", "slot", "created_at", "token", "device_flag",
]  # fmt: skip


def shaped(keys: list[str], extra: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """JSON shaped like the provider's answers: its own keys, nested, with plausible and implausible values."""
    leaf = scalars | st.sampled_from(list(extra.get("_values", [])) or [None])
    return st.recursive(
        leaf,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(keys), inner, max_size=6)
            | st.fixed_dictionaries(
                {k: v for k, v in extra.items() if k != "_values"}, optional={k: inner for k in keys if k not in extra}
            )
        ),
        max_leaves=12,
    )


TENCENT_BODIES = shaped(
    TENCENT_KEYS,
    {"ActionStatus": st.sampled_from(["OK", "FAIL", "SomeError", ""]),
     "ErrorCode": st.sampled_from([0, 0, 0, 10004, 20003, 60007, 70001, 90001, -1]),
     "_values": ["OK", "Owner", "Admin", "Member", "TIMTextElem", "Public", 0, 1]},
)  # fmt: skip
WUKONG_BODIES = shaped(
    WUKONG_KEYS,
    {"status": st.sampled_from([200, 200, 200, 404, 19, 22, 400, 500]),
     "_values": ["eyJ0eXBlIjoxLCJjb250ZW50IjoiaGkifQ==", "not-base64!", 1, 2, 0]},
)  # fmt: skip
STATUSES = st.sampled_from([200] * 8 + [204, 400, 401, 403, 404, 429, 500, 502, 503]) | st.integers(100, 599)


def body_bytes(shaped_bodies: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        shaped_bodies.map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=64),
        st.sampled_from([b"", b"null", b"[]", b"{}", b"<html>oops</html>", b'{"status":', b"\xff\xfe"]),
    )


OPERATIONS: dict[str, Callable[[IMClient], object]] = {
    "send": lambda im: im.messages.send("alice", Conversation.user("bob"), "hi"),
    "send_group": lambda im: im.messages.send("alice", Conversation.group("g1"), "hi"),
    "send_batch": lambda im: im.messages.send_batch("alice", ["bob", "carol"], "hi"),
    "history": lambda im: im.messages.history(Conversation.user("bob"), viewer="alice", limit=5),
    "history_group": lambda im: im.messages.history(Conversation.group("g1"), viewer="alice", limit=5),
    "register": lambda im: im.users.register(["alice", "bob"]),
    "get_profiles": lambda im: im.users.get_profiles(["alice"]),
    "create_group": lambda im: im.groups.create(name="T", owner="alice", members=["bob"]),
    "get_group": lambda im: im.groups.get("g1"),
    "members": lambda im: im.groups.members("g1"),
    "add_members": lambda im: im.groups.add_members("g1", ["carol"]),
    "remove_members": lambda im: im.groups.remove_members("g1", ["carol"]),
    "mute": lambda im: im.groups.mute("g1", ["carol"], duration=timedelta(minutes=5)),
    "muted": lambda im: im.groups.muted("g1"),
}


def _ref(provider: str) -> MessageRef:
    return MessageRef(provider=provider, conversation=Conversation.user("bob"), sender="alice", key="1_2_3",
                      extra={"client_msg_no": "k"})  # fmt: skip


def _client(provider: str, handler: Callable[[httpx.Request], httpx.Response]) -> IMClient:
    settings_: dict[str, Any] = (
        {"sdk_app_id": 1400000001, "secret_key": secrets.token_hex(16), "base_url": "http://tencent.test"}
        if provider == "tencent"
        else {"base_url": "http://wukong.test", "manager_token": secrets.token_hex(8), "store": ":memory:",
              "policy_cache_seconds": 0}
    )  # fmt: skip
    return IMClient(
        provider, http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        retry=RetryPolicy(max_attempts=2, initial_backoff=0), clock=FakeClock(), **settings_,
    )  # fmt: skip


def _fuzz(provider: str, operation: Callable[[IMClient], object], data: st.DataObject) -> None:
    bodies = body_bytes(TENCENT_BODIES if provider == "tencent" else WUKONG_BODIES)
    served = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal served
        served += 1
        if served > 200:  # a flow that keeps asking would be a bug of its own
            raise AssertionError("more than 200 requests for one operation")
        headers = {"retry-after": data.draw(st.sampled_from(["0", "bogus", "-3"]))} if data.draw(st.booleans()) else {}
        return httpx.Response(data.draw(STATUSES), content=data.draw(bodies), headers=headers)

    with _client(provider, handler) as im:
        with contextlib.suppress(IMBridgeError):  # anything else escaping fails the test
            operation(im)
        with contextlib.suppress(IMBridgeError):
            im.messages.revoke(_ref(provider))


@pytest.mark.parametrize("name", list(OPERATIONS))
@pytest.mark.parametrize("provider", ["tencent", "wukong"])
@FUZZ_SETTINGS
@given(data=st.data())
def test_no_malformed_answer_escapes_as_anything_but_an_imbridge_error(
    provider: str, name: str, data: st.DataObject
) -> None:
    _fuzz(provider, OPERATIONS[name], data)
