"""Messages as imbridge returns them, and the opaque reference that names one."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imbridge._shallow_json import loads_shallow
from imbridge.errors import AuthenticationError, IMBridgeError, InvalidRequestError
from imbridge.models.content import Element
from imbridge.models.conversation import Conversation

_REF_PREFIX = "imref1."


class MessageRef(BaseModel):
    """Names one message on one provider, enough to revoke it or find it again.

    Treat it as opaque: ``str(ref)`` gives a compact string to store in an app's database and
    :meth:`parse` gives the same reference back. ``key`` is the provider's own message key
    (Tencent ``MsgKey``, WuKongIM ``message_id``, ...); ``seq`` is the per-conversation sequence
    where the provider has one.
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    conversation: Conversation
    sender: str
    key: str
    seq: int | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    def __str__(self) -> str:
        payload = self.model_dump_json(exclude_defaults=True).encode()
        return _REF_PREFIX + base64.urlsafe_b64encode(payload).decode().rstrip("=")

    @classmethod
    def parse(cls, text: str) -> MessageRef:
        """The reference that ``str(ref)`` produced. Raises InvalidRequestError on anything else."""
        if not isinstance(text, str) or not text.startswith(_REF_PREFIX):
            raise InvalidRequestError(f"not a message reference: {text!r:.80}")
        body = text[len(_REF_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return cls.model_validate(loads_shallow(raw))  # not json.loads: nesting bounded before parsing
        except (binascii.Error, ValueError, ValidationError) as exc:
            raise InvalidRequestError(f"corrupt message reference: {text!r:.80}") from exc


class Message(BaseModel):
    """One message read from history."""

    model_config = ConfigDict(frozen=True)

    ref: MessageRef
    sender: str
    conversation: Conversation
    elements: list[Element]
    time: datetime
    seq: int | None = None
    revoked: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict, description="CloudCustomData and imbridge's own keys")
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class SentMessage(BaseModel):
    """What a successful send returns."""

    model_config = ConfigDict(frozen=True)

    ref: MessageRef
    time: datetime | None = None
    seq: int | None = None
    confirmed: bool = Field(
        default=True,
        description="True when imbridge knows the message is stored (False: accepted, not yet confirmed)",
    )
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class BatchItem(BaseModel):
    """The outcome for one recipient (or one member, or one account) of a batch call."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    target: str
    ok: bool
    ref: MessageRef | None = None
    error: IMBridgeError | None = None
    native_code: int | str | None = None
    detail: str = ""
    #: Not done yet, not failed either: the vendor asked for someone's approval (Tencent
    #: add_group_member Result 3). ``ok`` is False; the item is in ``pending``, not in ``failed``.
    pending: bool = False

    def __repr__(self) -> str:
        extra = ", pending=True" if self.pending else ""
        return f"BatchItem(target={self.target!r}, ok={self.ok}{extra}, native_code={self.native_code!r})"


class BatchResult(BaseModel):
    """Per-target outcomes of a batch call. Nothing is swallowed: every target has an item."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    items: list[BatchItem]
    ref: MessageRef | None = None
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def succeeded(self) -> list[str]:
        return [item.target for item in self.items if item.ok]

    @property
    def failed(self) -> list[BatchItem]:
        return [item for item in self.items if not item.ok and not item.pending]

    @property
    def pending(self) -> list[str]:
        """Targets waiting for an approval the vendor asked for (neither done nor failed)."""
        return [item.target for item in self.items if item.pending]

    def model_post_init(self, context: Any, /) -> None:
        # A refused credential concerns the whole call, never one target (issue 13, point 9): a provider
        # that caught one per item raises it here rather than hand back a result that looks partly done.
        for item in self.items:
            if isinstance(item.error, AuthenticationError):
                raise item.error

    @property
    def ok(self) -> bool:
        """True when every target succeeded (an item pending approval has not)."""
        return all(item.ok for item in self.items)

    def __bool__(self) -> bool:
        """The same as :attr:`ok`: ``if result:`` means every target succeeded (an empty batch did)."""
        return self.ok
