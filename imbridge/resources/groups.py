"""``im.groups``: create, read, update and dismiss groups; members, roles and mutes."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import timedelta

from imbridge.capabilities import Operation
from imbridge.errors import InvalidRequestError
from imbridge.models import BatchResult, Group, JoinedGroup, JoinOption, Member, Page, Role
from imbridge.models._validation import MAX_DURATION, check_id, check_ids
from imbridge.providers.base import GroupSpec, GroupUpdate
from imbridge.resources._base import AsyncResource, Call, Operations, SyncResource, _seconds, _text

MAX_MUTE = MAX_DURATION
#: The most groups one ``groups.list`` page holds.
MAX_GROUP_PAGE = 1000
MAX_NAME_CARD_BYTES = 500


def _join_option(value: JoinOption | str | None) -> JoinOption | None:
    if value is None:
        return None
    try:
        return JoinOption(value)
    except ValueError:
        raise InvalidRequestError(
            f"join_option must be one of {[o.value for o in JoinOption]}, got {value!r}"
        ) from None


def _max_members(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidRequestError(f"max_members must be a positive integer, got {value!r}")
    return value


def _admin_role(role: Role | str) -> Role:
    try:
        member_role = Role(role)
    except ValueError:
        raise InvalidRequestError(f"role must be 'admin' or 'member', got {role!r}") from None
    if member_role is Role.OWNER:
        raise InvalidRequestError("a group has one owner: use transfer_owner to change it")
    return member_role


class GroupOperations(Operations):
    def create_group(
        self, *, name: str, owner: str, members: Sequence[str], admins: Sequence[str], group_id: str | None,
        introduction: str, notification: str, face_url: str, join_option: JoinOption | str | None = None,
        max_members: int | None = None,
    ) -> Call[Group]:  # fmt: skip
        operation = self._gate(Operation.GROUPS_CREATE)
        if join_option is not None or max_members is not None:
            self._gate(Operation.GROUPS_JOIN_POLICY)
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequestError("a group needs a non-empty name")
        owner = check_id(owner, "owner")
        member_ids = check_ids(members, "members", allow_empty=True)
        admin_ids = check_ids(admins, "admins", allow_empty=True)
        spec = GroupSpec(
            name=_text(name, "name", max_bytes=256) or "",
            owner=owner,
            members=tuple(uid for uid in member_ids if uid != owner and uid not in admin_ids),
            admins=tuple(uid for uid in admin_ids if uid != owner),
            group_id=check_id(group_id, "group id") if group_id is not None else None,
            introduction=_text(introduction, "introduction") or "",
            notification=_text(notification, "notification") or "",
            face_url=_text(face_url, "face_url") or "",
            join_option=_join_option(join_option),
            max_members=_max_members(max_members),
        )
        if spec.max_members is not None and spec.max_members < 1 + len(spec.admins) + len(spec.members):
            raise InvalidRequestError(f"max_members {spec.max_members} is less than the initial members")
        return operation, self.provider.create_group(spec)

    def get_group(self, group_id: str) -> Call[Group]:
        return self._gate(Operation.GROUPS_GET), self.provider.get_group(check_id(group_id, "group id"))

    def update_group(
        self,
        group_id: str,
        *,
        name: str | None,
        introduction: str | None,
        notification: str | None,
        face_url: str | None,
        join_option: JoinOption | str | None = None,
        max_members: int | None = None,
    ) -> Call[Group]:
        operation = self._gate(Operation.GROUPS_UPDATE)
        if join_option is not None or max_members is not None:
            self._gate(Operation.GROUPS_JOIN_POLICY)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidRequestError("a group name cannot be empty")
        update = GroupUpdate(
            name=_text(name, "name", max_bytes=256),
            introduction=_text(introduction, "introduction"),
            notification=_text(notification, "notification"),
            face_url=_text(face_url, "face_url"),
            join_option=_join_option(join_option),
            max_members=_max_members(max_members),
        )
        if update == GroupUpdate():
            raise InvalidRequestError("update needs at least one field to change")
        return operation, self.provider.update_group(check_id(group_id, "group id"), update)

    def dismiss_group(self, group_id: str) -> Call[None]:
        return self._gate(Operation.GROUPS_DISMISS), self.provider.dismiss_group(check_id(group_id, "group id"))

    def add_members(self, group_id: str, user_ids: Sequence[str], role: Role | str) -> Call[BatchResult]:
        operation = self._gate(Operation.GROUPS_ADD_MEMBERS)
        try:
            member_role = Role(role)
        except ValueError:
            raise InvalidRequestError(f"role must be 'admin' or 'member', got {role!r}") from None
        if member_role is Role.OWNER:
            raise InvalidRequestError("a group has one owner; add members as 'admin' or 'member'")
        ids = check_ids(user_ids, "user ids")
        return operation, self.provider.add_members(check_id(group_id, "group id"), ids, member_role)

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> Call[BatchResult]:
        operation = self._gate(Operation.GROUPS_REMOVE_MEMBERS)
        return operation, self.provider.remove_members(check_id(group_id, "group id"), check_ids(user_ids, "user ids"))

    def members(self, group_id: str) -> Call[list[Member]]:
        return self._gate(Operation.GROUPS_MEMBERS), self.provider.list_members(check_id(group_id, "group id"))

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | int | None) -> Call[None]:
        operation = self._gate(Operation.GROUPS_MUTE)
        # None: until unmuted
        length = _seconds(duration, "duration", maximum=MAX_MUTE) if duration is not None else None
        return operation, self.provider.mute(check_id(group_id, "group id"), check_ids(user_ids, "user ids"), length)

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> Call[None]:
        operation = self._gate(Operation.GROUPS_UNMUTE)
        return operation, self.provider.unmute(check_id(group_id, "group id"), check_ids(user_ids, "user ids"))

    def mute_all(self, group_id: str, enabled: bool) -> Call[None]:
        operation = self._gate(Operation.GROUPS_MUTE_ALL)
        if not isinstance(enabled, bool):
            raise InvalidRequestError("enabled must be True or False")
        return operation, self.provider.mute_all(check_id(group_id, "group id"), enabled)

    def muted(self, group_id: str) -> Call[list[Member]]:
        return self._gate(Operation.GROUPS_MUTED), self.provider.muted(check_id(group_id, "group id"))

    # -- member administration, system notifications (issue 17) -------------------------------------

    def set_role(self, group_id: str, user_id: str, role: Role | str) -> Call[None]:
        operation = self._gate(Operation.GROUPS_SET_ROLE)
        member_role = _admin_role(role)
        return operation, self.provider.set_role(check_id(group_id, "group id"), check_id(user_id, "user id"),
                                                 member_role)  # fmt: skip

    def transfer_owner(self, group_id: str, user_id: str) -> Call[None]:
        operation = self._gate(Operation.GROUPS_TRANSFER_OWNER)
        return operation, self.provider.transfer_owner(check_id(group_id, "group id"), check_id(user_id, "new owner"))

    def set_name_card(self, group_id: str, user_id: str, name_card: str) -> Call[None]:
        operation = self._gate(Operation.GROUPS_SET_NAME_CARD)
        card = _text(name_card, "name_card", max_bytes=MAX_NAME_CARD_BYTES)
        if card is None:
            raise InvalidRequestError("name_card must be a string ('' clears it)")
        return operation, self.provider.set_name_card(check_id(group_id, "group id"), check_id(user_id, "user id"),
                                                      card)  # fmt: skip

    def joined(self, user_id: str) -> Call[list[JoinedGroup]]:
        return self._gate(Operation.GROUPS_JOINED), self.provider.joined_groups(check_id(user_id, "user id"))

    def list_groups(self, limit: int, cursor: str | None) -> Call[Page[Group]]:
        operation = self._gate(Operation.GROUPS_LIST)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_GROUP_PAGE:
            raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_GROUP_PAGE}, got {limit!r}")
        if cursor is not None and (not isinstance(cursor, str) or not cursor):
            raise InvalidRequestError("cursor must be a string returned as next_cursor")
        return operation, self.provider.list_groups(limit, cursor)

    def notify(self, group_id: str, text: str, to: Sequence[str] | None) -> Call[None]:
        operation = self._gate(Operation.GROUPS_NOTIFY)
        if not isinstance(text, str) or not text:
            raise InvalidRequestError("a notification needs non-empty text")
        _text(text, "text", max_bytes=8000)
        recipients = check_ids(to, "to") if to is not None else None
        return operation, self.provider.notify_group(check_id(group_id, "group id"), text, recipients)


class Groups(SyncResource[GroupOperations]):
    _operations = GroupOperations

    def create(
        self, name: str, owner: str, members: Sequence[str] = (), *, admins: Sequence[str] = (),
        group_id: str | None = None, introduction: str = "", notification: str = "", face_url: str = "",
        join_option: JoinOption | str | None = None, max_members: int | None = None,
    ) -> Group:  # fmt: skip
        """Create a group owned by ``owner`` with initial ``members`` (and ``admins``); ``join_option`` and
        ``max_members`` set its join policy (the provider's default when None)."""
        return self._run(
            self._ops.create_group(
                name=name,
                owner=owner,
                members=members,
                admins=admins,
                group_id=group_id,
                introduction=introduction,
                notification=notification,
                face_url=face_url,
                join_option=join_option,
                max_members=max_members,
            )
        )

    def get(self, group_id: str) -> Group:
        return self._run(self._ops.get_group(group_id))

    def update(
        self, group_id: str, *, name: str | None = None, introduction: str | None = None,
        notification: str | None = None, face_url: str | None = None, join_option: JoinOption | str | None = None,
        max_members: int | None = None,
    ) -> Group:  # fmt: skip
        """Change the given fields (profile and join policy) and return the group as it now is."""
        return self._run(
            self._ops.update_group(
                group_id,
                name=name,
                introduction=introduction,
                notification=notification,
                face_url=face_url,
                join_option=join_option,
                max_members=max_members,
            )
        )

    def dismiss(self, group_id: str) -> None:
        self._run(self._ops.dismiss_group(group_id))

    def add_members(self, group_id: str, user_ids: Sequence[str], *, role: Role | str = Role.MEMBER) -> BatchResult:
        """Add users; one item per user (already a member counts as success, with a detail)."""
        return self._run(self._ops.add_members(group_id, user_ids, role))

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> BatchResult:
        """Remove users; a user who was not a member gets a failed item with NotFoundError."""
        return self._run(self._ops.remove_members(group_id, user_ids))

    def members(self, group_id: str) -> list[Member]:
        return self._run(self._ops.members(group_id))

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | int | None) -> None:
        """Stop members from sending for ``duration`` (a timedelta or seconds; it lifts by itself), or until
        unmuted when ``duration`` is None."""
        self._run(self._ops.mute(group_id, user_ids, duration))

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> None:
        self._run(self._ops.unmute(group_id, user_ids))

    def mute_all(self, group_id: str, enabled: bool = True) -> None:
        """While on, only the owner and admins may send."""
        self._run(self._ops.mute_all(group_id, enabled))

    def muted(self, group_id: str) -> list[Member]:
        """Members muted right now, with ``muted_until`` (None: until unmuted)."""
        return self._run(self._ops.muted(group_id))

    # -- member administration, system notifications (issue 17) -------------------------------------

    def set_role(self, group_id: str, user_id: str, role: Role | str) -> None:
        """Make a member an admin or a plain member (``"admin"``/``"member"``); the owner is changed only
        by :meth:`transfer_owner`. NotFoundError if the user is not a member."""
        self._run(self._ops.set_role(group_id, user_id, role))

    def transfer_owner(self, group_id: str, user_id: str) -> None:
        """Make a member the owner; the previous owner stays in the group as a plain member."""
        self._run(self._ops.transfer_owner(group_id, user_id))

    def set_name_card(self, group_id: str, user_id: str, name_card: str) -> None:
        """A member's display name in this group (``""`` clears it); ``members()`` reports it."""
        self._run(self._ops.set_name_card(group_id, user_id, name_card))

    def joined(self, user_id: str) -> builtins.list[JoinedGroup]:
        """The groups ``user_id`` belongs to, each with the user's role in it."""
        return self._run(self._ops.joined(user_id))

    def notify(self, group_id: str, text: str, to: Sequence[str] | None = None) -> None:
        """A group system notification (from no member): to every member, or only to ``to``. It is not
        an ordinary message: see the capability notes for where each provider delivers it."""
        self._run(self._ops.notify(group_id, text, to))

    def list(self, limit: int = 100, cursor: str | None = None) -> Page[Group]:
        """One page of every group of the app (the order is the provider's; see the capability notes)."""
        return self._run(self._ops.list_groups(limit, cursor))


class AsyncGroups(AsyncResource[GroupOperations]):
    _operations = GroupOperations

    async def create(
        self, name: str, owner: str, members: Sequence[str] = (), *, admins: Sequence[str] = (),
        group_id: str | None = None, introduction: str = "", notification: str = "", face_url: str = "",
        join_option: JoinOption | str | None = None, max_members: int | None = None,
    ) -> Group:  # fmt: skip
        """Create a group owned by ``owner`` with initial ``members`` (and ``admins``); ``join_option`` and
        ``max_members`` set its join policy (the provider's default when None)."""
        return await self._run(
            self._ops.create_group(
                name=name,
                owner=owner,
                members=members,
                admins=admins,
                group_id=group_id,
                introduction=introduction,
                notification=notification,
                face_url=face_url,
                join_option=join_option,
                max_members=max_members,
            )
        )

    async def get(self, group_id: str) -> Group:
        return await self._run(self._ops.get_group(group_id))

    async def update(
        self, group_id: str, *, name: str | None = None, introduction: str | None = None,
        notification: str | None = None, face_url: str | None = None, join_option: JoinOption | str | None = None,
        max_members: int | None = None,
    ) -> Group:  # fmt: skip
        """Change the given fields (profile and join policy) and return the group as it now is."""
        return await self._run(
            self._ops.update_group(
                group_id,
                name=name,
                introduction=introduction,
                notification=notification,
                face_url=face_url,
                join_option=join_option,
                max_members=max_members,
            )
        )

    async def dismiss(self, group_id: str) -> None:
        await self._run(self._ops.dismiss_group(group_id))

    async def add_members(
        self, group_id: str, user_ids: Sequence[str], *, role: Role | str = Role.MEMBER
    ) -> BatchResult:
        """Add users; one item per user (already a member counts as success, with a detail)."""
        return await self._run(self._ops.add_members(group_id, user_ids, role))

    async def remove_members(self, group_id: str, user_ids: Sequence[str]) -> BatchResult:
        """Remove users; a user who was not a member gets a failed item with NotFoundError."""
        return await self._run(self._ops.remove_members(group_id, user_ids))

    async def members(self, group_id: str) -> list[Member]:
        return await self._run(self._ops.members(group_id))

    async def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | int | None) -> None:
        """Stop members from sending for ``duration`` (a timedelta or seconds; it lifts by itself), or until
        unmuted when ``duration`` is None."""
        await self._run(self._ops.mute(group_id, user_ids, duration))

    async def unmute(self, group_id: str, user_ids: Sequence[str]) -> None:
        await self._run(self._ops.unmute(group_id, user_ids))

    async def mute_all(self, group_id: str, enabled: bool = True) -> None:
        """While on, only the owner and admins may send."""
        await self._run(self._ops.mute_all(group_id, enabled))

    async def muted(self, group_id: str) -> list[Member]:
        """Members muted right now, with ``muted_until`` (None: until unmuted)."""
        return await self._run(self._ops.muted(group_id))

    # -- member administration, system notifications (issue 17) -------------------------------------

    async def set_role(self, group_id: str, user_id: str, role: Role | str) -> None:
        """Make a member an admin or a plain member (``"admin"``/``"member"``); the owner is changed only
        by :meth:`transfer_owner`. NotFoundError if the user is not a member."""
        await self._run(self._ops.set_role(group_id, user_id, role))

    async def transfer_owner(self, group_id: str, user_id: str) -> None:
        """Make a member the owner; the previous owner stays in the group as a plain member."""
        await self._run(self._ops.transfer_owner(group_id, user_id))

    async def set_name_card(self, group_id: str, user_id: str, name_card: str) -> None:
        """A member's display name in this group (``""`` clears it); ``members()`` reports it."""
        await self._run(self._ops.set_name_card(group_id, user_id, name_card))

    async def joined(self, user_id: str) -> builtins.list[JoinedGroup]:
        """The groups ``user_id`` belongs to, each with the user's role in it."""
        return await self._run(self._ops.joined(user_id))

    async def notify(self, group_id: str, text: str, to: Sequence[str] | None = None) -> None:
        """A group system notification (from no member): to every member, or only to ``to``. It is not
        an ordinary message: see the capability notes for where each provider delivers it."""
        await self._run(self._ops.notify(group_id, text, to))

    async def list(self, limit: int = 100, cursor: str | None = None) -> Page[Group]:
        """One page of every group of the app (the order is the provider's; see the capability notes)."""
        return await self._run(self._ops.list_groups(limit, cursor))
