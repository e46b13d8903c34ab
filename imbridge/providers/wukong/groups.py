"""WuKongIM groups: channels, subscribers, the denylist as mutes; names, owners and roles in imbridge's
store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from imbridge._cursor import decode_cursor, encode_cursor
from imbridge._flow import Flow
from imbridge.capabilities import Operation
from imbridge.errors import ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError, ProviderError
from imbridge.models import BatchItem, BatchResult, Group, JoinedGroup, JoinOption, Member, Page, Role
from imbridge.providers.base import GroupSpec, GroupUpdate
from imbridge.providers.local.store import GroupRow, Store
from imbridge.providers.wukong import mapping, wire
from imbridge.providers.wukong._core import WukongCore, _ts
from imbridge.providers.wukong.mapping import NAME

#: The payload ``type`` WuKongIM's SDKs hand to their command listeners instead of showing it
#: (wukongimjssdk ``MessageContentType.cmd`` = 99, lib/const.js:8; chat_manager.js:89-91).
CMD_PAYLOAD_TYPE = 99
#: The ``cmd`` of imbridge's group system notifications.
NOTIFICATION_CMD = "groupSystemNotification"


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
        join_option, max_members = self.store.group_policy(group_id) if self.store is not None else (None, None)
        return Group(
            id=group_id, name=row.name if row else group_id, owner=row.owner if row else None,
            introduction=row.introduction if row else "", notification=row.notification if row else "",
            face_url=row.face_url if row else "", mute_all=bool(channel.ban), member_count=member_count,
            join_option=JoinOption(join_option) if join_option else None, max_members=max_members,
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
            if spec.join_option is not None or spec.max_members is not None:
                self.store.set_group_policy(
                    group_id, spec.join_option.value if spec.join_option else None, spec.max_members
                )
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
        store.update_group(group_id, update.profile_fields)
        if update.join_option is not None or update.max_members is not None:
            if update.max_members is not None:
                members = yield from self._uid_list(group_id, "subscribers")
                if update.max_members < len(members):
                    raise InvalidRequestError(
                        f"max_members {update.max_members} is below the {len(members)} members the group has",
                        provider=NAME, operation=Operation.GROUPS_UPDATE.value,
                    )  # fmt: skip
            store.set_group_policy(
                group_id, update.join_option.value if update.join_option else None, update.max_members
            )
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
        limit = self.store.group_policy(group_id)[1] if self.store is not None else None
        if limit is not None and new and len(current) + len(new) > limit:
            # WuKongIM has no size limit: imbridge enforces the stored one, all or nothing as Tencent does
            # (add_group_member error 10014).
            raise PermissionDeniedError(
                f"group {group_id!r} is full: {len(current)} members, at most {limit}; {len(new)} not added",
                provider=NAME, operation=Operation.GROUPS_ADD_MEMBERS.value,
            )  # fmt: skip
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
        cards = self.store.name_cards(group_id) if self.store is not None else {}
        ordered = [uid for uid in rows if uid in subscribers] + sorted(subscribers - set(rows))
        members = []
        for uid in ordered:
            row = rows.get(uid)
            until = self._store_mute(group_id, uid)
            # On the denylist with no expiry in the store (muted until unmuted, or by other means): muted, no end.
            member = Member(
                user_id=uid, role=Role(row.role) if row else Role.MEMBER,
                joined_at=_ts(row.joined_at) if row else None, muted=until is not None or uid in denylist,
                muted_until=_ts(until) if until is not None else None, name_card=cards.get(uid), provider=NAME,
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
        return [m for m in members if m.muted] if muted_only else members

    def _mute_targets(self, group_id: str, user_ids: Sequence[str], operation: Operation) -> Flow[None]:
        yield from self._require_group(group_id, operation)
        current = yield from self._uid_list(group_id, "subscribers")
        outsiders = [uid for uid in user_ids if uid not in current]
        if outsiders:
            raise NotFoundError(
                f"not members of {group_id!r}: {', '.join(outsiders)}", provider=NAME, operation=operation.value
            )

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | None) -> Flow[None]:
        self._check_ids([group_id, *user_ids], Operation.GROUPS_MUTE)
        if duration is None:
            return self._mute_forever(group_id, user_ids)
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

    def _mute_forever(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        """A denylist entry and no stored expiry: WuKongIM's denylist has no end of its own (blacklist_add
        stores a uid and two timestamps, api/channel.go:621-632), so nothing ever lifts it but an unmute."""
        yield from self._mute_targets(group_id, user_ids, Operation.GROUPS_MUTE)
        body = {"channel_id": group_id, "channel_type": wire.GROUP, "uids": list(user_ids)}
        yield self._post("/channel/blacklist_add", body)
        if self.store is not None:
            self.store.set_mutes(group_id, user_ids, None)  # an earlier timed mute must not lift this one
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

    # -- member administration, system notifications (issue 17) -------------------------------------

    def _require_member(self, group_id: str, user_id: str, operation: Operation) -> Flow[set[str]]:
        """The group's subscribers; NotFoundError if the group is gone or ``user_id`` is not among them."""
        yield from self._require_group(group_id, operation)
        subscribers = yield from self._uid_list(group_id, "subscribers")
        if user_id not in subscribers:
            raise NotFoundError(f"{user_id!r} is not a member of {group_id!r}", provider=NAME,
                                operation=operation.value)  # fmt: skip
        return subscribers

    def _store_member(self, store: Store, group_id: str, user_id: str) -> None:
        """Make sure the store has rows for the group and the member (either may have been made elsewhere)."""
        self._store_group(group_id)
        store.add_members(group_id, [(user_id, Role.MEMBER.value)], self._now())

    def set_role(self, group_id: str, user_id: str, role: Role) -> Flow[None]:
        self._check_ids([group_id, user_id], Operation.GROUPS_SET_ROLE)
        return self._set_role(group_id, user_id, role, self._need_store(Operation.GROUPS_SET_ROLE))

    def _set_role(self, group_id: str, user_id: str, role: Role, store: Store) -> Flow[None]:
        yield from self._require_member(group_id, user_id, Operation.GROUPS_SET_ROLE)
        self._store_member(store, group_id, user_id)
        row = store.group(group_id)
        if row is not None and row.owner == user_id:
            raise InvalidRequestError(
                f"{user_id!r} owns {group_id!r}: the owner changes only by transfer_owner", provider=NAME,
                operation=Operation.GROUPS_SET_ROLE.value,
            )  # fmt: skip
        store.set_role(group_id, user_id, role.value)

    def transfer_owner(self, group_id: str, user_id: str) -> Flow[None]:
        self._check_ids([group_id, user_id], Operation.GROUPS_TRANSFER_OWNER)
        return self._transfer(group_id, user_id, self._need_store(Operation.GROUPS_TRANSFER_OWNER))

    def _transfer(self, group_id: str, user_id: str, store: Store) -> Flow[None]:
        yield from self._require_member(group_id, user_id, Operation.GROUPS_TRANSFER_OWNER)
        self._store_member(store, group_id, user_id)
        store.transfer_owner(group_id, user_id)

    def set_name_card(self, group_id: str, user_id: str, name_card: str) -> Flow[None]:
        self._check_ids([group_id, user_id], Operation.GROUPS_SET_NAME_CARD)
        return self._set_card(group_id, user_id, name_card, self._need_store(Operation.GROUPS_SET_NAME_CARD))

    def _set_card(self, group_id: str, user_id: str, name_card: str, store: Store) -> Flow[None]:
        yield from self._require_member(group_id, user_id, Operation.GROUPS_SET_NAME_CARD)
        self._store_member(store, group_id, user_id)
        store.set_name_card(group_id, user_id, name_card)

    def joined_groups(self, user_id: str) -> Flow[list[JoinedGroup]]:
        self._check_ids([user_id], Operation.GROUPS_JOINED)
        return self._joined(user_id, self._need_store(Operation.GROUPS_JOINED))

    def _joined(self, user_id: str, store: Store) -> Flow[list[JoinedGroup]]:
        # WuKongIM cannot list a user's channels: the candidates are the groups imbridge's store knows the
        # user in, each checked against WuKongIM (alive, and the user still a subscriber).
        result = []
        for group_id in store.groups_of(user_id):
            channel = yield from self._channel(group_id)
            if not channel.channel_id or channel.disband:
                continue
            subscribers = yield from self._uid_list(group_id, "subscribers")
            if user_id not in subscribers:
                continue
            member = store.member(group_id, user_id)
            group = self._group(group_id, channel, store.group(group_id), len(subscribers))
            result.append(JoinedGroup(
                group=group, role=Role(member.role) if member else Role.MEMBER,
                joined_at=_ts(member.joined_at) if member else None, provider=NAME, raw={"emulated": True},
            ))  # fmt: skip
        return result

    def list_groups(self, limit: int, cursor: str | None) -> Flow[Page[Group]]:
        params = {"channel_type": str(wire.GROUP), "limit": str(limit)}
        if cursor is not None:
            position = decode_cursor(NAME, cursor)
            if not isinstance(position.get("c"), int):
                raise InvalidRequestError("not a groups.list cursor", provider=NAME,
                                          operation=Operation.GROUPS_LIST.value)  # fmt: skip
            params["offset_created_at"] = str(position["c"])
        return self._list_groups(params)

    def _list_groups(self, params: dict[str, str]) -> Flow[Page[Group]]:
        # Newest first by created_at (nanoseconds, kept across /channel/info writes), strictly older than
        # offset_created_at, `more` when a further page exists (pkg/cluster/cluster/api_channel.go:21-227,
        # pkg/wkdb/channel.go:163-297).
        reply = yield self._get("/cluster/channels", params)
        page = wire.ClusterChannels.model_validate(reply)
        groups = [
            self._group(c.channel_id, c, self.store.group(c.channel_id) if self.store is not None else None,
                        c.subscriber_count)
            for c in page.data
            # dismissed channels stay listed (the disband filter panics, FACTS §3); command twins are not groups
            if c.channel_id and not c.disband and not c.channel_id.endswith(wire.CMD_SUFFIX)
        ]  # fmt: skip
        next_cursor = encode_cursor(NAME, {"c": page.data[-1].created_at}) if page.more and page.data else None
        return Page(items=groups, next_cursor=next_cursor, provider=NAME)

    def notify_group(self, group_id: str, text: str, to: Sequence[str] | None) -> Flow[None]:
        self._check_ids([group_id, *(to or ())], Operation.GROUPS_NOTIFY)
        return self._notify(group_id, text, to)

    def _notify(self, group_id: str, text: str, to: Sequence[str] | None) -> Flow[None]:
        yield from self._require_group(group_id, Operation.GROUPS_NOTIFY)
        if to is not None:
            subscribers = yield from self._uid_list(group_id, "subscribers")
            outsiders = [uid for uid in to if uid not in subscribers]
            if outsiders:
                raise NotFoundError(f"not members of {group_id!r}: {', '.join(outsiders)}", provider=NAME,
                                    operation=Operation.GROUPS_NOTIFY.value)  # fmt: skip
        payload = {"type": CMD_PAYLOAD_TYPE, "cmd": NOTIFICATION_CMD, "param": {"group_id": group_id, "content": text}}
        # As Tencent's group system notification, an online message that is not stored: no_persist (never written,
        # pushed to the connected devices only, channel/handler/event_persist.go:202-204), from the system account
        # (from_uid omitted, message.go:81-83), red_dot 0. To some members: the subscribers form, which the server
        # takes only with sync_once and sends, not persisted, on its online command channel (message.go:95-150).
        header = {"no_persist": 1, "red_dot": 0} if to is None else {"no_persist": 1, "sync_once": 1, "red_dot": 0}
        body: dict[str, Any] = {"header": header, "client_msg_no": self.new_notice_key(),
                                "payload": mapping.to_base64(payload)}  # fmt: skip
        if to is None:
            body.update(channel_id=group_id, channel_type=wire.GROUP)
        else:
            body["subscribers"] = list(to)
        yield self._post("/message/send", body, replay_safe=False)
