"""Local groups: groups, members, roles and mutes in the SQLite store."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from imbridge._flow import Flow
from imbridge.capabilities import Operation
from imbridge.errors import ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError
from imbridge.models import BatchItem, BatchResult, Group, Member, Role
from imbridge.providers.base import GroupSpec, GroupUpdate
from imbridge.providers.local import events as local_events
from imbridge.providers.local._core import NAME, LocalCore, _ts
from imbridge.providers.local.store import GroupRow, MemberRow


class LocalGroups(LocalCore):
    def _group(self, row: GroupRow) -> Group:
        return Group(
            id=row.id, name=row.name, owner=row.owner, introduction=row.introduction, notification=row.notification,
            face_url=row.face_url, mute_all=row.mute_all, member_count=row.member_count,
            created_at=_ts(row.created_at), provider=NAME,
        )  # fmt: skip

    def create_group(self, spec: GroupSpec) -> Flow[Group]:
        def compute() -> Group:
            operation = Operation.GROUPS_CREATE.value
            self._require_users([spec.owner, *spec.members, *spec.admins], operation)
            group_id = spec.group_id or self.new_group_id()
            roles = {uid: Role.MEMBER.value for uid in spec.members}
            roles.update({uid: Role.ADMIN.value for uid in spec.admins})
            roles[spec.owner] = Role.OWNER.value
            created = self.store.create_group(
                group_id, name=spec.name, owner=spec.owner, introduction=spec.introduction,
                notification=spec.notification, face_url=spec.face_url, now=self._now(), members=list(roles.items()),
            )  # fmt: skip
            if not created:
                raise ConflictError(f"group {group_id!r} already exists", provider=NAME, operation=operation)
            self._publish(lambda common: [local_events.GroupCreated(
                **common, event_id=f"local:group.created:{group_id}:{uuid.uuid4().hex}", group_id=group_id,
                name=spec.name, owner=spec.owner, members=[uid for uid in roles if uid != spec.owner],
            )])  # fmt: skip
            return self._group(self._require_group(group_id, operation))

        return self._run(compute)

    def get_group(self, group_id: str) -> Flow[Group]:
        return self._run(lambda: self._group(self._require_group(group_id, Operation.GROUPS_GET.value)))

    def update_group(self, group_id: str, update: GroupUpdate) -> Flow[Group]:
        def compute() -> Group:
            fields = {
                name: value
                for name, value in (
                    ("name", update.name), ("introduction", update.introduction),
                    ("notification", update.notification), ("face_url", update.face_url),
                )
                if value is not None
            }  # fmt: skip
            if not self.store.update_group(group_id, fields):
                raise NotFoundError(
                    f"unknown group {group_id!r}", provider=NAME, operation=Operation.GROUPS_UPDATE.value
                )
            if fields:
                self._publish(lambda common: [local_events.GroupUpdated(
                    **common, event_id=f"local:group.updated:{group_id}:{uuid.uuid4().hex}", group_id=group_id,
                    changes={name: str(value) for name, value in fields.items()},
                )])  # fmt: skip
            return self._group(self._require_group(group_id, Operation.GROUPS_UPDATE.value))

        return self._run(compute)

    def dismiss_group(self, group_id: str) -> Flow[None]:
        def compute() -> None:
            if not self.store.dismiss_group(group_id, self._now()):
                raise NotFoundError(
                    f"unknown group {group_id!r}", provider=NAME, operation=Operation.GROUPS_DISMISS.value
                )
            self._publish(lambda common: [local_events.GroupDismissed(
                **common, event_id=f"local:group.dismissed:{group_id}:{uuid.uuid4().hex}", group_id=group_id,
            )])  # fmt: skip

        return self._run(compute)

    def add_members(self, group_id: str, user_ids: Sequence[str], role: Role) -> Flow[BatchResult]:
        def compute() -> BatchResult:
            operation = Operation.GROUPS_ADD_MEMBERS.value
            self._require_group(group_id, operation)
            if role is Role.OWNER:
                raise InvalidRequestError(
                    "a group has one owner; members are added as admin or member", provider=NAME, operation=operation
                )
            known = self.store.existing_users(user_ids)
            added = self.store.add_members(
                group_id, [(uid, role.value) for uid in user_ids if uid in known], self._now()
            )
            self._publish(lambda common: [
                local_events.MemberJoined(**common, event_id=f"local:join:{group_id}:{uid}:{uuid.uuid4().hex}",
                                          group_id=group_id, user_id=uid, how="added")
                for uid in user_ids if added.get(uid)
            ])  # fmt: skip
            items = []
            for uid in user_ids:
                if uid not in known:
                    error = NotFoundError(f"unknown user {uid!r}", provider=NAME, operation=operation)
                    items.append(BatchItem(target=uid, ok=False, error=error, detail=error.message))
                else:
                    items.append(BatchItem(target=uid, ok=True, detail="" if added[uid] else "already a member"))
            return BatchResult(items=items, provider=NAME)

        return self._run(compute)

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> Flow[BatchResult]:
        def compute() -> BatchResult:
            operation = Operation.GROUPS_REMOVE_MEMBERS.value
            group = self._require_group(group_id, operation)
            removable = [uid for uid in user_ids if uid != group.owner]
            removed = self.store.remove_members(group_id, removable)
            self._publish(lambda common: [
                local_events.MemberLeft(**common, event_id=f"local:exit:{group_id}:{uid}:{uuid.uuid4().hex}",
                                        group_id=group_id, user_id=uid, how="removed")
                for uid in removable if removed.get(uid)
            ])  # fmt: skip
            items = []
            for uid in user_ids:
                if uid == group.owner:
                    error: PermissionDeniedError | NotFoundError = PermissionDeniedError(
                        "the owner cannot be removed", provider=NAME, operation=operation
                    )
                elif not removed[uid]:
                    error = NotFoundError(f"{uid!r} is not a member", provider=NAME, operation=operation)
                else:
                    items.append(BatchItem(target=uid, ok=True))
                    continue
                items.append(BatchItem(target=uid, ok=False, error=error, detail=error.message))
            return BatchResult(items=items, provider=NAME)

        return self._run(compute)

    def _member(self, row: MemberRow) -> Member:
        muted = row.muted_until if row.muted_until is not None and row.muted_until > self._now() else None
        return Member(
            user_id=row.user_id, role=Role(row.role), joined_at=_ts(row.joined_at),
            muted_until=_ts(muted) if muted is not None else None, provider=NAME,
        )  # fmt: skip

    def list_members(self, group_id: str) -> Flow[list[Member]]:
        def compute() -> list[Member]:
            self._require_group(group_id, Operation.GROUPS_MEMBERS.value)
            return [self._member(row) for row in self.store.members(group_id)]

        return self._run(compute)

    def _require_members(self, group_id: str, user_ids: Sequence[str], operation: str) -> None:
        self._require_group(group_id, operation)
        outsiders = [uid for uid in user_ids if self.store.member(group_id, uid) is None]
        if outsiders:
            raise NotFoundError(
                f"not members of {group_id!r}: {', '.join(outsiders)}", provider=NAME, operation=operation
            )

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta) -> Flow[None]:
        def compute() -> None:
            self._require_members(group_id, user_ids, Operation.GROUPS_MUTE.value)
            self.store.set_mutes(group_id, user_ids, self._now() + duration.total_seconds())

        return self._run(compute)

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        def compute() -> None:
            self._require_members(group_id, user_ids, Operation.GROUPS_UNMUTE.value)
            self.store.set_mutes(group_id, user_ids, None)

        return self._run(compute)

    def mute_all(self, group_id: str, enabled: bool) -> Flow[None]:
        def compute() -> None:
            if not self.store.update_group(group_id, {"mute_all": int(enabled)}):
                raise NotFoundError(
                    f"unknown group {group_id!r}", provider=NAME, operation=Operation.GROUPS_MUTE_ALL.value
                )

        return self._run(compute)

    def muted(self, group_id: str) -> Flow[list[Member]]:
        def compute() -> list[Member]:
            self._require_group(group_id, Operation.GROUPS_MUTED.value)
            in_force = self.store.mutes(group_id, self._now())
            return [self._member(row) for row in self.store.members(group_id) if row.user_id in in_force]

        return self._run(compute)
