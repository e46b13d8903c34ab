"""Member administration, join policy, presence and sessions, delivery options, group notifications, mutes
without an end, accounts (issue 17). Every test runs on every provider; where a provider declares an
operation UNSUPPORTED the test checks the refusal before any request."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from imbridge import (
    Conversation,
    Delivery,
    InvalidRequestError,
    JoinOption,
    NotFoundError,
    Operation,
    PermissionDeniedError,
    PresenceState,
    Role,
    UnsupportedOperationError,
)
from imbridge.testing.contract._support import texts
from imbridge.testing.plugin import Contract


def _team(contract: Contract, *extra: str) -> tuple[str, str, str, str]:
    owner, admin, member, *_ = contract.users("own", "adm", "mem", *extra)
    group = contract.im.groups.create(
        "Admin", owner=owner, members=[member], admins=[admin], group_id=contract.gid("g")
    )
    contract.track_group(group.id)
    return group.id, owner, admin, member


def _roles(contract: Contract, group_id: str) -> dict[str, Role]:
    return {m.user_id: m.role for m in contract.im.groups.members(group_id)}


# -- accounts, presence and sessions ----------------------------------------------------------------


def test_exists_reports_each_user(contract: Contract) -> None:
    """users.exists: True for a registered account, False for one never registered, in the order asked."""
    (alice,) = contract.users("alice")
    ghost = contract.uid("ghost")
    assert contract.im.users.exists([ghost, alice]) == {ghost: False, alice: True}


def test_presence_of_registered_user_without_client_is_offline(contract: Contract) -> None:
    """users.presence: a registered user with no client connected is offline, with no online device."""
    alice, bob = contract.users("alice", "bob")
    presence = contract.im.users.presence([alice, bob])
    assert [p.user_id for p in presence] == [alice, bob]
    for item in presence:
        assert item.state is PresenceState.OFFLINE and not item.online
        assert item.device_kinds() == set()
        assert item.provider == contract.provider


def test_presence_of_unknown_user_not_found(contract: Contract) -> None:
    """users.presence names an unknown user with NotFoundError."""
    (alice,) = contract.users("alice")
    with pytest.raises(NotFoundError):
        contract.im.users.presence([alice, contract.uid("ghost")])


def test_kick_ends_sessions_and_new_credentials_work(contract: Contract) -> None:
    """users.kick succeeds for a known user on every device; credentials issued afterwards are valid."""
    (alice,) = contract.users("alice")
    contract.im.users.kick(alice)
    fresh = contract.im.users.login_credentials(alice, ttl=timedelta(hours=1))
    assert contract.im.provider.authenticate(fresh.token.get_secret_value()) == alice
    assert contract.im.users.presence([alice])[0].state is not PresenceState.ONLINE


def test_kick_unknown_user_not_found(contract: Contract) -> None:
    """users.kick of an account that does not exist is NotFoundError."""
    with pytest.raises(NotFoundError):
        contract.im.users.kick(contract.uid("ghost"))


def test_delete_users(contract: Contract) -> None:
    """users.delete removes an account (exists then says False); an unknown one fails its item."""
    alice, bob = contract.users("alice", "bob")
    if not contract.supports(Operation.USERS_DELETE):
        contract.expect_unsupported(lambda: contract.im.users.delete([alice]))
        return
    result = contract.im.users.delete([alice, contract.uid("ghost")])
    assert result.succeeded == [alice]
    assert [item.target for item in result.failed] == [contract.uid("ghost")]
    assert isinstance(result.failed[0].error, NotFoundError)
    assert contract.im.users.exists([alice, bob]) == {alice: False, bob: True}


def test_invalid_admin_input_refused_before_any_request(contract: Contract) -> None:
    """Input that cannot be valid on any provider is refused before the network."""
    (alice,) = contract.users("alice")
    before = len(contract.requests_sent)
    for call in (
        lambda: contract.im.users.kick(alice, device="fridge"),
        lambda: contract.im.users.presence([]),
        lambda: contract.im.groups.set_role("g", alice, "owner"),
        lambda: contract.im.groups.set_role("g", alice, "boss"),
        lambda: contract.im.groups.update("g", join_option="sometimes"),
        lambda: contract.im.groups.update("g", max_members=0),
        lambda: contract.im.groups.list(limit=0),
        lambda: contract.im.groups.notify("g", ""),
        lambda: contract.im.messages.send(alice, Conversation.user(alice), "x", delivery=Delivery(persist=True,
                                                                                                  online_only=True)),
    ):  # fmt: skip
        with pytest.raises(InvalidRequestError):
            call()
    assert len(contract.requests_sent) == before


# -- delivery options --------------------------------------------------------------------------------


def test_online_only_group_message_not_in_history(contract: Contract) -> None:
    """Delivery(online_only=True) in a group: accepted, not persisted, so never in the group's history."""
    group_id, owner, _, member = _team(contract)
    group = Conversation.group(group_id)
    contract.im.messages.send(owner, group, "kept")
    sent = contract.im.messages.send(owner, group, "typing...", delivery=Delivery(online_only=True))
    assert sent.ref.sender == owner
    contract.im.messages.send(owner, group, "kept too")
    assert texts(contract.im.messages.history(group, viewer=member)) == ["kept too", "kept"]


def test_online_only_one_to_one_message_not_in_history(contract: Contract) -> None:
    """Delivery(persist=False) one-to-one is online-only: the conversation's history does not hold it."""
    alice, bob = contract.users("alice", "bob")
    chat = Conversation.user(bob)
    contract.im.messages.send(alice, chat, "hello")
    contract.im.messages.send(alice, chat, "signal", delivery=Delivery(persist=False))
    assert texts(contract.im.messages.history(chat, viewer=alice)) == ["hello"]


def test_message_not_counted_unread_is_still_stored(contract: Contract) -> None:
    """Delivery(unread=False): a persisted message all the same, in history like any other."""
    group_id, owner, _, member = _team(contract)
    group = Conversation.group(group_id)
    sent = contract.im.messages.send(owner, group, "quiet", delivery=Delivery(unread=False))
    assert sent.ref.sender == owner
    assert texts(contract.im.messages.history(group, viewer=member)) == ["quiet"]


def test_command_message_kept_out_of_history(contract: Contract) -> None:
    """Delivery(persist=False, online_only=False) (a command delivered later too): never in history, or
    refused before any request where the provider cannot do it."""
    alice, bob = contract.users("alice", "bob")
    chat = Conversation.user(bob)
    command = Delivery(persist=False, online_only=False)
    before = len(contract.requests_sent)
    try:
        contract.im.messages.send(alice, chat, "refresh", delivery=command)
    except UnsupportedOperationError:
        assert len(contract.requests_sent) == before
        contract.outcome = "unsupported"
        return
    contract.im.messages.send(alice, chat, "visible")
    assert texts(contract.im.messages.history(Conversation.user(alice), viewer=bob)) == ["visible"]


# -- member administration -----------------------------------------------------------------------------


def test_set_role_promotes_and_demotes(contract: Contract) -> None:
    """groups.set_role makes a member an admin and back; members() reports it."""
    group_id, owner, admin, member = _team(contract)
    contract.im.groups.set_role(group_id, member, "admin")
    assert _roles(contract, group_id) == {owner: Role.OWNER, admin: Role.ADMIN, member: Role.ADMIN}
    contract.im.groups.set_role(group_id, admin, Role.MEMBER)
    assert _roles(contract, group_id) == {owner: Role.OWNER, admin: Role.MEMBER, member: Role.ADMIN}


def test_set_role_of_owner_refused(contract: Contract) -> None:
    """The owner's role changes only with transfer_owner: set_role on the owner is InvalidRequestError."""
    group_id, owner, *_ = _team(contract)
    with pytest.raises(InvalidRequestError):
        contract.im.groups.set_role(group_id, owner, "member")
    assert _roles(contract, group_id)[owner] is Role.OWNER


def test_add_existing_member_as_admin_keeps_role(contract: Contract) -> None:
    """add_members(existing, role="admin") succeeds with 'already a member' and leaves the role alone (one
    meaning everywhere; set_role changes roles)."""
    group_id, _, _, member = _team(contract)
    result = contract.im.groups.add_members(group_id, [member], role="admin")
    assert result.ok and result.items[0].detail.startswith("already a member")
    assert _roles(contract, group_id)[member] is Role.MEMBER


def test_transfer_owner(contract: Contract) -> None:
    """groups.transfer_owner: the new owner owns the group, the previous one stays as a member."""
    group_id, owner, admin, member = _team(contract)
    contract.im.groups.transfer_owner(group_id, admin)
    assert contract.im.groups.get(group_id).owner == admin
    assert _roles(contract, group_id) == {owner: Role.MEMBER, admin: Role.OWNER, member: Role.MEMBER}
    removed = contract.im.groups.remove_members(group_id, [owner])  # no longer the owner: removable
    assert removed.ok


def test_name_card(contract: Contract) -> None:
    """groups.set_name_card: members() reports the card; an empty card clears it."""
    group_id, _, _, member = _team(contract)
    contract.im.groups.set_name_card(group_id, member, "Bobby")
    cards = {m.user_id: m.name_card for m in contract.im.groups.members(group_id)}
    assert cards[member] == "Bobby"
    contract.im.groups.set_name_card(group_id, member, "")
    assert not {m.user_id: m.name_card for m in contract.im.groups.members(group_id)}[member]


def test_joined_lists_groups_with_role(contract: Contract) -> None:
    """groups.joined: each group the user is in, with the user's role there; not groups left."""
    group_id, owner, admin, member = _team(contract)
    other = contract.im.groups.create("Other", owner=owner, members=[admin], group_id=contract.gid("o"))
    contract.track_group(other.id)
    by_id = {j.group.id: j for j in contract.im.groups.joined(admin)}
    assert {group_id, other.id} <= set(by_id)
    assert by_id[group_id].role is Role.ADMIN and by_id[other.id].role is Role.MEMBER
    assert by_id[group_id].group.name == "Admin"
    contract.im.groups.remove_members(group_id, [member])
    assert group_id not in {j.group.id for j in contract.im.groups.joined(member)}


def test_list_groups_pages_to_a_new_group(contract: Contract) -> None:
    """groups.list: walking the pages of every group of the app reaches a group just created, once."""
    group_id, *_ = _team(contract)
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = contract.im.groups.list(limit=100, cursor=cursor)
        assert len(page.items) <= 100
        seen += [g.id for g in page.items]
        if group_id in seen or page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen.count(group_id) == 1


def test_join_policy_round_trip(contract: Contract) -> None:
    """Join option and size limit: set at creation, changed by update, read back by get."""
    owner, member = contract.users("own", "mem")
    group = contract.im.groups.create("Policy", owner=owner, members=[member], group_id=contract.gid("g"),
                                      join_option="closed", max_members=50)  # fmt: skip
    contract.track_group(group.id)
    read = contract.im.groups.get(group.id)
    assert (read.join_option, read.max_members) == (JoinOption.CLOSED, 50)
    updated = contract.im.groups.update(group.id, join_option="approval", max_members=20)
    assert (updated.join_option, updated.max_members) == (JoinOption.APPROVAL, 20)
    assert contract.im.groups.get(group.id).join_option is JoinOption.APPROVAL


def test_full_group_refuses_new_members(contract: Contract) -> None:
    """max_members is enforced: adding past it is PermissionDeniedError and adds nobody."""
    group_id, owner, admin, member = _team(contract)
    carol, dan = contract.users("carol", "dan")
    contract.im.groups.update(group_id, max_members=4)
    with pytest.raises(PermissionDeniedError):
        contract.im.groups.add_members(group_id, [carol, dan])
    assert set(_roles(contract, group_id)) == {owner, admin, member}
    assert contract.im.groups.add_members(group_id, [carol]).ok


# -- mutes without an end ---------------------------------------------------------------------------


def test_mute_without_end(contract: Contract) -> None:
    """mute(duration=None): muted with no end (muted_until None), sends refused, until unmute."""
    group_id, _, _, member = _team(contract)
    contract.im.groups.mute(group_id, [member], duration=None)
    [muted] = contract.im.groups.muted(group_id)
    assert muted.user_id == member and muted.muted and muted.muted_until is None
    assert muted.is_muted(contract.now() + timedelta(days=3650))
    with pytest.raises(PermissionDeniedError):
        contract.im.messages.send(member, Conversation.group(group_id), "let me speak")
    contract.im.groups.unmute(group_id, [member])
    assert contract.im.groups.muted(group_id) == []
    contract.im.messages.send(member, Conversation.group(group_id), "thanks")


def test_timed_mute_is_not_reported_endless(contract: Contract) -> None:
    """A timed mute keeps its end; only mute(duration=None) is reported without one."""
    group_id, _, admin, member = _team(contract)
    contract.im.groups.mute(group_id, [member], timedelta(hours=2))
    contract.im.groups.mute(group_id, [admin], None)
    by_user = {m.user_id: m for m in contract.im.groups.muted(group_id)}
    timed_end = by_user[member].muted_until
    assert timed_end is not None and by_user[admin].muted_until is None
    assert timed_end <= contract.now() + timedelta(hours=2, minutes=1)


# -- group system notifications ----------------------------------------------------------------------


def test_notify_group_stays_out_of_history(contract: Contract) -> None:
    """groups.notify to everyone and to some members: accepted, and not a message in the group's history."""
    group_id, owner, admin, member = _team(contract)
    contract.im.messages.send(owner, Conversation.group(group_id), "before")
    contract.im.groups.notify(group_id, "maintenance at 22:00")
    contract.im.groups.notify(group_id, "you are on duty", to=[admin, member])
    assert texts(contract.im.messages.history(Conversation.group(group_id), viewer=member)) == ["before"]


def test_notify_unknown_group_not_found(contract: Contract) -> None:
    """groups.notify to a group that does not exist is NotFoundError."""
    with pytest.raises(NotFoundError):
        contract.im.groups.notify(contract.gid("nogroup"), "hello?")


# -- the async client ---------------------------------------------------------------------------------


def test_async_administration(contract: Contract) -> None:
    """The async client: presence, set_role, transfer_owner and joined, awaited, same results."""
    group_id, owner, admin, member = _team(contract)

    async def scenario() -> tuple[list[PresenceState], Role, str | None, set[str]]:
        async with contract.make_async() as aim:
            presence = await aim.users.presence([owner, member])
            await aim.groups.set_role(group_id, member, "admin")
            await aim.groups.transfer_owner(group_id, admin)
            roles = {m.user_id: m.role for m in await aim.groups.members(group_id)}
            group = await aim.groups.get(group_id)
            joined = {j.group.id for j in await aim.groups.joined(member)}
            return [p.state for p in presence], roles[member], group.owner, joined

    states, role, new_owner, joined = asyncio.run(scenario())
    assert states == [PresenceState.OFFLINE, PresenceState.OFFLINE]
    assert (role, new_owner) == (Role.ADMIN, admin)
    assert group_id in joined
