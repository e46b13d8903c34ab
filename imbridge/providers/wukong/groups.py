"""WuKongIM groups: channels, subscribers, the denylist as mutes; names, owners and roles in imbridge's
store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from imbridge._flow import Flow
from imbridge.capabilities import Operation
from imbridge.errors import ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError, ProviderError
from imbridge.models import BatchItem, BatchResult, Group, Member, Role
from imbridge.providers.base import GroupSpec, GroupUpdate
from imbridge.providers.local.store import GroupRow, Store
from imbridge.providers.wukong import wire
from imbridge.providers.wukong._core import WukongCore, _ts
from imbridge.providers.wukong.mapping import NAME

#: ``muted_until`` of a member on the denylist with no expiry in imbridge's store (muted by other means).
MUTED_INDEFINITELY = datetime(9999, 12, 31, tzinfo=UTC)


def _channel_created(value: int) -> datetime | None:
    # /cluster/channels reports nanoseconds (created_at 1795480990930317756, FACTS §3).
    return _ts(value / 1e9 if value > 10**12 else value) if value > 0 else None


class WukongGroups(WukongCore):
    def _require_group(self, group_id: str, operation: Operation) -> Flow[wire.ClusterChannel]:
        """The group's channel; NotFoundError if WuKongIM does not know it or it was dismissed."""
        channel = yield from self._channel(group_id)
        if not channel.channel_id:
            raise NotFoundError(f"unknown group {group_id!r}", provider=NAME, operation=operation.value)
        if channel.disband:
            raise NotFoundError(f"group {group_id!r} was dismissed", provider=NAME, operation=operation.value)
        return channel

    def _group(
        self, group_id: str, channel: wire.ClusterChannel, row: GroupRow | None, member_count: int | None
    ) -> Group:
        return Group(
            id=group_id, name=row.name if row else group_id, owner=row.owner if row else None,
            introduction=row.introduction if row else "", notification=row.notification if row else "",
            face_url=row.face_url if row else "", mute_all=bool(channel.ban), member_count=member_count,
            created_at=_ts(row.created_at) if row else _channel_created(channel.created_at), provider=NAME,
            raw={"channel": channel.model_dump(), "emulated_fields": row is not None},
        )  # fmt: skip

    def _store_group(self, group_id: str) -> GroupRow | None:
        """The store's record of a group, made (named after its id) if WuKongIM has it and the store not."""
        if self.store is None:
            return None
        row = self.store.group(group_id)
        if row is None:
            self.store.create_group(group_id, name=group_id, owner=None, introduction="", notification="",
                                    face_url="", now=self._now(), members=[])  # fmt: skip
            row = self.store.group(group_id)
        return row

    def create_group(self, spec: GroupSpec) -> Flow[Group]:
        group_id = spec.group_id or self.new_group_id()
        self._check_ids([group_id, spec.owner, *spec.members, *spec.admins], Operation.GROUPS_CREATE)
        return self._create_group(group_id, spec)

    def _create_group(self, group_id: str, spec: GroupSpec) -> Flow[Group]:
        channel = yield from self._channel(group_id)
        if channel.channel_id and not channel.disband:
            raise ConflictError(
                f"group {group_id!r} already exists", provider=NAME, operation=Operation.GROUPS_CREATE.value
            )
        members = [spec.owner, *spec.admins, *spec.members]
        flags = wire.ChannelFlags()
        # reset=1: a dismissed channel keeps its subscribers (FACTS §10); a new group starts with these.
        yield self._post("/channel", {**flags.body(group_id), "reset": 1, "subscribers": members})
        if channel.disband:
            yield self._post("/channel/blacklist_remove_all", {"channel_id": group_id, "channel_type": wire.GROUP})
        self._remember_flags(group_id, flags)
        self._invalidate(group_id)
        row = None
        if self.store is not None:
            self.store.dismiss_group(group_id, self._now())  # forget a stale record of an earlier group
            roles = {uid: Role.MEMBER.value for uid in spec.members}
            roles.update({uid: Role.ADMIN.value for uid in spec.admins})
            roles[spec.owner] = Role.OWNER.value
            self.store.create_group(
                group_id, name=spec.name, owner=spec.owner, introduction=spec.introduction,
                notification=spec.notification, face_url=spec.face_url, now=self._now(), members=list(roles.items()),
            )  # fmt: skip
            row = self.store.group(group_id)
        created = wire.ClusterChannel(channel_id=group_id, channel_type=wire.GROUP)
        return self._group(group_id, created, row, len(members))

    def get_group(self, group_id: str) -> Flow[Group]:
        self._check_ids([group_id], Operation.GROUPS_GET)
        return self._get_group(group_id, Operation.GROUPS_GET)

    def _get_group(self, group_id: str, operation: Operation) -> Flow[Group]:
        channel = yield from self._require_group(group_id, operation)
        subscribers = yield from self._uid_list(group_id, "subscribers")
        return self._group(group_id, channel, self._store_group(group_id), len(subscribers))

    def update_group(self, group_id: str, update: GroupUpdate) -> Flow[Group]:
        self._check_ids([group_id], Operation.GROUPS_UPDATE)
        return self._update_group(group_id, update)

    def _update_group(self, group_id: str, update: GroupUpdate) -> Flow[Group]:
        store = self._need_store(Operation.GROUPS_UPDATE)
        yield from self._require_group(group_id, Operation.GROUPS_UPDATE)
        self._store_group(group_id)
        fields = {
            name: value
            for name, value in (("name", update.name), ("introduction", update.introduction),
                                ("notification", update.notification), ("face_url", update.face_url))
            if value is not None
        }  # fmt: skip
        store.update_group(group_id, fields)
        return (yield from self._get_group(group_id, Operation.GROUPS_UPDATE))

    def dismiss_group(self, group_id: str) -> Flow[None]:
        self._check_ids([group_id], Operation.GROUPS_DISMISS)
        return self._dismiss(group_id)

    def _dismiss(self, group_id: str) -> Flow[None]:
        yield from self._require_group(group_id, Operation.GROUPS_DISMISS)
        yield self._post("/channel/delete", {"channel_id": group_id, "channel_type": wire.GROUP})
        self._remember_flags(group_id, self._stored_flags(group_id).model_copy(update={"disband": 1}))
        self._invalidate(group_id)
        if self.store is not None:
            self.store.dismiss_group(group_id, self._now())

    def add_members(self, group_id: str, user_ids: Sequence[str], role: Role) -> Flow[BatchResult]:
        self._check_ids([group_id, *user_ids], Operation.GROUPS_ADD_MEMBERS)
        if role is Role.OWNER:
            raise InvalidRequestError("a group has one owner; add admins or members", provider=NAME)
        return self._add_members(group_id, user_ids, role)

    def _add_members(self, group_id: str, user_ids: Sequence[str], role: Role) -> Flow[BatchResult]:
        yield from self._require_group(group_id, Operation.GROUPS_ADD_MEMBERS)
        current = yield from self._uid_list(group_id, "subscribers")
        new = [uid for uid in user_ids if uid not in current]
        if new:
            body = {"channel_id": group_id, "channel_type": wire.GROUP, "subscribers": new}
            yield self._post("/channel/subscriber_add", body)
        self._invalidate(group_id)
        if self.store is not None:
            self._store_group(group_id)
            self.store.add_members(group_id, [(uid, role.value) for uid in new], self._now())
        items = [
            BatchItem(target=uid, ok=True, detail="already a member" if uid in current else "") for uid in user_ids
        ]
        return BatchResult(items=items, provider=NAME)

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> Flow[BatchResult]:
        self._check_ids([group_id, *user_ids], Operation.GROUPS_REMOVE_MEMBERS)
        return self._remove_members(group_id, user_ids)

    def _remove_members(self, group_id: str, user_ids: Sequence[str]) -> Flow[BatchResult]:
        op = Operation.GROUPS_REMOVE_MEMBERS.value
        yield from self._require_group(group_id, Operation.GROUPS_REMOVE_MEMBERS)
        current = yield from self._uid_list(group_id, "subscribers")
        row = self.store.group(group_id) if self.store is not None else None
        owner = row.owner if row else None
        removable = [uid for uid in user_ids if uid in current and uid != owner]
        if removable:
            body = {"channel_id": group_id, "channel_type": wire.GROUP, "subscribers": removable}
            yield self._post("/channel/subscriber_remove", body)
            muted = [uid for uid in removable if self._store_mute(group_id, uid) is not None]
            if muted:  # a timed mute dies with the membership; nothing is left to lift it later
                yield self._post(
                    "/channel/blacklist_remove", {"channel_id": group_id, "channel_type": wire.GROUP, "uids": muted}
                )
            if self.store is not None:
                self.store.set_mutes(group_id, removable, None)
                self.store.remove_members(group_id, removable)
        self._invalidate(group_id)
        items = []
        for uid in user_ids:
            if uid in removable:
                items.append(BatchItem(target=uid, ok=True))
                continue
            error: ProviderError = (
                PermissionDeniedError("the owner cannot be removed", provider=NAME, operation=op)
                if uid == owner and uid in current
                else NotFoundError(f"{uid!r} is not a member", provider=NAME, operation=op)
            )
            items.append(BatchItem(target=uid, ok=False, error=error, detail=error.message))
        return BatchResult(items=items, provider=NAME)

    def _members(self, group_id: str, subscribers: set[str], denylist: set[str]) -> list[Member]:
        rows = {row.user_id: row for row in self.store.members(group_id)} if self.store is not None else {}
        ordered = [uid for uid in rows if uid in subscribers] + sorted(subscribers - set(rows))
        members = []
        for uid in ordered:
            row = rows.get(uid)
            until = self._store_mute(group_id, uid)
            muted_until = _ts(until) if until is not None else (MUTED_INDEFINITELY if uid in denylist else None)
            member = Member(
                user_id=uid, role=Role(row.role) if row else Role.MEMBER,
                joined_at=_ts(row.joined_at) if row else None, muted_until=muted_until, provider=NAME,
                raw={"denylisted": uid in denylist, "in_store": row is not None},
            )  # fmt: skip
            members.append(member)
        return members

    def list_members(self, group_id: str) -> Flow[list[Member]]:
        self._check_ids([group_id], Operation.GROUPS_MEMBERS)
        return self._list_members(group_id, Operation.GROUPS_MEMBERS, muted_only=False)

    def _list_members(self, group_id: str, operation: Operation, *, muted_only: bool) -> Flow[list[Member]]:
        yield from self._require_group(group_id, operation)
        yield from self._sweep_mutes(group_id)
        subscribers = yield from self._uid_list(group_id, "subscribers")
        denylist = yield from self._uid_list(group_id, "denylist")
        members = self._members(group_id, subscribers, denylist)
        return [m for m in members if m.muted_until is not None] if muted_only else members

    def _mute_targets(self, group_id: str, user_ids: Sequence[str], operation: Operation) -> Flow[None]:
        yield from self._require_group(group_id, operation)
        current = yield from self._uid_list(group_id, "subscribers")
        outsiders = [uid for uid in user_ids if uid not in current]
        if outsiders:
            raise NotFoundError(
                f"not members of {group_id!r}: {', '.join(outsiders)}", provider=NAME, operation=operation.value
            )

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta) -> Flow[None]:
        self._check_ids([group_id, *user_ids], Operation.GROUPS_MUTE)
        return self._mute(group_id, user_ids, duration, self._need_store(Operation.GROUPS_MUTE))

    def _mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta, store: Store) -> Flow[None]:
        yield from self._mute_targets(group_id, user_ids, Operation.GROUPS_MUTE)
        self._store_group(group_id)
        rows = {row.user_id: row for row in store.members(group_id)}
        store.add_members(group_id, [(uid, Role.MEMBER.value) for uid in user_ids if uid not in rows], self._now())
        # The end is stored before the denylist entry is made: a worker lifting an earlier mute of the same
        # member right now then finds the new end and puts the entry back (WukongCore._lift_mutes).
        store.set_mutes(group_id, user_ids, self._now() + duration.total_seconds())
        body = {"channel_id": group_id, "channel_type": wire.GROUP, "uids": list(user_ids)}
        try:
            yield self._post("/channel/blacklist_add", body)
        except ProviderError as error:
            if not error.retryable:  # refused, so not applied: the store goes back to what it said
                for uid in user_ids:
                    row = rows.get(uid)
                    store.set_mutes(group_id, [uid], row.muted_until if row is not None else None)
            raise
        self._invalidate(group_id)

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        self._check_ids([group_id, *user_ids], Operation.GROUPS_UNMUTE)
        return self._unmute(group_id, user_ids)

    def _unmute(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        yield from self._mute_targets(group_id, user_ids, Operation.GROUPS_UNMUTE)
        body = {"channel_id": group_id, "channel_type": wire.GROUP, "uids": list(user_ids)}
        yield self._post("/channel/blacklist_remove", body)
        if self.store is not None:
            self.store.set_mutes(group_id, user_ids, None)
        self._invalidate(group_id)

    def mute_all(self, group_id: str, enabled: bool) -> Flow[None]:
        self._check_ids([group_id], Operation.GROUPS_MUTE_ALL)
        return self._mute_all(group_id, enabled)

    def _mute_all(self, group_id: str, enabled: bool) -> Flow[None]:
        channel = yield from self._require_group(group_id, Operation.GROUPS_MUTE_ALL)
        # /channel/info overwrites all five flags: write the current set with only `ban` changed.
        flags = self._current_flags(group_id, channel).model_copy(update={"ban": int(enabled)})
        yield self._post("/channel/info", flags.body(group_id))
        self._remember_flags(group_id, flags)
        self._invalidate(group_id)
        if self.store is not None and self._store_group(group_id) is not None:
            self.store.update_group(group_id, {"mute_all": int(enabled)})

    def muted(self, group_id: str) -> Flow[list[Member]]:
        self._check_ids([group_id], Operation.GROUPS_MUTED)
        return self._list_members(group_id, Operation.GROUPS_MUTED, muted_only=True)
