"""Conversation lists, unread counts (the neutral rule of docs/semantics.md) and message lookup by ref."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from imbridge import (
    ConflictError,
    Conversation,
    ConversationSummary,
    InvalidRequestError,
    MessageRef,
    NotFoundError,
    Operation,
    Support,
    UnsupportedOperationError,
)
from imbridge.testing.contract._support import eventually, text_of
from imbridge.testing.plugin import Contract


def _listed(contract: Contract, user: str) -> dict[str, ConversationSummary]:
    """``user``'s whole list, keyed by ``str(conversation)``, checked to name each conversation once."""
    items = list(contract.im.conversations.iter(user, page_size=50))
    keys = [str(item.conversation) for item in items]
    assert len(keys) == len(set(keys)), keys
    return dict(zip(keys, items, strict=True))


def _unread(contract: Contract, user: str) -> dict[str, int]:
    return {key: item.unread for key, item in _listed(contract, user).items()}


def _settled(contract: Contract, user: str, expected: dict[str, int]) -> None:
    """``user``'s unread counts become ``expected`` (WuKongIM files a first message's conversation a moment
    after storing it)."""

    def check() -> None:
        assert _unread(contract, user) == expected

    eventually(check, timeout=5.0, interval=0.1)


def _lists(contract: Contract) -> bool:
    """Whether conversation lists can be read. When they are declared UNSUPPORTED (a WuKongIM v2.2.5 cluster with
    a managerToken: docs/deployment.md, the token-forwarding defect), listing must raise before any request."""
    if contract.supports(Operation.CONVERSATIONS_LIST):
        return True
    contract.expect_unsupported(lambda: contract.im.conversations.list(contract.uid("nobody")))
    return False


def _lists_quietly(contract: Contract) -> bool:
    return contract.supports(Operation.CONVERSATIONS_LIST) and contract.supports(Operation.CONVERSATIONS_SET_UNREAD)


def _group(contract: Contract, owner: str, members: list[str]) -> str:
    group = contract.im.groups.create("Chat", owner=owner, members=members, group_id=contract.gid("g"))
    return contract.track_group(group.id)


def _missing(ref: MessageRef) -> MessageRef:
    """A reference of the same shape that names no message."""
    return ref.model_copy(update={"key": "1" if ref.key.isdigit() else "missing", "seq": 999_999 if ref.seq else None})


def test_list_orders_by_last_activity(contract: Contract) -> None:
    """Newest activity first: a conversation moves to the top with its next message."""
    if not _lists(contract):
        return
    alice, bob, carol = contract.users("alice", "bob", "carol")
    group = _group(contract, alice, [bob, carol])
    contract.im.messages.send(alice, Conversation.user(bob), "first")
    contract.im.messages.send(carol, Conversation.group(group), "second")
    contract.im.messages.send(carol, Conversation.user(bob), "third")
    _settled(contract, bob, {f"user:{alice}": 1, f"group:{group}": 1, f"user:{carol}": 1})
    order = [str(item.conversation) for item in contract.im.conversations.list(bob, limit=10)]
    assert order == [f"user:{carol}", f"group:{group}", f"user:{alice}"]
    contract.im.messages.send(alice, Conversation.user(bob), "fourth")
    _settled(contract, bob, {f"user:{alice}": 2, f"group:{group}": 1, f"user:{carol}": 1})
    order = [str(item.conversation) for item in contract.im.conversations.list(bob, limit=10)]
    assert order == [f"user:{alice}", f"user:{carol}", f"group:{group}"]


def test_unread_counts_each_message_from_others(contract: Contract) -> None:
    """Three messages to bob: bob has 3 unread, alice (their sender) 0."""
    if not _lists(contract):
        return
    alice, bob = contract.users("alice", "bob")
    for text in ("one", "two", "three"):
        contract.im.messages.send(alice, Conversation.user(bob), text)
    _settled(contract, bob, {f"user:{alice}": 3})
    _settled(contract, alice, {f"user:{bob}": 0})


def test_summary_holds_last_message_and_time(contract: Contract) -> None:
    """Each entry carries the newest message (as the list's owner sees it) and the time of last activity."""
    if not _lists(contract):
        return
    alice, bob = contract.users("alice", "bob")
    contract.im.messages.send(alice, Conversation.user(bob), "older")
    sent = contract.im.messages.send(alice, Conversation.user(bob), "newest")
    _settled(contract, bob, {f"user:{alice}": 2})
    (summary,) = contract.im.conversations.list(bob).items
    assert summary.user == bob and summary.conversation == Conversation.user(alice)
    assert summary.provider == contract.provider
    last = summary.last_message
    assert last is not None and text_of(last) == "newest" and last.sender == alice
    assert sent.seq is None or last.seq == sent.seq
    assert summary.updated is not None and abs(summary.updated - last.time) <= timedelta(seconds=1)


def test_mark_read_brings_unread_to_zero(contract: Contract) -> None:
    """mark_read clears the count; the next message counts from there."""
    if not _lists(contract):
        return
    alice, bob = contract.users("alice", "bob")
    for text in ("one", "two"):
        contract.im.messages.send(alice, Conversation.user(bob), text)
    _settled(contract, bob, {f"user:{alice}": 2})
    contract.im.conversations.mark_read(bob, Conversation.user(alice))
    _settled(contract, bob, {f"user:{alice}": 0})
    contract.im.messages.send(alice, Conversation.user(bob), "three")
    _settled(contract, bob, {f"user:{alice}": 1})


def test_reply_reads_what_came_before(contract: Contract) -> None:
    """A user's own message is never unread to them, and replying reads what came before it."""
    if not _lists(contract):
        return
    alice, bob = contract.users("alice", "bob")
    for text in ("one", "two"):
        contract.im.messages.send(alice, Conversation.user(bob), text)
    _settled(contract, bob, {f"user:{alice}": 2})
    contract.im.messages.send(bob, Conversation.user(alice), "reply")
    _settled(contract, bob, {f"user:{alice}": 0})
    _settled(contract, alice, {f"user:{bob}": 1})
    contract.im.messages.send(alice, Conversation.user(bob), "three")
    _settled(contract, bob, {f"user:{alice}": 1})


def test_group_unread_per_member(contract: Contract) -> None:
    """In a group each member counts the others' messages after their own newest one."""
    if not _lists(contract):
        return
    alice, bob, carol = contract.users("alice", "bob", "carol")
    group = _group(contract, alice, [bob, carol])
    key = f"group:{group}"
    contract.im.messages.send(alice, Conversation.group(group), "a1")
    contract.im.messages.send(alice, Conversation.group(group), "a2")
    contract.im.messages.send(carol, Conversation.group(group), "c1")
    _settled(contract, bob, {key: 3})
    _settled(contract, alice, {key: 1})
    _settled(contract, carol, {key: 0})
    contract.im.conversations.mark_read(bob, Conversation.group(group))
    _settled(contract, bob, {key: 0})


def test_joining_member_has_nothing_unread(contract: Contract) -> None:
    """Messages sent before a member joined are not unread for them."""
    if not _lists(contract):
        return
    alice, bob, carol = contract.users("alice", "bob", "carol")
    group = _group(contract, alice, [carol])
    contract.im.messages.send(alice, Conversation.group(group), "before")
    contract.im.messages.send(carol, Conversation.group(group), "before too")
    contract.im.groups.add_members(group, [bob])
    contract.im.messages.send(alice, Conversation.group(group), "after")
    _settled(contract, bob, {f"group:{group}": 1})


def test_delete_hides_until_next_message(contract: Contract) -> None:
    """A deleted conversation leaves the list (read) and comes back with its next message, which alone is unread."""
    if not _lists(contract):
        return
    alice, bob, carol = contract.users("alice", "bob", "carol")
    contract.im.messages.send(alice, Conversation.user(bob), "one")
    contract.im.messages.send(alice, Conversation.user(bob), "two")
    contract.im.messages.send(carol, Conversation.user(bob), "stays")
    _settled(contract, bob, {f"user:{alice}": 2, f"user:{carol}": 1})
    contract.im.conversations.delete(bob, Conversation.user(alice))
    _settled(contract, bob, {f"user:{carol}": 1})
    contract.im.messages.send(alice, Conversation.user(bob), "three")
    _settled(contract, bob, {f"user:{alice}": 1, f"user:{carol}": 1})
    history = contract.im.messages.history(Conversation.user(alice), viewer=bob, limit=10)
    assert len(history.items) == 3  # deleting a conversation keeps its messages


def test_set_unread_lowers_the_count(contract: Contract) -> None:
    """set_unread(n) leaves the newest n messages unread; 0 marks the conversation read."""
    if not _lists(contract):
        return
    alice, bob = contract.users("alice", "bob")
    group = _group(contract, alice, [bob])
    for text in ("one", "two", "three"):
        contract.im.messages.send(alice, Conversation.group(group), text)
    key = f"group:{group}"
    _settled(contract, bob, {key: 3})
    contract.im.conversations.set_unread(bob, Conversation.group(group), 1)
    _settled(contract, bob, {key: 1})
    contract.im.conversations.set_unread(bob, Conversation.group(group), 0)
    _settled(contract, bob, {key: 0})


def test_set_unread_above_the_count(contract: Contract) -> None:
    """Raising a one-to-one count either works or is refused with ConflictError (providers that only move a
    read position forward, declared PARTIAL); never silently ignored."""
    if not _lists(contract):
        return
    alice, bob = contract.users("alice", "bob")
    for text in ("one", "two", "three"):
        contract.im.messages.send(alice, Conversation.user(bob), text)
    _settled(contract, bob, {f"user:{alice}": 3})
    contract.im.conversations.mark_read(bob, Conversation.user(alice))
    try:
        contract.im.conversations.set_unread(bob, Conversation.user(alice), 2)
    except ConflictError:
        assert contract.im.capabilities[Operation.CONVERSATIONS_SET_UNREAD].support is Support.PARTIAL
        _settled(contract, bob, {f"user:{alice}": 0})
    else:
        _settled(contract, bob, {f"user:{alice}": 2})


def test_revoke_adds_no_unread(contract: Contract) -> None:
    """Revoking a message sends nothing that counts as unread; the list shows the last message revoked."""
    if not _lists(contract):
        return
    alice, bob = contract.users("alice", "bob")
    contract.im.messages.send(alice, Conversation.user(bob), "one")
    oops = contract.im.messages.send(alice, Conversation.user(bob), "oops")
    _settled(contract, bob, {f"user:{alice}": 2})
    if not contract.supports(Operation.MESSAGES_REVOKE):
        contract.expect_unsupported(lambda: contract.im.messages.revoke(oops.ref))
        return
    contract.im.messages.revoke(oops.ref)
    listed = _listed(contract, bob)
    assert {key: item.unread for key, item in listed.items()} == {f"user:{alice}": 2}
    last = listed[f"user:{alice}"].last_message
    assert last is not None and last.revoked and last.elements == []


def test_paging_reaches_every_conversation_once(contract: Contract) -> None:
    """Pages of 2 walk the whole list in the order of one big page."""
    if not _lists(contract):
        return
    bob, *senders = contract.users("bob", "s1", "s2", "s3", "s4", "s5")
    for sender in senders:
        contract.im.messages.send(sender, Conversation.user(bob), f"from {sender}")
    _settled(contract, bob, {f"user:{sender}": 1 for sender in senders})
    whole = [str(item.conversation) for item in contract.im.conversations.list(bob, limit=20)]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = contract.im.conversations.list(bob, limit=2, cursor=cursor)
        assert len(page.items) <= 2
        seen += [str(item.conversation) for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == whole and sorted(seen) == sorted(f"user:{sender}" for sender in senders)


def test_list_of_user_without_conversations(contract: Contract) -> None:
    """A user nobody wrote to has an empty list."""
    if not _lists(contract):
        return
    (alice,) = contract.users("alice")
    page = contract.im.conversations.list(alice)
    assert page.items == [] and page.next_cursor is None


def test_get_message_by_ref(contract: Contract) -> None:
    """messages.get finds a message by its ref or the ref's stored string, in a chat and in a group."""
    alice, bob = contract.users("alice", "bob")
    group = _group(contract, alice, [bob])
    chat = contract.im.messages.send(alice, Conversation.user(bob), "to bob")
    in_group = contract.im.messages.send(bob, Conversation.group(group), "to all")
    found = contract.im.messages.get(str(chat.ref))
    assert text_of(found) == "to bob" and found.sender == alice and not found.revoked
    assert found.ref.key == chat.ref.key and found.provider == contract.provider
    found = contract.im.messages.get(in_group.ref)
    assert text_of(found) == "to all" and found.sender == bob and found.conversation == Conversation.group(group)
    assert in_group.seq is None or found.seq == in_group.seq


def test_get_revoked_message(contract: Contract) -> None:
    """A revoked message is still found, marked revoked and without its content."""
    alice, bob = contract.users("alice", "bob")
    sent = contract.im.messages.send(alice, Conversation.user(bob), "regret")
    if not contract.supports(Operation.MESSAGES_REVOKE):
        contract.expect_unsupported(lambda: contract.im.messages.revoke(sent.ref))
        return
    contract.im.messages.revoke(sent.ref)
    found = contract.im.messages.get(sent.ref)
    assert found.revoked and found.elements == [] and found.sender == alice


def test_get_many_keeps_order_and_marks_missing(contract: Contract) -> None:
    """get_many answers in the order asked, None for a ref that names no message."""
    alice, bob = contract.users("alice", "bob")
    group = _group(contract, alice, [bob])
    first = contract.im.messages.send(alice, Conversation.user(bob), "first")
    second = contract.im.messages.send(bob, Conversation.group(group), "second")
    found = contract.im.messages.get_many([second.ref, _missing(first.ref), str(first.ref)])
    assert [text_of(m) if m is not None else None for m in found] == ["second", None, "first"]


def test_get_unknown_message_not_found(contract: Contract) -> None:
    alice, bob = contract.users("alice", "bob")
    real = contract.im.messages.send(alice, Conversation.user(bob), "real")
    with pytest.raises(NotFoundError):
        contract.im.messages.get(_missing(real.ref))


def test_async_conversations_and_lookup(contract: Contract) -> None:
    """The async client: the same list, mark_read and lookup, awaited."""
    if not _lists(contract):
        return
    alice, bob = contract.users("alice", "bob")
    sent = contract.im.messages.send(alice, Conversation.user(bob), "async")
    _settled(contract, bob, {f"user:{alice}": 1})

    async def scenario() -> tuple[list[int], list[int], str]:
        async with contract.make_async() as aim:
            before = [item.unread async for item in aim.conversations.iter(bob)]
            await aim.conversations.mark_read(bob, Conversation.user(alice))
            after = [item.unread for item in (await aim.conversations.list(bob)).items]
            found = await aim.messages.get(sent.ref)
            return before, after, text_of(found)

    assert asyncio.run(scenario()) == ([1], [0], "async")


def test_invalid_conversation_input_refused_before_any_request(contract: Contract) -> None:
    alice, bob = contract.users("alice", "bob")
    before = len(contract.requests_sent)
    chat = Conversation.user(bob)
    history_cursor = "eyJkIjoiYmFja3dhcmQiLCJwIjoibG9jYWwiLCJzIjozfQ"  # a local history cursor
    for call in (
        lambda: contract.im.conversations.list(alice, limit=0),
        lambda: contract.im.conversations.list(alice, limit=101),
        lambda: contract.im.conversations.list("", limit=10),
        lambda: contract.im.conversations.list(alice, cursor=""),
        lambda: contract.im.conversations.list(alice, cursor=history_cursor),
        lambda: contract.im.conversations.mark_read(alice, "bob"),  # type: ignore[arg-type]
        lambda: contract.im.conversations.mark_read(alice, Conversation.user(alice)),
        lambda: contract.im.conversations.set_unread(alice, chat, -1),
        lambda: contract.im.conversations.set_unread(alice, chat, True),
        lambda: contract.im.messages.get("imref1.garbage"),
        lambda: contract.im.messages.get_many([]),
        lambda: contract.im.messages.get_many("imref1.x"),
    ):
        # Where lists are declared UNSUPPORTED (see _lists), the capability gate refuses those calls first.
        with pytest.raises(InvalidRequestError if _lists_quietly(contract) else (InvalidRequestError,
                                                                                  UnsupportedOperationError)):
            call()
    assert len(contract.requests_sent) == before


def test_capabilities_declare_every_conversation_operation(contract: Contract) -> None:
    """Each new operation has a level and, unless NATIVE without caveat, notes that say how."""
    for operation in (
        Operation.CONVERSATIONS_LIST, Operation.CONVERSATIONS_DELETE, Operation.CONVERSATIONS_MARK_READ,
        Operation.CONVERSATIONS_SET_UNREAD, Operation.MESSAGES_GET, Operation.MESSAGES_GET_MANY,
    ):  # fmt: skip
        capability = contract.im.capabilities[operation]
        assert capability.support in set(Support)
        assert capability.support is Support.NATIVE or capability.notes
