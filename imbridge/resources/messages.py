"""``im.messages``: send (one, or one to many), history, revoke."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from imbridge._flow import EMPTY
from imbridge.capabilities import Operation
from imbridge.errors import InvalidRequestError
from imbridge.models import (
    BatchResult,
    Conversation,
    Delivery,
    Message,
    MessageRef,
    Page,
    SentMessage,
    Text,
)
from imbridge.models._build import prevalidated
from imbridge.models._validation import check_id, check_ids, check_json_object, utf8_size
from imbridge.models.content import Custom, Face, File, Image, Location, Sound, Video
from imbridge.providers.base import BatchDraft, Direction, HistoryQuery, OutgoingMessage
from imbridge.resources._base import AsyncResource, Call, Operations, SyncResource, _new_key

_ELEMENT_TYPES = (Text, Image, File, Sound, Video, Location, Face, Custom)
_CONTENT_TYPES = (str, *_ELEMENT_TYPES)
ContentInput = str | Text | Image | File | Sound | Video | Location | Face | Custom
MAX_HISTORY_PAGE = 200
FIND_BY_KEY = "messages.find_by_key"
MAX_LOOKUP = 100


def _delivery(gate: Callable[[Operation], str], delivery: Delivery | Mapping[str, Any] | None) -> Delivery | None:
    """The caller's delivery options (None for an ordinary message), gated by ``messages.delivery``."""
    if delivery is None:
        return None
    if isinstance(delivery, Mapping):
        unknown = set(delivery) - set(Delivery.model_fields)
        if unknown:
            raise InvalidRequestError(f"unknown delivery options: {', '.join(sorted(unknown))}")
        delivery = Delivery(**delivery)
    if not isinstance(delivery, Delivery):
        raise InvalidRequestError("delivery must be a Delivery (or a mapping of its fields)")
    if delivery.is_default:
        return None
    gate(Operation.MESSAGES_DELIVERY)
    return delivery

TEXT_LIMIT_SOURCE = "https://cloud.tencent.com/document/product/269/9346"
MAX_TEXT_BYTES = 12 * 1024
"""The most text one message may carry, in UTF-8 bytes, on every provider: the strictest vendor's documented
maximum, Tencent IM's "单条消息最大长度限制为12K" (use-limits page, TEXT_LIMIT_SOURCE; WuKongIM v2.2.5 and
the local provider set none). Refused before the network, so a message valid on one provider is valid on
all. Tencent also holds the whole encoded message body to 12 KB: its provider refuses, before the network,
a message whose text fits here but whose body (element wrappers, escapes, other elements) does not."""


_TOO_LONG = (
    f"the text of a message is at most {MAX_TEXT_BYTES:,} bytes (UTF-8) on every provider: Tencent IM's "
    f"documented limit, the strictest ({TEXT_LIMIT_SOURCE})"
)


def _text_element(text: str) -> Text:
    """The element for a non-empty ``str``, checked by the caller: built without pydantic validating it
    again, since nearly every send carries one."""
    if type(text) is not str:  # a subclass goes through the model, which decides what to keep of it
        return Text(text)
    return prevalidated(Text, {"type": "text", "text": text}, {"text"})


def _checked_text(text: str) -> int:
    """The UTF-8 size of one piece of text to send: never empty nor only whitespace (nothing to read, on
    any provider), valid Unicode."""
    if not text or text.isspace():
        raise InvalidRequestError("text must contain something other than whitespace")
    return utf8_size(text, "text")


def _check_strings(element: Any) -> None:
    """Every string of a non-text element is valid Unicode (a lone surrogate fails any JSON encoder)."""
    for name, value in element.__dict__.items():
        if isinstance(value, str):
            utf8_size(value, f"{element.type} {name}")


def _content(content: ContentInput | Sequence[ContentInput]) -> tuple[Any, ...]:
    if type(content) is str:  # most sends: one piece of text, without building a list for it
        if _checked_text(content) > MAX_TEXT_BYTES:
            raise InvalidRequestError(_TOO_LONG)
        return (_text_element(content),)
    if type(content) is list:  # the README's idiom, [Text(...)]: no isinstance through pydantic's ABCMeta
        items = content
    elif isinstance(content, _CONTENT_TYPES):
        items = [content]
    elif isinstance(content, Sequence) and not isinstance(content, bytes | bytearray):
        items = list(content)
    else:  # an int, a dict or bytes would otherwise fail deep inside with a TypeError, or send its keys
        raise InvalidRequestError(f"content must be text, an element or a list of them, not {type(content).__name__}")
    if not items:
        raise InvalidRequestError("a message needs at least one content element")
    elements: list[Any] = []
    text_bytes = 0
    for item in items:
        if type(item) is Text:  # first: the common element, and an exact type is the cheapest test
            text_bytes += _checked_text(item.text)
            elements.append(item)
        elif isinstance(item, str):
            text_bytes += _checked_text(item)
            elements.append(_text_element(item))
        elif isinstance(item, Text):
            text_bytes += _checked_text(item.text)
            elements.append(item)
        elif isinstance(item, _ELEMENT_TYPES):
            _check_strings(item)
            elements.append(item)
        else:
            raise InvalidRequestError(f"not a content element: {type(item).__name__}")
    if text_bytes > MAX_TEXT_BYTES:
        raise InvalidRequestError(_TOO_LONG)
    return tuple(elements)


def _key(idempotency_key: str | None) -> str:
    # Fixed here, before the first attempt, so every retry carries the same dedupe key.
    return _new_key() if idempotency_key is None else check_id(idempotency_key, "idempotency_key")


def _json_object(value: Mapping[str, Any] | None, what: str) -> Mapping[str, Any]:
    if value is None:
        return EMPTY
    return check_json_object(value, what) or EMPTY


_SEND = Operation.MESSAGES_SEND  # read once: an Enum member read through its class costs a lookup per send


class MessageOperations(Operations):
    def send(
        self, sender: str, to: Conversation, content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None, metadata: Mapping[str, Any] | None, options: Mapping[str, Any] | None,
        confirm: bool | None, delivery: Delivery | Mapping[str, Any] | None = None,
    ) -> Call[SentMessage]:  # fmt: skip
        operation = self._gate(_SEND)
        # An exact type test first: isinstance through pydantic's ABCMeta is the slow path, and this runs per send.
        if type(to) is not Conversation and not isinstance(to, Conversation):
            raise InvalidRequestError("to must be a Conversation (Conversation.user(...) or Conversation.group(...))")
        check_id(to.id, "conversation id")  # Conversation(...) built directly skips the factories' check
        if confirm is not None and not isinstance(confirm, bool):
            raise InvalidRequestError(f"confirm must be True, False or None, got {confirm!r}")
        message = OutgoingMessage(
            sender=check_id(sender, "sender"),
            to=to,
            elements=_content(content),
            idempotency_key=_new_key() if idempotency_key is None else _key(idempotency_key),
            metadata=EMPTY if metadata is None else _json_object(metadata, "metadata"),
            options=EMPTY if options is None else _json_object(options, "options"),
            confirm=confirm,
            key_from_caller=idempotency_key is not None,
            delivery=_delivery(self._gate, delivery) if delivery is not None else None,
        )
        if self._before_send is not None:
            from imbridge.events.policy import apply

            message.elements, message.metadata = apply(
                self._before_send, provider=self.provider.name, sender=message.sender, to=to,
                elements=message.elements, metadata=message.metadata, key=message.idempotency_key,
                now=self.provider.clock.now(),
            )  # fmt: skip
        return operation, self.provider.send_message(message)

    def send_batch(
        self, sender: str, recipients: Sequence[str], content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None, metadata: Mapping[str, Any] | None, options: Mapping[str, Any] | None,
        delivery: Delivery | Mapping[str, Any] | None = None,
    ) -> Call[BatchResult]:  # fmt: skip
        operation = self._gate(Operation.MESSAGES_SEND_BATCH)
        batch = BatchDraft(
            sender=check_id(sender, "sender"),
            recipients=tuple(check_ids(recipients, "recipients")),
            elements=_content(content),
            idempotency_key=_key(idempotency_key),
            metadata=dict(_json_object(metadata, "metadata")),
            options=dict(_json_object(options, "options")),
            delivery=_delivery(self._gate, delivery),
        )
        return operation, self.provider.send_batch(batch)

    def find_by_key(self, sender: str, to: Conversation, idempotency_key: str) -> Call[Message | None]:
        self._gate(Operation.MESSAGES_SEND)  # whoever can send can reconcile what it sent
        if not isinstance(to, Conversation):
            raise InvalidRequestError("to must be a Conversation (Conversation.user(...) or Conversation.group(...))")
        check_id(to.id, "conversation id")
        provider = self.provider
        flow = provider.find_sent(check_id(sender, "sender"), to, check_id(idempotency_key, "idempotency_key"))
        return FIND_BY_KEY, flow

    def history(
        self, conversation: Conversation, viewer: str, *, limit: int, cursor: str | None, direction: Direction | str
    ) -> Call[Page[Message]]:
        operation = self._gate(Operation.MESSAGES_HISTORY)
        if not isinstance(conversation, Conversation):
            raise InvalidRequestError("conversation must be a Conversation")
        check_id(conversation.id, "conversation id")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_HISTORY_PAGE:
            raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_HISTORY_PAGE}, got {limit!r}")
        if cursor is not None and (not isinstance(cursor, str) or not cursor):
            raise InvalidRequestError("cursor must be a string returned as next_cursor")
        try:
            way = Direction(direction)
        except ValueError:
            raise InvalidRequestError(f"direction must be 'backward' or 'forward', got {direction!r}") from None
        query = HistoryQuery(conversation, check_id(viewer, "viewer"), limit, cursor, way)
        return operation, self.provider.history(query)

    def revoke(self, ref: MessageRef | str) -> Call[None]:
        operation = self._gate(Operation.MESSAGES_REVOKE)
        parsed = MessageRef.parse(ref) if isinstance(ref, str) else ref
        if not isinstance(parsed, MessageRef):
            raise InvalidRequestError("ref must be a MessageRef or its string form")
        if parsed.provider != self.provider.name:
            raise InvalidRequestError(
                f"this reference names a {parsed.provider} message; this client is {self.provider.name}"
            )
        check_id(parsed.conversation.id, "the reference's conversation id")  # a reference can be forged
        check_id(parsed.sender, "the reference's sender")
        return operation, self.provider.revoke(parsed)

    # -- lookup (issue 16) -------------------------------------------------------------------

    def _ref(self, ref: MessageRef | str) -> MessageRef:
        parsed = MessageRef.parse(ref) if isinstance(ref, str) else ref
        if not isinstance(parsed, MessageRef):
            raise InvalidRequestError("ref must be a MessageRef or its string form")
        if parsed.provider != self.provider.name:
            raise InvalidRequestError(
                f"this reference names a {parsed.provider} message; this client is {self.provider.name}"
            )
        return parsed

    def get(self, ref: MessageRef | str) -> Call[Message]:
        operation = self._gate(Operation.MESSAGES_GET)
        return operation, self.provider.get_message(self._ref(ref))

    def get_many(self, refs: Sequence[MessageRef | str]) -> Call[list[Message | None]]:
        operation = self._gate(Operation.MESSAGES_GET_MANY)
        if isinstance(refs, str | bytes) or not isinstance(refs, Sequence):
            raise InvalidRequestError("refs must be a list of MessageRef or their string forms")
        if not 1 <= len(refs) <= MAX_LOOKUP:
            raise InvalidRequestError(f"get_many takes 1 to {MAX_LOOKUP} refs, got {len(refs)}")
        return operation, self.provider.get_messages([self._ref(ref) for ref in refs])


class Messages(SyncResource[MessageOperations]):
    _operations = MessageOperations

    def send(
        self, sender: str, to: Conversation, content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None = None, metadata: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None, confirm: bool | None = None,
        delivery: Delivery | Mapping[str, Any] | None = None,
    ) -> SentMessage:  # fmt: skip
        """Send ``content`` (elements, or a plain string for text) from ``sender`` to a user or a group.

        The same ``idempotency_key`` (generated when omitted) is used on every retry, so a retried send
        is stored once. ``options`` passes provider-specific fields through (Tencent ``OfflinePushInfo``,
        ``CloudCustomData``...). ``confirm`` (WuKongIM) waits until the message is stored. ``delivery``
        (a :class:`Delivery`) sends it not persisted, online-only, not counted as unread or not updating
        conversation lists, where the provider can (capability ``messages.delivery``).
        """
        return self._run(
            self._ops.send(
                sender,
                to,
                content,
                idempotency_key=idempotency_key,
                metadata=metadata,
                options=options,
                confirm=confirm,
                delivery=delivery,
            )
        )

    def send_batch(
        self, sender: str, recipients: Sequence[str], content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None = None, metadata: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None, delivery: Delivery | Mapping[str, Any] | None = None,
    ) -> BatchResult:  # fmt: skip
        """Send one message to many users one-to-one; the result has an item per recipient."""
        return self._run(
            self._ops.send_batch(
                sender,
                recipients,
                content,
                idempotency_key=idempotency_key,
                metadata=metadata,
                options=options,
                delivery=delivery,
            )
        )

    def find_by_key(self, sender: str, to: Conversation, idempotency_key: str) -> Message | None:
        """The message ``sender`` sent to ``to`` with ``idempotency_key``, or None if none is stored (yet).

        How to reconcile a send that raised :class:`~imbridge.errors.MessageMayHaveLandedError` (its
        ``sender``, ``conversation`` and ``idempotency_key``): found, it was sent; None, it is not stored now,
        and sending again with the same key is safe once the first request can no longer arrive (well after
        your timeout). Tencent has no lookup by key: its newest 200 messages are read.
        """
        return self._run(self._ops.find_by_key(sender, to, idempotency_key))

    def history(
        self, conversation: Conversation, viewer: str, *, limit: int = 50, cursor: str | None = None,
        direction: Direction | str = Direction.BACKWARD,
    ) -> Page[Message]:  # fmt: skip
        """One page of history as ``viewer`` sees it: newest first (``backward``) or oldest first."""
        return self._run(self._ops.history(conversation, viewer, limit=limit, cursor=cursor, direction=direction))

    def iter_history(
        self,
        conversation: Conversation,
        viewer: str,
        *,
        page_size: int = 50,
        direction: Direction | str = Direction.BACKWARD,
    ) -> Iterator[Message]:
        """Every message, page after page, in the order of ``direction``."""
        cursor: str | None = None
        while True:
            page = self.history(conversation, viewer, limit=page_size, cursor=cursor, direction=direction)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def revoke(self, ref: MessageRef | str) -> None:
        """Revoke (recall) a sent message; history then shows it revoked, its content gone."""
        self._run(self._ops.revoke(ref))

    def get(self, ref: MessageRef | str) -> Message:
        """The message ``ref`` names (a revoked one comes back with ``revoked=True`` and no content);
        NotFoundError if there is none."""
        return self._run(self._ops.get(ref))

    def get_many(self, refs: Sequence[MessageRef | str]) -> list[Message | None]:
        """The messages ``refs`` name, in the same order; None where a message is not found."""
        return self._run(self._ops.get_many(refs))


class AsyncMessages(AsyncResource[MessageOperations]):
    _operations = MessageOperations

    async def send(
        self, sender: str, to: Conversation, content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None = None, metadata: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None, confirm: bool | None = None,
        delivery: Delivery | Mapping[str, Any] | None = None,
    ) -> SentMessage:  # fmt: skip
        """Send ``content`` from ``sender`` to a user or a group; see :meth:`Messages.send`."""
        sending = self._run(
            self._ops.send(
                sender,
                to,
                content,
                idempotency_key=idempotency_key,
                metadata=metadata,
                options=options,
                confirm=confirm,
                delivery=delivery,
            )
        )
        # The arguments are in the flow now: this frame lets go of them for the round trip. Objects alive across
        # it are what the garbage collector's young collections keep finding (issue 19: at 64 sends in flight,
        # a caller's [Text(...)] kept alive here made a quarter more of them).
        del content, metadata, options, delivery
        return await sending

    async def send_batch(
        self, sender: str, recipients: Sequence[str], content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None = None, metadata: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None, delivery: Delivery | Mapping[str, Any] | None = None,
    ) -> BatchResult:  # fmt: skip
        """Send one message to many users one-to-one; the result has an item per recipient."""
        return await self._run(
            self._ops.send_batch(
                sender,
                recipients,
                content,
                idempotency_key=idempotency_key,
                metadata=metadata,
                options=options,
                delivery=delivery,
            )
        )

    async def find_by_key(self, sender: str, to: Conversation, idempotency_key: str) -> Message | None:
        """The message ``sender`` sent to ``to`` with ``idempotency_key``, or None; see
        :meth:`Messages.find_by_key`."""
        return await self._run(self._ops.find_by_key(sender, to, idempotency_key))

    async def history(
        self, conversation: Conversation, viewer: str, *, limit: int = 50, cursor: str | None = None,
        direction: Direction | str = Direction.BACKWARD,
    ) -> Page[Message]:  # fmt: skip
        """One page of history as ``viewer`` sees it: newest first (``backward``) or oldest first."""
        return await self._run(self._ops.history(conversation, viewer, limit=limit, cursor=cursor, direction=direction))

    async def iter_history(
        self,
        conversation: Conversation,
        viewer: str,
        *,
        page_size: int = 50,
        direction: Direction | str = Direction.BACKWARD,
    ) -> AsyncIterator[Message]:
        """Every message, page after page, in the order of ``direction``."""
        cursor: str | None = None
        while True:
            page = await self.history(conversation, viewer, limit=page_size, cursor=cursor, direction=direction)
            for message in page.items:
                yield message
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def revoke(self, ref: MessageRef | str) -> None:
        """Revoke (recall) a sent message; history then shows it revoked, its content gone."""
        await self._run(self._ops.revoke(ref))

    async def get(self, ref: MessageRef | str) -> Message:
        """The message ``ref`` names; see :meth:`Messages.get`."""
        return await self._run(self._ops.get(ref))

    async def get_many(self, refs: Sequence[MessageRef | str]) -> list[Message | None]:
        """The messages ``refs`` name, in the same order; None where a message is not found."""
        return await self._run(self._ops.get_many(refs))
