"""Tencent IM REST v4 payloads, shaped exactly as the API documents them (field names are wire names).

Requests are dumped with ``exclude_none`` so optional fields are left out, not sent as ``null``.
Responses tolerate unknown fields (Tencent adds fields such as ``RequestId`` over time).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# -- common --------------------------------------------------------------------------------------


class WireRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, by_alias=True)


class WireResponse(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    ActionStatus: str = "OK"
    ErrorCode: int = 0
    ErrorInfo: str = ""


class MsgElement(BaseModel):
    model_config = ConfigDict(extra="allow")

    MsgType: str
    MsgContent: dict[str, Any] = Field(default_factory=dict)


class KeyValue(BaseModel):
    model_config = ConfigDict(extra="allow")

    Key: str
    Value: Any = None


# -- accounts and profiles -----------------------------------------------------------------------


class MultiAccountImportRequest(WireRequest):
    Accounts: list[str]


class MultiAccountImportResponse(WireResponse):
    FailAccounts: list[str] = Field(default_factory=list)


class TagValue(BaseModel):
    model_config = ConfigDict(extra="allow")

    Tag: str
    Value: Any = None


class PortraitGetRequest(WireRequest):
    To_Account: list[str]
    TagList: list[str]


class UserProfile(BaseModel):
    model_config = ConfigDict(extra="allow")

    To_Account: str
    ProfileItem: list[TagValue] = Field(default_factory=list)
    ResultCode: int = 0
    ResultInfo: str = ""


class PortraitGetResponse(WireResponse):
    UserProfileItem: list[UserProfile] = Field(default_factory=list)
    Fail_Account: list[str] = Field(default_factory=list)


class PortraitSetRequest(WireRequest):
    From_Account: str
    ProfileItem: list[TagValue]


# -- one-to-one messages -------------------------------------------------------------------------


class SendMsgRequest(WireRequest):
    SyncOtherMachine: int | None = None
    From_Account: str | None = None
    To_Account: str
    MsgLifeTime: int | None = None
    MsgSeq: int | None = None
    MsgRandom: int
    MsgBody: list[dict[str, Any]]
    CloudCustomData: str | None = None
    OfflinePushInfo: dict[str, Any] | None = None
    ForbidCallbackControl: list[str] | None = None
    SendMsgControl: list[str] | None = None
    SupportMessageExtension: int | None = None
    IsNeedReadReceipt: int | None = None


class SendMsgResponse(WireResponse):
    MsgTime: int | None = None
    MsgKey: str = ""


class BatchSendMsgRequest(WireRequest):
    SyncOtherMachine: int | None = None
    From_Account: str | None = None
    To_Account: list[str]
    MsgLifeTime: int | None = None
    MsgSeq: int | None = None
    MsgRandom: int
    MsgBody: list[dict[str, Any]]
    CloudCustomData: str | None = None
    OfflinePushInfo: dict[str, Any] | None = None
    SendMsgControl: list[str] | None = None
    IsNeedReadReceipt: int | None = None


class BatchError(BaseModel):
    model_config = ConfigDict(extra="allow")

    To_Account: str
    ErrorCode: int


class BatchSendMsgResponse(WireResponse):
    MsgKey: str = ""
    ErrorList: list[BatchError] = Field(default_factory=list)


class GetRoamMsgRequest(WireRequest):
    Operator_Account: str
    Peer_Account: str
    MaxCnt: int
    MinTime: int
    MaxTime: int
    LastMsgKey: str | None = None


class RoamMsg(BaseModel):
    model_config = ConfigDict(extra="allow")

    From_Account: str
    To_Account: str
    MsgSeq: int = 0
    MsgRandom: int = 0
    MsgTimeStamp: int
    MsgFlagBits: int = 0
    IsPeerRead: int = 0
    MsgKey: str
    MsgBody: list[MsgElement] = Field(default_factory=list)
    CloudCustomData: str = ""


class GetRoamMsgResponse(WireResponse):
    Complete: int = 1
    MsgCnt: int = 0
    LastMsgTime: int = 0
    LastMsgKey: str = ""
    MsgList: list[RoamMsg] = Field(default_factory=list)


class MsgWithdrawRequest(WireRequest):
    From_Account: str
    To_Account: str
    MsgKey: str


# -- groups --------------------------------------------------------------------------------------


class CreateGroupMember(WireRequest):
    Member_Account: str
    Role: str | None = None


class CreateGroupRequest(WireRequest):
    Owner_Account: str | None = None
    Type: str
    GroupId: str | None = None
    Name: str
    Introduction: str | None = None
    Notification: str | None = None
    FaceUrl: str | None = None
    MaxMemberCount: int | None = None
    ApplyJoinOption: str | None = None
    MemberList: list[CreateGroupMember] | None = None


class CreateGroupResponse(WireResponse):
    GroupId: str


class GroupIdRequest(WireRequest):
    GroupId: str


class GetGroupInfoRequest(WireRequest):
    GroupIdList: list[str]
    ResponseFilter: dict[str, list[str]] | None = None


class WireMember(BaseModel):
    model_config = ConfigDict(extra="allow")

    Member_Account: str
    Role: str = "Member"
    JoinTime: int | None = None
    MuteUntil: int | None = None
    NameCard: str | None = None


class GroupInfoItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    GroupId: str
    ErrorCode: int = 0
    ErrorInfo: str = ""
    Type: str | None = None
    Name: str = ""
    Introduction: str = ""
    Notification: str = ""
    FaceUrl: str = ""
    Owner_Account: str | None = None
    CreateTime: int | None = None
    MemberNum: int | None = None
    MaxMemberNum: int | None = None
    ApplyJoinOption: str | None = None
    NextMsgSeq: int | None = None
    MuteAllMember: str | None = None
    MemberList: list[WireMember] = Field(default_factory=list)


class GetGroupInfoResponse(WireResponse):
    GroupInfo: list[GroupInfoItem] = Field(default_factory=list)


class ModifyGroupBaseInfoRequest(WireRequest):
    GroupId: str
    Name: str | None = None
    Introduction: str | None = None
    Notification: str | None = None
    FaceUrl: str | None = None
    MaxMemberNum: int | None = None
    ApplyJoinOption: str | None = None
    MuteAllMember: str | None = None


class MemberAccount(WireRequest):
    Member_Account: str


class AddGroupMemberRequest(WireRequest):
    GroupId: str
    Silence: int | None = None
    MemberList: list[MemberAccount]


class AddGroupMemberResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    Member_Account: str
    Result: int


class AddGroupMemberResponse(WireResponse):
    MemberList: list[AddGroupMemberResult] = Field(default_factory=list)


class DeleteGroupMemberRequest(WireRequest):
    GroupId: str
    Silence: int | None = None
    Reason: str | None = None
    MemberToDel_Account: list[str]


class ModifyGroupMemberInfoRequest(WireRequest):
    GroupId: str
    Member_Account: str
    Role: str | None = None
    NameCard: str | None = None
    MuteTime: int | None = None


class GetGroupMemberInfoRequest(WireRequest):
    GroupId: str
    MemberInfoFilter: list[str] | None = None
    Limit: int | None = None
    Offset: int | None = None
    Next: str | None = None


class GetGroupMemberInfoResponse(WireResponse):
    MemberNum: int = 0
    MemberList: list[WireMember] = Field(default_factory=list)
    Next: str | None = None


class ForbidSendMsgRequest(WireRequest):
    GroupId: str
    Members_Account: list[str]
    MuteTime: int


class GetRoleInGroupRequest(WireRequest):
    """``get_role_in_group``: the roles of up to 500 accounts in one group."""

    GroupId: str
    User_Account: list[str]


class UserRole(BaseModel):
    model_config = ConfigDict(extra="allow")

    Member_Account: str
    Role: str
    """Owner, Admin, Member or NotMember."""


class GetRoleInGroupResponse(WireResponse):
    UserIdList: list[UserRole] = Field(default_factory=list)


class MutedAccount(BaseModel):
    model_config = ConfigDict(extra="allow")

    Member_Account: str
    MutedUntil: int


class GetGroupMutedAccountResponse(WireResponse):
    GroupId: str | None = None
    MutedAccountList: list[MutedAccount] = Field(default_factory=list)


class SendGroupMsgRequest(WireRequest):
    GroupId: str
    Random: int
    MsgPriority: str | None = None
    MsgBody: list[dict[str, Any]]
    From_Account: str | None = None
    OfflinePushInfo: dict[str, Any] | None = None
    ForbidCallbackControl: list[str] | None = None
    OnlineOnlyFlag: int | None = None
    SendMsgControl: list[str] | None = None
    CloudCustomData: str | None = None
    SupportMessageExtension: int | None = None
    To_Account: list[str] | None = None
    GroupAtInfo: list[dict[str, Any]] | None = None
    NeedReadReceipt: int | None = None


class SendGroupMsgResponse(WireResponse):
    MsgTime: int | None = None
    MsgSeq: int
    MsgDropReason: str = ""


class MsgSeqItem(WireRequest):
    MsgSeq: int


class GroupMsgRecallRequest(WireRequest):
    GroupId: str
    MsgSeqList: list[MsgSeqItem]


class RecallRet(BaseModel):
    model_config = ConfigDict(extra="allow")

    MsgSeq: int
    RetCode: int


class GroupMsgRecallResponse(WireResponse):
    RecallRetList: list[RecallRet] = Field(default_factory=list)


class GroupMsgGetSimpleRequest(WireRequest):
    GroupId: str
    ReqMsgNumber: int
    ReqMsgSeq: int | None = None
    WithRecalledMsg: int | None = None


class GroupMsg(BaseModel):
    model_config = ConfigDict(extra="allow")

    From_Account: str = ""
    IsPlaceMsg: int = 0
    IsSystemMsg: int = 0
    MsgPriority: int | None = None
    MsgRandom: int = 0
    MsgSeq: int
    MsgTimeStamp: int
    MsgBody: list[MsgElement] = Field(default_factory=list)
    CloudCustomData: str = ""


class GroupMsgGetSimpleResponse(WireResponse):
    GroupId: str = ""
    IsFinished: int = 1
    RspMsgList: list[GroupMsg] = Field(default_factory=list)
    # The field table calls it MsgList; the samples and every SDK use RspMsgList. Accept both.
    MsgList: list[GroupMsg] | None = None

    def messages(self) -> list[GroupMsg]:
        return self.RspMsgList or (self.MsgList or [])


# -- member administration, presence and sessions, system notifications, accounts (issue 17) -------


class UserIdItem(WireRequest):
    UserID: str


class AccountCheckRequest(WireRequest):
    CheckItem: list[UserIdItem]


class AccountResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    UserID: str
    ResultCode: int = 0
    ResultInfo: str = ""
    AccountStatus: str | None = None


class AccountCheckResponse(WireResponse):
    ResultItem: list[AccountResult] = Field(default_factory=list)


class AccountDeleteRequest(WireRequest):
    DeleteItem: list[UserIdItem]


class AccountDeleteResponse(WireResponse):
    ResultItem: list[AccountResult] = Field(default_factory=list)


class KickRequest(WireRequest):
    UserID: str


class QueryOnlineStatusRequest(WireRequest):
    To_Account: list[str]
    IsNeedDetail: int | None = None


class PlatformStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    Platform: str = ""
    Status: str = ""


class OnlineStatus(BaseModel):
    """One ``QueryResult`` entry. The field table names the state ``Status``; the English page's examples
    (mirror @02ec31c2) print ``State``: both are read."""

    model_config = ConfigDict(extra="allow")

    To_Account: str
    Status: str | None = None
    State: str | None = None
    Detail: list[PlatformStatus] = Field(default_factory=list)

    @property
    def state(self) -> str:
        return self.Status or self.State or ""


class AccountError(BaseModel):
    model_config = ConfigDict(extra="allow")

    To_Account: str
    ErrorCode: int


class QueryOnlineStatusResponse(WireResponse):
    QueryResult: list[OnlineStatus] = Field(default_factory=list)
    ErrorList: list[AccountError] = Field(default_factory=list)


class ChangeGroupOwnerRequest(WireRequest):
    GroupId: str
    NewOwner_Account: str


class GetJoinedGroupListRequest(WireRequest):
    Member_Account: str
    WithNoActiveGroups: int | None = None
    Limit: int | None = None
    Offset: int | None = None
    ResponseFilter: dict[str, list[str]] | None = None


class MemberSelfInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    Role: str = "Member"
    JoinTime: int | None = None


class JoinedGroupItem(GroupInfoItem):
    SelfInfo: MemberSelfInfo | None = None


class GetJoinedGroupListResponse(WireResponse):
    TotalCount: int = 0
    GroupIdList: list[JoinedGroupItem] = Field(default_factory=list)


class GetAppidGroupListRequest(WireRequest):
    Limit: int | None = None
    Next: int | None = None
    GroupType: str | None = None


class GroupIdOnly(BaseModel):
    model_config = ConfigDict(extra="allow")

    GroupId: str


class GetAppidGroupListResponse(WireResponse):
    TotalCount: int = 0
    GroupIdList: list[GroupIdOnly] = Field(default_factory=list)
    Next: int = 0


class SendGroupSystemNotificationRequest(WireRequest):
    GroupId: str
    ToMembers_Account: list[str] | None = None
    Content: str
# -- conversations and unread counts (issue 16) --------------------------------------------------
# Pages under 服务端 API/REST API/会话相关/ and 消息相关/已读回执/ of tencentyun/intlcloud-documents
# (tests/fixtures/tencent/official/PROVENANCE.md names each one).


class RecentContactListRequest(WireRequest):
    """``recentcontact/get_list`` (https://www.tencentcloud.com/document/product/1047/43087): all fields
    required; 0 for the first page, then the previous answer's cursors."""

    From_Account: str
    TimeStamp: int = 0
    StartIndex: int = 0
    TopTimeStamp: int = 0
    TopStartIndex: int = 0
    AssistFlags: int = 7  # bit 0 pinned conversations, bit 1 empty ones, bit 2 pinned ones paged


class RecentSession(BaseModel):
    model_config = ConfigDict(extra="allow")

    Type: int  # 1 one-to-one (To_Account), 2 group (GroupId)
    To_Account: str = ""
    GroupId: str = ""
    MsgTime: int = 0
    TopFlag: int = 0


class RecentContactListResponse(WireResponse):
    SessionItem: list[RecentSession] = Field(default_factory=list)
    CompleteFlag: int = 1
    TimeStamp: int = 0
    StartIndex: int = 0
    TopTimeStamp: int = 0
    TopStartIndex: int = 0


class RecentContactDeleteRequest(WireRequest):
    """``recentcontact/delete`` (/1047/43088): ``To_Account`` for Type 1, ``ToGroupid`` (sic) for Type 2."""

    From_Account: str
    Type: int
    To_Account: str | None = None
    ToGroupid: str | None = None
    ClearRamble: int | None = None


class C2CUnreadRequest(WireRequest):
    """``openim/get_c2c_unread_msg_num``: up to 10 ``Peer_Account``; without them, the total only."""

    To_Account: str
    Peer_Account: list[str] | None = None


class C2CUnreadItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    Peer_Account: str
    C2CUnreadMsgNum: int = 0


class C2CUnreadError(BaseModel):
    model_config = ConfigDict(extra="allow")

    Peer_Account: str
    ErrorCode: int


class C2CUnreadResponse(WireResponse):
    AllC2CUnreadMsgNum: int | None = None
    C2CUnreadMsgNumList: list[C2CUnreadItem] = Field(default_factory=list)
    ErrorList: list[C2CUnreadError] = Field(default_factory=list)


class AdminSetMsgReadRequest(WireRequest):
    """``openim/admin_set_msg_read``: messages before ``MsgReadTime`` (a String of seconds; now when absent)
    become read."""

    Report_Account: str
    Peer_Account: str
    MsgReadTime: str | None = None


class SetUnreadMsgNumRequest(WireRequest):
    """``group_open_http_svc/set_unread_msg_num``: a count above the group's message count is lowered to it."""

    GroupId: str
    Member_Account: str
    UnreadMsgNum: int


class JoinedGroupFilter(WireRequest):
    GroupBaseInfoFilter: list[str] | None = None
    SelfInfoFilter: list[str] | None = None


class JoinedGroupListRequest(WireRequest):
    """``group_open_http_svc/get_joined_group_list``; ``Limit``/``Offset`` page it (all groups when absent)."""

    Member_Account: str
    Limit: int | None = None
    Offset: int | None = None
    ResponseFilter: JoinedGroupFilter | None = None


class JoinedGroupSelf(BaseModel):
    model_config = ConfigDict(extra="allow")

    MsgSeq: int | None = None  # the member's read position
    MsgFlag: str | None = None  # AcceptAndNotify, AcceptNotNotify or Discard
    Role: str | None = None
    JoinTime: int | None = None


class JoinedGroup(BaseModel):
    model_config = ConfigDict(extra="allow")

    GroupId: str
    NextMsgSeq: int | None = None
    LastMsgTime: int | None = None
    SelfInfo: JoinedGroupSelf = Field(default_factory=JoinedGroupSelf)


class JoinedGroupListResponse(WireResponse):
    TotalCount: int = 0
    GroupIdList: list[JoinedGroup] = Field(default_factory=list)
