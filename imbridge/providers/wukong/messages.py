"""WuKongIM messages: send (confirmed by lookup, or over JSON-RPC by the node's own answer; never re-sent once it may
have landed), batch, history, revoke."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import accumulate, chain
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from imbridge._coalesce import Combine
from imbridge._cursor import check_position, decode_cursor, encode_cursor
from imbridge._flow import KEEP_WAITING, NOT_JOINED, Call, Flow, Join, Request, Sleep
from imbridge.capabilities import Operation
from imbridge.errors import (
    InvalidRequestError,
    MessageMayHaveLandedError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    ServiceUnavailableError,
    TransportError,
    UnsupportedOperationError,
)
from imbridge.models import BatchItem, BatchResult, Conversation, Delivery, Message, MessageRef, Page, SentMessage
from imbridge.models._build import prevalidated
from imbridge.providers.base import BatchDraft, Direction, HistoryQuery, OutgoingMessage
from imbridge.providers.local.store import Store
from imbridge.providers.wukong import jsonrpc, mapping, wire
from imbridge.providers.wukong._core import SEEN_CHANNELS_MAX
from imbridge.providers.wukong.cluster import WukongCluster
from imbridge.providers.wukong.mapping import NAME

#: Waits (seconds) between lookups that confirm a send. A message is stored 0.5-2 ms after the send
#: returns on one node, not always by the first poll (FACTS §6); the tail covers a loaded server.
CONFIRM_DELAYS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5)
#: The newest messages one shared confirmation reads (2 per waiting send + this, at most the cap): enough to hold
#: the waiting sends and the messages stored beside them meanwhile; a send outside it is looked up by key.
CONFIRM_WINDOW_SLACK = 32
CONFIRM_WINDOW_MAX = 1000
CONFIRM_WAIT = sum(CONFIRM_DELAYS)  # how long a send waits in a shared confirmation before its own lookup
#: Rows kept per channel from the latest confirmation reads (_Recent), and the channels kept (forgotten at once).
RECENT_ROWS = 1024
RECENT_CHANNELS_MAX = 256
#: Further waits for the channel's history to list a message its key lookup found. The two are not written
#: together: on a real v2.2.5, 2 of 300 sends were found by GET /message/byclientmsgno before POST
#: /channel/messagesync listed them (2026-12-02), and a channel whose store stalls answers the lookup for the
#: message at the stuck raft index while its history never lists it (docs/providers/wukong.md, "Stalls").
LISTING_DELAYS = (0.005, 0.02, 0.05, 0.1, 0.25, 0.5)
#: Waits between lookups after a send failed with an unknown outcome (found: the send succeeded; not found:
#: MessageMayHaveLandedError, never a re-send: see WukongMessages._deliver).
RECOVERY_DELAYS = (0.0, 0.05, 0.2, 0.5)
#: Revocation records under this scope prefix are intents: a revoke notice about to be sent (see _revoke).
_INTENT_SCOPE = "intent:"

M = TypeVar("M", bound=BaseModel)


def _readable(model: type[M], reply: Any, where: str) -> M:
    """``reply`` as ``model``; an answer of another shape (a broken proxy, a truncated write) is
    ServiceUnavailableError, which callers treat as an unknown outcome instead of a crash."""
    try:
        # The validator itself: model_validate's Python wrapper doubles the cost of a send's small reply.
        return model.__pydantic_validator__.validate_python(reply)  # type: ignore[no-any-return]
    except ValidationError:
        raise ServiceUnavailableError(f"WuKongIM answered {where} with an unreadable body", provider=NAME) from None


@dataclass(slots=True)
class _Stored:
    """What a shared confirmation read needs of the row that confirms a send: its seq and time, plus the row
    itself (read as a MessageResp only where more is needed). Validating the whole row per confirmed send cost a
    tenth of imbridge's work per send; the two fields are checked here instead (see _stored)."""

    message_seq: int
    timestamp: int
    row: dict[str, Any]


def _stored(row: dict[str, Any]) -> _Stored:
    """The confirming row's seq and time when both are plain integers (WuKongIM's own encoding); any other row
    is read by the validating model, which raises ServiceUnavailableError where MessageResp would refuse it."""
    seq, timestamp = row.get("message_seq", 0), row.get("timestamp", 0)
    if type(seq) is not int or type(timestamp) is not int:
        model = _readable(wire.MessageResp, row, "POST /channel/messagesync")
        seq, timestamp = model.message_seq, model.timestamp
    return _Stored(seq, timestamp, row)


class _Recent:
    """The rows the latest shared confirmation reads showed of one channel: seqs ``low..high`` without a gap,
    each message's (client_msg_no, seq, timestamp) by message id, the newest RECENT_ROWS kept.

    Concurrent sends leave with a floor (the seq seen before they left) and come back one round trip later; by
    then a read has often shown their message. Such a send is confirmed from here without another read, and one
    not here is not stored yet (it will be stored above ``high``), so its read starts above ``high``: without
    this, every read returned the rows of the previous round trip again (2.6 rows read per send at 64 in flight
    on a real WuKongIM)."""

    __slots__ = ("high", "low", "rows")

    def __init__(self) -> None:
        self.low, self.high = 1, 0  # empty
        self.rows: dict[int, tuple[str, int, int]] = {}

    def add(self, first: int, last: int, rows: list[tuple[int, str, int, int]]) -> None:
        """The rows of one read, seqs ``first..last`` without a gap, in ascending order."""
        if first > self.high + 1 or last < self.low - 1:
            self.rows.clear()  # not adjacent: start again from this read
            self.low, self.high = first, last
        else:
            self.low, self.high = min(self.low, first), max(self.high, last)
        known = self.rows
        for message_id, key, seq, timestamp in rows:
            known[message_id] = (key, seq, timestamp)
        if len(known) > RECENT_ROWS:
            for message_id in list(known)[: len(known) - RECENT_ROWS]:
                del known[message_id]
            self.low = max(self.low, self.high - RECENT_ROWS + 1)


class _Waiting:
    """One send in a shared confirmation: its key and id, and the seq above which its message will be stored
    (None: unknown). A read that did not show it raises the floor to what it did show (see _confirmations)."""

    __slots__ = ("floor", "key", "message_id")

    def __init__(self, key: str, message_id: int, floor: int | None) -> None:
        self.key, self.message_id, self.floor = key, message_id, floor


@dataclass(frozen=True, slots=True)
class _Route:
    """Where a send lands, from its header flags: stored in the channel (the default), stored in the
    channel's command twin (``sync_once``), or not stored at all (``no_persist``)."""

    stored: bool = True
    command: bool = False


STORED = _Route()
_NOT_STORED = _Route(stored=False)
_COMMAND = _Route(command=True)
_SEND = Operation.MESSAGES_SEND  # read once: an Enum member read through its class costs a lookup per send


def _route(header: Any) -> _Route:
    # no_persist: the message is never written (channel/handler/event_persist.go:202-204); sync_once: it goes
    # to the command twin (api/message.go:256-258), where byclientmsgno finds it.
    if isinstance(header, dict):
        if header.get("no_persist") == 1:
            return _NOT_STORED
        if header.get("sync_once") == 1:
            return _COMMAND
    return STORED


def _delivery_header(delivery: Delivery | None, options: Mapping[str, Any], operation: Operation) -> dict[str, int]:
    """The header flags of a send with these delivery options (refused before any request if WuKongIM cannot
    honour them)."""
    if delivery is None:
        return {"red_dot": 1}
    if "header" in options:
        raise InvalidRequestError("pass delivery or options['header'], not both", provider=NAME,
                                  operation=operation.value)  # fmt: skip
    if delivery.persist and not delivery.update_conversation:
        raise UnsupportedOperationError(
            "WuKongIM cannot store a message without updating conversations (only no_persist skips the update, "
            "manager_conversation.go:67)", provider=NAME, operation=Operation.MESSAGES_DELIVERY.value,
        )  # fmt: skip
    if delivery.online_only:
        return {"no_persist": 1, "red_dot": 0}
    if delivery.command:
        return {"sync_once": 1, "red_dot": 0}
    return {"red_dot": int(delivery.unread)}


class WukongMessages(WukongCluster):
    # -- sending ------------------------------------------------------------------------------

    @staticmethod
    def _target(sender: str, to: Conversation, command: bool = False) -> tuple[int, str]:
        """(channel_type, id that GET /message/byclientmsgno needs: the fake id for person chats; a command
        message's is the command twin ``<id>____cmd``, where sync_once messages are stored)."""
        if to.is_group:
            return wire.GROUP, to.id + wire.CMD_SUFFIX if command else to.id
        fake = wire.fake_channel_id(sender, to.id)
        return wire.PERSON, fake + wire.CMD_SUFFIX if command else fake

    @staticmethod
    def _belongs(found: wire.MessageResp, sender: str, to: Conversation) -> bool:
        """Whether a message looked up by id is in ``to`` as ``sender`` sees it: lookups by message_id
        search every channel (FACTS §9)."""
        if to.is_group:
            return found.channel_type == wire.GROUP and found.channel_id == to.id
        return found.channel_type == wire.PERSON and {found.from_uid or wire.SYSTEM_UID, found.channel_id} == {
            sender, to.id}  # fmt: skip

    def _lookup(
        self, sender: str, to: Conversation, client_msg_no: str, message_id: int | None, command: bool = False
    ) -> Flow[wire.MessageResp | None]:
        """The stored message with this client_msg_no (and id, when given), or None."""
        channel_type, lookup_id = self._target(sender, to, command)
        params = {"channel_id": lookup_id, "channel_type": str(channel_type), "client_msg_no": client_msg_no}
        try:
            reply = yield self._get("/message/byclientmsgno", params)
        except NotFoundError:
            return None
        found = _readable(wire.MessageResp, reply, "GET /message/byclientmsgno")
        if message_id is None or found.message_id == message_id:
            return found
        if command:
            return None  # a duplicate key in a command twin: /messages is not read there
        # byclientmsgno returns the FIRST message with this client_msg_no, /messages the LAST (FACTS §9).
        body = {"login_uid": sender, "channel_id": to.id, "channel_type": channel_type,
                "client_msg_nos": [client_msg_no]}  # fmt: skip
        latest = _readable(wire.SyncResult, (yield self._post("/messages", body)), "POST /messages")
        return next((m for m in latest.messages if m.message_id == message_id), None)

    def _lookup_own(
        self, sender: str, to: Conversation, client_msg_no: str, command: bool = False
    ) -> Flow[wire.MessageResp | None]:
        """The sender's own message with this client_msg_no: another sender in the same channel may have used
        the key too, and byclientmsgno returns the FIRST such message, /messages the LAST (FACTS §9)."""
        found = yield from self._lookup(sender, to, client_msg_no, None, command)
        if found is None or found.from_uid == sender:
            return found
        if command:
            return None
        body = {"login_uid": sender, "channel_id": to.id, "channel_type": self._target(sender, to)[0],
                "client_msg_nos": [client_msg_no]}  # fmt: skip
        latest = _readable(wire.SyncResult, (yield self._post("/messages", body)), "POST /messages")
        return next((m for m in latest.messages if m.from_uid == sender), None)

    def _poll(
        self,
        sender: str,
        to: Conversation,
        client_msg_no: str,
        message_id: int | None,
        delays: Sequence[float],
        command: bool = False,
        by_key: wire.MessageResp | None = None,
    ) -> Flow[wire.MessageResp | None]:
        """Look the key up after each delay until found (``by_key``: found already), then until the channel's
        history lists what was found (LISTING_DELAYS more, if ``delays`` run out first): a message reported sent
        must be readable, and v2.2.5 can answer a key its history never lists. Found by key and never listed:
        MessageMayHaveLandedError.
        Command messages (in the channel's command twin) and sends confirmed on a majority of replicas (whose
        replicas' seqs are checked instead, cluster.py) are not checked against the history.

        A lookup that fails for a passing reason (after the executor's own retries) tells nothing either way:
        the next one may answer. None when the lookups that answered did not find it; the last failure when none
        answered (the caller decides what that means)."""
        failure: ProviderError | TransportError | None = None
        answered = False
        listing = not command and not self.config.replicated_confirmation
        if by_key is not None and not listing:
            return by_key
        for step, delay in enumerate(chain(delays, LISTING_DELAYS)):
            if step >= len(delays) and by_key is None:
                break  # the extra waits are only for a message found by key
            if delay:
                yield Sleep(delay)
            try:
                if by_key is None:
                    found = yield from self._lookup(sender, to, client_msg_no, message_id, command)
                    if found is None or not listing:
                        answered = True
                        if found is not None:
                            return found
                        continue
                    by_key, answered, failure = found, False, None  # from here on, what counts is the history
                if (yield from self._listed(sender, to, by_key)):
                    return by_key
                answered = True
            except (ProviderError, TransportError) as error:
                if not error.retryable:
                    raise
                failure = error
        if failure is not None and not answered:
            raise failure
        if by_key is not None:
            waited = sum(delays) + sum(LISTING_DELAYS)
            raise self._landed(
                {"client_msg_no": client_msg_no}, sender, to,
                f"WuKongIM answers message {by_key.message_id} ({client_msg_no!r}) by its client_msg_no at seq "
                f"{by_key.message_seq}, but the channel's history did not list it within {waited:.1f} s (a stalled "
                "channel store does this on v2.2.5, and may never list it)",
            )  # fmt: skip
        return None

    def _listed(self, sender: str, to: Conversation, found: wire.MessageResp) -> Flow[bool]:
        """Whether the channel's history (``POST /channel/messagesync``, one row from ``found``'s seq up) holds
        ``found`` at its seq: what a reader of the conversation will see."""
        body = {"login_uid": sender, "channel_id": to.id, "channel_type": wire.GROUP if to.is_group else wire.PERSON,
                "start_message_seq": found.message_seq, "end_message_seq": 0, "pull_mode": 1, "limit": 1}  # fmt: skip
        reply = yield self._post("/channel/messagesync", body)
        rows = (reply.get("messages") or []) if isinstance(reply, dict) else None  # null: nothing stored yet
        if not isinstance(rows, list):
            raise ServiceUnavailableError("WuKongIM answered POST /channel/messagesync with an unreadable body",
                                          provider=NAME)  # fmt: skip
        return any(type(row) is dict and row.get("message_id") == found.message_id
                   and row.get("message_seq") == found.message_seq for row in rows)  # fmt: skip

    @staticmethod
    def _landed(body: Mapping[str, Any], sender: str, to: Conversation, why: str) -> MessageMayHaveLandedError:
        """The error of a send that may have been stored and is not sent again (see :func:`_deliver`)."""
        key = str(body["client_msg_no"])
        return MessageMayHaveLandedError(
            f"{why}; the message MAY HAVE LANDED and is not re-sent (WuKongIM does not deduplicate client_msg_no). "
            f"Reconcile with messages.find_by_key(sender, conversation, {key!r}).",
            idempotency_key=key, sender=sender, conversation=to, provider=NAME,
            operation=Operation.MESSAGES_SEND.value,
        )  # fmt: skip

    def _deliver(
        self, body: dict[str, Any], sender: str, to: Conversation, route: _Route = STORED, over_jsonrpc: bool = False
    ) -> Flow[tuple[wire.SendResult, wire.MessageResp | _Stored | None]]:
        """POST /message/send once (``over_jsonrpc``: the JSON-RPC ``send``, whose answer carries the stored seq);
        after a failure with an unknown outcome, look it up, never re-send it.

        The request is not replay-safe: the executor re-sends it only after a failure that proves it never
        reached the server (the connection did not open: ``may_have_landed=False``). Any other failure (a
        timeout or reset after the request was written, a 5xx, an unreadable answer) is thrown back here; the
        key is looked up (RECOVERY_DELAYS) and the stored message returned if found. Found nothing proves
        nothing: a request held on the way (a proxy, a congested link, a paused server) can land after every
        lookup, and WuKongIM would store a re-sent copy beside it. So that ends in MessageMayHaveLandedError,
        carrying the key for a later reconciliation (messages.find_by_key). A message that is not stored
        (``no_persist``) cannot be looked up at all: the error is raised at once.
        """
        client_msg_no = str(body["client_msg_no"])
        try:
            if over_jsonrpc:
                # Answered once stored (jsonrpc.py): the answer is the confirmation, and its seq the message's.
                message_id, seq = jsonrpc.read_answer((yield self._rpc_send(body)), _SEND.value)
                return wire.SendResult(message_id=message_id, client_msg_no=client_msg_no), _Stored(seq, 0, {})
            reply = yield self._post("/message/send", body, replay_safe=False)
            result = wire.SendResult.read(reply)
            if result is None:
                # An answer that cannot be read is an unknown outcome too: looked up below like a reset.
                raise ServiceUnavailableError("WuKongIM answered POST /message/send with an unreadable body",
                                              provider=NAME)  # fmt: skip
            return result, None
        except (TransportError, ServiceUnavailableError) as error:
            if isinstance(error, TransportError) and not error.may_have_landed:
                raise  # never reached the server; the executor already retried it as its policy allows
            if not route.stored:
                raise self._landed(body, sender, to, f"{error.message}; it is not stored (no_persist), so it "
                                   "cannot be looked up") from error  # fmt: skip
            try:
                found = yield from self._poll(sender, to, client_msg_no, None, RECOVERY_DELAYS, route.command)
            except MessageMayHaveLandedError as unlisted:
                raise unlisted from error  # found by key, never listed by the history: it says so itself
            except (ProviderError, TransportError) as lookup_error:
                raise self._landed(body, sender, to, f"{error.message}; its lookup failed too "
                                   f"({lookup_error.message})") from error  # fmt: skip
            if found is None:
                raise self._landed(body, sender, to, f"{error.message}; client_msg_no {client_msg_no!r} not found "
                                   f"by {len(RECOVERY_DELAYS)} lookups over {sum(RECOVERY_DELAYS):.2f} s") from error
            return wire.SendResult(message_id=found.message_id, client_msg_no=found.client_msg_no), found

    def _rpc_send(self, body: Mapping[str, Any]) -> Call:
        """The JSON-RPC send of ``body`` on its sender's connection. A new connection first sets the token it logs in
        with (``POST /user/token``): once per connection, so a token another process set meanwhile never keeps it
        out."""
        sender = str(body["from_uid"])
        url = self.config.jsonrpc_url
        assert url is not None
        login, setup = self._rpc_logins.kept(sender, self._new_rpc_login, sender)
        return Call(url, sender, login, jsonrpc.check_login, jsonrpc.acknowledge, "send", jsonrpc.send_params(body),
                    "jsonrpc send", setup)  # fmt: skip

    def _new_rpc_login(self, sender: str) -> tuple[Callable[[], dict[str, Any]], Request]:
        return partial(jsonrpc.login, self._rpc_key, sender), self._post(
            "/user/token", jsonrpc.token_request(self._rpc_key, sender)
        )

    def find_sent(self, sender: str, to: Conversation, idempotency_key: str) -> Flow[Message | None]:
        self._check_ids((sender, to.id, idempotency_key), Operation.MESSAGES_SEND)
        return self._find_sent(sender, to, idempotency_key)

    def _find_sent(self, sender: str, to: Conversation, idempotency_key: str) -> Flow[Message | None]:
        # The lookup a send with a caller-chosen key makes first: the sender's own message with this key.
        found = yield from self._lookup_own(sender, to, idempotency_key)
        if found is None:
            return None
        payload = mapping.decode_payload(found.payload)
        revoked = self.store is not None and bool(
            self.store.revoked_keys(self._scope(sender, to), [str(found.message_id)])
        )
        return self._message(found, payload, HistoryQuery(to, sender, 1), revoked)

    def _check_may_send(self, group_id: str, sender: str) -> Flow[None]:
        op = Operation.MESSAGES_SEND.value
        state = yield from self._group_state(group_id)
        if not state.channel.channel_id or state.channel.disband:
            raise NotFoundError(f"unknown or dismissed group {group_id!r}", provider=NAME, operation=op)
        if sender not in state.subscribers:
            raise PermissionDeniedError(
                f"{sender!r} is not a member of group {group_id!r}", provider=NAME, operation=op
            )
        if sender in state.denylist or self._store_mute(group_id, sender) is not None:
            raise PermissionDeniedError(f"{sender!r} is muted in group {group_id!r}", provider=NAME, operation=op)
        if state.channel.ban:
            raise PermissionDeniedError(
                f"group {group_id!r} is muted as a whole; WuKongIM's ban drops every send, the owner's too",
                provider=NAME, operation=op,
            )  # fmt: skip

    def send_message(self, message: OutgoingMessage) -> Flow[SentMessage]:
        self._check_ids((message.sender, message.to.id, message.idempotency_key), _SEND)
        if message.delivery is None:  # an ordinary message (nearly every send): no helper call for its header
            return self._send(message, {"red_dot": 1})
        return self._send(message, _delivery_header(message.delivery, message.options, _SEND))

    def _send(self, message: OutgoingMessage, header: dict[str, int]) -> Flow[SentMessage]:
        to, sender = message.to, message.sender
        if self.store is not None:
            # WuKongIM accepts any uid; with a store, users are checked once and then remembered.
            yield from self._require_users([sender] if to.is_group else [sender, to.id], Operation.MESSAGES_SEND)
        body: dict[str, Any] = {
            "header": header,
            "client_msg_no": message.idempotency_key,
            "from_uid": sender,
            "channel_id": to.id,
            "channel_type": wire.GROUP if to.is_group else wire.PERSON,
        }
        if message.options:  # provider fields passed through; never the ones imbridge owns
            body.update((k, v) for k, v in message.options.items() if k not in ("payload", "from_uid", "client_msg_no"))
        # An ordinary message's header is {"red_dot": 1}: stored. Only delivery options or a caller's header change it.
        route = _route(body.get("header")) if message.options or message.delivery is not None else STORED
        if message.key_from_caller and route.stored:
            # The server never deduplicates client_msg_no: a caller-chosen key is looked up first, so
            # sending it again returns the stored message instead of storing a second one.
            earlier = yield from self._lookup_own(sender, to, message.idempotency_key, route.command)
            if earlier is not None:
                # Stored only if the history lists it: a stalled channel answers the key of a message it never
                # stores, and sending again would store a second copy if it ever did.
                earlier = yield from self._poll(sender, to, message.idempotency_key, earlier.message_id, (0.0,),
                                                route.command, by_key=earlier)  # fmt: skip
                assert earlier is not None  # found by key: listed, or an error
                return self._sent(
                    to,
                    sender,
                    wire.SendResult(message_id=earlier.message_id, client_msg_no=earlier.client_msg_no),
                    earlier,
                )
        if to.is_group:
            yield from self._sweep_mutes(to.id)
            if self.config.enforce_policy:
                yield from self._check_may_send(to.id, sender)
        payload = mapping.encode_payload(message.elements, dict(message.metadata) if message.metadata else {})
        body["payload"] = mapping.to_base64(payload)
        confirm = message.confirm if message.confirm is not None else self.config.confirm_sends
        # Over JSON-RPC (answered once stored, so confirmed without reads): an ordinary stored message with no
        # provider fields (those are HTTP's), from a user.
        over_jsonrpc = (self.config.jsonrpc_url is not None and route is STORED and not message.options
                        and sender != wire.SYSTEM_UID)  # fmt: skip
        # What a shared confirmation read saw last in this channel, before this send left: its message will have
        # a higher seq (the server numbered everything it had shown before it received this send).
        channel = self._channel_key(sender, to) if confirm and not over_jsonrpc else None
        floor = self._seen_seqs.get(channel) if channel is not None and self._seen_seqs else None
        found: wire.MessageResp | _Stored | None
        del message  # not needed past here: one object (with its elements) less alive across the round trip
        result, found = yield from self._deliver(body, sender, to, route, over_jsonrpc)
        if not route.stored:
            # Not stored by design (no_persist): there is nothing to look up, so it is never "confirmed".
            return self._sent(to, sender, result, None, persisted=False)
        if found is None and confirm:
            try:
                found = yield from self._confirm(sender, to, result, route.command, floor, channel)
            except MessageMayHaveLandedError:
                raise  # found by its key, never listed by the history: not reported sent
            except (ProviderError, TransportError) as error:
                # WuKongIM accepted the send (it gave a message id); only the confirming lookups failed.
                # Failing the send now would invite a re-send of a message that is most likely stored
                # (on a cluster, where a failover loses such messages, it is failed: cluster.py).
                self._unconfirmed_on_cluster(result, error)
                return self._sent(to, sender, result, None)
            if found is None:
                yield from self._explain_drop(sender, to, result)
        if found is not None and confirm and self.config.replicated_confirmation:
            if isinstance(found, _Stored):
                found = _readable(wire.MessageResp, found.row, "POST /channel/messagesync")
            channel_type, channel_id = self._target(sender, to, route.command)
            found = yield from self._confirm_replicated(channel_id, channel_type, found)
        return self._sent(to, sender, result, found)

    def _channel_key(self, sender: str, to: Conversation) -> tuple[str, int, str]:
        # Remembered: a pure function of the ids (a CRC32 of each for a person chat), asked for on every send.
        return self._channel_keys.kept((sender, to.id, to.is_group), self._new_channel_key, (sender, to))

    def _new_channel_key(self, ids: tuple[str, Conversation]) -> tuple[str, int, str]:
        channel_type, lookup_id = self._target(*ids)
        return NAME, channel_type, lookup_id

    def _confirm(
        self, sender: str, to: Conversation, result: wire.SendResult, command: bool, floor: int | None = None,
        channel: tuple[str, int, str] | None = None,
    ) -> Flow[wire.MessageResp | _Stored | None]:
        """The stored message a send just accepted, polled until seen; None if it never shows.

        On the async client, concurrent sends to one channel share their polls (issue 19): the send joins its
        channel's group (:class:`Join`), whose reads, one in flight at a time, are each one ``POST
        /channel/messagesync`` for every send waiting then (matched on client_msg_no AND message_id, so another
        sender's message under the same key never confirms this one); a send not in a read waits for the next,
        for at most the budget of CONFIRM_DELAYS, and is woken once, when seen. The read starts above ``floor``,
        the highest seq an earlier shared read saw before this send left (the server numbers a message after
        everything it has already shown), so it returns only what is new; without one it reads the channel's
        newest messages. A send no read showed gets the exact per-key lookup before it is called dropped. The
        sync client has nothing to share with (NOT_JOINED): it polls GET /message/byclientmsgno, CONFIRM_DELAYS
        apart, as before. Command messages (in the channel's command twin) are always polled by key.
        """
        key, message_id = result.client_msg_no, result.message_id
        if command or self.nodes is not None:
            # On a cluster the lookups go node by node (cluster.py) and shared reads are not measured there yet:
            # per key, as the sync client.
            return (yield from self._poll(sender, to, key, message_id, CONFIRM_DELAYS, command))
        channel = channel or self._channel_key(sender, to)
        waiting = _Waiting(key, message_id, floor)
        recent = self._recent.get(channel)
        if recent is not None:
            hit = self._shown(recent, [waiting]).get(message_id)
            if hit is not None:
                return hit  # a read already showed it stored
        joined = self.clock.monotonic()
        delays: Sequence[float] = CONFIRM_DELAYS
        try:
            seen = yield Join(channel, waiting, self._combine(sender, to, channel), wait=CONFIRM_WAIT)
        except (ProviderError, TransportError) as error:
            if not error.retryable:
                raise
            # The shared read failed: this send's own lookups, as the sync client makes them, for what is left of
            # the confirmation's time (its waits stay those of CONFIRM_DELAYS in all). Ending here would report a
            # send the server may have dropped as sent (unconfirmed), on one failed read. They are made after this
            # handler: the read's error is shared by every send in it and must not stay the context of each.
            spent = self.clock.monotonic() - joined
            schedule = zip(CONFIRM_DELAYS, accumulate(CONFIRM_DELAYS), strict=True)
            delays, seen = (0.0, *[delay for delay, until in schedule if until > spent][1:]), NOT_JOINED
        if seen is NOT_JOINED:
            return (yield from self._poll(sender, to, key, message_id, delays, command))
        if seen is not None:
            return seen  # type: ignore[no-any-return]
        return (yield from self._poll(sender, to, key, message_id, (0.0,), command))  # by key, and listed

    def _combine(self, sender: str, to: Conversation, channel: tuple[str, int, str]) -> Combine:
        """The reads' builder for this sender's sends to ``to``: made once per conversation, not per send (only the
        group's first waiting send uses it; the others would only keep three more objects alive meanwhile)."""
        return self._combines.kept((sender, channel), self._new_combine, (sender, to, channel))

    def _new_combine(self, conversation: tuple[str, Conversation, tuple[str, int, str]]) -> Combine:
        return partial(self._confirmations, *conversation)

    def _shown(self, recent: _Recent, items: list[_Waiting]) -> dict[int, _Stored]:
        """The waiting sends whose message the latest reads showed, by message id; the floor of each other send
        that left before the highest seq shown is raised to it (its message was not among them, so it is not
        stored yet and will be stored above). On replicated confirmation the full row is needed: no hits."""
        hits: dict[int, _Stored] = {}
        replicated = self.config.replicated_confirmation
        for item in items:
            shown = recent.rows.get(item.message_id)
            if shown is not None and shown[0] == item.key and not replicated:
                hits[item.message_id] = _Stored(shown[1], shown[2], {})
            elif item.floor is not None and recent.low <= item.floor + 1 <= recent.high:
                item.floor = recent.high
        return hits

    def _confirmations(
        self, sender: str, to: Conversation, channel: tuple[str, int, str], items: list[_Waiting]
    ) -> tuple[Request | None, Callable[[Any], list[Any]]]:
        """One read confirming every send waiting in a channel (matched on client_msg_no AND message_id). When every
        waiting send has a floor: the messages above the lowest one (``pull_mode`` 1, up to CONFIRM_WINDOW_MAX).
        Otherwise the channel's newest messages (``/channel/messagesync`` with no seqs: LoadLastMsgs), enough to
        hold the waiting sends and the others stored meanwhile. Each row that confirms nothing is left unread.

        A read shows a run of consecutive seqs; a waiting message it did not show is not stored yet, so it will
        be stored above the highest seq shown: that becomes its floor, and the next read returns only what is new
        instead of the same rows again (unless the read was a full window of the newest messages, which may have
        left the message below it)."""
        hits: dict[int, _Stored] = {}
        recent = self._recent.get(channel)
        if recent is not None:
            # Sends that joined while the previous read was in flight: what it showed answers them, or moves their
            # floor up to it (they joined too late to have their floors raised by its split).
            hits = self._shown(recent, items)
            if len(hits) == len(items):
                return None, lambda _reply: [hits[item.message_id] for item in items]
        body: dict[str, Any] = {"login_uid": sender, "channel_id": to.id,
                                "channel_type": wire.GROUP if to.is_group else wire.PERSON}  # fmt: skip
        lowest: int | None = None
        for item in items:
            if item.message_id in hits:
                continue
            if item.floor is None:
                lowest = None
                break
            if lowest is None or item.floor < lowest:
                lowest = item.floor
        if lowest is None:
            limit = min(CONFIRM_WINDOW_MAX, 4 * len(items) + CONFIRM_WINDOW_SLACK)
            body |= {"start_message_seq": 0, "end_message_seq": 0, "pull_mode": 0, "limit": limit}
        else:
            limit = CONFIRM_WINDOW_MAX
            body |= {"start_message_seq": lowest + 1, "end_message_seq": 0, "pull_mode": 1, "limit": limit}
        wanted = {item.message_id: item for item in items}  # ids are unique; keys need not be

        def split(reply: Any) -> list[Any]:
            rows = (reply.get("messages") or []) if isinstance(reply, dict) else None  # null: nothing stored yet
            if not isinstance(rows, list):
                raise ServiceUnavailableError("WuKongIM answered POST /channel/messagesync with an unreadable body",
                                              provider=NAME)  # fmt: skip
            stored: dict[int, Any] = {}
            shown: list[tuple[int, str, int, int]] = []
            highest, first = 0, None
            for row in rows:
                if type(row) is not dict:
                    continue
                seq, message_id, key = row.get("message_seq"), row.get("message_id"), row.get("client_msg_no")
                if type(seq) is int:
                    if seq > highest:
                        highest = seq
                    if first is None or seq < first:
                        first = seq
                    timestamp = row.get("timestamp", 0)
                    if type(message_id) is int and type(key) is str and type(timestamp) is int:
                        shown.append((message_id, key, seq, timestamp))
                item = wanted.get(message_id)  # type: ignore[arg-type]
                if item is not None and key == item.key:
                    stored[item.message_id] = row
            if highest:
                seen = self._seen_seqs
                if len(seen) >= SEEN_CHANNELS_MAX and channel not in seen:
                    seen.clear()  # bounded: a floor is an optimisation, never needed for correctness
                if highest > seen.get(channel, 0):
                    seen[channel] = highest
                # Only a read whose rows are every seq from where it started to its highest proves that a message
                # it did not show is not stored yet (a full window of the newest may have left it below).
                assert first is not None
                gapless = len(shown) == len(rows) == highest - first + 1 and (
                    first == lowest + 1 if lowest is not None else len(rows) < limit)
                if gapless:
                    for item in items:
                        if item.message_id not in stored and (item.floor is None or item.floor < highest):
                            item.floor = highest  # (a hit's floor too: it is not read again either way)
                    recents = self._recent
                    recent = recents.get(channel)
                    if recent is None:
                        if len(recents) >= RECENT_CHANNELS_MAX:
                            recents.clear()
                        recent = recents[channel] = _Recent()
                    recent.add(first, highest, shown)
            # Only the rows that confirm a waiting send are read; the others wait for the next read.
            return [
                _stored(stored[item.message_id]) if item.message_id in stored
                else hits.get(item.message_id, KEEP_WAITING)
                for item in items
            ]  # fmt: skip

        return self._post("/channel/messagesync", body), split

    @staticmethod
    def _sent(
        to: Conversation, sender: str, result: wire.SendResult, found: wire.MessageResp | _Stored | None, *,
        persisted: bool = True,
    ) -> SentMessage:  # fmt: skip
        seq = found.message_seq if found else None
        raw: dict[str, Any] = {"message_id": result.message_id, "client_msg_no": result.client_msg_no}
        if not persisted:
            raw["persisted"] = False
        if found:
            raw["message_seq"] = found.message_seq
            if found.timestamp:  # 0: a JSON-RPC answer, which carries no time
                raw["timestamp"] = found.timestamp
        # Every value comes from validated parts: the send's checked input and the reply read above.
        ref = prevalidated(
            MessageRef,
            {"provider": NAME, "conversation": to, "sender": sender, "key": str(result.message_id), "seq": seq,
             "extra": {"client_msg_no": result.client_msg_no}},
        )  # fmt: skip
        return prevalidated(
            SentMessage,
            {"ref": ref, "time": mapping.timestamp(found.timestamp) if found and found.timestamp else None, "seq": seq,
             "confirmed": found is not None, "provider": NAME, "raw": raw},
        )  # fmt: skip

    def _explain_drop(self, sender: str, to: Conversation, result: wire.SendResult) -> Flow[None]:
        """A send WuKongIM accepted but never stored: say why, as the hosted providers would have refused."""
        op = Operation.MESSAGES_SEND.value
        what = f"WuKongIM accepted message {result.message_id} ({result.client_msg_no!r}) but did not store it"
        if to.is_group:
            channel = yield from self._channel(to.id)
            self._invalidate(to.id)
            if channel.disband:
                raise NotFoundError(f"{what}: group {to.id!r} is dismissed", provider=NAME, operation=op)
            if channel.ban:
                raise PermissionDeniedError(f"{what}: group {to.id!r} is muted (ban)", provider=NAME, operation=op)
        # Accepted, so it may still be stored (a loaded server): the same answer as any unknown outcome.
        raise self._landed(
            {"client_msg_no": result.client_msg_no}, sender, to,
            f"{what} within {sum(CONFIRM_DELAYS):.1f} s (send with confirm=False to skip the check)",
        )  # fmt: skip

    def send_batch(self, batch: BatchDraft) -> Flow[BatchResult]:
        self._check_ids([batch.sender], Operation.MESSAGES_SEND_BATCH)
        return self._send_batch(batch, _delivery_header(batch.delivery, batch.options, Operation.MESSAGES_SEND_BATCH))

    def _send_batch(self, batch: BatchDraft, header: dict[str, int]) -> Flow[BatchResult]:
        op = Operation.MESSAGES_SEND_BATCH.value
        unknown: set[str] = set()
        if self.store is not None:
            yield from self._require_users([batch.sender], Operation.MESSAGES_SEND_BATCH)
            for uid in batch.recipients:
                if any(ch in uid for ch in wire.FORBIDDEN_ID_CHARS):
                    continue  # never a registered user: WuKongIM refuses it per item below (FACTS §7)
                try:
                    yield from self._require_users([uid], Operation.MESSAGES_SEND_BATCH)
                except NotFoundError:
                    unknown.add(uid)
        recipients = [uid for uid in batch.recipients if uid not in unknown]
        payload = mapping.encode_payload(batch.elements, dict(batch.metadata))
        body = {"header": header, "from_uid": batch.sender, "subscribers": recipients,
                "payload": mapping.to_base64(payload)}  # fmt: skip
        reply: Any = {"fail_uids": [], "reason": []}
        try:
            if recipients:  # none left: nothing to send (WuKongIM answers 400 to an empty list, FACTS §7)
                reply = yield self._post("/message/sendbatch", body, replay_safe=False)
        except (TransportError, ServiceUnavailableError) as error:
            if isinstance(error, TransportError) and not error.may_have_landed:
                raise
            raise type(error)(
                f"{error.message}; the batch MAY HAVE LANDED (sendbatch ignores client_msg_no, so it cannot be "
                "looked up); not re-sent", provider=NAME, operation=op,
            ) from error  # fmt: skip
        result = wire.SendBatchResult.model_validate(reply)
        reasons = dict(zip(result.fail_uids, result.reason, strict=False))
        items = []
        for uid in batch.recipients:
            if uid in unknown:
                missing = NotFoundError(f"unknown user {uid!r}", provider=NAME, operation=op)
                items.append(BatchItem(target=uid, ok=False, error=missing, detail=missing.message))
            elif uid in reasons:
                refusal = InvalidRequestError(f"WuKongIM refused {uid!r}: {reasons[uid]}", provider=NAME, operation=op)
                items.append(BatchItem(target=uid, ok=False, error=refusal, native_code=reasons[uid],
                                       detail=refusal.message))  # fmt: skip
            else:
                items.append(BatchItem(target=uid, ok=True, detail="accepted (no message id returned)"))
        return BatchResult(items=items, provider=NAME, raw=result.model_dump())

    # -- history ------------------------------------------------------------------------------

    @staticmethod
    def _scope(sender: str, conversation: Conversation) -> str:
        """Revocation-record scope: one per WuKongIM channel."""
        if conversation.is_group:
            return f"wukong:g:{conversation.id}"
        return f"wukong:p:{wire.fake_channel_id(sender, conversation.id)}"

    def history(self, query: HistoryQuery) -> Flow[Page[Message]]:
        self._check_ids([query.viewer, query.conversation.id], Operation.MESSAGES_HISTORY)
        bound: int | None = None
        if query.cursor is not None:
            position = check_position(NAME, decode_cursor(NAME, query.cursor), {"s": int})
            if position.get("d") != query.direction.value or not isinstance(position.get("s"), int):
                raise InvalidRequestError(
                    "history cursor does not fit this query's direction",
                    provider=NAME, operation=Operation.MESSAGES_HISTORY.value,
                )  # fmt: skip
            bound = position["s"]
        return self._history(query, bound)

    def _history(self, query: HistoryQuery, bound: int | None) -> Flow[Page[Message]]:
        conversation, backward = query.conversation, query.direction is Direction.BACKWARD
        if conversation.is_group and bound is None:
            yield from self._require_group_or_past(conversation.id)
            if self.config.enforce_policy:
                yield from self._require_reader(conversation.id, query.viewer)
        want = query.limit + 1  # one more than asked: `more` is only len == limit (FACTS §8)
        body: dict[str, Any] = {
            "login_uid": query.viewer,
            "channel_id": conversation.id,
            "channel_type": wire.GROUP if conversation.is_group else wire.PERSON,
            "end_message_seq": 0,
            "limit": want,
        }
        if backward:
            if bound is not None and bound <= 1:
                return Page(items=[], next_cursor=None, provider=NAME)
            # pull_mode 0 returns the window [max(1, start-limit+1), start] (start=0: the latest `limit`);
            # start = bound-1 always exists, so the window holds `want` messages when there are that many.
            body.update(pull_mode=0, start_message_seq=0 if bound is None else bound - 1)
        else:
            body.update(pull_mode=1, start_message_seq=1 if bound is None else bound + 1)
        result = wire.SyncResult.model_validate((yield self._post("/channel/messagesync", body)))
        rows = sorted(result.messages, key=lambda m: m.message_seq, reverse=backward)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        next_cursor = (
            encode_cursor(NAME, {"d": query.direction.value, "s": rows[-1].message_seq}) if more and rows else None
        )
        payloads = {row.message_id: mapping.decode_payload(row.payload) for row in rows}
        revoked = {target for p in payloads.values() if (target := mapping.revoked_target(p)) is not None}
        if self.store is not None:
            scope = self._scope(query.viewer, conversation)
            revoked |= self.store.revoked_keys(scope, [str(r.message_id) for r in rows])
        items = [
            self._message(row, payloads[row.message_id], query, str(row.message_id) in revoked)
            for row in rows
            if mapping.revoked_target(payloads[row.message_id]) is None
        ]
        return Page(items=items, next_cursor=next_cursor, provider=NAME)

    def _require_reader(self, group_id: str, viewer: str) -> Flow[None]:
        """Only members read a group's history, as on every provider: WuKongIM's messagesync checks no
        reader (FACTS §8), so imbridge does, with the same view of the members as the send policy (checked
        when a read starts; its cursors were issued to a member). A dismissed group's members stay
        subscribed on WuKongIM, so they can still read it."""
        state = yield from self._group_state(group_id)
        subscribers = state.subscribers
        if not state.channel.channel_id or state.channel.disband:
            subscribers = yield from self._uid_list(group_id, "subscribers")
        if viewer not in subscribers:
            raise PermissionDeniedError(
                f"{viewer!r} is not a member of group {group_id!r}",
                provider=NAME, operation=Operation.MESSAGES_HISTORY.value,
            )  # fmt: skip

    def _require_group_or_past(self, group_id: str) -> Flow[None]:
        """History of a dismissed group stays readable (WuKongIM keeps it); an unknown group is NotFound."""
        channel = yield from self._channel(group_id)
        if not channel.channel_id and (self.store is None or self.store.group(group_id) is None):
            raise NotFoundError(
                f"unknown group {group_id!r}", provider=NAME, operation=Operation.MESSAGES_HISTORY.value
            )

    def _message(
        self, row: wire.MessageResp, payload: dict[str, Any] | None, query: HistoryQuery, revoked: bool
    ) -> Message:
        sender = row.from_uid or wire.SYSTEM_UID
        conversation = query.conversation
        # One-to-one: the ref names the conversation as its sender sees it, so it can be revoked.
        ref_conversation = (
            Conversation.user(query.viewer) if not conversation.is_group and sender != query.viewer else conversation
        )
        ref = MessageRef(provider=NAME, conversation=ref_conversation, sender=sender, key=str(row.message_id),
                         seq=row.message_seq, extra={"client_msg_no": row.client_msg_no})  # fmt: skip
        return Message(
            ref=ref, sender=sender, conversation=conversation,
            elements=[] if revoked else mapping.payload_to_elements(payload, row.payload),
            time=mapping.timestamp(row.timestamp), seq=row.message_seq, revoked=revoked,
            metadata=mapping.payload_metadata(payload), provider=NAME,
            raw=row.model_dump(exclude={"payload"}) if revoked else row.model_dump(),
        )  # fmt: skip

    # -- revoke -------------------------------------------------------------------------------

    def revoke(self, ref: MessageRef) -> Flow[None]:
        op = Operation.MESSAGES_REVOKE
        if ref.provider != NAME:
            raise InvalidRequestError(f"a {ref.provider} reference cannot be revoked on {NAME}", provider=NAME)
        if not ref.key.isdigit():
            raise InvalidRequestError(f"not a WuKongIM message id: {ref.key!r}", provider=NAME, operation=op.value)
        self._check_ids([ref.sender, ref.conversation.id], op)
        return self._revoke(ref, self._need_store(op))

    def _revoke(self, ref: MessageRef, store: Store) -> Flow[None]:
        op = Operation.MESSAGES_REVOKE.value
        to, sender, message_id = ref.conversation, ref.sender, int(ref.key)
        channel_type = wire.GROUP if to.is_group else wire.PERSON
        lookup = {"login_uid": sender, "channel_id": to.id, "channel_type": channel_type, "message_id": message_id}
        try:
            target = wire.MessageResp.model_validate((yield self._post("/message", lookup)))
        except NotFoundError:
            raise NotFoundError(f"no message {message_id}", provider=NAME, operation=op) from None
        # POST /message looks ids up globally, ignoring the channel (FACTS §9): check it is this one.
        if not self._belongs(target, sender, to):
            raise NotFoundError(f"message {message_id} is not in {to}", provider=NAME, operation=op)
        scope = self._scope(sender, to)
        if store.revoked_keys(scope, [ref.key]):
            return  # already revoked: nothing more to say
        notice_key = f"revoke-{message_id}"
        # The intent is recorded before the notice is sent, the revocation after. A revoke interrupted
        # between the two (a killed process, a failed send) is found by its intent when repeated: the
        # notice is then looked up and sent only if it is not there, so it is never sent twice (WuKongIM
        # does not deduplicate client_msg_no). A first revoke pays no lookup.
        intent = _INTENT_SCOPE + scope
        if not store.record_revocation(intent, ref.key, self._now()):
            found = yield from self._lookup(sender, to, notice_key, None, command=True)  # where the notice goes
            if found is not None:
                store.record_revocation(scope, ref.key, self._now())
                return
        notice = mapping.revoke_payload(target, message_id, sender, channel_type=channel_type, channel_id=to.id)
        # sync_once: the notice goes to the conversation's command channel (internal/api/message.go:256-258),
        # which clients sync as commands. Stored in the chat itself it would raise every reader's unread count,
        # red_dot 0 or not: /conversation/sync counts seqs (conversation.go:526-548) and never reads red_dot.
        body = {"header": {"red_dot": 0, "sync_once": 1}, "client_msg_no": notice_key, "from_uid": sender,
                "channel_id": to.id, "channel_type": channel_type, "payload": mapping.to_base64(notice)}  # fmt: skip
        yield from self._deliver(body, sender, to, _COMMAND)
        store.record_revocation(scope, ref.key, self._now())
