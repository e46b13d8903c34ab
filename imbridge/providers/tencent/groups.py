"""Tencent groups: create_group and group info, members paged, roles, forbid_send_msg mutes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from imbridge._cursor import decode_cursor, encode_cursor
from imbridge._flow import Flow
from imbridge.capabilities import Operation
from imbridge.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
)
from imbridge.models import BatchItem, BatchResult, Group, JoinedGroup, Member, Page, Role
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
#: The longest timed mute: one second short of MuteTime 4294967295, the documented "Permanent muting".
MAX_MUTE_SECONDS = mapping.MUTE_FOREVER - 1
NAME_CARD_MAX_BYTES = 50  # modify_group_member_info NameCard "maximum length of 50 bytes" (/1047/34900)
JOINED_PAGE = 500  # get_joined_group_list Limit "cannot exceed 5,000"; kept small for the 1 MB answer cap (10018)
GROUP_INFO_CHUNK = 50  # get_group_info: at most 50 group ids per request (/1047/34961)
#: send_group_system_notification ToMembers_Account: "上限50个" on the current page
#: (https://www.tencentcloud.com/zh/document/product/1047/34958, 2025-11-07; the older English page says 500).
NOTIFY_CHUNK = 50


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
            FaceUrl=spec.face_url or None, MemberList=first or None, MaxMemberCount=spec.max_members,
            ApplyJoinOption=mapping.JOIN_OPTIONS_BACK[spec.join_option] if spec.join_option else None,
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
            Notification=update.notification, FaceUrl=update.face_url, MaxMemberNum=update.max_members,
            ApplyJoinOption=mapping.JOIN_OPTIONS_BACK[update.join_option] if update.join_option else None,
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
                if outcome == 2:
                    # One meaning everywhere: adding an existing member leaves its role alone (set_role changes it).
                    detail = "already a member (role unchanged; set_role changes it)"
                    items.append(BatchItem(target=uid, ok=True, native_code=2, detail=detail))
                    continue
                if outcome == 1:
                    item = BatchItem(target=uid, ok=True, native_code=1)
                    if role is Role.ADMIN:
                        item = yield from self._make_admin(group_id, item)
                    items.append(item)
                    continue
                if outcome == 3:
                    # "Pending approval by the invitee or admin" (add_group_member Result 3, /1047/34921): not
                    # added yet, not refused either.
                    items.append(BatchItem(target=uid, ok=False, pending=True, native_code=3,
                                           detail="awaiting approval (Tencent Result 3)"))  # fmt: skip
                    continue
                error = ProviderError(f"{uid!r} was not added (Result {outcome})", provider=NAME, native_code=outcome)
                items.append(BatchItem(target=uid, ok=False, error=error, native_code=outcome, detail=error.message))
        return BatchResult(items=items, provider=NAME, raw={"responses": raws})

    def _make_admin(self, group_id: str, item: BatchItem) -> Flow[BatchItem]:
        body = wire.ModifyGroupMemberInfoRequest(GroupId=group_id, Member_Account=item.target, Role="Admin")
        try:
            yield self._req("group_open_http_svc", "modify_group_member_info", body.body())
        except AuthenticationError:
            raise  # about the whole call, never one member
        except ProviderError as error:
            return BatchItem(target=item.target, ok=False, error=error, native_code=error.native_code,
                             detail=f"added, but not made admin: {error.message}")  # fmt: skip
        return item

    def _members(self, group_id: str) -> Flow[list[wire.WireMember]]:
        return (yield from paging.group_members(self._req, group_id, ["Role", "JoinTime", "MuteUntil", "NameCard"]))

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
            except AuthenticationError:
                raise  # about the whole call, never these members
            except ProviderError as failure:
                outcome.update({uid: BatchItem(target=uid, ok=False, error=failure, native_code=failure.native_code,
                                               detail=failure.message) for uid in chunk})  # fmt: skip
                continue
            outcome.update({uid: BatchItem(target=uid, ok=True) for uid in chunk})
        return BatchResult(items=[outcome[uid] for uid in user_ids], provider=NAME)

    def _forbid(self, group_id: str, user_ids: Sequence[str], seconds: int, operation: Operation) -> Flow[None]:
        _check_user_ids(user_ids)
        # forbid_send_msg answers OK for accounts that are not members and reports nothing per account
        # (https://cloud.tencent.com/document/product/269/1627): imbridge asks first, so that muting or
        # unmuting a non-member is a NotFoundError that names it, as on every provider, and nothing changes.
        outsiders = yield from self.non_members(group_id, user_ids)
        if outsiders:
            raise NotFoundError(f"not members of {group_id!r}: {', '.join(outsiders)}", provider=NAME,
                                operation=operation.value)  # fmt: skip
        for chunk in _chunks(user_ids, MUTE_CHUNK):
            body = wire.ForbidSendMsgRequest(GroupId=group_id, Members_Account=chunk, MuteTime=seconds)
            yield self._req("group_open_http_svc", "forbid_send_msg", body.body())
        return None

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | None) -> Flow[None]:
        if duration is None:  # MuteTime 4294967295: "Permanent muting" (/1047/34951)
            return (yield from self._forbid(group_id, user_ids, mapping.MUTE_FOREVER, Operation.GROUPS_MUTE))
        seconds = max(int(duration.total_seconds()), 1)
        if seconds > MAX_MUTE_SECONDS:
            raise _over(LIMITS["mute time"], seconds, "the mute duration (4294967295 is a mute without an end)")
        return (yield from self._forbid(group_id, user_ids, seconds, Operation.GROUPS_MUTE))

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        return (yield from self._forbid(group_id, user_ids, 0, Operation.GROUPS_UNMUTE))

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
            if mapping.mute_state(entry.MutedUntil, now)[0]
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

    # -- member administration, system notifications (issue 17) -------------------------------------

    def set_role(self, group_id: str, user_id: str, role: Role) -> Flow[None]:
        # modify_group_member_info Role: Admin sets, Member cancels; the owner cannot be changed (/1047/34900).
        body = wire.ModifyGroupMemberInfoRequest(
            GroupId=group_id, Member_Account=user_id, Role="Admin" if role is Role.ADMIN else "Member"
        )
        yield self._req("group_open_http_svc", "modify_group_member_info", body.body())

    def transfer_owner(self, group_id: str, user_id: str) -> Flow[None]:
        # change_group_owner: the new owner must be a member (/1047/34966); the previous owner stays a member.
        body = wire.ChangeGroupOwnerRequest(GroupId=group_id, NewOwner_Account=user_id)
        yield self._req("group_open_http_svc", "change_group_owner", body.body())

    def set_name_card(self, group_id: str, user_id: str, name_card: str) -> Flow[None]:
        if len(name_card.encode()) > NAME_CARD_MAX_BYTES:
            raise InvalidRequestError(f"Tencent name cards are at most {NAME_CARD_MAX_BYTES} bytes", provider=NAME,
                                      operation=Operation.GROUPS_SET_NAME_CARD.value)  # fmt: skip
        return self._set_card(group_id, user_id, name_card)

    def _set_card(self, group_id: str, user_id: str, name_card: str) -> Flow[None]:
        body = wire.ModifyGroupMemberInfoRequest(GroupId=group_id, Member_Account=user_id, NameCard=name_card)
        yield self._req("group_open_http_svc", "modify_group_member_info", body.body())

    def joined_groups(self, user_id: str) -> Flow[list[JoinedGroup]]:
        # get_joined_group_list, paged with Limit/Offset; WithNoActiveGroups so that Work groups nobody has
        # spoken in yet are listed too (/1047/34925).
        joined: list[JoinedGroup] = []
        offset = 0
        while True:
            body = wire.GetJoinedGroupListRequest(
                Member_Account=user_id, WithNoActiveGroups=1, Limit=JOINED_PAGE, Offset=offset,
                ResponseFilter={"GroupBaseInfoFilter": JOINED_BASE_FIELDS, "SelfInfoFilter": ["Role", "JoinTime"]},
            )  # fmt: skip
            reply = yield self._req("group_open_http_svc", "get_joined_group_list", body.body())
            page = wire.GetJoinedGroupListResponse.model_validate(reply)
            for item in page.GroupIdList:
                own = item.SelfInfo or wire.MemberSelfInfo()
                joined.append(JoinedGroup(
                    group=mapping.group_from_wire(item), role=mapping.ROLES.get(own.Role.strip(), Role.MEMBER),
                    joined_at=mapping.timestamp(own.JoinTime), provider=NAME, raw=item.model_dump(),
                ))  # fmt: skip
            offset += len(page.GroupIdList)
            if not page.GroupIdList or offset >= page.TotalCount:
                return joined

    def list_groups(self, limit: int, cursor: str | None) -> Flow[Page[Group]]:
        next_mark = 0
        if cursor is not None:
            position = decode_cursor(NAME, cursor)
            if not isinstance(position.get("n"), int):
                raise InvalidRequestError("not a groups.list cursor", provider=NAME,
                                          operation=Operation.GROUPS_LIST.value)  # fmt: skip
            next_mark = position["n"]
        return self._list_groups(limit, next_mark)

    def _list_groups(self, limit: int, next_mark: int) -> Flow[Page[Group]]:
        # get_appid_group_list: Limit (<= 10,000) and Next (0 first; a returned 0 means the end), paced at its
        # documented 1 call/s (/1047/34960); then get_group_info for the ids, 50 at a time.
        body = wire.GetAppidGroupListRequest(Limit=limit, Next=next_mark)
        reply = yield self._req("group_open_http_svc", "get_appid_group_list", body.body())
        page = wire.GetAppidGroupListResponse.model_validate(reply)
        groups: list[Group] = []
        for chunk in _chunks([g.GroupId for g in page.GroupIdList], GROUP_INFO_CHUNK):
            request = wire.GetGroupInfoRequest(GroupIdList=chunk)
            try:
                info = yield self._req("group_open_http_svc", "get_group_info", request.body())
            except NotFoundError:
                # A group dismissed between the two calls fails its chunk: read the rest one by one.
                for group_id in chunk:
                    try:
                        groups.append((yield from self.get_group(group_id)))
                    except NotFoundError:
                        continue
                continue
            infos = wire.GetGroupInfoResponse.model_validate(info).GroupInfo
            groups.extend(mapping.group_from_wire(item) for item in infos)
        cursor = encode_cursor(NAME, {"n": page.Next}) if page.Next else None
        return Page(items=groups, next_cursor=cursor, provider=NAME)

    def notify_group(self, group_id: str, text: str, to: Sequence[str] | None) -> Flow[None]:
        # send_group_system_notification: to every member, or to ToMembers_Account (up to 50; AVChatRoom groups only
        # to everyone); "an online message, not roamed", received through onReceiveRESTCustomData, not as a chat
        # message (https://cloud.tencent.com/document/product/269/1630, /1047/34958).
        if to is None:
            body = wire.SendGroupSystemNotificationRequest(GroupId=group_id, Content=text)
            yield self._req("group_open_http_svc", "send_group_system_notification", body.body())
            return
        for chunk in _chunks(to, NOTIFY_CHUNK):
            body = wire.SendGroupSystemNotificationRequest(GroupId=group_id, ToMembers_Account=chunk, Content=text)
            yield self._req("group_open_http_svc", "send_group_system_notification", body.body())


#: The base fields groups.joined asks for (get_joined_group_list ResponseFilter, "ALL IN ONE" example).
JOINED_BASE_FIELDS = ["Type", "Name", "Introduction", "Notification", "FaceUrl", "CreateTime", "Owner_Account",
                      "MemberNum", "MaxMemberNum", "ApplyJoinOption", "MuteAllMember"]  # fmt: skip
