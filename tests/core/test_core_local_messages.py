"""messages.*: send (every element type), send_batch, history paging, revoke, idempotency (sync and async)."""

from __future__ import annotations

from typing import Any

import pytest

from imbridge import (
    Conversation,
    Custom,
    Direction,
    Face,
    File,
    Image,
    InvalidRequestError,
    Location,
    MessageRef,
    NotFoundError,
    PermissionDeniedError,
    SentMessage,
    Sound,
    Text,
    Video,
)
from imbridge.testing import FakeClock

EVERY_ELEMENT = [
    Text("hello, 世界"),
    Image(url="https://example.com/i.png", width=640, height=480, size=1234, format="png", uuid="img-1"),
    File(url="https://example.com/f.pdf", name="report.pdf", size=99),
    Sound(url="https://example.com/s.amr", duration=7, size=512),
    Video(url="https://example.com/v.mp4", duration=12, thumbnail_url="https://example.com/t.jpg", thumbnail_width=320),
    Location(latitude=47.37, longitude=8.54, description="Zürich"),
    Face(index=3, data="smile"),
    Custom(data='{"kind":"order","id":42}', description="New order", ext="x"),
]

BOB = Conversation.user("bob")
ALICE = Conversation.user("alice")
TEAM = Conversation.group("team")


def _texts(messages: Any) -> list[str]:
    return [m.elements[0].text for m in messages]


@pytest.mark.parametrize("element", EVERY_ELEMENT, ids=lambda e: e.type)
def test_every_element_round_trips_one_to_one(people: Any, element: Any, clock: FakeClock) -> None:
    sent = people.messages.send(sender="alice", to=BOB, content=[element], metadata={"trace": "t1"})
    assert isinstance(sent, SentMessage)
    assert sent.provider == "local" and sent.confirmed and sent.seq == 1 and sent.time == clock.now()
    for viewer, conversation in (("alice", BOB), ("bob", ALICE)):
        (message,) = people.messages.history(conversation, viewer=viewer).items
        assert message.elements == [element]
        assert type(message.elements[0]) is type(element)
        assert message.sender == "alice" and message.seq == 1 and not message.revoked
        assert message.metadata == {"trace": "t1"}
        assert message.time == clock.now()


def test_all_elements_in_one_group_message(team: Any) -> None:
    sent = team.messages.send(sender="carol", to=TEAM, content=EVERY_ELEMENT)
    (message,) = team.messages.history(TEAM, viewer="dave").items
    assert message.elements == EVERY_ELEMENT
    assert message.ref == sent.ref
    assert message.conversation == TEAM and message.sender == "carol"


def test_plain_string_content_is_text(people: Any) -> None:
    people.messages.send(sender="alice", to=BOB, content="just text")
    assert people.messages.history(BOB, viewer="alice").items[0].elements == [Text("just text")]


def test_conversations_are_separate(people: Any) -> None:
    people.messages.send(sender="alice", to=BOB, content="to bob")
    people.messages.send(sender="alice", to=Conversation.user("carol"), content="to carol")
    people.messages.send(sender="carol", to=Conversation.user("dave"), content="elsewhere")
    assert _texts(people.messages.history(BOB, viewer="alice")) == ["to bob"]
    assert _texts(people.messages.history(ALICE, viewer="carol")) == ["to carol"]
    assert people.messages.history(Conversation.user("dave"), viewer="bob").items == []


def test_send_to_unknown_user_or_from_unknown_sender(people: Any) -> None:
    with pytest.raises(NotFoundError):
        people.messages.send(sender="alice", to=Conversation.user("zed"), content="?")
    with pytest.raises(NotFoundError):
        people.messages.send(sender="zed", to=BOB, content="?")
    with pytest.raises(NotFoundError):
        people.messages.send(sender="alice", to=Conversation.group("nope"), content="?")
    assert people.messages.history(BOB, viewer="alice").items == []


def test_group_send_from_non_member_is_refused(team: Any) -> None:
    team.users.register(["eve"])
    with pytest.raises(PermissionDeniedError) as info:
        team.messages.send(sender="eve", to=TEAM, content="let me in")
    assert info.value.provider == "local" and info.value.operation == "messages.send"
    assert team.messages.history(TEAM, viewer="alice").items == []


def test_send_batch_with_unknown_recipient(people: Any) -> None:
    result = people.messages.send_batch(sender="alice", recipients=["bob", "zed", "carol"], content="notice")
    assert not result.ok
    assert result.succeeded == ["bob", "carol"]
    (failed,) = result.failed
    assert failed.target == "zed" and isinstance(failed.error, NotFoundError) and failed.ref is None
    for item in result.items:
        if item.ok:
            assert item.ref is not None and item.ref.conversation == Conversation.user(item.target)
    assert _texts(people.messages.history(ALICE, viewer="bob")) == ["notice"]
    assert _texts(people.messages.history(ALICE, viewer="carol")) == ["notice"]
    assert people.messages.history(ALICE, viewer="dave").items == []


def test_history_order_and_directions(people: Any, clock: FakeClock) -> None:
    for i in range(5):
        people.messages.send(sender="alice" if i % 2 == 0 else "bob", to=BOB if i % 2 == 0 else ALICE, content=f"m{i}")
        clock.advance(1)
    backward = people.messages.history(BOB, viewer="alice")
    assert _texts(backward) == ["m4", "m3", "m2", "m1", "m0"]
    assert [m.seq for m in backward] == [5, 4, 3, 2, 1]
    assert backward.next_cursor is None and not backward.has_more
    forward = people.messages.history(ALICE, viewer="bob", direction=Direction.FORWARD)
    assert _texts(forward) == ["m0", "m1", "m2", "m3", "m4"]
    assert [m.time for m in forward] == sorted(m.time for m in forward)
    assert [m.sender for m in forward] == ["alice", "bob", "alice", "bob", "alice"]
    assert _texts(people.messages.history(BOB, viewer="alice", direction="forward")) == _texts(forward)


def test_empty_conversation(team: Any) -> None:
    for direction in Direction:
        page = team.messages.history(TEAM, viewer="alice", direction=direction)
        assert page.items == [] and page.next_cursor is None
    assert list(team.messages.iter_history(BOB, viewer="alice")) == []


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize("limit", [1, 3, 7, 23, 24])
def test_cursor_paging_reaches_every_message_once(team: Any, direction: Direction, limit: int) -> None:
    total = 23
    for i in range(total):
        team.messages.send(sender="carol", to=TEAM, content=f"n{i}")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = team.messages.history(TEAM, viewer="dave", limit=limit, cursor=cursor, direction=direction)
        pages += 1
        assert 1 <= len(page.items) <= limit
        seen.extend(m.seq for m in page)
        if page.next_cursor is None:
            break
        assert len(page.items) == limit
        cursor = page.next_cursor
    expected = list(range(1, total + 1))
    assert seen == (expected if direction is Direction.FORWARD else expected[::-1])
    assert pages == -(-total // limit)


def test_cursor_survives_a_round_trip_through_storage(open_client: Any, tmp_path: Any) -> None:
    database = str(tmp_path / "im.db")
    im = open_client(database=database)
    im.users.register(["alice", "bob"])
    for i in range(5):
        im.messages.send(sender="alice", to=BOB, content=f"c{i}")
    first = im.messages.history(BOB, viewer="alice", limit=2)
    stored = str(first.next_cursor)  # e.g. kept in an app database between requests
    im.close()
    reopened = open_client(database=database)
    second = reopened.messages.history(BOB, viewer="alice", limit=2, cursor=stored)
    assert _texts(first) == ["c4", "c3"] and _texts(second) == ["c2", "c1"]


def test_corrupt_or_foreign_cursor(people: Any) -> None:
    for i in range(3):
        people.messages.send(sender="alice", to=BOB, content=f"x{i}")
    cursor = people.messages.history(BOB, viewer="alice", limit=1).next_cursor
    assert cursor is not None
    bad = [
        "not-base64-%%%",
        cursor[:-3] + "!!!",
        "eyJwIjoidGVuY2VudCIsInMiOjF9",  # {"p":"tencent","s":1}: another provider's cursor
        "W10",  # []: valid base64 JSON, wrong shape
    ]
    for value in bad:
        with pytest.raises(InvalidRequestError):
            people.messages.history(BOB, viewer="alice", cursor=value)
    with pytest.raises(InvalidRequestError):  # a backward cursor used forward
        people.messages.history(BOB, viewer="alice", cursor=cursor, direction="forward")


def test_iter_history_pages_through_everything(team: Any) -> None:
    for i in range(11):
        team.messages.send(sender="bob", to=TEAM, content=f"i{i}")
    assert _texts(team.messages.iter_history(TEAM, viewer="alice", page_size=4)) == [f"i{i}" for i in range(10, -1, -1)]
    forward = team.messages.iter_history(TEAM, viewer="alice", page_size=3, direction="forward")
    assert [m.seq for m in forward] == list(range(1, 12))


def test_revoke_keeps_a_revoked_placeholder(team: Any) -> None:
    keep = team.messages.send(sender="carol", to=TEAM, content="keep")
    gone = team.messages.send(sender="carol", to=TEAM, content=[Text("oops"), Image(url="https://e.com/x.png")])
    stored = str(gone.ref)
    team.messages.revoke(MessageRef.parse(stored))
    newest, oldest = team.messages.history(TEAM, viewer="bob").items
    assert newest.seq == gone.seq and newest.revoked and newest.elements == []
    assert newest.sender == "carol"
    assert oldest.seq == keep.seq and not oldest.revoked and oldest.elements == [Text("keep")]


def test_revoke_by_string_and_one_to_one_ref_from_history(people: Any) -> None:
    people.messages.send(sender="alice", to=BOB, content="secret")
    (as_bob_sees_it,) = people.messages.history(ALICE, viewer="bob").items
    people.messages.revoke(str(as_bob_sees_it.ref))
    (message,) = people.messages.history(BOB, viewer="alice").items
    assert message.revoked and message.elements == []


def test_revoke_unknown_message(people: Any) -> None:
    sent = people.messages.send(sender="alice", to=BOB, content="x")
    ghost = sent.ref.model_copy(update={"key": "0" * 32})
    with pytest.raises(NotFoundError):
        people.messages.revoke(ghost)
    with pytest.raises(NotFoundError):
        people.messages.revoke(str(ghost))
    assert not people.messages.history(BOB, viewer="alice").items[0].revoked


def test_revoke_refuses_garbage_and_foreign_refs(people: Any) -> None:
    sent = people.messages.send(sender="alice", to=BOB, content="x")
    with pytest.raises(InvalidRequestError):
        people.messages.revoke("imref1.garbage!")
    with pytest.raises(InvalidRequestError):
        people.messages.revoke(sent.ref.model_copy(update={"provider": "tencent"}))
    assert not people.messages.history(BOB, viewer="alice").items[0].revoked


def test_same_idempotency_key_stores_one_message(team: Any) -> None:
    first = team.messages.send(sender="carol", to=TEAM, content="once", idempotency_key="order-42")
    second = team.messages.send(sender="carol", to=TEAM, content="once", idempotency_key="order-42")
    third = team.messages.send(sender="carol", to=TEAM, content="twice", idempotency_key="order-43")
    assert second.ref == first.ref and second.seq == first.seq
    assert third.seq == first.seq + 1
    assert _texts(team.messages.history(TEAM, viewer="alice")) == ["twice", "once"]


def test_without_idempotency_key_each_send_is_new(people: Any) -> None:
    people.messages.send(sender="alice", to=BOB, content="same")
    people.messages.send(sender="alice", to=BOB, content="same")
    assert _texts(people.messages.history(BOB, viewer="alice")) == ["same", "same"]


def test_idempotency_keys_are_per_sender(team: Any) -> None:
    first = team.messages.send(sender="carol", to=TEAM, content="from carol", idempotency_key="order-42")
    other = team.messages.send(sender="dave", to=TEAM, content="from dave", idempotency_key="order-42")
    assert other.ref != first.ref and other.seq == first.seq + 1
    history = team.messages.history(TEAM, viewer="alice", direction="forward").items
    assert [(m.sender, m.elements[0].text) for m in history] == [("carol", "from carol"), ("dave", "from dave")]


def test_send_batch_retried_with_the_same_key_stores_once(people: Any) -> None:
    first = people.messages.send_batch(sender="alice", recipients=["bob", "carol"], content="n", idempotency_key="b1")
    again = people.messages.send_batch(sender="alice", recipients=["bob", "carol"], content="n", idempotency_key="b1")
    assert [item.ref for item in again.items] == [item.ref for item in first.items]
    for viewer in ("bob", "carol"):
        assert _texts(people.messages.history(ALICE, viewer=viewer)) == ["n"]


def test_revoke_twice_is_harmless(people: Any) -> None:
    sent = people.messages.send(sender="alice", to=BOB, content="x")
    people.messages.revoke(sent.ref)
    people.messages.revoke(sent.ref)
    (message,) = people.messages.history(BOB, viewer="alice").items
    assert message.revoked and message.elements == []
