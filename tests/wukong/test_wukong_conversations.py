"""The WuKongIM provider's conversation operations over httpx.MockTransport, fed with answers the real v2.2.5
server gave (taken from the contract recordings in cassettes/wukong/test_conversations/)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from imbridge import ConflictError, Conversation, IMClient, MessageRef, NotFoundError
from imbridge.errors import InvalidRequestError
from imbridge.retry import RetryPolicy

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "wukong" / "test_conversations"
TOKEN = "test-manager-token"  # made up for these tests


def recorded(test: str, path: str) -> list[Any]:
    """The real server's answers to ``path`` in one recorded contract test, in order."""
    document = yaml.safe_load((CASSETTES / f"{test}[wukong].yaml").read_text(encoding="utf-8"))
    return [json.loads(i["response"]["body"]["string"]) for i in document["interactions"]
            if i["request"]["uri"].endswith(path)]  # fmt: skip


def client(answer: Callable[[httpx.Request], Any], sent: list[httpx.Request]) -> IMClient:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=answer(request))

    return IMClient(
        "wukong", base_url="http://wukong.test", manager_token=TOKEN, store=":memory:",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)), retry=RetryPolicy(max_attempts=1),
    )  # fmt: skip


def settled_sync() -> list[Any]:
    """The recording's first /conversation/sync answer with all three conversations: the contract test polls
    until the server has written them (it writes a person chat's conversation a sync interval later)."""
    return next(a for a in recorded("test_list_orders_by_last_activity", "/conversation/sync") if len(a) == 3)


def test_list_orders_by_message_id_not_by_the_servers_order() -> None:
    """The server answers in its own update order, all three in one second: the message ids (snowflakes) put
    carol's newest message first. (In the recording of 2026-12-02 21:33 UTC the server's order was g, carol,
    alice; in the one before it, g, alice, carol: neither is the order of the messages.)"""
    answer = settled_sync()
    by_message_id = [row["channel_id"].split("-")[-1]
                     for row in sorted(answer, key=lambda row: -row["recents"][0]["message_id"])]  # fmt: skip
    assert by_message_id == ["carol", "g", "alice"]  # newest first
    assert [row["channel_id"].split("-")[-1] for row in answer] != by_message_id  # not the server's order
    assert len({row["timestamp"] for row in answer}) == 1
    sent: list[httpx.Request] = []
    im = client(lambda _: answer, sent)
    page = im.conversations.list(answer[0]["channel_id"].rsplit("-", 1)[0] + "-bob")
    assert [str(s.conversation).split("-")[-1] for s in page.items] == ["carol", "g", "alice"]
    assert [s.unread for s in page.items] == [1, 1, 1]
    assert all(s.pinned is None and s.muted is None for s in page.items)
    assert [json.loads(r.content) for r in sent] == [{"uid": page.items[0].user, "msg_count": 1}]
    first = page.items[0].last_message
    assert first is not None and first.sender.endswith("carol") and first.elements[0].text == "third"  # type: ignore[union-attr]


def test_pages_continue_after_the_last_key_and_a_foreign_cursor_is_refused() -> None:
    answer = settled_sync()
    im = client(lambda _: answer, [])
    user = answer[0]["channel_id"].rsplit("-", 1)[0] + "-bob"
    first = im.conversations.list(user, limit=2)
    rest = im.conversations.list(user, limit=2, cursor=first.next_cursor)
    assert len(first.items) == 2 and len(rest.items) == 1 and rest.next_cursor is None
    with pytest.raises(InvalidRequestError):
        im.conversations.list(user, cursor="eyJkIjoiYmFja3dhcmQiLCJwIjoid3Vrb25nIiwicyI6M30")  # a history cursor


def test_set_unread_refuses_to_raise_and_sends_no_write() -> None:
    answers = recorded("test_set_unread_above_the_count", "/conversation/syncByChannels")
    assert answers and answers[0][0]["unread"] == 0  # read just before, as the recording shows
    sent: list[httpx.Request] = []
    im = client(lambda _: answers[0], sent)
    with pytest.raises(ConflictError, match="only moves a read position forward"):
        im.conversations.set_unread("bob", Conversation.user("alice"), 2)
    assert [r.url.path for r in sent] == ["/conversation/syncByChannels"]


def test_set_unread_lowers_with_the_write_after_the_read() -> None:
    row = {"channel_id": "g", "channel_type": 2, "unread": 3, "last_msg_seq": 3, "recents": []}
    sent: list[httpx.Request] = []
    im = client(lambda r: [row] if r.url.path.endswith("syncByChannels") else {"status": 200}, sent)
    im.conversations.set_unread("bob", Conversation.group("g"), 1)
    assert [(r.url.path, json.loads(r.content)) for r in sent] == [
        ("/conversation/syncByChannels", {"uid": "bob", "channels": [{"channel_id": "g", "channel_type": 2}],
                                          "msg_count": 1}),
        ("/conversations/setUnread", {"uid": "bob", "channel_id": "g", "channel_type": 2, "unread": 1}),
    ]  # fmt: skip


def test_delete_clears_before_it_deletes() -> None:
    sent: list[httpx.Request] = []
    im = client(lambda _: {"status": 200}, sent)
    im.conversations.delete("bob", Conversation.user("alice"))
    body = {"uid": "bob", "channel_id": "alice", "channel_type": 1}
    assert [(r.url.path, json.loads(r.content)) for r in sent] == [
        ("/conversations/clearUnread", body),
        ("/conversations/delete", body),
    ]


def test_get_ignores_a_message_of_another_channel() -> None:
    """POST /messages finds ids in every channel: a message from elsewhere is not the one the ref names."""
    found = recorded("test_get_message_by_ref", "/messages")
    person, group = found[0]["messages"][0], found[1]["messages"][0]
    sent: list[httpx.Request] = []
    im = client(lambda _: {"messages": [group]}, sent)
    ref = MessageRef(provider="wukong", conversation=Conversation.user(person["channel_id"]),
                     sender=person["from_uid"], key=str(group["message_id"]))  # fmt: skip
    with pytest.raises(NotFoundError):
        im.messages.get(ref)
    assert json.loads(sent[0].content)["message_ids"] == [group["message_id"]]


def test_revoke_notice_goes_to_the_command_channel_and_is_looked_up_there() -> None:
    """The notice is sync_once; after a send that failed with an unknown outcome, it is looked up in the
    conversation's command channel (where sync_once messages are stored), not in the chat."""
    target = {"message_id": 2128009298435805184, "message_seq": 1, "from_uid": "alice", "channel_id": "bob",
              "channel_type": 1, "client_msg_no": "k", "payload": "e30="}  # fmt: skip
    calls: list[str] = []

    def answer(request: httpx.Request) -> Any:
        calls.append(request.url.path)
        if request.url.path == "/message":
            return target
        if request.url.path == "/message/send":
            raise httpx.ReadTimeout("no answer", request=request)
        if request.url.path == "/message/byclientmsgno":
            return {"message_id": 1, "message_seq": 1, "client_msg_no": "revoke-2128009298435805184",
                    "from_uid": "alice", "channel_id": "bob____cmd", "channel_type": 1}  # fmt: skip
        return {"status": 200}

    sent: list[httpx.Request] = []
    im = client(answer, sent)
    im.messages.revoke(MessageRef(provider="wukong", conversation=Conversation.user("bob"), sender="alice",
                                  key=str(target["message_id"])))  # fmt: skip
    notice = next(json.loads(r.content) for r in sent if r.url.path == "/message/send")
    assert notice["header"] == {"red_dot": 0, "sync_once": 1}
    lookup = next(r for r in sent if r.url.path == "/message/byclientmsgno")
    assert lookup.url.params["channel_id"].endswith("____cmd") and "@" in lookup.url.params["channel_id"]
    assert calls.count("/message/send") == 1  # found by the lookup: not sent again
