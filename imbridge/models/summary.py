"""One entry of a user's conversation list: the conversation, its newest message and its unread count."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imbridge.models.conversation import Conversation
from imbridge.models.message import Message


class ConversationSummary(BaseModel):
    """A conversation as one user's list shows it (``im.conversations.list(user)``).

    ``conversation`` is named as that user sees it: ``Conversation.user(peer)`` for a one-to-one chat,
    ``Conversation.group(id)`` for a group. ``unread`` follows imbridge's one unread rule
    (``docs/semantics.md``); where a provider counts otherwise its capability notes say how.
    ``pinned`` and ``muted`` are None where the provider has no such flag.
    """

    model_config = ConfigDict(frozen=True)

    user: str = Field(description="whose conversation list this entry belongs to")
    conversation: Conversation
    last_message: Message | None = None
    unread: int = Field(default=0, ge=0)
    updated: datetime | None = Field(default=None, description="time of the conversation's last activity")
    pinned: bool | None = None
    muted: bool | None = None
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)
