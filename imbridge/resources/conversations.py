"""``im.conversations``: a user's conversation list with unread counts; delete, mark read, set unread.

What counts as unread is one rule on every provider (``docs/semantics.md``, "Unread"); a provider that
counts otherwise says so in its capability notes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from imbridge.capabilities import Operation
from imbridge.errors import InvalidRequestError
from imbridge.models import Conversation, ConversationSummary, Page
from imbridge.models._validation import check_id
from imbridge.providers.base import ConversationQuery
from imbridge.resources._base import AsyncResource, Call, Operations, SyncResource

MAX_CONVERSATION_PAGE = 100
DEFAULT_CONVERSATION_PAGE = 20
#: The largest unread count ``set_unread`` accepts (no provider stores more than a few thousand messages
#: per conversation within its retention; a larger number is a mistake, not a count).
MAX_UNREAD = 1_000_000


def _conversation(conversation: object) -> Conversation:
    if not isinstance(conversation, Conversation):
        raise InvalidRequestError("conversation must be a Conversation (Conversation.user(...) or .group(...))")
    check_id(conversation.id, "conversation id")  # Conversation(...) built directly skips the factories' check
    return conversation


class ConversationOperations(Operations):
    def list(self, user: str, *, limit: int, cursor: str | None) -> Call[Page[ConversationSummary]]:
        operation = self._gate(Operation.CONVERSATIONS_LIST)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CONVERSATION_PAGE:
            raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_CONVERSATION_PAGE}, got {limit!r}")
        if cursor is not None and (not isinstance(cursor, str) or not cursor):
            raise InvalidRequestError("cursor must be a string returned as next_cursor")
        query = ConversationQuery(check_id(user, "user"), limit, cursor)
        return operation, self.provider.list_conversations(query)

    def delete(self, user: str, conversation: Conversation) -> Call[None]:
        operation = self._gate(Operation.CONVERSATIONS_DELETE)
        return operation, self.provider.delete_conversation(check_id(user, "user"), self._other(user, conversation))

    def mark_read(self, user: str, conversation: Conversation) -> Call[None]:
        operation = self._gate(Operation.CONVERSATIONS_MARK_READ)
        return operation, self.provider.mark_read(check_id(user, "user"), self._other(user, conversation))

    def set_unread(self, user: str, conversation: Conversation, count: int) -> Call[None]:
        operation = self._gate(Operation.CONVERSATIONS_SET_UNREAD)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_UNREAD:
            raise InvalidRequestError(f"count must be an integer from 0 to {MAX_UNREAD}, got {count!r}")
        target = self._other(user, conversation)
        return operation, self.provider.set_unread(check_id(user, "user"), target, count)

    @staticmethod
    def _other(user: str, conversation: object) -> Conversation:
        target = _conversation(conversation)
        if not target.is_group and target.id == user:
            raise InvalidRequestError(f"{user!r} has no one-to-one conversation with themselves")
        return target


class Conversations(SyncResource[ConversationOperations]):
    _operations = ConversationOperations

    def list(
        self, user: str, *, limit: int = DEFAULT_CONVERSATION_PAGE, cursor: str | None = None
    ) -> Page[ConversationSummary]:
        """One page of ``user``'s conversations, most recent activity first, each with its newest message
        and unread count. Pass ``page.next_cursor`` back for the next page."""
        return self._run(self._ops.list(user, limit=limit, cursor=cursor))

    def iter(self, user: str, *, page_size: int = DEFAULT_CONVERSATION_PAGE) -> Iterator[ConversationSummary]:
        """Every conversation of ``user``, page after page."""
        cursor: str | None = None
        while True:
            page = self.list(user, limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def delete(self, user: str, conversation: Conversation) -> None:
        """Remove ``conversation`` from ``user``'s list (and mark it read) until its next message; the
        messages themselves stay in history."""
        self._run(self._ops.delete(user, conversation))

    def mark_read(self, user: str, conversation: Conversation) -> None:
        """Mark everything in ``conversation`` read for ``user``: its unread count becomes 0."""
        self._run(self._ops.mark_read(user, conversation))

    def set_unread(self, user: str, conversation: Conversation, count: int) -> None:
        """Make the newest ``count`` messages of ``conversation`` (by others) unread for ``user``; 0 marks it
        read. Providers that can only move the read position forward refuse to raise the count."""
        self._run(self._ops.set_unread(user, conversation, count))


class AsyncConversations(AsyncResource[ConversationOperations]):
    _operations = ConversationOperations

    async def list(
        self, user: str, *, limit: int = DEFAULT_CONVERSATION_PAGE, cursor: str | None = None
    ) -> Page[ConversationSummary]:
        """One page of ``user``'s conversations; see :meth:`Conversations.list`."""
        return await self._run(self._ops.list(user, limit=limit, cursor=cursor))

    async def iter(
        self, user: str, *, page_size: int = DEFAULT_CONVERSATION_PAGE
    ) -> AsyncIterator[ConversationSummary]:
        """Every conversation of ``user``, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(user, limit=page_size, cursor=cursor)
            for summary in page.items:
                yield summary
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def delete(self, user: str, conversation: Conversation) -> None:
        """Remove ``conversation`` from ``user``'s list until its next message; see :meth:`Conversations.delete`."""
        await self._run(self._ops.delete(user, conversation))

    async def mark_read(self, user: str, conversation: Conversation) -> None:
        """Mark everything in ``conversation`` read for ``user``."""
        await self._run(self._ops.mark_read(user, conversation))

    async def set_unread(self, user: str, conversation: Conversation, count: int) -> None:
        """Make the newest ``count`` messages of ``conversation`` unread for ``user``; see
        :meth:`Conversations.set_unread`."""
        await self._run(self._ops.set_unread(user, conversation, count))
