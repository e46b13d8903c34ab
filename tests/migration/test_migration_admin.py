"""The migration carries what issue 17 added where both sides have it: roles, owners, join options, size
limits, name cards and mutes without an end (Tencent emulator -> WuKongIM emulator, read back from the target)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from migration_support import World

from imbridge import IMClient, JoinOption, Role
from imbridge.migration import Migration
from imbridge.migration.ids import target_id


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World.make(tmp_path, store_delay=1)
    yield w
    w.close()


def test_roles_owner_join_policy_name_cards_and_endless_mutes_are_carried(world: World, tmp_path: Path) -> None:
    source = IMClient("tencent", sdk_app_id=world.tencent.sdk_app_id, secret_key=world.key, base_url="http://t",
                      http_client=httpx.Client(transport=world.tencent.transport()))  # fmt: skip
    source.users.register(["boss", "deputy", "crew", "quiet", "timed"])
    source.groups.create("Carried", owner="boss", members=["crew", "quiet", "timed"], admins=["deputy"],
                         group_id="carried", join_option="approval", max_members=40)  # fmt: skip
    source.groups.transfer_owner("carried", "deputy")  # boss stays as a member
    source.groups.set_role("carried", "crew", "admin")
    source.groups.set_name_card("carried", "crew", "Crew Chief")
    source.groups.mute("carried", ["quiet"], None)  # MuteTime 4294967295: permanent
    source.groups.mute("carried", ["timed"], 3600)
    source.close()

    migration = Migration(world.source(), world.target(), str(tmp_path / "state.db"))
    status = migration.run([*world.users()])
    assert status["complete"], migration.failures()
    migration.close()

    with world.target_client() as target:
        gid = target_id("carried")
        group = target.groups.get(gid)
        assert group.owner == target_id("deputy")
        assert (group.join_option, group.max_members) == (JoinOption.APPROVAL, 40)
        members = {m.user_id: m for m in target.groups.members(gid)}
        assert {uid: m.role for uid, m in members.items()} == {
            target_id("boss"): Role.MEMBER, target_id("deputy"): Role.OWNER, target_id("crew"): Role.ADMIN,
            target_id("quiet"): Role.MEMBER, target_id("timed"): Role.MEMBER,
        }  # fmt: skip
        assert members[target_id("crew")].name_card == "Crew Chief"
        muted = {m.user_id: m for m in target.groups.muted(gid)}
        assert set(muted) == {target_id("quiet"), target_id("timed")}
        assert muted[target_id("quiet")].muted and muted[target_id("quiet")].muted_until is None
        assert muted[target_id("timed")].muted_until is not None
