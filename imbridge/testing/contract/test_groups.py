"""Groups, members, roles and mutes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from imbridge import (
    Conversation,
    InvalidRequestError,
    NotFoundError,
    Operation,
    PermissionDeniedError,
    Role,
    Support,
)
from imbridge.testing.contract._support import eventually
from imbridge.testing.plugin import Contract


def _team(contract: Contract, *extra: str) -> tuple[str, str, str, str]:
    owner, admin, member, *_ = contract.users("own", "adm", "mem", *extra)
    group = contract.im.groups.create(
        "Team", owner=owner, members=[member], admins=[admin], group_id=contract.gid("g"), introduction="intro"
    )
    contract.track_group(group.id)
    return group.id, owner, admin, member


def test_create_and_get(contract: Contract) -> None:
    group_id, owner, _, _ = _team(contract)
    group = contract.im.groups.get(group_id)
    assert (group.id, group.name, group.owner, group.introduction) == (group_id, "Team", owner, "intro")
    assert group.provider == contract.provider


def test_create_without_id_assigns_one(contract: Contract) -> None:
    (owner,) = contract.users("own")
    group = contract.im.groups.create("Anon", owner=owner)
    contract.track_group(group.id)
    assert group.id and contract.im.groups.get(group.id).name == "Anon"


def test_update(contract: Contract) -> None:
    group_id, *_ = _team(contract)
    updated = contract.im.groups.update(group_id, name="Renamed", notification="read the rules")
    assert (updated.name, updated.notification) == ("Renamed", "read the rules")
    assert contract.im.groups.get(group_id).name == "Renamed"


def test_dismiss(contract: Contract) -> None:
    group_id, *_ = _team(contract)
    contract.im.groups.dismiss(group_id)
    with pytest.raises(NotFoundError):
        contract.im.groups.get(group_id)


def test_unknown_group_not_found(contract: Contract) -> None:
    with pytest.raises(NotFoundError):
        contract.im.groups.get(contract.gid("nogroup"))


def test_members_with_roles(contract: Contract) -> None:
    group_id, owner, admin, member = _team(contract)
    roles = {m.user_id: m.role for m in contract.im.groups.members(group_id)}
    assert roles == {owner: Role.OWNER, admin: Role.ADMIN, member: Role.MEMBER}


def test_add_members(contract: Contract) -> None:
    group_id, *_ = _team(contract)
    carol, dan = contract.users("carol", "dan")
    result = contract.im.groups.add_members(group_id, [carol, dan])
    assert result.ok and result.succeeded == [carol, dan]
    ids = {m.user_id for m in contract.im.groups.members(group_id)}
    assert {carol, dan} <= ids


def test_add_member_twice(contract: Contract) -> None:
    group_id, _, _, member = _team(contract)
    again = contract.im.groups.add_members(group_id, [member])
    assert again.ok
    assert [m.user_id for m in contract.im.groups.members(group_id)].count(member) == 1


def test_remove_member(contract: Contract) -> None:
    group_id, _, _, member = _team(contract)
    result = contract.im.groups.remove_members(group_id, [member])
    assert result.ok
    assert member not in {m.user_id for m in contract.im.groups.members(group_id)}
    with pytest.raises(PermissionDeniedError):
        contract.im.messages.send(member, Conversation.group(group_id), "still here?")


def test_remove_non_member(contract: Contract) -> None:
    group_id, *_ = _team(contract)
    (outsider,) = contract.users("out")
    result = contract.im.groups.remove_members(group_id, [outsider])
    assert not result.ok
    assert [item.target for item in result.failed] == [outsider]
    assert isinstance(result.failed[0].error, NotFoundError)


def test_mute_with_duration(contract: Contract) -> None:
    group_id, _, _, member = _team(contract)
    before = contract.now()
    contract.im.groups.mute(group_id, [member], timedelta(hours=1))
    muted = contract.im.groups.muted(group_id)
    assert [m.user_id for m in muted] == [member]
    until = muted[0].muted_until
    assert until is not None
    assert before + timedelta(minutes=59) <= until <= before + timedelta(hours=1, minutes=1)


def test_muted_member_send_refused(contract: Contract) -> None:
    group_id, _, _, member = _team(contract)
    contract.im.groups.mute(group_id, [member], timedelta(minutes=10))
    with pytest.raises(PermissionDeniedError):
        contract.im.messages.send(member, Conversation.group(group_id), "can you hear me")


def test_mute_expires_by_itself(contract: Contract) -> None:
    group_id, _, _, member = _team(contract)
    contract.im.groups.mute(group_id, [member], timedelta(seconds=2))
    assert [m.user_id for m in contract.im.groups.muted(group_id)] == [member]

    def lifted() -> None:
        assert contract.im.groups.muted(group_id) == []

    eventually(lifted)
    sent = contract.im.messages.send(member, Conversation.group(group_id), "free again")
    assert sent.ref.sender == member


def test_unmute(contract: Contract) -> None:
    group_id, _, _, member = _team(contract)
    contract.im.groups.mute(group_id, [member], timedelta(hours=1))
    contract.im.groups.unmute(group_id, [member])
    assert contract.im.groups.muted(group_id) == []
    contract.im.messages.send(member, Conversation.group(group_id), "thanks")


def test_mute_all(contract: Contract) -> None:
    group_id, owner, admin, member = _team(contract)
    contract.im.groups.mute_all(group_id, True)
    assert contract.im.groups.get(group_id).mute_all is True
    with pytest.raises(PermissionDeniedError):
        contract.im.messages.send(member, Conversation.group(group_id), "hello?")
    if contract.im.capabilities[Operation.GROUPS_MUTE_ALL].support is not Support.PARTIAL:
        # Owner and admins keep speaking; a PARTIAL mute_all says in its notes whom it silences too.
        contract.im.messages.send(owner, Conversation.group(group_id), "announcement")
        contract.im.messages.send(admin, Conversation.group(group_id), "seconded")
    contract.im.groups.mute_all(group_id, False)
    assert contract.im.groups.get(group_id).mute_all is False
    contract.im.messages.send(member, Conversation.group(group_id), "finally")


def test_muted_list_of_unknown_group(contract: Contract) -> None:
    with pytest.raises(NotFoundError):
        contract.im.groups.muted(contract.gid("nogroup"))


def test_invalid_group_input_refused_before_any_request(contract: Contract) -> None:
    (owner,) = contract.users("own")
    before = len(contract.requests_sent)
    for call in (
        lambda: contract.im.groups.create("", owner=owner),
        lambda: contract.im.groups.create("x", owner=""),
        lambda: contract.im.groups.add_members("g", [], role="member"),
        lambda: contract.im.groups.add_members("g", [owner], role="owner"),
        lambda: contract.im.groups.mute("g", [owner], timedelta(seconds=-5)),
        lambda: contract.im.groups.update("g"),
        lambda: contract.im.groups.mute_all("g", "yes"),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidRequestError):
            call()
    assert len(contract.requests_sent) == before
