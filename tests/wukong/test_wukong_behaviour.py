"""WuKongIM provider behaviour over httpx.MockTransport (the in-memory fake in wukong_fake.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from wukong_fake import TOKEN, FakeWukong, payload_of

from imbridge import AsyncIMClient, Conversation, IMClient, Text
from imbridge.capabilities import Operation, Support
from imbridge.errors import (
    AuthenticationError,
    InvalidRequestError,
    MessageMayHaveLandedError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    TimeoutError,
    TransportError,
)
from imbridge.providers.wukong.wire import fake_channel_id
from imbridge.retry import RetryPolicy

MakeClient = Callable[..., IMClient]
GROUP = Conversation.group("g1")


def _group(im: IMClient, server: FakeWukong) -> None:
    im.users.register(["alice", "bob", "carol"])
    im.groups.create(name="Team", owner="alice", members=["bob", "carol"], group_id="g1")
    server.requests.clear()


def test_token_header_on_every_request(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    im.users.register(["alice", "bob"])
    im.users.login_credentials("alice", ttl=3600)
    im.groups.create(name="Team", owner="alice", members=["bob"], group_id="g1")
    im.groups.add_members("g1", ["carol"])
    sent = im.messages.send(sender="bob", to=GROUP, content="hi", idempotency_key="k1")
    im.messages.history(GROUP, viewer="alice", limit=10)
    im.groups.mute("g1", ["carol"], duration=60)
    im.groups.muted("g1")
    im.groups.unmute("g1", ["carol"])
    im.groups.mute_all("g1", True)
    im.groups.mute_all("g1", False)
    im.messages.revoke(sent.ref)
    im.groups.remove_members("g1", ["carol"])
    im.messages.send_batch(sender="alice", recipients=["bob"], content="b")
    assert im.provider.call("GET", "/cluster/channels/g1/2/subscribers") == ["alice", "bob"]
    im.groups.dismiss("g1")
    assert len(server.requests) > 25
    assert {request.headers.get("token") for request in server.requests} == {TOKEN}


def test_wrong_manager_token_is_an_authentication_error(make_client: MakeClient) -> None:
    im = make_client(manager_token="not-the-token")
    with pytest.raises(AuthenticationError) as caught:
        im.groups.get("g1")
    assert caught.value.http_status == 401
    assert "not-the-token" not in str(caught.value)


def test_confirmed_send_returns_the_stored_seq(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    _group(im, server)
    sent = im.messages.send(sender="bob", to=GROUP, content=[Text("one")], idempotency_key="k1")
    assert sent.confirmed and sent.seq == 1
    assert sent.ref.extra["client_msg_no"] == "k1"
    assert server.bodies("/message/send")[0]["client_msg_no"] == "k1"
    assert payload_of(server.bodies("/message/send")[0]) == {"type": 1, "content": "one"}
    unconfirmed = im.messages.send(sender="bob", to=GROUP, content="two", confirm=False)
    assert not unconfirmed.confirmed and unconfirmed.seq is None


def test_person_send_is_looked_up_under_the_fake_channel_id(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    im.users.register(["pa", "pb"])
    sent = im.messages.send(sender="pa", to=Conversation.user("pb"), content="hi", idempotency_key="p-1")
    assert sent.seq == 1
    lookups = [r for r in server.requests if r.url.path == "/message/byclientmsgno"]
    assert len(lookups) == 2  # the caller's key before sending, then the confirmation
    assert {r.url.params["channel_id"] for r in lookups} == {"pb@pa"}  # crc32(pb) > crc32(pa), FACTS §8


def _timeout_on_first_send(server: FakeWukong, *, landed: bool) -> None:
    state = {"sends": 0}

    def intercept(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/message/send":
            state["sends"] += 1
            if state["sends"] == 1:
                if landed:  # the server stored it; only the answer was lost
                    server.next_id += 1
                    server.store_message(payload_body(request), server.next_id)
                raise httpx.ReadTimeout("timed out", request=request)
        return None

    server.intercept = intercept


def payload_body(request: httpx.Request) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.content)
    return body


def test_no_duplicate_after_a_timeout_when_the_send_landed(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    _group(im, server)
    _timeout_on_first_send(server, landed=True)
    sent = im.messages.send(sender="bob", to=GROUP, content="once", idempotency_key="k-landed")
    assert server.paths("POST").count("/message/send") == 1  # the lookup found it: not re-sent
    assert [m["client_msg_no"] for m in server.messages["g1"]] == ["k-landed"]
    assert sent.seq == 1 and sent.confirmed
    # the caller's key is looked up (absent), sent once (answer lost), then found by the recovery lookup
    paths = [p for p in server.paths() if p in ("/message/send", "/message/byclientmsgno")]
    assert paths == ["/message/byclientmsgno", "/message/send", "/message/byclientmsgno"]


def test_not_resent_when_the_lookup_finds_nothing(make_client: MakeClient, server: FakeWukong) -> None:
    """Issue 13 point 1: a lookup that finds nothing proves nothing (the request may still be on its way, and
    WuKongIM does not deduplicate client_msg_no): the send is not repeated; the error carries the key."""
    im = make_client()
    _group(im, server)
    _timeout_on_first_send(server, landed=False)
    with pytest.raises(MessageMayHaveLandedError, match="MAY HAVE LANDED") as caught:
        im.messages.send(sender="bob", to=GROUP, content="once", idempotency_key="k-lost")
    error = caught.value
    assert (error.idempotency_key, error.sender, error.conversation) == ("k-lost", "bob", GROUP)
    assert isinstance(error, TransportError) and error.may_have_landed and not error.retryable
    assert isinstance(error.__cause__, TimeoutError)
    assert [body["client_msg_no"] for body in server.bodies("/message/send")] == ["k-lost"]
    # the caller's key first (absent), the send, then the recovery lookups (all absent): no second send
    paths = [p for p in server.paths() if p in ("/message/send", "/message/byclientmsgno")]
    assert paths == ["/message/byclientmsgno", "/message/send"] + ["/message/byclientmsgno"] * 4


def test_a_connection_that_never_opened_is_sent_again(make_client: MakeClient, server: FakeWukong) -> None:
    """The one failure that proves the request was not delivered: the executor re-sends it."""
    im = make_client()
    _group(im, server)
    state = {"sends": 0}

    def refuse_once(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/message/send":
            state["sends"] += 1
            if state["sends"] == 1:
                raise httpx.ConnectError("refused", request=request)
        return None

    server.intercept = refuse_once
    sent = im.messages.send(sender="bob", to=GROUP, content="once", idempotency_key="k-refused")
    assert state["sends"] == 2 and sent.confirmed
    assert [m["client_msg_no"] for m in server.messages["g1"]] == ["k-refused"]


def test_unknown_outcome_says_it_may_have_landed(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client(enforce_policy=False)
    im.users.register(["alice", "bob"])

    def intercept(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/message/send":
            raise httpx.ReadTimeout("timed out", request=request)
        if request.url.path == "/message/byclientmsgno":
            return httpx.Response(503)
        return None

    server.intercept = intercept
    with pytest.raises(MessageMayHaveLandedError, match="MAY HAVE LANDED") as caught:
        im.messages.send(sender="bob", to=Conversation.user("alice"), content="x")  # imbridge's own key
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert "lookup failed too" in caught.value.message
    assert server.paths().count("/message/send") == 1


def test_5xx_on_send_is_looked_up_not_resent(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    im.users.register(["a", "b"])
    calls = {"n": 0}

    def intercept(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/message/send":
            calls["n"] += 1
            return httpx.Response(500)
        return None

    server.intercept = intercept
    with pytest.raises(MessageMayHaveLandedError, match="not found by 4 lookups") as caught:
        im.messages.send(sender="a", to=Conversation.user("b"), content="x", idempotency_key="k5")
    assert isinstance(caught.value.__cause__, ServiceUnavailableError)
    assert calls["n"] == 1  # a 5xx may come from a gateway whose upstream got the request: never re-sent


def test_refused_send_from_a_muted_member_issues_no_send(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    _group(im, server)
    im.users.register(["mallory"])  # a user, but not a member
    im.groups.mute("g1", ["carol"], duration=timedelta(hours=1))
    assert server.channels["g1"].denylist == ["carol"]
    with pytest.raises(PermissionDeniedError, match="muted"):
        im.messages.send(sender="carol", to=GROUP, content="hi")
    with pytest.raises(PermissionDeniedError, match="not a member"):
        im.messages.send(sender="mallory", to=GROUP, content="hi")
    assert "/message/send" not in server.paths()


def test_denylisted_outside_imbridge_is_also_refused(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    _group(im, server)
    server.channels["g1"].denylist.append("bob")
    with pytest.raises(PermissionDeniedError):
        im.messages.send(sender="bob", to=GROUP, content="hi")
    assert "/message/send" not in server.paths()


def test_policy_off_lets_the_server_decide_and_a_silent_drop_surfaces(
    make_client: MakeClient, server: FakeWukong
) -> None:
    im = make_client(enforce_policy=False)
    _group(im, server)
    im.groups.mute_all("g1", True)
    with pytest.raises(PermissionDeniedError, match="did not store it"):
        im.messages.send(sender="alice", to=GROUP, content="dropped")
    assert server.paths().count("/message/send") == 1
    im.groups.dismiss("g1")
    with pytest.raises(NotFoundError, match="dismissed"):
        im.messages.send(sender="alice", to=GROUP, content="dropped")


def test_mute_all_preserves_every_other_flag(make_client: MakeClient, server: FakeWukong, tmp_path: Any) -> None:
    im = make_client()
    _group(im, server)
    # Flags WuKongIM cannot read back, written through the escape hatch: imbridge remembers them.
    flags = {"large": 1, "send_ban": 1, "allow_stranger": 1}
    im.provider.call("POST", "/channel/info", {"channel_id": "g1", "channel_type": 2, **flags})
    im.groups.mute_all("g1", True)
    assert server.channels["g1"].flags == {"large": 1, "ban": 1, "disband": 0, "send_ban": 1, "allow_stranger": 1}
    assert im.groups.get("g1").mute_all
    # a new client on the same store still knows them
    im2 = make_client()
    im2.groups.mute_all("g1", False)
    assert server.channels["g1"].flags == {"large": 1, "ban": 0, "disband": 0, "send_ban": 1, "allow_stranger": 1}
    writes = server.bodies("/channel/info")
    assert [w.get("ban", 0) for w in writes] == [0, 1, 0]
    assert all(w["large"] == 1 for w in writes)


def test_mute_all_reads_ban_set_outside_imbridge(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    _group(im, server)
    server.channels["g1"].flags["ban"] = 1  # someone banned it directly
    with pytest.raises(PermissionDeniedError, match="muted as a whole"):
        im.messages.send(sender="alice", to=GROUP, content="hi")
    assert im.groups.get("g1").mute_all


def test_timed_mute_is_lifted_when_due(make_client: MakeClient, server: FakeWukong, clock: Any) -> None:
    im = make_client()
    _group(im, server)
    im.groups.mute("g1", ["carol"], duration=60)
    [muted] = im.groups.muted("g1")
    assert muted.user_id == "carol" and muted.muted_until == clock.now() + timedelta(seconds=60)
    clock.advance(59)
    with pytest.raises(PermissionDeniedError):
        im.messages.send(sender="carol", to=GROUP, content="too early")
    clock.advance(2)
    server.requests.clear()
    sent = im.messages.send(sender="carol", to=GROUP, content="free again")
    assert sent.confirmed
    paths = server.paths()
    assert paths.index("/channel/blacklist_remove") < paths.index("/message/send")
    assert server.bodies("/channel/blacklist_remove") == [{"channel_id": "g1", "channel_type": 2, "uids": ["carol"]}]
    assert server.channels["g1"].denylist == []
    assert im.groups.muted("g1") == []


def test_muted_read_lifts_due_mutes(make_client: MakeClient, server: FakeWukong, clock: Any) -> None:
    im = make_client()
    _group(im, server)
    im.groups.mute("g1", ["bob", "carol"], duration=10)
    im.groups.mute("g1", ["carol"], duration=100)
    clock.advance(11)
    assert [m.user_id for m in im.groups.muted("g1")] == ["carol"]
    assert server.channels["g1"].denylist == ["carol"]


def test_history_pages_both_directions(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    _group(im, server)
    for i in range(7):
        im.messages.send(sender="bob", to=GROUP, content=f"m{i}", idempotency_key=f"h{i}")
    seen, cursor = [], None
    while True:
        page = im.messages.history(GROUP, viewer="alice", limit=3, cursor=cursor)
        seen += [m.seq for m in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    forward = [m.seq for m in im.messages.iter_history(GROUP, viewer="alice", direction="forward", page_size=2)]
    assert forward == [1, 2, 3, 4, 5, 6, 7]
    assert im.messages.history(GROUP, viewer="alice", limit=7).next_cursor is None


def test_revoke_sends_a_notice_and_history_shows_it_revoked(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    _group(im, server)
    sent = im.messages.send(sender="bob", to=GROUP, content="oops")
    im.messages.send(sender="bob", to=GROUP, content="kept")
    im.messages.revoke(sent.ref)
    notice = payload_of(server.bodies("/message/send")[-1])
    assert notice["type"] == 1006 and notice["message_id"] == sent.ref.key
    items = im.messages.history(GROUP, viewer="alice", limit=10).items
    assert [(m.seq, m.revoked, m.elements) for m in items] == [(2, False, [Text("kept")]), (1, True, [])]
    im.messages.revoke(sent.ref)  # idempotent: no second notice
    assert len(server.bodies("/message/send")) == 3


def test_capabilities_without_a_store(server: FakeWukong) -> None:
    im = IMClient("wukong", base_url="http://wk.test", manager_token=TOKEN, store="",
                  http_client=httpx.Client(transport=httpx.MockTransport(server)))  # fmt: skip
    caps = im.capabilities
    assert caps[Operation.USERS_GET_PROFILES].support is Support.UNSUPPORTED
    assert caps[Operation.MESSAGES_REVOKE].support is Support.UNSUPPORTED
    assert caps[Operation.MESSAGES_SEND].support is Support.EMULATED
    from imbridge.errors import UnsupportedOperationError

    with pytest.raises(UnsupportedOperationError):
        im.users.get_profiles(["alice"])
    assert server.requests == []
    im.close()


async def test_async_client_recovers_a_timed_out_send(server: FakeWukong, clock: Any, tmp_path: Any) -> None:
    _timeout_on_first_send(server, landed=True)
    async with AsyncIMClient(
        "wukong", base_url="http://wk.test", manager_token=TOKEN, store=str(tmp_path / "a.db"), clock=clock,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)), retry=RetryPolicy(initial_backoff=0),
    ) as im:  # fmt: skip
        await im.users.register(["a", "b"])
        sent = await im.messages.send(sender="a", to=Conversation.user("b"), content="x", idempotency_key="ak")
    assert sent.seq == 1
    assert server.paths().count("/message/send") == 1


def test_transport_error_class_is_kept(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    im.users.register(["a", "b"])
    server.requests.clear()

    def refuse(request: httpx.Request) -> httpx.Response | None:
        raise httpx.ConnectError("refused", request=request)

    server.intercept = refuse
    with pytest.raises(TransportError) as caught:
        im.messages.send(sender="a", to=Conversation.user("b"), content="x")
    assert not caught.value.may_have_landed
    assert set(server.paths()) == {"/message/send"}  # the send itself failed to connect (and was retried)


# -- users are checked before sending ------------------------------------------------------------


def test_send_to_an_unknown_recipient_is_not_found_and_not_sent(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    im.users.register(["alice"])
    server.requests.clear()
    with pytest.raises(NotFoundError, match="ghost"):
        im.messages.send(sender="alice", to=Conversation.user("ghost"), content="hi", idempotency_key="k-ghost")
    assert server.paths() == ["/cluster/users"]  # asked once about the unregistered uid; nothing sent
    assert server.requests[0].url.params["uid"] == "ghost"
    with pytest.raises(NotFoundError, match="ghost"):
        im.messages.send(sender="ghost", to=Conversation.user("alice"), content="hi")
    assert "/message/send" not in server.paths() and server.messages == {}


def test_user_registered_outside_imbridge_is_looked_up_once(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    im.users.register(["alice"])
    server.tokens[("outsider", 0)] = "registered-directly"  # known to WuKongIM, not to imbridge's store
    server.requests.clear()
    im.messages.send(sender="alice", to=Conversation.user("outsider"), content="one")
    im.messages.send(sender="outsider", to=Conversation.user("alice"), content="two")
    assert server.paths().count("/cluster/users") == 1  # then remembered in the store
    assert server.paths().count("/message/send") == 2


def test_batch_with_unknown_recipients_fails_only_those(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    im.users.register(["alice", "bob", "carol"])
    result = im.messages.send_batch(sender="alice", recipients=["bob", "ghost", "carol", "b@d"], content="notice")
    assert result.succeeded == ["bob", "carol"]
    failed = {item.target: item.error for item in result.failed}
    assert set(failed) == {"ghost", "b@d"}
    assert isinstance(failed["ghost"], NotFoundError)
    assert isinstance(failed["b@d"], InvalidRequestError)  # refused by WuKongIM itself, as before
    assert server.bodies("/message/sendbatch")[0]["subscribers"] == ["bob", "carol", "b@d"]
    delivered = {peer for peer, rows in server.messages.items() if rows}
    assert delivered == {fake_channel_id("alice", "bob"), fake_channel_id("alice", "carol")}
    with pytest.raises(NotFoundError):  # an unknown sender fails the whole batch
        im.messages.send_batch(sender="ghost", recipients=["bob"], content="x")


def test_batch_with_only_unknown_recipients_sends_nothing(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    im.users.register(["alice"])
    result = im.messages.send_batch(sender="alice", recipients=["ghost1", "ghost2"], content="notice")
    assert [(item.target, type(item.error)) for item in result.items] == [
        ("ghost1", NotFoundError), ("ghost2", NotFoundError)
    ]  # fmt: skip
    assert "/message/sendbatch" not in server.paths()  # WuKongIM would answer 400 to an empty list


# -- a caller's idempotency key is looked up before sending --------------------------------------


@pytest.mark.parametrize("to", [GROUP, Conversation.user("alice")], ids=["group", "person"])
def test_same_caller_key_twice_sends_once(make_client: MakeClient, server: FakeWukong, to: Conversation) -> None:
    im = make_client()
    _group(im, server)
    first = im.messages.send(sender="bob", to=to, content="once", idempotency_key="k-twice")
    again = im.messages.send(sender="bob", to=to, content="once", idempotency_key="k-twice")
    assert server.paths().count("/message/send") == 1
    assert again.ref == first.ref and again.seq == first.seq == 1 and again.confirmed
    assert sum(len(rows) for rows in server.messages.values()) == 1


def test_generated_keys_are_not_looked_up_before_sending(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client()
    _group(im, server)
    im.messages.send(sender="bob", to=GROUP, content="x")
    # only the confirmation: the lookup by key, then the history's listing of what it found
    assert server.paths()[-3:] == ["/message/send", "/message/byclientmsgno", "/channel/messagesync"]
    assert server.paths().count("/message/byclientmsgno") == 1


@pytest.mark.parametrize("to_bob", [GROUP, Conversation.user("bob")], ids=["group", "person"])
def test_another_senders_message_with_the_same_key_is_not_a_replay(
    make_client: MakeClient, server: FakeWukong, to_bob: Conversation
) -> None:
    im = make_client()
    _group(im, server)
    to_alice = GROUP if to_bob.is_group else Conversation.user("alice")
    by_alice = im.messages.send(sender="alice", to=to_bob, content="mine", idempotency_key="shared")
    by_bob = im.messages.send(sender="bob", to=to_alice, content="yours", idempotency_key="shared")
    assert server.paths().count("/message/send") == 2  # both stored: same channel, same key, different senders
    assert by_bob.ref.key != by_alice.ref.key and by_bob.seq == 2 and by_bob.confirmed
    again = im.messages.send(sender="bob", to=to_alice, content="yours", idempotency_key="shared")
    assert again.ref == by_bob.ref and server.paths().count("/message/send") == 2
