"""Every conversation and lookup method on the async client (local provider), against its sync twin."""

from __future__ import annotations

from pathlib import Path

import pytest

from imbridge import AsyncIMClient, Conversation, IMClient, InvalidRequestError, UnsupportedOperationError
from imbridge.capabilities import CapabilityMap, Operation, Support
from imbridge.providers.local.provider import LocalProvider


async def test_async_twins_behave_like_the_sync_methods(tmp_path: Path) -> None:
    path = str(tmp_path / "async.db")
    with IMClient("local", database=path) as im:
        im.users.register(["alice", "bob"])
        group = im.groups.create("G", owner="alice", members=["bob"])
        first = im.messages.send("alice", Conversation.user("bob"), "one")
        second = im.messages.send("alice", Conversation.group(group.id), "two")
        im.messages.send("alice", Conversation.group(group.id), "three")
    async with AsyncIMClient("local", database=path) as aim:
        listed = [(str(s.conversation), s.unread) async for s in aim.conversations.iter("bob", page_size=1)]
        assert listed == [(f"group:{group.id}", 2), ("user:alice", 1)]
        await aim.conversations.set_unread("bob", Conversation.group(group.id), 1)
        await aim.conversations.mark_read("bob", Conversation.user("alice"))
        page = await aim.conversations.list("bob")
        assert [s.unread for s in page.items] == [1, 0]
        await aim.conversations.delete("bob", Conversation.user("alice"))
        assert [str(s.conversation) for s in (await aim.conversations.list("bob")).items] == [f"group:{group.id}"]
        found = await aim.messages.get_many([second.ref, str(first.ref)])
        assert [m.elements[0].text if m else None for m in found] == ["two", "one"]  # type: ignore[union-attr]
        assert (await aim.messages.get(first.ref)).sender == "alice"
        with pytest.raises(InvalidRequestError):
            await aim.conversations.set_unread("bob", Conversation.user("bob"), 1)


class _NoConversations(LocalProvider):
    @property
    def capabilities(self) -> CapabilityMap:
        return super().capabilities.replace(Operation.CONVERSATIONS_LIST, Support.UNSUPPORTED, "not here")


def test_unsupported_list_is_refused_before_any_work(tmp_path: Path) -> None:
    provider = _NoConversations(LocalProvider.settings_class(database=str(tmp_path / "u.db")))
    with IMClient(provider) as im, pytest.raises(UnsupportedOperationError, match="not here"):
        im.conversations.list("bob")
    provider.close()
