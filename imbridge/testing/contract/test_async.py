"""The async client against the same provider: same names, awaited, same behaviour."""

from __future__ import annotations

import asyncio

import pytest

from imbridge import Conversation, PermissionDeniedError
from imbridge.testing.contract._support import text_of
from imbridge.testing.plugin import Contract


def test_async_send_history_and_refusal(contract: Contract) -> None:
    alice, bob = contract.users("alice", "bob")
    group = contract.im.groups.create("Async", owner=alice, members=[bob], group_id=contract.gid("g"))
    contract.track_group(group.id)
    contract.im.groups.mute(group.id, [bob], 600)

    async def scenario() -> list[str]:
        async with contract.make_async() as aim:
            await aim.messages.send(alice, Conversation.group(group.id), "one")
            await aim.messages.send(alice, Conversation.group(group.id), "two")
            with pytest.raises(PermissionDeniedError):
                await aim.messages.send(bob, Conversation.group(group.id), "muted")
            return [
                text_of(m)
                async for m in aim.messages.iter_history(Conversation.group(group.id), viewer=bob)
                if m.sender == alice
            ]

    assert asyncio.run(scenario()) == ["two", "one"]


def test_async_groups_and_members(contract: Contract) -> None:
    alice, bob, carol = contract.users("alice", "bob", "carol")

    async def scenario() -> set[str]:
        async with contract.make_async() as aim:
            group = await aim.groups.create("AsyncTeam", owner=alice, members=[bob], group_id=contract.gid("g"))
            contract.track_group(group.id)
            await aim.groups.add_members(group.id, [carol])
            return {m.user_id for m in await aim.groups.members(group.id)}

    assert asyncio.run(scenario()) == {alice, bob, carol}
