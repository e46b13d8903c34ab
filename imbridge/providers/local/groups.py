"""Local groups: groups, members, roles and mutes in the SQLite store."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from imbridge._cursor import decode_cursor, encode_cursor
from imbridge._flow import Flow
from imbridge.capabilities import Operation
from imbridge.errors import ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError
from imbridge.models import BatchItem, BatchResult, Group, JoinedGroup, JoinOption, Member, Page, Role
from imbridge.providers.base import GroupSpec, GroupUpdate
from imbridge.providers.local import events as local_events
from imbridge.providers.local._core import NAME, LocalCore, _ts
from imbridge.providers.local.store import MUTED_FOREVER, GroupRow, MemberRow


class LocalGroups(LocalCore):
    def _group(self, row: GroupRow) -> Group:
        join_option, max_members = self.store.group_policy(row.id)
        return Group(
            id=row.id, name=row.name, owner=row.owner, introduction=row.introduction, notification=row.notification,
            face_url=row.face_url, mute_all=row.mute_all, member_count=row.member_count,
            join_option=JoinOption(join_option) if join_option else None, max_members=max_members,
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
            if spec.join_option is not None or spec.max_members is not None:
                self.store.set_group_policy(
                    group_id, spec.join_option.value if spec.join_option else None, spec.max_members
                )
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
            operation = Operation.GROUPS_UPDATE.value
            group = self._require_group(group_id, operation)
            if update.max_members is not None and update.max_members < group.member_count:
                raise InvalidRequestError(
                    f"max_members {update.max_members} is below the {group.member_count} members the group has",
                    provider=NAME, operation=operation,
                )  # fmt: skip
            if not self.store.update_group(group_id, update.profile_fields):
                raise NotFoundError(f"unknown group {group_id!r}", provider=NAME, operation=operation)
            if update.join_option is not None or update.max_members is not None:
                self.store.set_group_policy(
                    group_id, update.join_option.value if update.join_option else None, update.max_members
                )
            fields = update.profile_fields
            if fields:
                self._publish(lambda common: [local_events.GroupUpdated(
                    **common, event_id=f"local:group.updated:{group_id}:{uuid.uuid4().hex}", group_id=group_id,
                    changes={name: str(value) for name, value in fields.items()},
                )])  # fmt: skip
            return self._group(self._require_group(group_id, operation))

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
            group = self._require_group(group_id, operation)
            if role is Role.OWNER:
                raise InvalidRequestError(
                    "a group has one owner; members are added as admin or member", provider=NAME, operation=operation
                )
            known = self.store.existing_users(user_ids)
            limit = self.store.group_policy(group_id)[1]
            newcomers = [uid for uid in user_ids if uid in known and self.store.member(group_id, uid) is None]
            if limit is not None and newcomers and group.member_count + len(newcomers) > limit:
                raise PermissionDeniedError(
                    f"group {group_id!r} is full: {group.member_count} members, at most {limit}; "
                    f"{len(newcomers)} not added", provider=NAME, operation=operation,
                )  # fmt: skip
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

    def _member(self, row: MemberRow, cards: dict[str, str] | None = None) -> Member:
        until = row.muted_until
        muted = until is not None and until > self._now()
        return Member(
            user_id=row.user_id, role=Role(row.role), joined_at=_ts(row.joined_at), muted=muted,
            muted_until=_ts(until) if muted and until is not None and until != MUTED_FOREVER else None,
            name_card=(cards or {}).get(row.user_id), provider=NAME,
        )  # fmt: skip

    def list_members(self, group_id: str) -> Flow[list[Member]]:
        def compute() -> list[Member]:
            self._require_group(group_id, Operation.GROUPS_MEMBERS.value)
            cards = self.store.name_cards(group_id)
            return [self._member(row, cards) for row in self.store.members(group_id)]

        return self._run(compute)

    def _require_members(self, group_id: str, user_ids: Sequence[str], operation: str) -> None:
        self._require_group(group_id, operation)
        outsiders = [uid for uid in user_ids if self.store.member(group_id, uid) is None]
        if outsiders:
            raise NotFoundError(
                f"not members of {group_id!r}: {', '.join(outsiders)}", provider=NAME, operation=operation
            )

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | None) -> Flow[None]:
        def compute() -> None:
            self._require_members(group_id, user_ids, Operation.GROUPS_MUTE.value)
            until = MUTED_FOREVER if duration is None else self._now() + duration.total_seconds()
            self.store.set_mutes(group_id, user_ids, until)

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
            cards = self.store.name_cards(group_id)
            return [self._member(row, cards) for row in self.store.members(group_id) if row.user_id in in_force]

        return self._run(compute)

    # -- member administration, system notifications (issue 17) -------------------------------------

    def _require_member(self, group_id: str, user_id: str, operation: str) -> GroupRow:
        group = self._require_group(group_id, operation)
        if self.store.member(group_id, user_id) is None:
            raise NotFoundError(f"{user_id!r} is not a member of {group_id!r}", provider=NAME, operation=operation)
        return group

    def set_role(self, group_id: str, user_id: str, role: Role) -> Flow[None]:
        def compute() -> None:
            operation = Operation.GROUPS_SET_ROLE.value
            group = self._require_member(group_id, user_id, operation)
            if group.owner == user_id:
                raise InvalidRequestError(
                    f"{user_id!r} owns {group_id!r}: the owner changes only by transfer_owner", provider=NAME,
                    operation=operation,
                )  # fmt: skip
            self.store.set_role(group_id, user_id, role.value)

        return self._run(compute)

    def transfer_owner(self, group_id: str, user_id: str) -> Flow[None]:
        def compute() -> None:
            self._require_member(group_id, user_id, Operation.GROUPS_TRANSFER_OWNER.value)
            self.store.transfer_owner(group_id, user_id)

        return self._run(compute)

    def set_name_card(self, group_id: str, user_id: str, name_card: str) -> Flow[None]:
        def compute() -> None:
            self._require_member(group_id, user_id, Operation.GROUPS_SET_NAME_CARD.value)
            self.store.set_name_card(group_id, user_id, name_card)

        return self._run(compute)

    def joined_groups(self, user_id: str) -> Flow[list[JoinedGroup]]:
        def compute() -> list[JoinedGroup]:
            self._require_users([user_id], Operation.GROUPS_JOINED.value)
            joined = []
            for group_id in self.store.groups_of(user_id):
                group, member = self.store.group(group_id), self.store.member(group_id, user_id)
                if group is None or member is None:
                    continue
                joined.append(JoinedGroup(group=self._group(group), role=Role(member.role),
                                          joined_at=_ts(member.joined_at), provider=NAME))  # fmt: skip
            return joined

        return self._run(compute)

    def list_groups(self, limit: int, cursor: str | None) -> Flow[Page[Group]]:
        def compute() -> Page[Group]:
            after: tuple[float, str] | None = None
            if cursor is not None:
                position = decode_cursor(NAME, cursor)
                if not isinstance(position.get("t"), int | float) or not isinstance(position.get("i"), str):
                    raise InvalidRequestError("not a groups.list cursor", provider=NAME,
                                              operation=Operation.GROUPS_LIST.value)  # fmt: skip
                after = (float(position["t"]), position["i"])
            rows = self.store.groups_page(after, limit + 1)
            more, rows = len(rows) > limit, rows[:limit]
            next_cursor = encode_cursor(NAME, {"t": rows[-1].created_at, "i": rows[-1].id}) if more else None
            return Page(items=[self._group(row) for row in rows], next_cursor=next_cursor, provider=NAME)

        return self._run(compute)

    def notify_group(self, group_id: str, text: str, to: Sequence[str] | None) -> Flow[None]:
        def compute() -> None:
            operation = Operation.GROUPS_NOTIFY.value
            self._require_group(group_id, operation)
            outsiders = [uid for uid in to or () if self.store.member(group_id, uid) is None]
            if outsiders:
                raise NotFoundError(f"not members of {group_id!r}: {', '.join(outsiders)}", provider=NAME,
                                    operation=operation)  # fmt: skip
            # Checked like the other providers, then delivered to nobody: the local provider has no clients.

        return self._run(compute)
