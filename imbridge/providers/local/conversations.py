"""Local conversations: lists with exact unread counts from per-user read positions; message lookup.

The local provider is imbridge's reference for the neutral unread rule (``docs/semantics.md``): a message
is unread for a user when someone else sent it after the user's read position, where that position is the
latest of what the user marked read (or deleted), the user's own newest message in the conversation, and,
in a group, the last message before the user joined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imbridge._cursor import decode_cursor, encode_cursor
from imbridge._flow import Flow
from imbridge.capabilities import Operation, Support
from imbridge.errors import InvalidRequestError, NotFoundError
from imbridge.models import Conversation, ConversationSummary, Message, MessageRef, Page
from imbridge.providers.base import ConversationQuery
from imbridge.providers.local._core import NAME, _ts
from imbridge.providers.local.messages import LocalMessages
from imbridge.providers.local.store import MessageRow

_CURSOR_KIND = "conversations"


@dataclass(frozen=True, slots=True)
class _Entry:
    conversation: Conversation
    key: str
    last: MessageRow
    unread: int


class LocalConversations(LocalMessages):
    """Conversation lists and read positions on the store; message lookup by key."""

    def _floor(self, user: str, conversation: Conversation, key: str) -> int:
        """The seq up to which nothing can be unread for ``user``: their own newest message and, in a group,
        the last message before they joined."""
        own = self.store.last_seq(key, sender=user)
        joined = 0
        if conversation.is_group:
            member = self.store.member(conversation.id, user)
            if member is not None:
                joined = self.store.last_seq(key, before_time=member.joined_at)
        return max(own, joined)

    def _read_from(self, user: str, conversation: Conversation, key: str) -> int:
        """The seq after which messages by others are unread for ``user``."""
        read_seq, _ = self.store.read_position(user, key)
        return max(read_seq, self._floor(user, conversation, key))

    def _check(self, user: str, conversation: Conversation, operation: Operation) -> str:
        self._require_users([user], operation.value)
        if conversation.is_group:
            self._require_group(conversation.id, operation.value)
        else:
            self._require_users([conversation.id], operation.value)
        return self._conversation_key(user, conversation)

    # -- list -----------------------------------------------------------------------------------

    def list_conversations(self, query: ConversationQuery) -> Flow[Page[ConversationSummary]]:
        def compute() -> Page[ConversationSummary]:
            operation = Operation.CONVERSATIONS_LIST.value
            self._require_users([query.user], operation)
            after: tuple[float, str] | None = None
            if query.cursor is not None:
                position = decode_cursor(NAME, query.cursor)
                at, key = position.get("t"), position.get("c")
                if position.get("k") != _CURSOR_KIND or not isinstance(at, int | float) or not isinstance(key, str):
                    raise InvalidRequestError("not a conversation-list cursor", provider=NAME, operation=operation)
                after = (float(at), key)
            entries = self._entries(query.user)
            entries.sort(key=lambda e: (-e.last.time, e.key))
            if after is not None:
                entries = [e for e in entries if (-e.last.time, e.key) > (-after[0], after[1])]
            page, more = entries[: query.limit], len(entries) > query.limit
            cursor = (
                encode_cursor(NAME, {"k": _CURSOR_KIND, "t": page[-1].last.time, "c": page[-1].key})
                if more and page
                else None
            )
            items = [
                ConversationSummary(
                    user=query.user,
                    conversation=e.conversation,
                    last_message=self._message(e.last, e.conversation, query.user),
                    unread=e.unread,
                    updated=_ts(e.last.time),
                    provider=NAME,
                    raw={"conversation": e.key, "last_seq": e.last.seq},
                )
                for e in page
            ]
            return Page(items=items, next_cursor=cursor, provider=NAME)

        return self._run(compute)

    def _entries(self, user: str) -> list[_Entry]:
        candidates: list[tuple[Conversation, str]] = []
        for key in self.store.user_chats(user):
            low, _, high = key[2:].partition("|")
            candidates.append((Conversation.user(high if low == user else low), key))
        candidates += [(Conversation.group(gid), self._conversation_key(user, Conversation.group(gid)))
                       for gid in self.store.groups_of(user)]  # fmt: skip
        entries = []
        for conversation, key in candidates:
            newest = self.store.messages(key, limit=1)
            if not newest:
                continue
            _, hidden = self.store.read_position(user, key)
            if newest[0].seq <= hidden:  # deleted, and nothing new since
                continue
            unread = len(self.store.seqs_after(key, self._read_from(user, conversation, key), not_from=user))
            entries.append(_Entry(conversation, key, newest[0], unread))
        return entries

    # -- read positions -------------------------------------------------------------------------

    def mark_read(self, user_id: str, conversation: Conversation) -> Flow[None]:
        def compute() -> None:
            key = self._check(user_id, conversation, Operation.CONVERSATIONS_MARK_READ)
            self.store.set_read_position(user_id, key, read_seq=self.store.last_seq(key))

        return self._run(compute)

    def delete_conversation(self, user_id: str, conversation: Conversation) -> Flow[None]:
        def compute() -> None:
            key = self._check(user_id, conversation, Operation.CONVERSATIONS_DELETE)
            last = self.store.last_seq(key)
            self.store.set_read_position(user_id, key, read_seq=last, hidden_seq=last)

        return self._run(compute)

    def set_unread(self, user_id: str, conversation: Conversation, count: int) -> Flow[None]:
        def compute() -> None:
            key = self._check(user_id, conversation, Operation.CONVERSATIONS_SET_UNREAD)
            # The newest `count` messages by others since the user's own newest (or their joining) stay unread;
            # when fewer exist, all of them are.
            base = self._floor(user_id, conversation, key)
            theirs = self.store.seqs_after(key, base, not_from=user_id)
            read_seq = theirs[count] if count < len(theirs) else base
            self.store.set_read_position(user_id, key, read_seq=read_seq)

        return self._run(compute)

    # -- message lookup -------------------------------------------------------------------------

    def get_message(self, ref: MessageRef) -> Flow[Message]:
        def compute() -> Message:
            found = self._find(ref)
            if found is None:
                raise NotFoundError("no such message", provider=NAME, operation=Operation.MESSAGES_GET.value)
            return found

        return self._run(compute)

    def get_messages(self, refs: Sequence[MessageRef]) -> Flow[list[Message | None]]:
        return self._run(lambda: [self._find(ref) for ref in refs])

    def _find(self, ref: MessageRef) -> Message | None:
        row = self.store.message_by_key(ref.key)
        # The ref names the conversation as its sender sees it; a key from elsewhere is not this message.
        if (
            row is None
            or row.sender != ref.sender
            or row.conversation != self._conversation_key(ref.sender, ref.conversation)
        ):
            return None
        return self._message(row, ref.conversation, ref.sender)

    # -- capabilities -----------------------------------------------------------------------------

    @staticmethod
    def _conversation_capabilities() -> dict[Operation, tuple[Support, str] | Support]:
        return {
            Operation.CONVERSATIONS_LIST: (
                Support.NATIVE,
                "The reference for the neutral unread rule: a read position per user and conversation in the store.",
            ),
            Operation.CONVERSATIONS_SET_UNREAD: (Support.NATIVE, "Raises a count as well as lowering it."),
        }
