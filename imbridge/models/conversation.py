"""Who a message is addressed to: one user, or a group."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from imbridge.errors import InvalidRequestError
from imbridge.models._validation import check_id, validation_problems


class ConversationKind(StrEnum):
    USER = "user"
    GROUP = "group"


_GROUP = ConversationKind.GROUP  # a member read through its Enum class costs a lookup; is_group runs per send


class Conversation(BaseModel):
    """A conversation target. Build it with :meth:`user` or :meth:`group`."""

    model_config = ConfigDict(frozen=True)

    kind: ConversationKind
    id: str

    if not TYPE_CHECKING:  # type checkers keep the signature pydantic derives from the fields

        def __init__(self, /, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as error:
                raise InvalidRequestError(f"invalid Conversation: {validation_problems(error)}") from None

    @classmethod
    def user(cls, user_id: str) -> Conversation:
        """A one-to-one conversation with ``user_id``."""
        return cls(kind=ConversationKind.USER, id=check_id(user_id, "user id"))

    @classmethod
    def group(cls, group_id: str) -> Conversation:
        """The conversation of group ``group_id``."""
        return cls(kind=ConversationKind.GROUP, id=check_id(group_id, "group id"))

    @property
    def is_group(self) -> bool:
        return self.kind is _GROUP

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"
