"""Tencent conversations, unread counts and message lookup.

Tencent's conversation list (``recentcontact/get_list``, https://www.tencentcloud.com/document/product/1047/43087)
names each conversation with its last message time and pinned flag only. imbridge completes each page:

* unread: ``openim/get_c2c_unread_msg_num`` (/1047/41046, 10 peers a request) for one-to-one chats;
  ``group_open_http_svc/get_joined_group_list`` (/1047/34925) for groups, whose ``NextMsgSeq`` minus one
  minus the member's read position ``SelfInfo.MsgSeq`` is the group count;
* the last message: ``openim/admin_getroammsg`` (/1047/35478) or ``group_msg_get_simple`` (/1047/34971).
  Those newest messages also place the user's own newest message, so a reply counts as having read what
  came before (the neutral rule, ``docs/semantics.md``), which Tencent's per-recipient count does not do.

Marking read is ``openim/admin_set_msg_read`` (/1047/38996) or ``set_unread_msg_num`` with 0 (/1047/34909);
deleting is ``recentcontact/delete`` (/1047/43088).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imbridge._cursor import decode_cursor, encode_cursor
from imbridge._flow import Flow, Gather, Request, windows
from imbridge.capabilities import Operation, Support
from imbridge.errors import ConflictError, IMBridgeError, InvalidRequestError, NotFoundError
from imbridge.models import Conversation, ConversationSummary, Message, MessageRef, Page
from imbridge.providers.base import ConversationQuery
from imbridge.providers.tencent import mapping, paging, wire
from imbridge.providers.tencent._core import TencentCore
from imbridge.providers.tencent.mapping import NAME

_CURSOR_KIND = "conversations"
_GROUP_SERVICE = "group_open_http_svc"
#: get_c2c_unread_msg_num takes at most 10 Peer_Account.
UNREAD_PEERS_PER_REQUEST = 10
#: Newest messages read per conversation to find the last one and the user's own newest one; group_msg_get_simple
#: returns at most 20 a page. Beyond it, an unread count is Tencent's own.
RECENT_WINDOW = 20
#: How many server pages one list call may read (each answer moves its cursor on; this guards a server that
#: would not).
MAX_SERVER_PAGES = 50
#: Group message flags that mean notifications are off for the member (get_joined_group_list SelfInfo.MsgFlag).
_QUIET_FLAGS = {"AcceptNotNotify", "Discard"}


@dataclass(frozen=True, slots=True)
class _Position:
    """A server page (the four documented cursors) and how many of its items were already returned."""

    time: int = 0
    index: int = 0
    top_time: int = 0
    top_index: int = 0
    skip: int = 0

    def request(self, user: str) -> dict[str, Any]:
        return wire.RecentContactListRequest(
            From_Account=user, TimeStamp=self.time, StartIndex=self.index, TopTimeStamp=self.top_time,
            TopStartIndex=self.top_index, AssistFlags=7,
        ).body()  # fmt: skip

    @classmethod
    def after(cls, page: wire.RecentContactListResponse) -> _Position:
        return cls(page.TimeStamp, page.StartIndex, page.TopTimeStamp, page.TopStartIndex)

    def cursor(self) -> str:
        return encode_cursor(NAME, {"k": _CURSOR_KIND, "ts": self.time, "si": self.index, "tts": self.top_time,
                                    "tsi": self.top_index, "skip": self.skip})  # fmt: skip


def _neutral_unread(counted: int, newest_first: Sequence[tuple[str, bool]], user: str, complete: bool) -> int:
    """Tencent's count (``counted``) brought to the neutral rule: only others' messages after the user's own
    newest one are unread. ``newest_first`` is (sender, shown in history) of the newest messages; ``complete``
    says they are all the conversation has."""
    if counted <= 0:
        return 0
    others = 0
    for sender, shown in newest_first:
        if sender == user:
            return min(others, counted)
        others += shown
    return min(others, counted) if complete else counted


class TencentConversations(TencentCore):
    """Conversation lists completed with unread counts and last messages; message lookup by ref."""

    # -- list -----------------------------------------------------------------------------------

    def list_conversations(self, query: ConversationQuery) -> Flow[Page[ConversationSummary]]:
        start = _Position()
        if query.cursor is not None:
            position = decode_cursor(NAME, query.cursor)
            values = [position.get(name) for name in ("ts", "si", "tts", "tsi", "skip")]
            numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= 0]
            if position.get("k") != _CURSOR_KIND or len(numbers) != len(values):
                raise InvalidRequestError(
                    "not a conversation-list cursor", provider=NAME, operation=Operation.CONVERSATIONS_LIST.value
                )
            start = _Position(*numbers)
        return self._list(query, start)

    def _list(self, query: ConversationQuery, position: _Position) -> Flow[Page[ConversationSummary]]:
        sessions: list[wire.RecentSession] = []
        next_position: _Position | None = None
        for _ in range(MAX_SERVER_PAGES):
            reply = yield self._req("recentcontact", "get_list", position.request(query.user))
            page = wire.RecentContactListResponse.model_validate(reply)
            items = page.SessionItem[position.skip :]
            room = query.limit - len(sessions)
            sessions.extend(items[:room])
            if len(items) > room:  # the rest of this server page comes next time
                next_position = _Position(position.time, position.index, position.top_time, position.top_index,
                                          position.skip + room)  # fmt: skip
                break
            following = _Position.after(page)
            if page.CompleteFlag == 1 or following == position:
                break
            position = following
            if len(sessions) == query.limit:
                next_position = position
                break
        summaries = yield from self._complete(query.user, sessions)
        return Page(items=summaries, next_cursor=next_position.cursor() if next_position else None, provider=NAME)

    def _complete(self, user: str, sessions: list[wire.RecentSession]) -> Flow[list[ConversationSummary]]:
        peers = [s.To_Account for s in sessions if s.Type == 1 and s.To_Account]
        groups = [s.GroupId for s in sessions if s.Type == 2 and s.GroupId]
        # Round 1: the counts (they decide how many recent messages round 2 reads).
        requests = [
            self._req("openim", "get_c2c_unread_msg_num",
                      wire.C2CUnreadRequest(To_Account=user, Peer_Account=list(chunk)).body())
            for chunk in windows(peers, UNREAD_PEERS_PER_REQUEST)
        ]  # fmt: skip
        if groups:
            joined = wire.JoinedGroupListRequest(
                Member_Account=user,
                ResponseFilter=wire.JoinedGroupFilter(GroupBaseInfoFilter=["NextMsgSeq"],
                                                      SelfInfoFilter=["MsgSeq", "MsgFlag"]),
            )  # fmt: skip
            requests.append(self._req(_GROUP_SERVICE, "get_joined_group_list", joined.body()))
        replies = yield Gather(requests)
        c2c_unread: dict[str, int] = {}
        membership: dict[str, wire.JoinedGroup] = {}
        for request, reply in zip(requests, replies, strict=True):
            if isinstance(reply, IMBridgeError):
                raise reply
            if request.api == "get_c2c_unread_msg_num":
                counts = wire.C2CUnreadResponse.model_validate(reply).C2CUnreadMsgNumList
                c2c_unread.update((item.Peer_Account, item.C2CUnreadMsgNum) for item in counts)
            else:
                groups_joined = wire.JoinedGroupListResponse.model_validate(reply).GroupIdList
                membership.update((group.GroupId, group) for group in groups_joined)
        counted = [self._counted(s, c2c_unread, membership) for s in sessions]
        # Round 2: the newest messages of each conversation (for the last message and the user's own newest one).
        wanted = [min(count, RECENT_WINDOW - 1) + 1 for count in counted]
        chats = [i for i, s in enumerate(sessions) if s.Type == 1]
        replies = yield Gather([self._roam_request(user, sessions[i].To_Account, wanted[i], None, None) for i in chats])
        recent: dict[int, tuple[list[tuple[str, bool]], bool, Message | None]] = {}
        for index, reply in zip(chats, replies, strict=True):
            if isinstance(reply, IMBridgeError):
                raise reply
            recent[index] = yield from self._chat_recent(user, sessions[index], wanted[index], reply)
        for index, session in enumerate(sessions):
            if session.Type == 2:
                recent[index] = yield from self._group_recent(session.GroupId, wanted[index], membership)
        return [
            self._summary(user, session, count, *recent[index], membership)
            for index, (session, count) in enumerate(zip(sessions, counted, strict=True))
        ]

    def _roam_request(self, user: str, peer: str, count: int, before: int | None, key: str | None) -> Request:
        body = wire.GetRoamMsgRequest(
            Operator_Account=user, Peer_Account=peer, MaxCnt=count, MinTime=0,
            MaxTime=before if before is not None else int(self.clock.now().timestamp()), LastMsgKey=key,
        ).body()  # fmt: skip
        return self._req("openim", "admin_getroammsg", body)

    def _chat_recent(
        self, user: str, session: wire.RecentSession, count: int, reply: Any
    ) -> Flow[tuple[list[tuple[str, bool]], bool, Message | None]]:
        """The ``count`` newest messages of a one-to-one chat (an answer cut by its byte budget is continued as
        the page says: ``MaxTime`` = ``LastMsgTime`` with ``LastMsgKey``): their senders, whether they are all
        the chat has, and the newest as the last message."""
        messages: list[wire.RoamMsg] = []
        while True:
            page = wire.GetRoamMsgResponse.model_validate(reply)
            messages += page.MsgList
            if page.Complete == 1 or len(messages) >= count or not page.MsgList:
                break
            reply = yield self._roam_request(user, session.To_Account, count - len(messages), page.LastMsgTime,
                                             page.LastMsgKey)  # fmt: skip
        newest = sorted(messages, key=lambda m: (m.MsgTimeStamp, m.MsgSeq, m.MsgKey), reverse=True)[:count]
        complete = len(newest) < count
        last = mapping.c2c_message_from_wire(newest[0], Conversation.user(session.To_Account)) if newest else None
        return [(m.From_Account, True) for m in newest], complete, last

    def _group_recent(
        self, group_id: str, count: int, membership: dict[str, wire.JoinedGroup]
    ) -> Flow[tuple[list[tuple[str, bool]], bool, Message | None]]:
        """The ``count`` newest seqs of a group (``NextMsgSeq`` from get_joined_group_list), every one of them,
        windows cut short asked again (``paging.group_window``); system messages and expired placeholders are
        not shown and count as no one's."""
        joined = membership.get(group_id)
        high = (joined.NextMsgSeq - 1) if joined is not None and joined.NextMsgSeq else None
        if high is None:  # not a member any more: only the last message is wanted
            simple = wire.GroupMsgGetSimpleRequest(GroupId=group_id, ReqMsgNumber=1, WithRecalledMsg=1).body()
            got = wire.GroupMsgGetSimpleResponse.model_validate(
                (yield self._req(_GROUP_SERVICE, "group_msg_get_simple", simple))
            ).messages()
            shown = [m for m in got if m.IsPlaceMsg != mapping.PLACEHOLDER_EXPIRED and not m.IsSystemMsg]
            return [], False, mapping.group_message_from_wire(shown[0], group_id) if shown else None
        if high < 1:
            return [], True, None
        low = max(high - count + 1, 1)
        window = yield from paging.group_window(self._req, group_id, low, high)
        newest = [window.messages[seq] for seq in sorted(window.messages, reverse=True)]
        senders = [(m.From_Account, m.IsPlaceMsg != mapping.PLACEHOLDER_EXPIRED and not m.IsSystemMsg) for m in newest]
        last = next((m for m in newest if m.IsPlaceMsg != mapping.PLACEHOLDER_EXPIRED and not m.IsSystemMsg), None)
        return senders, low == 1, mapping.group_message_from_wire(last, group_id) if last else None

    @staticmethod
    def _counted(session: wire.RecentSession, c2c: dict[str, int], groups: dict[str, wire.JoinedGroup]) -> int:
        if session.Type == 1:
            return max(c2c.get(session.To_Account, 0), 0)
        joined = groups.get(session.GroupId)
        if joined is None or joined.NextMsgSeq is None or joined.SelfInfo.MsgSeq is None:
            return 0  # no longer a member: nothing is unread for them
        return max(joined.NextMsgSeq - 1 - joined.SelfInfo.MsgSeq, 0)

    def _summary(
        self, user: str, session: wire.RecentSession, counted: int, senders: list[tuple[str, bool]], complete: bool,
        last: Message | None, membership: dict[str, wire.JoinedGroup],
    ) -> ConversationSummary:  # fmt: skip
        if session.Type == 1:
            conversation = Conversation.user(session.To_Account)
            muted = None  # Tencent's REST API has no per-conversation mute for one-to-one chats
        else:
            conversation = Conversation.group(session.GroupId)
            joined = membership.get(session.GroupId)
            flag = joined.SelfInfo.MsgFlag if joined else None
            muted = None if flag is None else flag in _QUIET_FLAGS
        return ConversationSummary(
            user=user, conversation=conversation, last_message=last,
            unread=_neutral_unread(counted, senders, user, complete),
            updated=mapping.timestamp(session.MsgTime) if session.MsgTime else None,
            pinned=session.TopFlag == 1, muted=muted, provider=NAME,
            raw={**session.model_dump(exclude_defaults=True), "CountedUnread": counted},
        )  # fmt: skip

    # -- read positions -------------------------------------------------------------------------

    def mark_read(self, user_id: str, conversation: Conversation) -> Flow[None]:
        return self._mark_read(user_id, conversation)

    def _mark_read(self, user_id: str, conversation: Conversation, read_time: int | None = None) -> Flow[None]:
        if conversation.is_group:
            body = wire.SetUnreadMsgNumRequest(GroupId=conversation.id, Member_Account=user_id, UnreadMsgNum=0)
            yield self._req(_GROUP_SERVICE, "set_unread_msg_num", body.body())
            return
        read = wire.AdminSetMsgReadRequest(
            Report_Account=user_id, Peer_Account=conversation.id,
            MsgReadTime=None if read_time is None else str(read_time),
        )  # fmt: skip
        yield self._req("openim", "admin_set_msg_read", read.body())

    def delete_conversation(self, user_id: str, conversation: Conversation) -> Flow[None]:
        return self._delete(user_id, conversation)

    def _delete(self, user_id: str, conversation: Conversation) -> Flow[None]:
        # Marked read first: the docs do not say a deleted conversation's count restarts, and the neutral rule
        # says it does. ClearRamble 0: the messages stay in history.
        yield from self._mark_read(user_id, conversation)
        body = wire.RecentContactDeleteRequest(
            From_Account=user_id, Type=2 if conversation.is_group else 1, ClearRamble=0,
            To_Account=None if conversation.is_group else conversation.id,
            ToGroupid=conversation.id if conversation.is_group else None,
        )  # fmt: skip
        yield self._req("recentcontact", "delete", body.body())

    def set_unread(self, user_id: str, conversation: Conversation, count: int) -> Flow[None]:
        if count == 0:
            return self._mark_read(user_id, conversation)
        if conversation.is_group:
            return self._set_group_unread(user_id, conversation.id, count)
        return self._set_c2c_unread(user_id, conversation.id, count)

    def _set_group_unread(self, user_id: str, group_id: str, count: int) -> Flow[None]:
        body = wire.SetUnreadMsgNumRequest(GroupId=group_id, Member_Account=user_id, UnreadMsgNum=count)
        yield self._req(_GROUP_SERVICE, "set_unread_msg_num", body.body())

    def _set_c2c_unread(self, user_id: str, peer: str, count: int) -> Flow[None]:
        op = Operation.CONVERSATIONS_SET_UNREAD.value
        reply = yield self._req("openim", "get_c2c_unread_msg_num",
                                wire.C2CUnreadRequest(To_Account=user_id, Peer_Account=[peer]).body())  # fmt: skip
        current = next((i.C2CUnreadMsgNum for i in wire.C2CUnreadResponse.model_validate(reply).C2CUnreadMsgNumList
                        if i.Peer_Account == peer), 0)  # fmt: skip
        if count > current:
            raise ConflictError(
                f"user:{peer} has {current} unread for {user_id!r}; Tencent can mark one-to-one messages read "
                f"(admin_set_msg_read) but not unread again, so the count cannot be raised to {count}",
                provider=NAME, operation=op,
            )  # fmt: skip
        if count == current:
            return
        body = wire.GetRoamMsgRequest(Operator_Account=user_id, Peer_Account=peer, MaxCnt=current + 1, MinTime=0,
                                      MaxTime=int(self.clock.now().timestamp())).body()  # fmt: skip
        roam = wire.GetRoamMsgResponse.model_validate((yield self._req("openim", "admin_getroammsg", body)))
        theirs = sorted((m.MsgTimeStamp for m in roam.MsgList if m.From_Account == peer), reverse=True)
        if len(theirs) < count:
            raise ConflictError(f"only {len(theirs)} messages from {peer!r} are in the roaming window", provider=NAME,
                                operation=op)  # fmt: skip
        # admin_set_msg_read marks the messages *before* MsgReadTime read, to the second: the newest `count` stay
        # unread only if the one before them is from an earlier second.
        cut = theirs[count - 1]
        if len(theirs) > count and theirs[count] == cut:
            raise ConflictError(
                f"messages {count} and {count + 1} from {peer!r} share a second; admin_set_msg_read cannot split "
                "them (it takes whole seconds)", provider=NAME, operation=op,
            )  # fmt: skip
        yield from self._mark_read(user_id, Conversation.user(peer), read_time=cut)

    # -- message lookup -------------------------------------------------------------------------

    def get_message(self, ref: MessageRef) -> Flow[Message]:
        return self._get_one(ref)

    def _get_one(self, ref: MessageRef) -> Flow[Message]:
        (found,) = yield from self._lookup([ref])
        if found is None:
            raise NotFoundError(f"no message {ref.key} in {ref.conversation} (or beyond the roaming retention)",
                                provider=NAME, operation=Operation.MESSAGES_GET.value)  # fmt: skip
        return found

    def get_messages(self, refs: Sequence[MessageRef]) -> Flow[list[Message | None]]:
        return self._lookup(refs)

    def _lookup(self, refs: Sequence[MessageRef]) -> Flow[list[Message | None]]:
        results: list[Message | None] = [None] * len(refs)
        # One-to-one messages are looked up in the sender's roaming messages, then (SyncOtherMachine 2 keeps
        # them out of the sender's) in the recipient's.
        for round_ in range(2):
            pending = [i for i, ref in enumerate(refs) if results[i] is None and (round_ == 0 or not
                       ref.conversation.is_group)]  # fmt: skip
            if not pending:
                break
            requests = [self._lookup_request(refs[i], as_recipient=round_ == 1) for i in pending]
            replies = yield Gather(requests)
            for index, reply in zip(pending, replies, strict=True):
                if isinstance(reply, IMBridgeError):
                    raise reply
                results[index] = self._found(refs[index], reply)
        return results

    def _lookup_request(self, ref: MessageRef, *, as_recipient: bool) -> Request:
        if ref.conversation.is_group:
            seq = ref.seq if ref.seq is not None else int(ref.key) if ref.key.isdigit() else 0
            if seq < 1:
                raise InvalidRequestError(f"not a Tencent group message reference: {ref.key!r}", provider=NAME)
            body = wire.GroupMsgGetSimpleRequest(GroupId=ref.conversation.id, ReqMsgNumber=1, ReqMsgSeq=seq,
                                                 WithRecalledMsg=1).body()  # fmt: skip
            return self._req(_GROUP_SERVICE, "group_msg_get_simple", body)
        sender = ref.extra.get("From_Account", ref.sender)
        recipient = ref.extra.get("To_Account", ref.conversation.id)
        # Every documented MsgKey is "{MsgSeq}_{MsgRandom}_{MsgTime}": the message's own second bounds the query.
        second = ref.key.rsplit("_", 1)[-1]
        low, high = (int(second), int(second)) if second.isdigit() else (0, int(self.clock.now().timestamp()))
        operator, peer = (recipient, sender) if as_recipient else (sender, recipient)
        body = wire.GetRoamMsgRequest(Operator_Account=operator, Peer_Account=peer, MaxCnt=100, MinTime=low,
                                      MaxTime=high).body()  # fmt: skip
        return self._req("openim", "admin_getroammsg", body)

    @staticmethod
    def _found(ref: MessageRef, reply: Any) -> Message | None:
        if ref.conversation.is_group:
            seq = ref.seq if ref.seq is not None else int(ref.key)
            for item in wire.GroupMsgGetSimpleResponse.model_validate(reply).messages():
                if item.MsgSeq == seq and item.IsPlaceMsg != mapping.PLACEHOLDER_EXPIRED:
                    return mapping.group_message_from_wire(item, ref.conversation.id)
            return None
        for roam in wire.GetRoamMsgResponse.model_validate(reply).MsgList:
            if roam.MsgKey == ref.key:
                # The conversation as the sender sees it, as the ref names it.
                return mapping.c2c_message_from_wire(roam, ref.conversation)
        return None

    # -- capabilities -----------------------------------------------------------------------------

    @staticmethod
    def _conversation_capabilities() -> dict[Operation, tuple[Support, str] | Support]:
        return {
            Operation.CONVERSATIONS_LIST: (
                Support.PARTIAL,
                "recentcontact/get_list (pinned first, then by last message; Tencent keeps 100 recent contacts by "
                "default, 500 on Ultimate, and drops one when its last message expires), completed per page with "
                "get_c2c_unread_msg_num (10 peers a request), get_joined_group_list (NextMsgSeq - 1 - MsgSeq for "
                "groups, MsgFlag for muted) and one admin_getroammsg/group_msg_get_simple per conversation for the "
                "last message. Tencent counts unread per recipient: imbridge applies 'a reply reads what came "
                "before' from the newest 20 messages; beyond them the count is Tencent's. Group counts include "
                "group system notices. Muted is None for one-to-one chats.",
            ),
            Operation.CONVERSATIONS_DELETE: (
                Support.NATIVE,
                "admin_set_msg_read / set_unread_msg_num 0, then recentcontact/delete with ClearRamble 0 (the "
                "messages stay in history).",
            ),
            Operation.CONVERSATIONS_MARK_READ: (
                Support.NATIVE,
                "admin_set_msg_read (one-to-one) / set_unread_msg_num 0 (groups).",
            ),
            Operation.CONVERSATIONS_SET_UNREAD: (
                Support.PARTIAL,
                "Groups: set_unread_msg_num (a count above the group's messages is lowered to it; not for ChatRoom "
                "or AVChatRoom). One-to-one: admin_set_msg_read with MsgReadTime at the right second, so only "
                "lowering works (a higher count raises ConflictError, as do two messages in that second).",
            ),
            Operation.MESSAGES_GET: (
                Support.NATIVE,
                "admin_getroammsg over the MsgKey's second (sender's view, then the recipient's) / "
                "group_msg_get_simple at the seq with WithRecalledMsg; only within the roaming retention.",
            ),
            Operation.MESSAGES_GET_MANY: (
                Support.NATIVE,
                "one lookup per ref, concurrently on the async client; None where not found.",
            ),
        }
