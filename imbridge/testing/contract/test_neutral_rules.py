"""The neutral rules: where the vendors differ, imbridge picks one meaning and every provider follows it
(docs/semantics.md, "Neutral rules")."""

from __future__ import annotations

import pytest

from imbridge import Conversation, InvalidRequestError, NotFoundError, PermissionDeniedError, Text
from imbridge.resources.messages import MAX_TEXT_BYTES
from imbridge.testing.contract._support import texts
from imbridge.testing.plugin import Contract


def test_text_longer_than_the_neutral_limit_refused_before_any_request(contract: Contract) -> None:
    """Text over 12 KB (Tencent's documented maximum, the strictest) is refused on every provider."""
    alice, bob = contract.users("alice", "bob")
    before = len(contract.requests_sent)
    for text in ("x" * (MAX_TEXT_BYTES + 1), "é" * (MAX_TEXT_BYTES // 2 + 1), "y" * 1_000_000):
        with pytest.raises(InvalidRequestError, match="12,288"):
            contract.im.messages.send(alice, Conversation.user(bob), text)
    with pytest.raises(InvalidRequestError):  # the limit counts every text element of one message
        contract.im.messages.send(alice, Conversation.user(bob), [Text("a" * 7_000), Text("b" * 7_000)])
    assert len(contract.requests_sent) == before
    long_text = "z" * 8_000
    contract.im.messages.send(alice, Conversation.user(bob), long_text)
    page = contract.im.messages.history(Conversation.user(alice), viewer=bob, limit=5)
    assert texts(page.items) == [long_text]


def test_whitespace_only_text_refused_before_any_request(contract: Contract) -> None:
    """Empty or whitespace-only text has nothing to read: refused on every provider, alone or in a list."""
    alice, bob = contract.users("alice", "bob")
    before = len(contract.requests_sent)
    for content in (" ", "\n\t ", "\u3000", Text("   "), [Text("fine"), " "]):
        with pytest.raises(InvalidRequestError):
            contract.im.messages.send(alice, Conversation.user(bob), content)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        contract.im.messages.send_batch(alice, [bob], "  ")
    assert len(contract.requests_sent) == before


def test_muting_a_non_member_is_not_found_and_mutes_nobody(contract: Contract) -> None:
    """Muting or unmuting someone who is not a member: NotFoundError naming them, and nothing changes."""
    alice, bob, carol = contract.users("alice", "bob", "carol")
    group = contract.im.groups.create("Rules", owner=alice, members=[bob], group_id=contract.gid("g"))
    contract.track_group(group.id)
    with pytest.raises(NotFoundError) as info:
        contract.im.groups.mute(group.id, [bob, carol], duration=600)
    assert carol in str(info.value) and bob not in str(info.value).split(":")[-1]
    assert contract.im.groups.muted(group.id) == []  # bob, a member, was not muted either
    with pytest.raises(NotFoundError):
        contract.im.groups.unmute(group.id, [carol])


def test_reading_group_history_as_a_non_member_is_refused(contract: Contract) -> None:
    """Only members read a group's history: an outsider or a removed member gets PermissionDeniedError.

    (Not an empty page, as every provider answered before.)"""
    alice, bob, carol = contract.users("alice", "bob", "carol")
    group = contract.im.groups.create("Readers", owner=alice, members=[bob], group_id=contract.gid("g"))
    contract.track_group(group.id)
    chat = Conversation.group(group.id)
    contract.im.messages.send(alice, chat, "members only")
    assert texts(contract.im.messages.history(chat, viewer=bob, limit=5).items) == ["members only"]
    with pytest.raises(PermissionDeniedError):
        contract.im.messages.history(chat, viewer=carol, limit=5)
    contract.im.groups.remove_members(group.id, [bob])
    with pytest.raises(PermissionDeniedError):
        contract.im.messages.history(chat, viewer=bob, limit=5)


def test_a_sent_message_is_found_by_its_idempotency_key(contract: Contract) -> None:
    """Reconciling a send that may have landed: find_by_key gives the sender's message with the key, or None.

    (What an app does after MessageMayHaveLandedError; another sender's message under the same key is not it.)"""
    alice, bob, carol = contract.users("alice", "bob", "carol")
    group = contract.im.groups.create("Keys", owner=alice, members=[bob], group_id=contract.gid("g"))
    contract.track_group(group.id)
    for to in (Conversation.user(bob), Conversation.group(group.id)):
        key = contract.uid(f"key-{to.kind.value}")
        sent = contract.im.messages.send(alice, to, "reconciled", idempotency_key=key)
        found = contract.im.messages.find_by_key(alice, to, key)
        assert found is not None and found.sender == alice and texts([found]) == ["reconciled"]
        assert str(found.ref) == str(sent.ref)
        assert contract.im.messages.find_by_key(alice, to, contract.uid(f"never-{to.kind.value}")) is None
    shared = contract.uid("shared")
    contract.im.messages.send(bob, Conversation.group(group.id), "bob's", idempotency_key=shared)
    assert contract.im.messages.find_by_key(alice, Conversation.group(group.id), shared) is None
    assert contract.im.messages.find_by_key(carol, Conversation.user(alice), shared) is None
