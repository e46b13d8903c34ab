"""WuKongIM conversations and message lookup.

Routes (internal/api/conversation.go at v2.2.5-20260422, each checked on a real server):

* ``POST /conversation/sync`` {uid, msg_count, ...} (:318-568): every conversation of ``uid`` that has a
  message after its deletion point, with ``unread`` and the newest ``msg_count`` messages (``recents``).
  ``msg_count`` 0 returns an empty list (the answer is only assembled inside ``if req.MsgCount > 0``,
  :499). Order is the server's update time, not the last message, and ``page``/``page_size`` cut the
  list before empty conversations are dropped: imbridge reads the whole list and orders it itself.
* ``POST /conversations/clearUnread`` (:87-163) moves the read position to the channel's last seq; it also
  creates the conversation's row when it is only in the server's one-minute write cache.
* ``POST /conversations/setUnread`` (:165-264) sets the read position to ``last - unread`` but only ever
  moves it forward (:247-251): it can lower an unread count, never raise it.
* ``POST /conversations/delete`` (:266-316) records the last seq as the deletion point; the conversation
  reappears with the next message. For a conversation still in the write cache it changes nothing
  (pkg/wkdb/conversation.go:218-227 returns when the row has no id), so imbridge clears first, which
  writes the row.
* ``POST /conversation/syncByChannels`` (:707-867): the same entry for named channels (set_unread's read).
* ``POST /messages`` {login_uid, channel_id, channel_type, message_ids} (internal/api/message.go:583-680):
  messages by id; imbridge checks each found message is in the asked conversation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from imbridge._cursor import decode_cursor, encode_cursor
from imbridge._flow import Flow, Gather
from imbridge.capabilities import Operation, Support
from imbridge.errors import ConflictError, IMBridgeError, InvalidRequestError, NotFoundError
from imbridge.models import Conversation, ConversationSummary, Message, MessageRef, Page
from imbridge.providers.base import ConversationQuery, HistoryQuery
from imbridge.providers.wukong import mapping, wire
from imbridge.providers.wukong.mapping import NAME
from imbridge.providers.wukong.messages import WukongMessages

_CURSOR_KIND = "conversations"


def _channel(conversation: Conversation) -> dict[str, Any]:
    """The (channel_id, channel_type) a conversation route takes: the peer's uid for one-to-one chats (the
    server derives the fake id itself, conversation.go:203-206)."""
    return {"channel_id": conversation.id, "channel_type": wire.GROUP if conversation.is_group else wire.PERSON}


def _order(row: wire.ConversationResp) -> tuple[int, int, str]:
    """Newest activity first: message ids are snowflakes (options.GenMessageId), so they order messages of
    every channel by time to the millisecond; timestamps are whole seconds."""
    last = row.recents[0] if row.recents else None
    return (last.message_id if last else 0, row.channel_type, row.channel_id)


class WukongConversations(WukongMessages):
    """Conversation lists from ``/conversation/sync``; message lookup by id. Lives beside the messages
    module because summaries and lookups build messages the way history does."""

    # -- list -----------------------------------------------------------------------------------

    def list_conversations(self, query: ConversationQuery) -> Flow[Page[ConversationSummary]]:
        self._check_ids([query.user], Operation.CONVERSATIONS_LIST)
        after: tuple[int, int, str] | None = None
        if query.cursor is not None:
            position = decode_cursor(NAME, query.cursor)
            mid, kind, cid = position.get("m"), position.get("t"), position.get("c")
            if position.get("k") != _CURSOR_KIND or not (
                isinstance(mid, int) and isinstance(kind, int) and isinstance(cid, str)
            ):
                raise InvalidRequestError(
                    "not a conversation-list cursor", provider=NAME, operation=Operation.CONVERSATIONS_LIST.value
                )
            after = (mid, kind, cid)
        return self._list(query, after)

    def _list(self, query: ConversationQuery, after: tuple[int, int, str] | None) -> Flow[Page[ConversationSummary]]:
        reply = yield self._post("/conversation/sync", {"uid": query.user, "msg_count": 1})
        rows = [wire.ConversationResp.model_validate(item) for item in reply or []]
        # Channel types other than person and group (customer service, live...) are not conversations imbridge
        # models; a row without recents has no message after its deletion point and is never returned anyway.
        rows = [row for row in rows if row.recents and row.channel_type in (wire.PERSON, wire.GROUP)]
        rows.sort(key=_order, reverse=True)
        if after is not None:
            rows = [row for row in rows if _order(row) < after]
        page, more = rows[: query.limit], len(rows) > query.limit
        items = [self._summary(query.user, row) for row in page]
        cursor = None
        if more and page:
            mid, kind, cid = _order(page[-1])
            cursor = encode_cursor(NAME, {"k": _CURSOR_KIND, "m": mid, "t": kind, "c": cid})
        return Page(items=items, next_cursor=cursor, provider=NAME)

    def _summary(self, user: str, row: wire.ConversationResp) -> ConversationSummary:
        conversation = (
            Conversation.group(row.channel_id) if row.channel_type == wire.GROUP else Conversation.user(row.channel_id)
        )
        last = row.recents[0] if row.recents else None
        message: Message | None = None
        if last is not None:
            payload = mapping.decode_payload(last.payload)
            # A revoke notice stored in the chat (imbridge before it sent them sync_once) is not a message.
            if mapping.revoked_target(payload) is None:
                revoked = self.store is not None and bool(
                    self.store.revoked_keys(self._scope(user, conversation), [str(last.message_id)])
                )
                message = self._message(last, payload, HistoryQuery(conversation, user, 1), revoked)
        return ConversationSummary(
            user=user, conversation=conversation, last_message=message, unread=max(row.unread, 0),
            updated=mapping.timestamp(last.timestamp) if last else None, provider=NAME,
            raw=row.model_dump(exclude={"recents"}),
        )  # fmt: skip

    # -- read positions -------------------------------------------------------------------------

    def mark_read(self, user_id: str, conversation: Conversation) -> Flow[None]:
        self._check_ids([user_id, conversation.id], Operation.CONVERSATIONS_MARK_READ)
        return self._clear_unread(user_id, conversation)

    def _clear_unread(self, user_id: str, conversation: Conversation) -> Flow[None]:
        yield self._post("/conversations/clearUnread", {"uid": user_id, **_channel(conversation)})

    def delete_conversation(self, user_id: str, conversation: Conversation) -> Flow[None]:
        self._check_ids([user_id, conversation.id], Operation.CONVERSATIONS_DELETE)
        return self._delete(user_id, conversation)

    def _delete(self, user_id: str, conversation: Conversation) -> Flow[None]:
        # Cleared first: the deletion point alone keeps the unread count (the next message would show the old
        # ones as unread too), and only clearing writes the row of a conversation still in the write cache.
        yield from self._clear_unread(user_id, conversation)
        yield self._post("/conversations/delete", {"uid": user_id, **_channel(conversation)})

    def set_unread(self, user_id: str, conversation: Conversation, count: int) -> Flow[None]:
        self._check_ids([user_id, conversation.id], Operation.CONVERSATIONS_SET_UNREAD)
        return self._set_unread(user_id, conversation, count)

    def _set_unread(self, user_id: str, conversation: Conversation, count: int) -> Flow[None]:
        if count == 0:
            yield from self._clear_unread(user_id, conversation)
            return
        body = {"uid": user_id, "channels": [_channel(conversation)], "msg_count": 1}
        rows = [wire.ConversationResp.model_validate(item) for item in (yield self._post(
            "/conversation/syncByChannels", body)) or []]  # fmt: skip
        current = max(rows[0].unread, 0) if rows else 0
        if count > current:
            raise ConflictError(
                f"{conversation} has {current} unread for {user_id!r}; WuKongIM only moves a read position "
                f"forward (/conversations/setUnread), so the count can be lowered, not raised to {count}",
                provider=NAME, operation=Operation.CONVERSATIONS_SET_UNREAD.value,
            )  # fmt: skip
        if count < current:
            yield self._post("/conversations/setUnread", {"uid": user_id, **_channel(conversation), "unread": count})

    # -- message lookup -------------------------------------------------------------------------

    def get_message(self, ref: MessageRef) -> Flow[Message]:
        self._check_ref(ref, Operation.MESSAGES_GET)
        return self._get_one(ref)

    def _get_one(self, ref: MessageRef) -> Flow[Message]:
        (found,) = yield from self._lookup_refs([ref])
        if found is None:
            raise NotFoundError(
                f"no message {ref.key} in {ref.conversation}", provider=NAME, operation=Operation.MESSAGES_GET.value
            )
        return found

    def get_messages(self, refs: Sequence[MessageRef]) -> Flow[list[Message | None]]:
        for ref in refs:
            self._check_ref(ref, Operation.MESSAGES_GET_MANY)
        return self._lookup_refs(refs)

    def _check_ref(self, ref: MessageRef, operation: Operation) -> None:
        if not ref.key.isdigit():
            raise InvalidRequestError(f"not a WuKongIM message id: {ref.key!r}", provider=NAME,
                                      operation=operation.value)  # fmt: skip
        self._check_ids([ref.sender, ref.conversation.id], operation)

    def _lookup_refs(self, refs: Sequence[MessageRef]) -> Flow[list[Message | None]]:
        # One POST /messages per conversation (as its sender sees it), all of them at once.
        channels: dict[tuple[str, Conversation], list[int]] = defaultdict(list)
        for index, ref in enumerate(refs):
            channels[(ref.sender, ref.conversation)].append(index)
        keys = list(channels)
        requests = [
            self._post("/messages", {"login_uid": sender, **_channel(to),
                                     "message_ids": [int(refs[i].key) for i in channels[(sender, to)]]})
            for sender, to in keys
        ]  # fmt: skip
        replies = yield Gather(requests)
        results: list[Message | None] = [None] * len(refs)
        for (sender, to), reply in zip(keys, replies, strict=True):
            if isinstance(reply, IMBridgeError):
                raise reply
            found = {m.message_id: m for m in wire.SyncResult.model_validate(reply).messages
                     if self._belongs(m, sender, to)}  # fmt: skip
            wanted = [found[int(refs[i].key)] for i in channels[(sender, to)] if int(refs[i].key) in found]
            revoked = (
                self.store.revoked_keys(self._scope(sender, to), [str(m.message_id) for m in wanted])
                if self.store is not None else set()
            )  # fmt: skip
            for index in channels[(sender, to)]:
                row = found.get(int(refs[index].key))
                if row is None:
                    continue
                payload = mapping.decode_payload(row.payload)
                query = HistoryQuery(to, sender, 1)
                results[index] = self._message(row, payload, query, str(row.message_id) in revoked)
        return results

    # -- capabilities -----------------------------------------------------------------------------

    def _conversation_capabilities(self) -> dict[Operation, tuple[Support, str] | Support]:
        stored = self.store is not None
        revoked_note = (
            " Revoked messages are marked from imbridge's revocation records."
            if stored
            else " Without imbridge's store a revoked message is not marked revoked."
        )
        entries: dict[Operation, tuple[Support, str] | Support] = {
            Operation.CONVERSATIONS_LIST: (
                Support.PARTIAL,
                "POST /conversation/sync (msg_count 1), read whole on every page and ordered by imbridge by the "
                "last message (the server orders by its own update time and pages before dropping empty "
                "conversations); at most conversation.userMaxCount conversations (1000 by default). Unread follows "
                "the neutral rule except: revoke notices that imbridge stored in the chat before it sent them "
                "sync_once still count; re-adding an existing member marks the group read for them "
                "(subscriber_add rewrites the read position). No pinned or muted flags.",
            ),
            Operation.CONVERSATIONS_DELETE: (
                Support.NATIVE,
                "POST /conversations/clearUnread then /conversations/delete: hidden until the next message, which "
                "alone is unread (the delete alone keeps the old count, and is a no-op while the conversation is "
                "in the server's write cache).",
            ),
            Operation.CONVERSATIONS_MARK_READ: (Support.NATIVE, "POST /conversations/clearUnread."),
            Operation.CONVERSATIONS_SET_UNREAD: (
                Support.PARTIAL,
                "POST /conversations/setUnread only moves the read position forward: a count above the current one "
                "raises ConflictError (read first with /conversation/syncByChannels); 0 is clearUnread.",
            ),
            Operation.MESSAGES_GET: (
                Support.NATIVE,
                "POST /messages by message_id in the ref's conversation (the server's id search ignores the "
                "channel; imbridge checks it)." + revoked_note,
            ),
            Operation.MESSAGES_GET_MANY: (
                Support.NATIVE,
                "One POST /messages per conversation, all at once; None for ids not found." + revoked_note,
            ),
        }
        if len(self.config.base_urls) > 1 and self._manager_token:
            # Verified on three v2.2.5 nodes (cassettes/wukong/cluster/answers.json): the node that keeps the
            # user's conversations reads each conversation's recent messages from that channel's leader without
            # the manager token (internal/api/request.go:251-268), so the call answers 400 whenever one of them
            # is led by another node: it cannot be relied on, and is declared so rather than failing at random.
            defect = (
                "UNSUPPORTED on a WuKongIM v2.2.5 cluster with a managerToken: /conversation/sync and "
                "/conversation/syncByChannels (msg_count > 0) fail with HTTP 400 whenever a conversation's channel "
                "is led by another node than the user's, a server defect (node-to-node calls without the token, "
                "internal/api/request.go:251-268; docs/deployment.md). A single node, or a cluster without "
                "managerToken, answers them."
            )
            entries[Operation.CONVERSATIONS_LIST] = (Support.UNSUPPORTED, defect)
            entries[Operation.CONVERSATIONS_SET_UNREAD] = (Support.UNSUPPORTED, defect)
        return entries
