"""Tencent groups: create_group and group info, members paged, roles, forbid_send_msg mutes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from imbridge._flow import Flow
from imbridge.capabilities import Operation
from imbridge.errors import NotFoundError, PermissionDeniedError, ProviderError
from imbridge.models import BatchItem, BatchResult, Group, Member, Role
from imbridge.providers.base import GroupSpec, GroupUpdate
from imbridge.providers.tencent import mapping, paging, wire
from imbridge.providers.tencent._core import (
    LIMITS,
    TencentCore,
    _check_group_id,
    _check_group_texts,
    _check_user_ids,
    _chunks,
    _over,
)
from imbridge.providers.tencent.mapping import NAME

ADD_MEMBER_CHUNK = 100  # the API page says 300, the limits page 100: the smaller one
DELETE_MEMBER_CHUNK = 100
MUTE_CHUNK = LIMITS["mute accounts"].value
CREATE_MEMBERS_MAX = 100
MAX_MUTE_SECONDS = LIMITS["mute time"].value  # the documented "permanent"


class TencentGroups(TencentCore):
    def create_group(self, spec: GroupSpec) -> Flow[Group]:
        if spec.group_id is not None:
            _check_group_id(spec.group_id)
        _check_group_texts(name=spec.name, introduction=spec.introduction, notification=spec.notification,
                           face_url=spec.face_url)  # fmt: skip
        _check_user_ids([*([spec.owner] if spec.owner else []), *spec.admins, *spec.members])
        initial = [wire.CreateGroupMember(Member_Account=uid, Role="Admin") for uid in spec.admins]
        initial += [wire.CreateGroupMember(Member_Account=uid) for uid in spec.members]
        first, later = initial[:CREATE_MEMBERS_MAX], initial[CREATE_MEMBERS_MAX:]
        request = wire.CreateGroupRequest(
            Owner_Account=spec.owner, Type=self.tencent.group_type, GroupId=spec.group_id, Name=spec.name,
            Introduction=spec.introduction or None, Notification=spec.notification or None,
            FaceUrl=spec.face_url or None, MemberList=first or None,
        )  # fmt: skip
        # Without a custom id a replay could create a second group: leave that retry to the caller.
        reply = yield self._req(
            "group_open_http_svc", "create_group", request.body(), replay_safe=spec.group_id is not None
        )
        group_id = wire.CreateGroupResponse.model_validate(reply).GroupId
        for role in (Role.ADMIN, Role.MEMBER):
            rest = [m.Member_Account for m in later if (m.Role == "Admin") == (role is Role.ADMIN)]
            if rest:
                added = yield from self.add_members(group_id, rest, role)
                if not added.ok:
                    names = ", ".join(item.target for item in added.failed)
                    raise ProviderError(f"group {group_id} created, but these were not added: {names}", provider=NAME)
        return (yield from self.get_group(group_id))

    def get_group(self, group_id: str) -> Flow[Group]:
        # A ResponseFilter returns only the fields it names ("如果设置了过滤器,没有在过滤器中指明的字段将不被拉取",
        # https://cloud.tencent.com/document/api/269/1616): ask for exactly the base info the mapping reads, and no
        # member list (members() pages it within the documented caps).
        body = wire.GetGroupInfoRequest(
            GroupIdList=[group_id], ResponseFilter={"GroupBaseInfoFilter": list(mapping.GROUP_BASE_FIELDS)}
        )
        reply = yield self._req("group_open_http_svc", "get_group_info", body.body())
        infos = wire.GetGroupInfoResponse.model_validate(reply).GroupInfo
        if not infos:
            raise NotFoundError(f"unknown group {group_id!r}", provider=NAME, operation=Operation.GROUPS_GET.value)
        return mapping.group_from_wire(infos[0])

    def update_group(self, group_id: str, update: GroupUpdate) -> Flow[Group]:
        _check_group_texts(name=update.name, introduction=update.introduction, notification=update.notification,
                           face_url=update.face_url)  # fmt: skip
        body = wire.ModifyGroupBaseInfoRequest(
            GroupId=group_id, Name=update.name, Introduction=update.introduction,
            Notification=update.notification, FaceUrl=update.face_url,
        )  # fmt: skip
        yield self._req("group_open_http_svc", "modify_group_base_info", body.body())
        return (yield from self.get_group(group_id))

    def dismiss_group(self, group_id: str) -> Flow[None]:
        yield self._req("group_open_http_svc", "destroy_group", wire.GroupIdRequest(GroupId=group_id).body())
        return None

    def add_members(self, group_id: str, user_ids: Sequence[str], role: Role) -> Flow[BatchResult]:
        items: list[BatchItem] = []
        raws: list[dict[str, Any]] = []
        for chunk in _chunks(user_ids, ADD_MEMBER_CHUNK):
            body = wire.AddGroupMemberRequest(
                GroupId=group_id, MemberList=[wire.MemberAccount(Member_Account=uid) for uid in chunk]
            )
            reply = yield self._req("group_open_http_svc", "add_group_member", body.body())
            raws.append(reply)
            results = {r.Member_Account: r.Result for r in wire.AddGroupMemberResponse.model_validate(reply).MemberList}
            for uid in chunk:
                outcome = results.get(uid)
                if outcome in (1, 2):
                    item = BatchItem(target=uid, ok=True, native_code=outcome,
                                     detail="already a member" if outcome == 2 else "")  # fmt: skip
                    if role is Role.ADMIN:
                        item = yield from self._make_admin(group_id, item)
                    items.append(item)
                    continue
                error: ProviderError = (
                    PermissionDeniedError(f"{uid!r} awaits approval", provider=NAME, native_code=3)
                    if outcome == 3
                    else ProviderError(f"{uid!r} was not added (Result {outcome})", provider=NAME, native_code=outcome)
                )
                items.append(BatchItem(target=uid, ok=False, error=error, native_code=outcome, detail=error.message))
        return BatchResult(items=items, provider=NAME, raw={"responses": raws})

    def _make_admin(self, group_id: str, item: BatchItem) -> Flow[BatchItem]:
        body = wire.ModifyGroupMemberInfoRequest(GroupId=group_id, Member_Account=item.target, Role="Admin")
        try:
            yield self._req("group_open_http_svc", "modify_group_member_info", body.body())
        except ProviderError as error:
            return BatchItem(target=item.target, ok=False, error=error, native_code=error.native_code,
                             detail=f"added, but not made admin: {error.message}")  # fmt: skip
        return item

    def _members(self, group_id: str) -> Flow[list[wire.WireMember]]:
        return (yield from paging.group_members(self._req, group_id, ["Role", "JoinTime", "MuteUntil"]))

    def list_members(self, group_id: str) -> Flow[list[Member]]:
        rows = yield from self._members(group_id)
        now = self.clock.now()
        return [mapping.member_from_wire(row, now) for row in rows]

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> Flow[BatchResult]:
        operation = Operation.GROUPS_REMOVE_MEMBERS.value
        rows = yield from self._members(group_id)
        roles = {row.Member_Account: row.Role.strip() for row in rows}
        outcome: dict[str, BatchItem] = {}
        removable: list[str] = []
        for uid in user_ids:
            if uid not in roles:
                error: ProviderError = NotFoundError(f"{uid!r} is not a member", provider=NAME, operation=operation)
            elif roles[uid] == "Owner":
                error = PermissionDeniedError("the owner cannot be removed", provider=NAME, operation=operation)
            else:
                removable.append(uid)
                continue
            outcome[uid] = BatchItem(target=uid, ok=False, error=error, detail=error.message)
        for chunk in _chunks(removable, DELETE_MEMBER_CHUNK):
            body = wire.DeleteGroupMemberRequest(GroupId=group_id, MemberToDel_Account=chunk)
            try:
                yield self._req("group_open_http_svc", "delete_group_member", body.body())
            except ProviderError as failure:
                outcome.update({uid: BatchItem(target=uid, ok=False, error=failure, native_code=failure.native_code,
                                               detail=failure.message) for uid in chunk})  # fmt: skip
                continue
            outcome.update({uid: BatchItem(target=uid, ok=True) for uid in chunk})
        return BatchResult(items=[outcome[uid] for uid in user_ids], provider=NAME)

    def _forbid(self, group_id: str, user_ids: Sequence[str], seconds: int) -> Flow[None]:
        _check_user_ids(user_ids)
        for chunk in _chunks(user_ids, MUTE_CHUNK):
            body = wire.ForbidSendMsgRequest(GroupId=group_id, Members_Account=chunk, MuteTime=seconds)
            yield self._req("group_open_http_svc", "forbid_send_msg", body.body())
        return None

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta) -> Flow[None]:
        seconds = max(int(duration.total_seconds()), 1)
        if seconds > MAX_MUTE_SECONDS:
            raise _over(LIMITS["mute time"], seconds, "the mute duration")
        return (yield from self._forbid(group_id, user_ids, seconds))

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        return (yield from self._forbid(group_id, user_ids, 0))

    def mute_all(self, group_id: str, enabled: bool) -> Flow[None]:
        body = wire.ModifyGroupBaseInfoRequest(GroupId=group_id, MuteAllMember="On" if enabled else "Off")
        yield self._req("group_open_http_svc", "modify_group_base_info", body.body())
        return None

    def muted(self, group_id: str) -> Flow[list[Member]]:
        reply = yield self._req(
            "group_open_http_svc", "get_group_muted_account", wire.GroupIdRequest(GroupId=group_id).body()
        )
        now = self.clock.now()
        muted = {
            entry.Member_Account: entry.MutedUntil
            for entry in wire.GetGroupMutedAccountResponse.model_validate(reply).MutedAccountList
            if entry.MutedUntil > now.timestamp()
        }
        if not muted:
            return []
        roles = {row.Member_Account: row for row in (yield from self._members(group_id))}
        result = []
        for uid, until in muted.items():
            row = roles.get(uid) or wire.WireMember(Member_Account=uid)
            row = row.model_copy(update={"MuteUntil": until})
            result.append(mapping.member_from_wire(row, now))
        return result
