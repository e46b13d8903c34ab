"""groups.*: create/get/update/dismiss, members and roles, mutes with expiry, mute_all (sync and async)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from imbridge import ConflictError, Conversation, Group, NotFoundError, PermissionDeniedError, Role
from imbridge.testing import FakeClock

TEAM = Conversation.group("team")


def _roles(im: Any, group_id: str = "team") -> dict[str, Role]:
    return {member.user_id: member.role for member in im.groups.members(group_id)}


def test_create_get_update_dismiss(people: Any, clock: FakeClock) -> None:
    created = people.groups.create(
        name="Team", owner="alice", members=["bob", "carol"], introduction="intro", notification="note",
        face_url="https://example.com/g.png",
    )  # fmt: skip
    assert isinstance(created, Group)
    assert created.id.startswith("grp_") and created.provider == "local"
    assert (created.name, created.owner, created.introduction, created.notification) == (
        "Team",
        "alice",
        "intro",
        "note",
    )
    assert created.face_url == "https://example.com/g.png"
    assert created.member_count == 3 and not created.mute_all and created.created_at == clock.now()
    assert people.groups.get(created.id) == created

    updated = people.groups.update(created.id, name="Renamed", notification="new note")
    assert (updated.name, updated.notification, updated.introduction) == ("Renamed", "new note", "intro")
    assert people.groups.get(created.id) == updated

    people.groups.dismiss(created.id)
    for call in (
        lambda: people.groups.get(created.id),
        lambda: people.groups.update(created.id, name="x"),
        lambda: people.groups.dismiss(created.id),
        lambda: people.groups.members(created.id),
        lambda: people.messages.send(sender="alice", to=Conversation.group(created.id), content="hi"),
    ):
        with pytest.raises(NotFoundError):
            call()


def test_group_ids_are_unique_and_reusable_after_dismiss(people: Any) -> None:
    people.groups.create(name="A", owner="alice", group_id="g1")
    with pytest.raises(ConflictError):
        people.groups.create(name="B", owner="bob", group_id="g1")
    assert people.groups.get("g1").name == "A"
    people.messages.send(sender="alice", to=Conversation.group("g1"), content="old")
    people.groups.dismiss("g1")
    again = people.groups.create(name="C", owner="bob", group_id="g1")
    assert (again.name, again.owner) == ("C", "bob")
    assert people.messages.history(Conversation.group("g1"), viewer="bob").items == []


def test_create_with_unknown_user(people: Any) -> None:
    with pytest.raises(NotFoundError):
        people.groups.create(name="X", owner="alice", members=["zed"], group_id="gx")
    with pytest.raises(NotFoundError):
        people.groups.get("gx")


def test_unknown_group_everywhere(people: Any) -> None:
    calls = [
        lambda: people.groups.get("nope"),
        lambda: people.groups.update("nope", name="x"),
        lambda: people.groups.dismiss("nope"),
        lambda: people.groups.add_members("nope", ["bob"]),
        lambda: people.groups.remove_members("nope", ["bob"]),
        lambda: people.groups.members("nope"),
        lambda: people.groups.mute("nope", ["bob"], duration=60),
        lambda: people.groups.unmute("nope", ["bob"]),
        lambda: people.groups.mute_all("nope", True),
        lambda: people.groups.muted("nope"),
        lambda: people.messages.history(Conversation.group("nope"), viewer="alice"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            call()


def test_members_with_roles(team: Any) -> None:
    members = team.groups.members("team")
    assert {m.user_id: m.role for m in members} == {
        "alice": Role.OWNER, "bob": Role.ADMIN, "carol": Role.MEMBER, "dave": Role.MEMBER,
    }  # fmt: skip
    assert all(m.muted_until is None and m.provider == "local" for m in members)
    assert team.groups.get("team").member_count == 4


def test_add_members_twice(team: Any) -> None:
    team.users.register(["eve", "frank"])
    first = team.groups.add_members("team", ["eve", "frank"], role="admin")
    assert first.ok and all(item.detail == "" for item in first.items)
    second = team.groups.add_members("team", ["eve", "carol"])
    assert second.ok
    assert {item.target: item.detail for item in second.items} == {
        "eve": "already a member",
        "carol": "already a member",
    }
    roles = _roles(team)
    assert roles["eve"] is Role.ADMIN and roles["frank"] is Role.ADMIN  # a re-add does not change the role
    assert roles["carol"] is Role.MEMBER
    assert team.groups.get("team").member_count == 6


def test_add_unknown_user_is_a_failed_item(team: Any) -> None:
    team.users.register(["eve"])
    result = team.groups.add_members("team", ["eve", "zed"])
    assert result.succeeded == ["eve"]
    (failed,) = result.failed
    assert failed.target == "zed" and isinstance(failed.error, NotFoundError)
    assert "zed" not in _roles(team)


def test_remove_members(team: Any) -> None:
    team.users.register(["eve"])
    result = team.groups.remove_members("team", ["carol", "eve", "alice"])
    assert result.succeeded == ["carol"]
    failures = {item.target: type(item.error) for item in result.failed}
    assert failures == {"eve": NotFoundError, "alice": PermissionDeniedError}
    assert set(_roles(team)) == {"alice", "bob", "dave"}
    with pytest.raises(PermissionDeniedError):  # a removed member can no longer send
        team.messages.send(sender="carol", to=TEAM, content="still here?")


def test_mute_expires_by_itself(team: Any, clock: FakeClock) -> None:
    team.groups.mute("team", ["carol"], duration=timedelta(minutes=10))
    until = clock.now() + timedelta(minutes=10)
    with pytest.raises(PermissionDeniedError) as info:
        team.messages.send(sender="carol", to=TEAM, content="muted?")
    assert "muted" in str(info.value)
    team.messages.send(sender="dave", to=TEAM, content="dave is fine")
    (muted,) = team.groups.muted("team")
    assert (muted.user_id, muted.role, muted.muted_until) == ("carol", Role.MEMBER, until)
    assert muted.is_muted(clock.now())
    assert {m.user_id: m.muted_until for m in team.groups.members("team")}["carol"] == until

    clock.advance(timedelta(minutes=10) - timedelta(seconds=1))
    with pytest.raises(PermissionDeniedError):
        team.messages.send(sender="carol", to=TEAM, content="still muted")
    clock.advance(1)
    team.messages.send(sender="carol", to=TEAM, content="free again")
    assert team.groups.muted("team") == []
    assert all(m.muted_until is None for m in team.groups.members("team"))
    texts = [m.elements[0].text for m in team.messages.history(TEAM, viewer="alice")]
    assert texts == ["free again", "dave is fine"]


def test_mute_duration_in_seconds_and_remute_extends(team: Any, clock: FakeClock) -> None:
    team.groups.mute("team", ["carol", "dave"], duration=60)
    team.groups.mute("team", ["carol"], duration=3600)
    assert {m.user_id: m.muted_until for m in team.groups.muted("team")} == {
        "carol": clock.now() + timedelta(hours=1), "dave": clock.now() + timedelta(seconds=60),
    }  # fmt: skip
    clock.advance(61)
    assert [m.user_id for m in team.groups.muted("team")] == ["carol"]


def test_unmute(team: Any) -> None:
    team.groups.mute("team", ["carol", "dave"], duration=timedelta(hours=1))
    team.groups.unmute("team", ["carol"])
    assert [m.user_id for m in team.groups.muted("team")] == ["dave"]
    team.messages.send(sender="carol", to=TEAM, content="unmuted")
    with pytest.raises(PermissionDeniedError):
        team.messages.send(sender="dave", to=TEAM, content="still muted")


def test_mute_non_member(team: Any) -> None:
    team.users.register(["eve"])
    with pytest.raises(NotFoundError):
        team.groups.mute("team", ["carol", "eve"], duration=60)
    assert team.groups.muted("team") == []  # nothing muted when one target is wrong


def test_mute_all_lets_only_owner_and_admins_speak(team: Any) -> None:
    team.groups.mute_all("team", True)
    assert team.groups.get("team").mute_all
    team.messages.send(sender="alice", to=TEAM, content="owner speaks")
    team.messages.send(sender="bob", to=TEAM, content="admin speaks")
    for member in ("carol", "dave"):
        with pytest.raises(PermissionDeniedError):
            team.messages.send(sender=member, to=TEAM, content="member speaks")
    team.groups.mute_all("team", False)
    assert not team.groups.get("team").mute_all
    team.messages.send(sender="carol", to=TEAM, content="member speaks again")
    texts = [m.elements[0].text for m in team.messages.history(TEAM, viewer="dave")]
    assert texts == ["member speaks again", "admin speaks", "owner speaks"]


def test_muted_admin_is_refused_too(team: Any) -> None:
    team.groups.mute("team", ["bob"], duration=60)
    with pytest.raises(PermissionDeniedError):
        team.messages.send(sender="bob", to=TEAM, content="admin muted")
