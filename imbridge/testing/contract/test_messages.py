"""Sending, batch sending, history and revoke."""

from __future__ import annotations

import pytest

from imbridge import (
    Conversation,
    InvalidRequestError,
    MessageRef,
    NotFoundError,
    Operation,
    PermissionDeniedError,
    Text,
)
from imbridge.testing.contract._support import SAMPLE_ELEMENTS, essentials, eventually, texts
from imbridge.testing.plugin import Contract


@pytest.mark.parametrize("kind", sorted(SAMPLE_ELEMENTS))
def test_send_each_element_to_user(contract: Contract, kind: str) -> None:
    alice, bob = contract.users("alice", "bob")
    element = SAMPLE_ELEMENTS[kind]
    sent = contract.im.messages.send(alice, Conversation.user(bob), [element])
    assert sent.ref.provider == contract.provider
    page = contract.im.messages.history(Conversation.user(alice), viewer=bob, limit=10)
    assert len(page.items) == 1
    (message,) = page.items
    assert message.sender == alice
    assert [essentials(e) for e in message.elements] == [essentials(element)]


@pytest.mark.parametrize("kind", sorted(SAMPLE_ELEMENTS))
def test_send_each_element_to_group(contract: Contract, kind: str) -> None:
    alice, bob = contract.users("alice", "bob")
    group = contract.im.groups.create("Elements", owner=alice, members=[bob], group_id=contract.gid("g"))
    contract.track_group(group.id)
    element = SAMPLE_ELEMENTS[kind]
    sent = contract.im.messages.send(bob, Conversation.group(group.id), [element])
    page = contract.im.messages.history(Conversation.group(group.id), viewer=alice, limit=10)
    mine = [m for m in page.items if m.sender == bob]
    assert len(mine) == 1
    assert [essentials(e) for e in mine[0].elements] == [essentials(element)]
    assert mine[0].seq == sent.seq or sent.seq is None


def test_batch_with_unknown_recipient(contract: Contract) -> None:
    system, bob, carol = contract.users("sys", "bob", "carol")
    ghost = contract.uid("ghost")
    result = contract.im.messages.send_batch(system, [bob, ghost, carol], [Text("notice")])
    outcome = {item.target: item.ok for item in result.items}
    assert outcome == {bob: True, ghost: False, carol: True}
    assert not result.ok and [item.target for item in result.failed] == [ghost]
    for recipient in (bob, carol):

        def delivered(recipient: str = recipient) -> None:
            # A batch send may be stored after the call returns (WuKongIM stores asynchronously).
            page = contract.im.messages.history(Conversation.user(system), viewer=recipient, limit=5)
            assert texts(page.items) == ["notice"]

        eventually(delivered, timeout=5.0, interval=0.05)


def _conversation_of_five(contract: Contract) -> tuple[str, str, Conversation]:
    alice, bob = contract.users("alice", "bob")
    for i in range(5):
        contract.im.messages.send(
            alice if i % 2 == 0 else bob, Conversation.user(bob if i % 2 == 0 else alice), f"m{i}"
        )
    return alice, bob, Conversation.user(bob)


def test_history_backward_is_newest_first(contract: Contract) -> None:
    alice, _, chat = _conversation_of_five(contract)
    page = contract.im.messages.history(chat, viewer=alice, limit=10)
    assert texts(page.items) == ["m4", "m3", "m2", "m1", "m0"]
    assert page.next_cursor is None
    times = [m.time for m in page.items]
    assert times == sorted(times, reverse=True)


def test_history_forward_is_oldest_first(contract: Contract) -> None:
    alice, _, chat = _conversation_of_five(contract)
    page = contract.im.messages.history(chat, viewer=alice, limit=10, direction="forward")
    assert texts(page.items) == ["m0", "m1", "m2", "m3", "m4"]


@pytest.mark.parametrize("direction", ["backward", "forward"])
def test_history_paging_reaches_every_message_once(contract: Contract, direction: str) -> None:
    alice, _, chat = _conversation_of_five(contract)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = contract.im.messages.history(chat, viewer=alice, limit=2, cursor=cursor, direction=direction)
        pages += 1
        assert len(page.items) <= 2
        seen += texts(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        assert pages < 10
    expected = ["m0", "m1", "m2", "m3", "m4"]
    assert seen == (expected if direction == "forward" else expected[::-1])


def test_history_cursor_round_trip(contract: Contract) -> None:
    alice, _, chat = _conversation_of_five(contract)
    first = contract.im.messages.history(chat, viewer=alice, limit=2)
    assert first.next_cursor is not None
    stored = str(first.next_cursor)  # what an app would persist
    again = contract.im.messages.history(chat, viewer=alice, limit=2, cursor=stored)
    twice = contract.im.messages.history(chat, viewer=alice, limit=2, cursor=stored)
    assert texts(again.items) == texts(twice.items) == ["m2", "m1"]


def test_history_of_empty_conversation(contract: Contract) -> None:
    alice, bob = contract.users("alice", "bob")
    page = contract.im.messages.history(Conversation.user(bob), viewer=alice, limit=10)
    assert page.items == [] and page.next_cursor is None


def test_iter_history_walks_all_pages(contract: Contract) -> None:
    alice, _, chat = _conversation_of_five(contract)
    assert texts(list(contract.im.messages.iter_history(chat, viewer=alice, page_size=2))) == [
        "m4",
        "m3",
        "m2",
        "m1",
        "m0",
    ]


def test_revoke_marks_message_in_history(contract: Contract) -> None:
    alice, bob = contract.users("alice", "bob")
    keep = contract.im.messages.send(alice, Conversation.user(bob), "keep")
    oops = contract.im.messages.send(alice, Conversation.user(bob), "oops")
    if not contract.supports(Operation.MESSAGES_REVOKE):
        contract.expect_unsupported(lambda: contract.im.messages.revoke(oops.ref))
        return
    contract.im.messages.revoke(oops.ref)
    page = contract.im.messages.history(Conversation.user(alice), viewer=bob, limit=10)
    by_state = {m.revoked: m for m in page.items}
    assert set(by_state) == {True, False}
    assert by_state[True].elements == []
    assert oops.seq is None or by_state[True].seq == oops.seq
    assert texts([by_state[False]]) == ["keep"] and keep.ref != oops.ref


def test_revoke_by_stored_string_in_group(contract: Contract) -> None:
    alice, bob = contract.users("alice", "bob")
    group = contract.im.groups.create("Revoke", owner=alice, members=[bob], group_id=contract.gid("g"))
    contract.track_group(group.id)
    sent = contract.im.messages.send(bob, Conversation.group(group.id), "regret")
    stored = str(sent.ref)
    assert MessageRef.parse(stored) == sent.ref
    if not contract.supports(Operation.MESSAGES_REVOKE):
        contract.expect_unsupported(lambda: contract.im.messages.revoke(stored))
        return
    contract.im.messages.revoke(stored)
    page = contract.im.messages.history(Conversation.group(group.id), viewer=alice, limit=10)
    revoked = [m for m in page.items if m.sender == bob]
    assert len(revoked) == 1 and revoked[0].revoked and revoked[0].elements == []


def test_revoke_unknown_message_not_found(contract: Contract) -> None:
    alice, bob = contract.users("alice", "bob")
    real = contract.im.messages.send(alice, Conversation.user(bob), "real")
    if not contract.supports(Operation.MESSAGES_REVOKE):
        contract.expect_unsupported(lambda: contract.im.messages.revoke(real.ref))
        return
    # A reference of the right shape that names no message: a numeric key moves to an unused number.
    key = str(int(real.ref.key) + 987_654) if real.ref.key.isdigit() else real.ref.key + "0"
    bogus = real.ref.model_copy(update={"key": key, "seq": (real.ref.seq or 0) + 1000})
    with pytest.raises(NotFoundError):
        contract.im.messages.revoke(bogus)


def test_send_to_unknown_user_not_found(contract: Contract) -> None:
    (alice,) = contract.users("alice")
    with pytest.raises(NotFoundError):
        contract.im.messages.send(alice, Conversation.user(contract.uid("ghost")), "hello?")


def test_send_to_unknown_group_not_found(contract: Contract) -> None:
    (alice,) = contract.users("alice")
    with pytest.raises(NotFoundError):
        contract.im.messages.send(alice, Conversation.group(contract.gid("nogroup")), "hello?")


def test_send_from_non_member_refused(contract: Contract) -> None:
    alice, bob, eve = contract.users("alice", "bob", "eve")
    group = contract.im.groups.create("Closed", owner=alice, members=[bob], group_id=contract.gid("g"))
    contract.track_group(group.id)
    with pytest.raises(PermissionDeniedError):
        contract.im.messages.send(eve, Conversation.group(group.id), "let me in")


def test_same_idempotency_key_stores_once(contract: Contract) -> None:
    alice, bob = contract.users("alice", "bob")
    key = contract.uid("k1")
    first = contract.im.messages.send(alice, Conversation.user(bob), "once", idempotency_key=key)
    second = contract.im.messages.send(alice, Conversation.user(bob), "once", idempotency_key=key)
    page = contract.im.messages.history(Conversation.user(alice), viewer=bob, limit=10)
    assert texts(page.items) == ["once"]
    assert first.ref.key == second.ref.key


def test_invalid_message_input_refused_before_any_request(contract: Contract) -> None:
    alice, bob = contract.users("alice", "bob")
    before = len(contract.requests_sent)
    chat = Conversation.user(bob)
    for call in (
        lambda: contract.im.messages.send(alice, chat, []),
        lambda: contract.im.messages.send("", chat, "x"),
        lambda: contract.im.messages.send(alice, "bob", "x"),  # type: ignore[arg-type]
        lambda: contract.im.messages.history(chat, viewer=alice, limit=0),
        lambda: contract.im.messages.history(chat, viewer=alice, limit=10, direction="sideways"),
        lambda: contract.im.messages.history(chat, viewer=alice, limit=10, cursor="not-a-cursor"),
        lambda: contract.im.messages.revoke("imref1.garbage"),
        lambda: contract.im.messages.send_batch(alice, [], "x"),
    ):
        with pytest.raises(InvalidRequestError):
            call()
    assert len(contract.requests_sent) == before
