"""``im.groups``: create, read, update and dismiss groups; members, roles and mutes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from imbridge.capabilities import Operation
from imbridge.errors import InvalidRequestError
from imbridge.models import BatchResult, Group, Member, Role
from imbridge.models._validation import check_id, check_ids
from imbridge.providers.base import GroupSpec, GroupUpdate
from imbridge.resources._base import AsyncResource, Call, Operations, SyncResource, _seconds, _text

MAX_MUTE = timedelta(days=365 * 100)


class GroupOperations(Operations):
    def create_group(
        self, *, name: str, owner: str, members: Sequence[str], admins: Sequence[str], group_id: str | None,
        introduction: str, notification: str, face_url: str,
    ) -> Call[Group]:  # fmt: skip
        operation = self._gate(Operation.GROUPS_CREATE)
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
        )
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
    ) -> Call[Group]:
        operation = self._gate(Operation.GROUPS_UPDATE)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidRequestError("a group name cannot be empty")
        update = GroupUpdate(
            name=_text(name, "name", max_bytes=256),
            introduction=_text(introduction, "introduction"),
            notification=_text(notification, "notification"),
            face_url=_text(face_url, "face_url"),
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

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | int) -> Call[None]:
        operation = self._gate(Operation.GROUPS_MUTE)
        length = _seconds(duration, "duration")
        if length > MAX_MUTE:
            raise InvalidRequestError(f"duration longer than {MAX_MUTE.days} days")
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


class Groups(SyncResource[GroupOperations]):
    _operations = GroupOperations

    def create(
        self, name: str, owner: str, members: Sequence[str] = (), *, admins: Sequence[str] = (),
        group_id: str | None = None, introduction: str = "", notification: str = "", face_url: str = "",
    ) -> Group:  # fmt: skip
        """Create a group owned by ``owner`` with initial ``members`` (and ``admins``)."""
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
            )
        )

    def get(self, group_id: str) -> Group:
        return self._run(self._ops.get_group(group_id))

    def update(
        self, group_id: str, *, name: str | None = None, introduction: str | None = None,
        notification: str | None = None, face_url: str | None = None,
    ) -> Group:  # fmt: skip
        """Change the given fields and return the group as it now is."""
        return self._run(
            self._ops.update_group(
                group_id, name=name, introduction=introduction, notification=notification, face_url=face_url
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

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | int) -> None:
        """Stop members from sending for ``duration`` (a timedelta or seconds); it lifts by itself."""
        self._run(self._ops.mute(group_id, user_ids, duration))

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> None:
        self._run(self._ops.unmute(group_id, user_ids))

    def mute_all(self, group_id: str, enabled: bool = True) -> None:
        """While on, only the owner and admins may send."""
        self._run(self._ops.mute_all(group_id, enabled))

    def muted(self, group_id: str) -> list[Member]:
        """Members muted right now, with ``muted_until``."""
        return self._run(self._ops.muted(group_id))


class AsyncGroups(AsyncResource[GroupOperations]):
    _operations = GroupOperations

    async def create(
        self, name: str, owner: str, members: Sequence[str] = (), *, admins: Sequence[str] = (),
        group_id: str | None = None, introduction: str = "", notification: str = "", face_url: str = "",
    ) -> Group:  # fmt: skip
        """Create a group owned by ``owner`` with initial ``members`` (and ``admins``)."""
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
            )
        )

    async def get(self, group_id: str) -> Group:
        return await self._run(self._ops.get_group(group_id))

    async def update(
        self, group_id: str, *, name: str | None = None, introduction: str | None = None,
        notification: str | None = None, face_url: str | None = None,
    ) -> Group:  # fmt: skip
        """Change the given fields and return the group as it now is."""
        return await self._run(
            self._ops.update_group(
                group_id, name=name, introduction=introduction, notification=notification, face_url=face_url
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

    async def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | int) -> None:
        """Stop members from sending for ``duration`` (a timedelta or seconds); it lifts by itself."""
        await self._run(self._ops.mute(group_id, user_ids, duration))

    async def unmute(self, group_id: str, user_ids: Sequence[str]) -> None:
        await self._run(self._ops.unmute(group_id, user_ids))

    async def mute_all(self, group_id: str, enabled: bool = True) -> None:
        """While on, only the owner and admins may send."""
        await self._run(self._ops.mute_all(group_id, enabled))

    async def muted(self, group_id: str) -> list[Member]:
        """Members muted right now, with ``muted_until``."""
        return await self._run(self._ops.muted(group_id))
