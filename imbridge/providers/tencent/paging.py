"""Paging flows that follow Tencent's documented semantics, shared by the provider and the migration reader.

Sans-IO, like every operation: each flow yields ``Request`` objects built by the caller's ``req`` and receives
the decoded JSON answers, so the sync client, the async client and the migration's export reader all run this
one implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imbridge._flow import Flow, Request
from imbridge.errors import NotFoundError, ServiceUnavailableError
from imbridge.providers.tencent import mapping, wire
from imbridge.providers.tencent.mapping import NAME

GROUP_SERVICE = "group_open_http_svc"
HISTORY_WINDOW = mapping.LIMITS["group history window"].value
MEMBER_PAGE = mapping.LIMITS["member page"].value
COMMUNITY_MEMBER_PAGE = mapping.LIMITS["community member page"].value
COMMUNITY_PREFIX = "@TGS#_"
"""Community group ids start so (the doc's Community samples: ``"@TGS#_@TGS#cAVQXXXXXX"``)."""

RequestBuilder = Callable[[str, str, dict[str, Any]], Request]


@dataclass(frozen=True, slots=True)
class Window:
    """What ``group_msg_get_simple`` holds for a seq window: its messages by seq (placeholders included),
    and whether an answer said the rest has expired (``IsFinished`` 2)."""

    messages: dict[int, wire.GroupMsg]
    expired: bool


def runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Ascending ``seqs`` as (low, high) runs of consecutive numbers."""
    found: list[tuple[int, int]] = []
    for seq in seqs:
        if found and found[-1][1] == seq - 1:
            found[-1] = (found[-1][0], seq)
        else:
            found.append((seq, seq))
    return found


def group_window(req: RequestBuilder, group_id: str, low: int, high: int) -> Flow[Window]:
    """Every message of seqs ``low..high`` (at most 20 of them).

    https://cloud.tencent.com/document/api/269/2738 (read 2026-12-02) defines ``IsFinished`` over the requested
    window: 1 "当成功返回了请求区间的全部消息时" (older messages may still exist: the doc's sample asks for 2
    messages at seq 7803321 and answers 1), 0 "当消息长度太长或者区间太大(超过20)导致无法返回全部消息时", 2 when that
    happens "且所有消息都过期时". A cut window (0) is asked again for each run of seqs it left out, whichever end
    of the window that is, so no message is skipped whatever the message sizes."""
    found: dict[int, wire.GroupMsg] = {}
    expired = False
    pending = [(low, high)]
    while pending:
        lo, hi = pending.pop()
        body = wire.GroupMsgGetSimpleRequest(
            GroupId=group_id, ReqMsgNumber=hi - lo + 1, ReqMsgSeq=hi, WithRecalledMsg=1
        ).body()
        reply = yield req(GROUP_SERVICE, "group_msg_get_simple", body)
        page = wire.GroupMsgGetSimpleResponse.model_validate(reply)
        fresh = [m for m in page.messages() if lo <= m.MsgSeq <= hi and m.MsgSeq not in found]
        found.update((m.MsgSeq, m) for m in fresh)
        if page.IsFinished == 2:
            expired = True  # what this answer left out has expired
            continue
        if page.IsFinished != 0:
            continue
        if not fresh:
            raise ServiceUnavailableError(
                f"group_msg_get_simple cut window {lo}..{hi} of {group_id} and returned nothing of it", provider=NAME
            )
        pending.extend(runs([seq for seq in range(lo, hi + 1) if seq not in found]))
    return Window(found, expired)


def next_msg_seq(req: RequestBuilder, group_id: str) -> Flow[int]:
    """The group's ``NextMsgSeq``: the seq its next message gets, so its messages are 1..NextMsgSeq-1."""
    body = wire.GetGroupInfoRequest(
        GroupIdList=[group_id], ResponseFilter={"GroupBaseInfoFilter": ["NextMsgSeq"]}
    ).body()
    reply = yield req(GROUP_SERVICE, "get_group_info", body)
    infos = wire.GetGroupInfoResponse.model_validate(reply).GroupInfo
    if not infos:
        raise NotFoundError(f"unknown group {group_id!r}", provider=NAME)
    return infos[0].NextMsgSeq or 1


def group_members(req: RequestBuilder, group_id: str, fields: list[str]) -> Flow[list[wire.WireMember]]:
    """Every member of a group, within the documented page caps of get_group_member_info
    (https://cloud.tencent.com/document/product/269/1617, 2025-11-03): ``Limit`` "不得超过200" with ``Offset``;
    Community groups page only with ``Next`` ("仅社群支持分批获取"), "不得超过100", ``""`` first and ``""`` back
    at the end."""
    members: list[wire.WireMember] = []
    if group_id.startswith(COMMUNITY_PREFIX):
        cursor = ""
        while True:
            body = wire.GetGroupMemberInfoRequest(
                GroupId=group_id, MemberInfoFilter=fields, Limit=COMMUNITY_MEMBER_PAGE, Next=cursor
            ).body()
            reply = yield req(GROUP_SERVICE, "get_group_member_info", body)
            page = wire.GetGroupMemberInfoResponse.model_validate(reply)
            members.extend(page.MemberList)
            if not page.Next or page.Next == cursor:
                return members
            cursor = page.Next
    offset = 0
    while True:
        body = wire.GetGroupMemberInfoRequest(
            GroupId=group_id, MemberInfoFilter=fields, Limit=MEMBER_PAGE, Offset=offset
        ).body()
        reply = yield req(GROUP_SERVICE, "get_group_member_info", body)
        page = wire.GetGroupMemberInfoResponse.model_validate(reply)
        members.extend(page.MemberList)
        offset += len(page.MemberList)
        if not page.MemberList or offset >= page.MemberNum:
            return members
