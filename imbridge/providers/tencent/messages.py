"""Tencent messages: sendmsg/send_group_msg, batchsendmsg, roaming and group history, recall."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from imbridge._cursor import check_position, decode_cursor, encode_cursor
from imbridge._flow import Flow, Gather, Request, encode_json, windows
from imbridge.capabilities import Operation
from imbridge.errors import (
    AuthenticationError,
    IMBridgeError,
    InvalidRequestError,
    MessageMayHaveLandedError,
    PermissionDeniedError,
    ProviderError,
    ServiceUnavailableError,
    TransportError,
    UnsupportedOperationError,
)
from imbridge.models import (
    BatchItem,
    BatchResult,
    Conversation,
    Custom,
    Delivery,
    Message,
    MessageRef,
    Page,
    SentMessage,
)
from imbridge.providers.base import BatchDraft, Direction, HistoryQuery, OutgoingMessage
from imbridge.providers.tencent import mapping, paging, wire
from imbridge.providers.tencent._core import BULK_WINDOW, LIMITS, TencentCore, _check_user_ids, _chunks, _over
from imbridge.providers.tencent.mapping import NAME

BATCH_CHUNK = LIMITS["batch recipients"].value
GROUP_HISTORY_PAGE = paging.HISTORY_WINDOW

_RESERVED_OPTIONS = {"MsgRandom", "MsgSeq", "MsgBody", "From_Account", "GroupId", "Random"}
#: How many of a conversation's newest messages find_sent reads: Tencent has no lookup by MsgRandom.
FIND_SCAN = 200

M = TypeVar("M", bound=BaseModel)


def _failed(chunk: Sequence[str], error: IMBridgeError) -> Iterator[BatchItem]:
    """The chunk's items failed with ``error``; an error about the whole call (credentials) is raised."""
    if isinstance(error, AuthenticationError):
        raise error
    for uid in chunk:
        yield BatchItem(target=uid, ok=False, error=error, native_code=error.native_code, detail=error.message)


def _landed(message: OutgoingMessage, error: IMBridgeError) -> IMBridgeError:
    """MessageMayHaveLandedError for a send whose last attempt (or an earlier one) may have been processed;
    ``error`` itself otherwise. Tencent deduplicates the executor's retries (same MsgRandom/MsgSeq within its
    window); after the last one the outcome is as unknown as on any provider, and said the same way."""
    unknown = (
        (isinstance(error, TransportError) and error.may_have_landed)
        or isinstance(error, ServiceUnavailableError)
        or "MAY HAVE LANDED" in error.message  # the executor's note: an earlier attempt may have been processed
    )
    if not unknown:
        return error
    key = message.idempotency_key
    return MessageMayHaveLandedError(
        f"{error.message}; the message MAY HAVE LANDED. Reconcile with messages.find_by_key(sender, conversation, "
        f"{key!r}) before sending it again.", idempotency_key=key, sender=message.sender, conversation=message.to,
        provider=NAME, operation=Operation.MESSAGES_SEND.value, attempts=error.attempts,
    )  # fmt: skip


def _delivery_fields(delivery: Delivery | None, *, group: bool, options: dict[str, Any]) -> dict[str, Any]:
    """The request fields of a send with these delivery options; UnsupportedOperationError (before any
    request) for what Tencent cannot do."""
    if delivery is None:
        return {}
    operation = Operation.MESSAGES_DELIVERY.value
    if delivery.command:
        raise UnsupportedOperationError(
            "Tencent cannot keep a message out of history and still deliver it later: only online-only "
            "(MsgLifeTime 0 / OnlineOnlyFlag 1) messages are not stored", provider=NAME, operation=operation,
        )  # fmt: skip
    if delivery.online_only:
        # One-to-one and batch: MsgLifeTime 0 "only sent to the recipient online and not retained offline"
        # (/1047/34919, /1047/34920). Groups: OnlineOnlyFlag 1, "not for offline or roaming retention", and
        # SendMsgControl "cannot be used" with it (/1047/34959); online-only messages are "neither roamed nor
        # counted as unread" (web.sdk.qcloud.com SendMessageOptions onlineUserOnly).
        fields: dict[str, Any] = {"OnlineOnlyFlag": 1} if group else {"MsgLifeTime": 0}
    else:
        # SendMsgControl: NoUnread (not counted as unread), NoLastMsg (conversation list not refreshed).
        control = [flag for flag, off in (("NoUnread", not delivery.unread),
                                          ("NoLastMsg", not delivery.update_conversation)) if off]  # fmt: skip
        fields = {"SendMsgControl": control} if control else {}
    clash = sorted(set(fields) & set(options))
    if clash:
        raise InvalidRequestError(f"options cannot set {', '.join(clash)} together with delivery", provider=NAME,
                                  operation=operation)  # fmt: skip
    return fields


def _build(model: type[M], **fields: Any) -> M:
    """A wire request, or InvalidRequestError naming the offending option (never echoing values)."""
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidRequestError(f"invalid {model.__name__} field: {problems}", provider=NAME) from None


class TencentMessages(TencentCore):
    @staticmethod
    def _body(elements: Sequence[Any], limit: mapping.Limit = LIMITS["message body"]) -> list[dict[str, Any]]:
        if sum(isinstance(e, Custom) for e in elements) > 1:
            raise InvalidRequestError("a Tencent message may hold only one Custom element", provider=NAME)
        body = [mapping.element_to_wire(e) for e in elements]
        # "单聊、群聊消息,单条消息最大长度限制为12K": measured as the MsgBody JSON, as the service gets it.
        size = len(encode_json(body))
        if size > limit.value:
            raise _over(limit, size, "the message body (MsgBody JSON)")
        return body

    @staticmethod
    def _options(options: dict[str, Any], *, allow_to: bool) -> dict[str, Any]:
        reserved = _RESERVED_OPTIONS | (set() if allow_to else {"To_Account"})
        clash = sorted(reserved & options.keys())
        if clash:
            raise InvalidRequestError(f"options cannot set {', '.join(clash)}: imbridge sets them", provider=NAME)
        options.pop("CloudCustomData", None)
        return options

    def _ordered_seq(self) -> int:
        """A C2C MsgSeq that grows with every send: Tencent orders one second's messages by MsgSeq.
        Milliseconds since the epoch (kept strictly increasing), so sends of several clients order by
        time too; modulo 2**32 it wraps once every 49.7 days."""
        with self._seq_lock:
            self._last_seq = max(int(self.clock.now().timestamp() * 1000), self._last_seq + 1)
            return self._last_seq % 2**32

    def send_message(self, message: OutgoingMessage) -> Flow[SentMessage]:
        msg_random, msg_seq = mapping.dedupe_numbers(message.idempotency_key)
        if not message.key_from_caller:
            # A generated key is never re-sent by the caller, only retried by the executor with this
            # very body, so MsgSeq can keep send order instead of being derived from the key.
            msg_seq = self._ordered_seq()
        _check_user_ids([message.sender] if message.to.is_group else [message.sender, message.to.id])
        body = self._body(message.elements, LIMITS["group message body" if message.to.is_group else "message body"])
        options = dict(message.options)
        delivery = _delivery_fields(message.delivery, group=message.to.is_group, options=options)
        cloud = mapping.cloud_custom_data(message.metadata, options)
        if message.to.is_group:
            group_req = _build(
                wire.SendGroupMsgRequest, GroupId=message.to.id, Random=msg_random, MsgBody=body,
                From_Account=message.sender, CloudCustomData=cloud, **self._options(options, allow_to=True),
                **delivery,
            )  # fmt: skip
            try:
                reply = yield self._req("group_open_http_svc", "send_group_msg", group_req.body())
            except IMBridgeError as error:
                raise _landed(message, error) from error
            sent = wire.SendGroupMsgResponse.model_validate(reply)
            return SentMessage(
                ref=mapping.group_ref(message.to.id, message.sender, sent.MsgSeq),
                time=mapping.timestamp(sent.MsgTime), seq=sent.MsgSeq, provider=NAME, raw=reply,
            )  # fmt: skip
        extra = self._options(options, allow_to=False)
        extra.setdefault("SyncOtherMachine", 1)  # the sender's devices and roaming see it too
        c2c_req = _build(
            wire.SendMsgRequest, From_Account=message.sender, To_Account=message.to.id, MsgSeq=msg_seq,
            MsgRandom=msg_random, MsgBody=body, CloudCustomData=cloud, **extra, **delivery,
        )  # fmt: skip
        try:
            reply = yield self._req("openim", "sendmsg", c2c_req.body())
        except IMBridgeError as error:
            raise _landed(message, error) from error
        c2c = wire.SendMsgResponse.model_validate(reply)
        return SentMessage(
            ref=mapping.c2c_ref(message.sender, message.to.id, c2c.MsgKey),
            time=mapping.timestamp(c2c.MsgTime), provider=NAME, raw=reply,
        )  # fmt: skip

    def find_sent(self, sender: str, to: Conversation, idempotency_key: str) -> Flow[Message | None]:
        _check_user_ids([sender] if to.is_group else [sender, to.id])
        return self._find_sent(sender, to, idempotency_key)

    def _find_sent(self, sender: str, to: Conversation, idempotency_key: str) -> Flow[Message | None]:
        """Tencent has no lookup by MsgRandom: the newest FIND_SCAN messages are read (as ``sender`` sees the
        conversation) for one from ``sender`` carrying the MsgRandom/Random the key derives."""
        msg_random = mapping.dedupe_numbers(idempotency_key)[0]
        cursor: str | None = None
        read = 0
        while read < FIND_SCAN:
            page = yield from self.history(HistoryQuery(to, sender, min(100, FIND_SCAN - read), cursor))
            for item in page.items:
                if item.sender == sender and item.raw.get("MsgRandom") == msg_random:
                    return item
            read += len(page.items)
            if page.next_cursor is None or not page.items:
                return None
            cursor = page.next_cursor
        return None

    def send_batch(self, batch: BatchDraft) -> Flow[BatchResult]:
        _check_user_ids([batch.sender, *batch.recipients])
        _, msg_seq = mapping.dedupe_numbers(batch.idempotency_key)
        body = self._body(batch.elements)
        options = dict(batch.options)
        delivery = _delivery_fields(batch.delivery, group=False, options=options)
        cloud = mapping.cloud_custom_data(batch.metadata, options)
        extra = {**self._options(options, allow_to=False), **delivery}
        extra.setdefault("SyncOtherMachine", 1)
        items: list[BatchItem] = []
        raws: list[dict[str, Any]] = []
        # A few chunks at a time (concurrently on the async client; pacing still spaces them): memory stays
        # flat however many recipients there are.
        chunks = list(_chunks(batch.recipients, BATCH_CHUNK))
        for first, window in zip(range(0, len(chunks), BULK_WINDOW), windows(chunks, BULK_WINDOW), strict=True):
            requests = []
            for index, chunk in enumerate(window, start=first):
                # Tencent's C2C dedupe key is sender + MsgSeq + MsgRandom + CRC32(content), for 120 s, without the
                # recipient (https://cloud.tencent.com/document/product/269/2282): a second chunk with the first's
                # numbers would be dropped as its copy. Each chunk gets its own MsgRandom, derived from the key and
                # the chunk's index before its first attempt, so a retry of a chunk is still deduplicated.
                msg_random = mapping.dedupe_numbers(mapping.chunk_key(batch.idempotency_key, index))[0]
                request = _build(
                    wire.BatchSendMsgRequest, From_Account=batch.sender, To_Account=chunk, MsgSeq=msg_seq,
                    MsgRandom=msg_random, MsgBody=body, CloudCustomData=cloud, **extra,
                )  # fmt: skip
                requests.append(self._req("openim", "batchsendmsg", request.body(), cost=len(chunk)))
            replies = yield Gather(requests)
            for chunk, reply in zip(window, replies, strict=True):
                if isinstance(reply, IMBridgeError):
                    # ErrorCode != 0: the message reached none of this chunk's recipients (a transport
                    # error says whether it may have landed).
                    items.extend(_failed(chunk, reply))
                    continue
                items.extend(self._batch_items(batch.sender, chunk, reply))
                raws.append(reply)
        return BatchResult(items=items, provider=NAME, raw={"responses": raws})

    @staticmethod
    def _batch_items(sender: str, chunk: Sequence[str], reply: dict[str, Any]) -> Iterator[BatchItem]:
        result = wire.BatchSendMsgResponse.model_validate(reply)
        failures = {entry.To_Account: entry.ErrorCode for entry in result.ErrorList}
        for uid in chunk:
            if uid in failures:
                item_error = mapping.error_for(failures[uid], uid)
                yield BatchItem(
                    target=uid, ok=False, error=item_error, native_code=failures[uid], detail=item_error.message
                )
            else:
                yield BatchItem(target=uid, ok=True, ref=mapping.c2c_ref(sender, uid, result.MsgKey))

    # -- history ----------------------------------------------------------------------------------

    def history(self, query: HistoryQuery) -> Flow[Page[Message]]:
        position: dict[str, Any] = {}
        if query.cursor is not None:
            position = decode_cursor(NAME, query.cursor)
            if position.get("d") != query.direction.value:
                raise InvalidRequestError("history cursor does not fit this query's direction", provider=NAME)
            backward = query.direction is Direction.BACKWARD
            check_position(NAME, position, {"t": int, "s": int, "n": int, "k": str if backward else list})
        if query.conversation.is_group:
            if query.cursor is None and (yield from self.non_members(query.conversation.id, [query.viewer])):
                # group_msg_get_simple is an admin call and checks no reader: only members read a group's
                # history, on every provider (checked when a read starts; its cursors were issued to a member).
                raise PermissionDeniedError(
                    f"{query.viewer!r} is not a member of group {query.conversation.id!r}",
                    provider=NAME, operation=Operation.MESSAGES_HISTORY.value,
                )  # fmt: skip
            if query.direction is Direction.BACKWARD:
                return (yield from self._group_backward(query, position))
            return (yield from self._group_forward(query, position))
        if query.direction is Direction.BACKWARD:
            return (yield from self._c2c_backward(query, position))
        return (yield from self._c2c_forward(query, position))

    def _roam(self, query: HistoryQuery, count: int, min_time: int, max_time: int, key: str | None) -> Request:
        body = wire.GetRoamMsgRequest(
            Operator_Account=query.viewer, Peer_Account=query.conversation.id, MaxCnt=count,
            MinTime=min_time, MaxTime=max_time, LastMsgKey=key,
        ).body()  # fmt: skip
        return self._req("openim", "admin_getroammsg", body)

    @staticmethod
    def _newest_first(messages: list[wire.RoamMsg]) -> list[wire.RoamMsg]:
        return sorted(messages, key=lambda m: (m.MsgTimeStamp, m.MsgSeq, m.MsgKey), reverse=True)

    def _c2c_backward(self, query: HistoryQuery, position: dict[str, Any]) -> Flow[Page[Message]]:
        max_time = int(position.get("t", self.clock.now().timestamp()))
        last_key: str | None = position.get("k")
        collected: list[wire.RoamMsg] = []
        more = True
        while len(collected) < query.limit:
            reply = yield self._roam(query, query.limit - len(collected), 0, max_time, last_key)
            page = wire.GetRoamMsgResponse.model_validate(reply)
            batch = self._newest_first(page.MsgList)[: query.limit - len(collected)]
            collected.extend(batch)
            more = page.Complete == 0 and bool(batch)
            if not more:
                break
            # Continue below the oldest message taken, as the docs' LastMsgTime/LastMsgKey do.
            max_time, last_key = batch[-1].MsgTimeStamp, batch[-1].MsgKey
        cursor = None
        if more and collected:
            oldest = collected[-1]
            cursor = encode_cursor(NAME, {"d": "backward", "t": oldest.MsgTimeStamp, "k": oldest.MsgKey})
        return Page(items=[mapping.c2c_message_from_wire(m, query.conversation) for m in collected],
                    next_cursor=cursor, provider=NAME)  # fmt: skip

    def _c2c_forward(self, query: HistoryQuery, position: dict[str, Any]) -> Flow[Page[Message]]:
        # The API only walks backward: read everything from now down to the cursor's second, then
        # serve the oldest part. Honest but costly; the capability note says so.
        since = int(position.get("t", 0))
        seen_at_since = set(position.get("k", []))
        max_time, last_key = int(self.clock.now().timestamp()), None
        remaining: list[wire.RoamMsg] = []
        while True:
            reply = yield self._roam(query, 100, since, max_time, last_key)
            page = wire.GetRoamMsgResponse.model_validate(reply)
            batch = self._newest_first(page.MsgList)
            remaining.extend(batch)
            if page.Complete != 0 or not batch:
                break
            max_time, last_key = batch[-1].MsgTimeStamp, batch[-1].MsgKey
        unique = {m.MsgKey: m for m in remaining if not (m.MsgTimeStamp == since and m.MsgKey in seen_at_since)}
        ordered = sorted(unique.values(), key=lambda m: (m.MsgTimeStamp, m.MsgSeq, m.MsgKey))
        items, rest = ordered[: query.limit], ordered[query.limit :]
        cursor = None
        if rest and items:
            last_time = items[-1].MsgTimeStamp
            keys = [m.MsgKey for m in items if m.MsgTimeStamp == last_time]
            if last_time == since:
                keys += sorted(seen_at_since)
            cursor = encode_cursor(NAME, {"d": "forward", "t": last_time, "k": keys})
        return Page(items=[mapping.c2c_message_from_wire(m, query.conversation) for m in items],
                    next_cursor=cursor, provider=NAME)  # fmt: skip

    def _simple(self, group_id: str, count: int, seq: int | None) -> Request:
        body = wire.GroupMsgGetSimpleRequest(
            GroupId=group_id, ReqMsgNumber=count, ReqMsgSeq=seq, WithRecalledMsg=1
        ).body()
        return self._req("group_open_http_svc", "group_msg_get_simple", body)

    @staticmethod
    def _visible(message: wire.GroupMsg | None) -> bool:
        return message is not None and message.IsPlaceMsg != mapping.PLACEHOLDER_EXPIRED and not message.IsSystemMsg

    def _group_backward(self, query: HistoryQuery, position: dict[str, Any]) -> Flow[Page[Message]]:
        """Newest first, window by window of seqs from ``NextMsgSeq - 1`` (or the cursor) down to seq 1.
        ``IsFinished`` 1 only says a window is complete, not that older messages are gone; 2 says the rest
        has expired, so the walk ends there (https://cloud.tencent.com/document/api/269/2738)."""
        group_id = query.conversation.id
        top: int | None = position.get("s")
        if top is None:
            top = (yield from paging.next_msg_seq(self._req, group_id)) - 1
        collected: list[wire.GroupMsg] = []
        ended = False
        while len(collected) < query.limit and top >= 1 and not ended:
            low = max(1, top - min(GROUP_HISTORY_PAGE, query.limit - len(collected)) + 1)
            window = yield from paging.group_window(self._req, group_id, low, top)
            resume = low - 1
            for seq in range(top, low - 1, -1):
                item = window.messages.get(seq)
                if item is None or not self._visible(item):
                    continue
                if len(collected) == query.limit:
                    resume = seq
                    break
                collected.append(item)
            ended = window.expired and resume == low - 1
            top = resume
        more = top >= 1 and not ended
        cursor = encode_cursor(NAME, {"d": "backward", "s": top}) if more else None
        return Page(items=[mapping.group_message_from_wire(m, group_id) for m in collected],
                    next_cursor=cursor, provider=NAME)  # fmt: skip

    def _group_forward(self, query: HistoryQuery, position: dict[str, Any]) -> Flow[Page[Message]]:
        """Oldest first, window by window from seq 1 (or the cursor) up to the ``NextMsgSeq - 1`` read on the
        first page."""
        group_id = query.conversation.id
        start = int(position.get("s", 1))
        newest: int | None = position.get("n")
        if newest is None:
            newest = (yield from paging.next_msg_seq(self._req, group_id)) - 1
        collected: list[wire.GroupMsg] = []
        while len(collected) < query.limit and start <= newest:
            end = min(start + min(GROUP_HISTORY_PAGE, query.limit - len(collected)) - 1, newest)
            window = yield from paging.group_window(self._req, group_id, start, end)
            resume = end + 1
            for seq in range(start, end + 1):
                item = window.messages.get(seq)
                if item is None or not self._visible(item):
                    continue
                if len(collected) == query.limit:
                    resume = seq
                    break
                collected.append(item)
            start = resume
        cursor = encode_cursor(NAME, {"d": "forward", "s": start, "n": newest}) if start <= newest else None
        return Page(items=[mapping.group_message_from_wire(m, group_id) for m in collected],
                    next_cursor=cursor, provider=NAME)  # fmt: skip

    # -- revoke -----------------------------------------------------------------------------------

    def revoke(self, ref: MessageRef) -> Flow[None]:
        if ref.conversation.is_group:
            seq = ref.seq if ref.seq is not None else int(ref.key)
            body = wire.GroupMsgRecallRequest(GroupId=ref.conversation.id, MsgSeqList=[wire.MsgSeqItem(MsgSeq=seq)])
            reply = yield self._req("group_open_http_svc", "group_msg_recall", body.body())
            for result in wire.GroupMsgRecallResponse.model_validate(reply).RecallRetList:
                if result.MsgSeq != seq or result.RetCode in (0, 20023):
                    continue
                if result.RetCode == 10032 and (yield from self._group_recalled(ref.conversation.id, seq)):
                    continue  # "cannot be recalled" because it already was: the goal is reached
                raise mapping.error_for(result.RetCode, f"seq {seq}")
            return None
        body_c2c = wire.MsgWithdrawRequest(
            From_Account=ref.extra.get("From_Account", ref.sender),
            To_Account=ref.extra.get("To_Account", ref.conversation.id),
            MsgKey=ref.key,
        )
        try:
            yield self._req("openim", "admin_msgwithdraw", body_c2c.body())
        except ProviderError as error:
            if error.native_code != 20023:  # already recalled: the goal is reached
                raise
        return None

    def _group_recalled(self, group_id: str, seq: int) -> Flow[bool]:
        reply = yield self._simple(group_id, 1, seq)
        found = wire.GroupMsgGetSimpleResponse.model_validate(reply).messages()
        return any(m.MsgSeq == seq and m.IsPlaceMsg == mapping.PLACEHOLDER_RECALLED for m in found)
