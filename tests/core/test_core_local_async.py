"""AsyncIMClient on local inside a running event loop (the other tests drive it through a private loop)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from imbridge import AsyncIMClient, Conversation, MessageRef, PermissionDeniedError
from imbridge.testing import FakeClock

TEAM = Conversation.group("team")


async def test_async_group_scenario() -> None:
    clock = FakeClock()
    async with AsyncIMClient("local", database=":memory:", clock=clock) as im:
        await im.users.register(["alice", "bob", "carol"])
        await im.groups.create(name="Team", owner="alice", members=["bob", "carol"], group_id="team")
        sent = await asyncio.gather(*(im.messages.send(sender="bob", to=TEAM, content=f"m{i}") for i in range(40)))
        assert sorted(s.seq for s in sent) == list(range(1, 41))

        await im.groups.mute("team", ["carol"], duration=timedelta(seconds=30))
        with pytest.raises(PermissionDeniedError):
            await im.messages.send(sender="carol", to=TEAM, content="muted")
        await im.messages.revoke(MessageRef.parse(str(sent[0].ref)))

        seen = [m async for m in im.messages.iter_history(TEAM, viewer="alice", page_size=7, direction="forward")]
        assert [m.seq for m in seen] == list(range(1, 41))
        assert [m.seq for m in seen if m.revoked] == [sent[0].seq]

        clock.advance(31)
        assert await im.groups.muted("team") == []
        await im.messages.send(sender="carol", to=TEAM, content="back")
        page = await im.messages.history(TEAM, viewer="bob", limit=1)
        assert page.items[0].elements[0].text == "back" and page.has_more
