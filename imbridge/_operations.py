"""Validation and flow construction for every neutral operation, shared by the sync and async clients.

Each method checks the capability map (an UNSUPPORTED operation raises before any I/O), validates the
input that cannot be valid on any provider, and returns ``(operation name, flow)`` for an executor.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from imbridge._flow import EMPTY, Flow
from imbridge.capabilities import Operation, Support
from imbridge.errors import InvalidRequestError, UnsupportedOperationError
from imbridge.models import (
    BatchResult,
    Conversation,
    Gender,
    Group,
    LoginCredentials,
    Member,
    Message,
    MessageRef,
    Page,
    Profile,
    Role,
    SentMessage,
    Text,
)
from imbridge.models._build import prevalidated
from imbridge.models._validation import check_id, check_ids
from imbridge.models.content import Custom, Face, File, Image, Location, Sound, Video
from imbridge.providers.base import (
    BatchDraft,
    Direction,
    GroupSpec,
    GroupUpdate,
    HistoryQuery,
    OutgoingMessage,
    ProfileUpdate,
    Provider,
)

T = TypeVar("T")
Call = tuple[str, Flow[T]]

_ELEMENT_TYPES = (Text, Image, File, Sound, Video, Location, Face, Custom)
_CONTENT_TYPES = (str, *_ELEMENT_TYPES)
_NAMES = {operation: operation.value for operation in Operation}
ContentInput = str | Text | Image | File | Sound | Video | Location | Face | Custom
MAX_HISTORY_PAGE = 200
MAX_MUTE = timedelta(days=365 * 100)


class _KeySource:
    """Fresh idempotency keys: 96 random bits drawn once per process, then a counter.

    Unique within the process by the counter and across processes by the random part (drawn again in
    a forked child). Drawing random bytes for every send was a system call each time: 5% of the async
    send path's time in a profile.
    """

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(12).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"


_new_key = _KeySource()


def _seconds(value: timedelta | int | float, what: str) -> timedelta:
    duration = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if isinstance(value, bool) or duration <= timedelta(0):
        raise InvalidRequestError(f"{what} must be a positive duration, got {value!r}")
    return duration


def _text_element(text: str) -> Text:
    """The element for a non-empty ``str``, checked by the caller: built without pydantic validating it
    again, since nearly every send carries one."""
    if type(text) is not str:  # a subclass goes through the model, which decides what to keep of it
        return Text(text)
    return prevalidated(Text, {"type": "text", "text": text}, {"text"})


def _content(content: ContentInput | Sequence[ContentInput]) -> tuple[Any, ...]:
    if type(content) is str and content:  # most sends: one piece of text, without building a list for it
        return (_text_element(content),)
    if isinstance(content, _CONTENT_TYPES):
        items = [content]
    elif isinstance(content, Sequence) and not isinstance(content, bytes | bytearray):
        items = list(content)
    else:  # an int, a dict or bytes would otherwise fail deep inside with a TypeError, or send its keys
        raise InvalidRequestError(f"content must be text, an element or a list of them, not {type(content).__name__}")
    if not items:
        raise InvalidRequestError("a message needs at least one content element")
    elements: list[Any] = []
    for item in items:
        if isinstance(item, str):
            if not item:
                raise InvalidRequestError("empty text")
            elements.append(_text_element(item))
        elif isinstance(item, _ELEMENT_TYPES):
            elements.append(item)
        else:
            raise InvalidRequestError(f"not a content element: {type(item).__name__}")
    return tuple(elements)


def _text(value: str | None, what: str, *, max_bytes: int = 4096) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be a string")
    if len(value.encode()) > max_bytes:
        raise InvalidRequestError(f"{what} is longer than {max_bytes} bytes")
    return value


class Operations:
    """The neutral operations of one provider, validated and gated."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.capabilities = provider.capabilities
        self._unsupported = {op for op, cap in self.capabilities.items() if cap.support is Support.UNSUPPORTED}

    def _gate(self, operation: Operation) -> str:
        if operation in self._unsupported:
            capability = self.capabilities[operation]
            why = f": {capability.notes}" if capability.notes else ""
            raise UnsupportedOperationError(
                f"{operation.value} is not supported by {self.provider.name}{why}",
                provider=self.provider.name,
                operation=operation.value,
            )
        return _NAMES[operation]  # an Enum's .value is a descriptor call: measurable once per send

    # -- users --------------------------------------------------------------------------------

    def register(self, user_ids: Sequence[str]) -> Call[BatchResult]:
        operation = self._gate(Operation.USERS_REGISTER)
        return operation, self.provider.register_users(check_ids(user_ids, "user ids"))

    def get_profiles(self, user_ids: Sequence[str]) -> Call[list[Profile]]:
        operation = self._gate(Operation.USERS_GET_PROFILES)
        return operation, self.provider.get_profiles(check_ids(user_ids, "user ids"))

    def set_profile(
        self, user_id: str, *, nickname: str | None, avatar_url: str | None, gender: Gender | str | None,
        signature: str | None, custom: Mapping[str, str] | None,
    ) -> Call[None]:  # fmt: skip
        operation = self._gate(Operation.USERS_SET_PROFILE)
        custom = dict(custom or {})
        for key, value in custom.items():
            check_id(key, "custom profile key", max_bytes=32)
            _text(value, f"custom profile value {key!r}", max_bytes=500)
        try:
            gender_value = Gender(gender) if gender is not None else None
        except ValueError:
            raise InvalidRequestError(f"gender must be one of {[g.value for g in Gender]}, got {gender!r}") from None
        update = ProfileUpdate(
            nickname=_text(nickname, "nickname", max_bytes=500),
            avatar_url=_text(avatar_url, "avatar_url", max_bytes=500),
            gender=gender_value,
            signature=_text(signature, "signature", max_bytes=500),
            custom=custom,
        )
        if update == ProfileUpdate():
            raise InvalidRequestError("set_profile needs at least one field to change")
        return operation, self.provider.set_profile(check_id(user_id, "user id"), update)

    def login_credentials(self, user_id: str, ttl: timedelta | int) -> Call[LoginCredentials]:
        operation = self._gate(Operation.USERS_LOGIN_CREDENTIALS)
        return operation, self.provider.login_credentials(check_id(user_id, "user id"), _seconds(ttl, "ttl"))

    # -- messages -----------------------------------------------------------------------------

    def send(
        self, sender: str, to: Conversation, content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None, metadata: Mapping[str, Any] | None, options: Mapping[str, Any] | None,
        confirm: bool | None,
    ) -> Call[SentMessage]:  # fmt: skip
        operation = self._gate(Operation.MESSAGES_SEND)
        if not isinstance(to, Conversation):
            raise InvalidRequestError("to must be a Conversation (Conversation.user(...) or Conversation.group(...))")
        check_id(to.id, "conversation id")  # Conversation(...) built directly skips the factories' check
        message = OutgoingMessage(
            sender=check_id(sender, "sender"),
            to=to,
            elements=_content(content),
            # Fixed here, before the first attempt, so every retry carries the same dedupe key.
            idempotency_key=check_id(idempotency_key, "idempotency_key") if idempotency_key else _new_key(),
            metadata=dict(metadata) if metadata else EMPTY,
            options=dict(options) if options else EMPTY,
            confirm=confirm,
            key_from_caller=idempotency_key is not None,
        )
        return operation, self.provider.send_message(message)

    def send_batch(
        self, sender: str, recipients: Sequence[str], content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None, metadata: Mapping[str, Any] | None, options: Mapping[str, Any] | None,
    ) -> Call[BatchResult]:  # fmt: skip
        operation = self._gate(Operation.MESSAGES_SEND_BATCH)
        batch = BatchDraft(
            sender=check_id(sender, "sender"),
            recipients=tuple(check_ids(recipients, "recipients")),
            elements=_content(content),
            idempotency_key=check_id(idempotency_key, "idempotency_key") if idempotency_key else _new_key(),
            metadata=dict(metadata or {}),
            options=dict(options or {}),
        )
        return operation, self.provider.send_batch(batch)

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
        return operation, self.provider.revoke(parsed)

    # -- groups -------------------------------------------------------------------------------

    def create_group(
        self, *, name: str, owner: str, members: Sequence[str], admins: Sequence[str], group_id: str | None,
        introduction: str, notification: str, face_url: str,
    ) -> Call[Group]:  # fmt: skip
        operation = self._gate(Operation.GROUPS_CREATE)
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequestError("a group needs a non-empty name")
        owner = check_id(owner, "owner")
        member_ids = check_ids(members, "members", allow_empty=True)
        admin_ids = check_ids(admins, "admins", allow_empty=True)
        spec = GroupSpec(
            name=_text(name, "name", max_bytes=256) or "",
            owner=owner,
            members=tuple(uid for uid in member_ids if uid != owner and uid not in admin_ids),
            admins=tuple(uid for uid in admin_ids if uid != owner),
            group_id=check_id(group_id, "group id") if group_id is not None else None,
            introduction=_text(introduction, "introduction") or "",
            notification=_text(notification, "notification") or "",
            face_url=_text(face_url, "face_url") or "",
        )
        return operation, self.provider.create_group(spec)

    def get_group(self, group_id: str) -> Call[Group]:
        return self._gate(Operation.GROUPS_GET), self.provider.get_group(check_id(group_id, "group id"))

    def update_group(
        self,
        group_id: str,
        *,
        name: str | None,
        introduction: str | None,
        notification: str | None,
        face_url: str | None,
    ) -> Call[Group]:
        operation = self._gate(Operation.GROUPS_UPDATE)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidRequestError("a group name cannot be empty")
        update = GroupUpdate(
            name=_text(name, "name", max_bytes=256),
            introduction=_text(introduction, "introduction"),
            notification=_text(notification, "notification"),
            face_url=_text(face_url, "face_url"),
        )
        if update == GroupUpdate():
            raise InvalidRequestError("update needs at least one field to change")
        return operation, self.provider.update_group(check_id(group_id, "group id"), update)

    def dismiss_group(self, group_id: str) -> Call[None]:
        return self._gate(Operation.GROUPS_DISMISS), self.provider.dismiss_group(check_id(group_id, "group id"))

    def add_members(self, group_id: str, user_ids: Sequence[str], role: Role | str) -> Call[BatchResult]:
        operation = self._gate(Operation.GROUPS_ADD_MEMBERS)
        try:
            member_role = Role(role)
        except ValueError:
            raise InvalidRequestError(f"role must be 'admin' or 'member', got {role!r}") from None
        if member_role is Role.OWNER:
            raise InvalidRequestError("a group has one owner; add members as 'admin' or 'member'")
        ids = check_ids(user_ids, "user ids")
        return operation, self.provider.add_members(check_id(group_id, "group id"), ids, member_role)

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> Call[BatchResult]:
        operation = self._gate(Operation.GROUPS_REMOVE_MEMBERS)
        return operation, self.provider.remove_members(check_id(group_id, "group id"), check_ids(user_ids, "user ids"))

    def members(self, group_id: str) -> Call[list[Member]]:
        return self._gate(Operation.GROUPS_MEMBERS), self.provider.list_members(check_id(group_id, "group id"))

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | int) -> Call[None]:
        operation = self._gate(Operation.GROUPS_MUTE)
        length = _seconds(duration, "duration")
        if length > MAX_MUTE:
            raise InvalidRequestError(f"duration longer than {MAX_MUTE.days} days")
        return operation, self.provider.mute(check_id(group_id, "group id"), check_ids(user_ids, "user ids"), length)

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> Call[None]:
        operation = self._gate(Operation.GROUPS_UNMUTE)
        return operation, self.provider.unmute(check_id(group_id, "group id"), check_ids(user_ids, "user ids"))

    def mute_all(self, group_id: str, enabled: bool) -> Call[None]:
        operation = self._gate(Operation.GROUPS_MUTE_ALL)
        if not isinstance(enabled, bool):
            raise InvalidRequestError("enabled must be True or False")
        return operation, self.provider.mute_all(check_id(group_id, "group id"), enabled)

    def muted(self, group_id: str) -> Call[list[Member]]:
        return self._gate(Operation.GROUPS_MUTED), self.provider.muted(check_id(group_id, "group id"))
