"""Local messages: send (deduplicated per sender), batch, history, revoke."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

from pydantic import TypeAdapter

from imbridge._cursor import check_position, decode_cursor, encode_cursor
from imbridge._flow import Flow
from imbridge.capabilities import Operation
from imbridge.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from imbridge.models import (
    BatchItem,
    BatchResult,
    Conversation,
    Delivery,
    Message,
    MessageRef,
    Page,
    Role,
    SentMessage,
)
from imbridge.models.content import Element
from imbridge.providers.base import BatchDraft, Direction, HistoryQuery, OutgoingMessage
from imbridge.providers.local import events as local_events
from imbridge.providers.local._core import NAME, LocalCore, _ts
from imbridge.providers.local.store import GroupRow, MessageRow, conversation_key

_ELEMENTS = TypeAdapter(list[Element])


class LocalMessages(LocalCore):
    def _check_may_send(self, group: GroupRow, sender: str) -> None:
        operation = Operation.MESSAGES_SEND.value
        member = self.store.member(group.id, sender)
        if member is None:
            raise PermissionDeniedError(
                f"{sender!r} is not a member of group {group.id!r}", provider=NAME, operation=operation
            )
        if member.muted_until is not None and member.muted_until > self._now():
            raise PermissionDeniedError(
                f"{sender!r} is muted in group {group.id!r}", provider=NAME, operation=operation
            )
        if group.mute_all and member.role == Role.MEMBER.value:
            raise PermissionDeniedError(
                f"group {group.id!r} is muted; only the owner and admins may send", provider=NAME, operation=operation
            )

    def _conversation_key(self, sender_or_viewer: str, conversation: Conversation) -> str:
        if conversation.is_group:
            return conversation_key("group", conversation.id)
        return conversation_key("user", sender_or_viewer, conversation.id)

    def send_message(self, message: OutgoingMessage) -> Flow[SentMessage]:
        def compute() -> SentMessage:
            operation = Operation.MESSAGES_SEND.value
            self._require_users([message.sender], operation)
            if message.to.is_group:
                self._check_may_send(self._require_group(message.to.id, operation), message.sender)
            else:
                self._require_users([message.to.id], operation)
            delivery = message.delivery
            if delivery is not None and not delivery.persist:
                # Not persisted (online-only, or a command): checked like any send, then stored nowhere; the
                # local provider has no connected clients to hand it to.
                ref = MessageRef(provider=NAME, conversation=message.to, sender=message.sender, key=uuid.uuid4().hex)
                return SentMessage(ref=ref, time=_ts(self._now()), confirmed=False, provider=NAME,
                                   raw={"persisted": False})  # fmt: skip
            row, new = self._append(
                message.sender, message.to, message.elements, message.metadata, message.idempotency_key
            )
            self._keep_delivery(row, delivery)
            if new:  # a re-send with the same key is the same message: no second event
                self._publish(partial(self._created, row, message.sender, message.to))
            return SentMessage(
                ref=self._ref(row, message.sender, message.to),
                time=_ts(row.time),
                seq=row.seq,
                provider=NAME,
                raw={"key": row.key},
            )

        return self._run(compute)

    def find_sent(self, sender: str, to: Conversation, idempotency_key: str) -> Flow[Message | None]:
        def compute() -> Message | None:
            # The dedupe key a send stores (see _append): the same lookup that deduplicates a re-send.
            row = self.store.message_by_dedupe(self._conversation_key(sender, to), f"{sender} {idempotency_key}")
            return None if row is None else self._message(row, to, sender)

        return self._run(compute)

    def _append(
        self, sender: str, to: Conversation, elements: Sequence[Element], metadata: Any, dedupe: str
    ) -> tuple[MessageRow, bool]:
        return self.store.append_message(
            self._conversation_key(sender, to),
            key=uuid.uuid4().hex,
            sender=sender,
            elements=[element.model_dump(mode="json") for element in elements],
            metadata=dict(metadata),
            time=self._now,  # read once the conversation is locked: times follow seqs
            # Scoped to the sender: another sender reusing the key is a different message, not a replay.
            # (A space cannot occur in a checked id, so the pair is unambiguous.)
            dedupe=f"{sender} {dedupe}",
        )

    def _created(self, row: MessageRow, sender: str, to: Conversation, common: dict[str, Any]) -> list[Any]:
        message = self._message(row, to, sender)
        return [local_events.MessageCreated(**common | {"occurred_at": message.time}, event_id=f"local:msg:{row.key}",
                                            message=message, raw=message.raw)]  # fmt: skip

    def _keep_delivery(self, row: MessageRow, delivery: Delivery | None) -> None:
        """Flags of a stored message sent as not unread or not updating conversations (conversation lists and
        unread counts read them)."""
        if delivery is not None and not (delivery.unread and delivery.update_conversation):
            self.store.set_delivery(row.key, unread=delivery.unread, update_conversation=delivery.update_conversation)

    def _ref(self, row: MessageRow, sender: str, to: Conversation) -> MessageRef:
        return MessageRef(provider=NAME, conversation=to, sender=sender, key=row.key, seq=row.seq)

    def send_batch(self, batch: BatchDraft) -> Flow[BatchResult]:
        def compute() -> BatchResult:
            self._require_users([batch.sender], Operation.MESSAGES_SEND_BATCH.value)
            known = self.store.existing_users(batch.recipients)
            items = []
            for recipient in batch.recipients:
                if recipient not in known:
                    error = NotFoundError(
                        f"unknown user {recipient!r}", provider=NAME, operation=Operation.MESSAGES_SEND_BATCH.value
                    )
                    items.append(BatchItem(target=recipient, ok=False, error=error, detail=error.message))
                    continue
                to = Conversation.user(recipient)
                if batch.delivery is not None and not batch.delivery.persist:
                    items.append(BatchItem(target=recipient, ok=True, detail="not persisted; no client to deliver to"))
                    continue
                row, new = self._append(batch.sender, to, batch.elements, batch.metadata, batch.idempotency_key)
                self._keep_delivery(row, batch.delivery)
                if new:
                    self._publish(partial(self._created, row, batch.sender, to))
                items.append(BatchItem(target=recipient, ok=True, ref=self._ref(row, batch.sender, to)))
            return BatchResult(items=items, provider=NAME)

        return self._run(compute)

    def history(self, query: HistoryQuery) -> Flow[Page[Message]]:
        def compute() -> Page[Message]:
            operation = Operation.MESSAGES_HISTORY.value
            self._require_users([query.viewer], operation)
            if query.conversation.is_group:
                self._require_group(query.conversation.id, operation)
                if self.store.member(query.conversation.id, query.viewer) is None:
                    raise PermissionDeniedError(
                        f"{query.viewer!r} is not a member of group {query.conversation.id!r}",
                        provider=NAME, operation=operation,
                    )  # fmt: skip
            else:
                self._require_users([query.conversation.id], operation)
            key = self._conversation_key(query.viewer, query.conversation)
            direction = query.direction
            bound: int | None = None
            if query.cursor is not None:
                position = check_position(NAME, decode_cursor(NAME, query.cursor), {"s": int})
                if position.get("d") != direction.value or not isinstance(position.get("s"), int):
                    raise InvalidRequestError(
                        "history cursor does not fit this query's direction", provider=NAME, operation=operation
                    )
                bound = position["s"]
            backward = direction is Direction.BACKWARD
            rows = self.store.messages(
                key,
                before=bound if backward else None,
                after=None if backward else bound,
                limit=query.limit + 1,
                descending=backward,
            )
            more = len(rows) > query.limit
            rows = rows[: query.limit]
            next_cursor = encode_cursor(NAME, {"d": direction.value, "s": rows[-1].seq}) if more and rows else None
            return Page(
                items=[self._message(row, query.conversation, query.viewer) for row in rows],
                next_cursor=next_cursor,
                provider=NAME,
            )

        return self._run(compute)

    def _message(self, row: MessageRow, conversation: Conversation, viewer: str) -> Message:
        if not conversation.is_group and row.sender != viewer:
            # One-to-one: the conversation as the sender sees it, so the ref revokes what was sent.
            ref_conversation = Conversation.user(viewer)
        else:
            ref_conversation = conversation
        return Message(
            ref=MessageRef(provider=NAME, conversation=ref_conversation, sender=row.sender, key=row.key, seq=row.seq),
            sender=row.sender,
            conversation=conversation,
            elements=_ELEMENTS.validate_python(row.elements),
            time=_ts(row.time),
            seq=row.seq,
            revoked=row.revoked,
            metadata=row.metadata,
            provider=NAME,
            raw={"conversation": row.conversation, "key": row.key},
        )

    def revoke(self, ref: MessageRef) -> Flow[None]:
        def compute() -> None:
            if ref.provider != NAME:
                raise InvalidRequestError(
                    f"a {ref.provider} message reference cannot be revoked on {NAME}", provider=NAME
                )
            revoked = self.store.revoke_message(ref.key)
            if revoked is None:
                raise NotFoundError("no such message", provider=NAME, operation=Operation.MESSAGES_REVOKE.value)
            if revoked:
                self._publish(lambda common: [local_events.MessageRevoked(
                    **common, event_id=f"local:revoke:{ref.key}", conversation=ref.conversation, key=ref.key,
                    seq=ref.seq, sender=ref.sender, revoked_by=ref.sender, ref=ref,
                )])  # fmt: skip

        return self._run(compute)
