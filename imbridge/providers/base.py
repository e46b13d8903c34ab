"""What a provider declares: settings, capabilities, operation flows, error classifier, auth.

A provider never performs I/O, never retries and never imports an HTTP client: each operation returns
a flow (see ``imbridge._flow``) that the executor drives.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from imbridge._clock import Clock, SystemClock
from imbridge._flow import Flow, HTTPRequest, Request, Response
from imbridge._masking import mask_url
from imbridge._nodes import NodePool
from imbridge._pacing import Rate
from imbridge.capabilities import CapabilityMap, Operation
from imbridge.errors import UnsupportedOperationError
from imbridge.models import (
    BatchResult,
    Conversation,
    ConversationSummary,
    Delivery,
    DeviceKind,
    Element,
    Gender,
    Group,
    JoinedGroup,
    JoinOption,
    LoginCredentials,
    Member,
    Message,
    MessageRef,
    Page,
    Presence,
    Profile,
    Role,
    SentMessage,
)
from imbridge.models.health import Health
from imbridge.models.maintenance import MaintenanceReport


class _OwnFieldsOnly(PydanticBaseSettingsSource):
    """A ``.env`` source reduced to the settings class's own fields.

    One ``.env`` file is shared by ``IMBRIDGE_PROVIDER``, every provider's settings and the app's own
    variables; with ``extra="forbid"`` pydantic-settings would reject each of those as an extra. Keyword
    settings (``IMClient("local", bogus=...)``) are still checked strictly.
    """

    def __init__(self, inner: PydanticBaseSettingsSource) -> None:
        super().__init__(inner.settings_cls)
        self._inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ delegates to the wrapped source

    def __call__(self) -> dict[str, Any]:
        fields = self.settings_cls.model_fields
        return {name: value for name, value in self._inner().items() if name in fields}


class ProviderSettings(BaseSettings):
    """Base of the flat per-provider settings classes (``IMBRIDGE_<PROVIDER>_*``; ``.env`` honoured)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="forbid", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _OwnFieldsOnly(dotenv_settings), file_secret_settings

    def masked(self) -> dict[str, Any]:
        """The settings in effect, every secret replaced by ``'**********'`` and the password of a URL
        (``postgresql://user:password@host/db``) by ``***`` (for ``doctor`` and logs)."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            shown[name] = (
                "**********"
                if isinstance(value, SecretStr) and value.get_secret_value()
                else ("" if isinstance(value, SecretStr) else mask_url(value) if isinstance(value, str) else value)
            )
        return shown

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if isinstance(value, str) else value


class Direction(StrEnum):
    """Which way history is read. BACKWARD starts at the newest message; FORWARD at the oldest."""

    BACKWARD = "backward"
    FORWARD = "forward"


@dataclass(slots=True)
class OutgoingMessage:
    """A validated send. ``idempotency_key`` is fixed before the first attempt; providers derive their
    dedupe fields (Tencent MsgRandom/Random, WuKongIM client_msg_no) from it. Treat it as read-only (it
    is not frozen only because a frozen dataclass costs five times as much to build, once per send)."""

    sender: str
    to: Conversation
    elements: tuple[Element, ...]
    idempotency_key: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    confirm: bool | None = None
    #: True when the caller chose ``idempotency_key`` (a retry of its own): providers whose server does not
    #: deduplicate look it up before sending.
    key_from_caller: bool = False
    #: None for an ordinary message; set only when the caller asked for other delivery.
    delivery: Delivery | None = None


@dataclass(frozen=True, slots=True)
class BatchDraft:
    """A validated one-to-one send to many recipients."""

    sender: str
    recipients: tuple[str, ...]
    elements: tuple[Element, ...]
    idempotency_key: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    delivery: Delivery | None = None


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    conversation: Conversation
    viewer: str
    limit: int
    cursor: str | None = None
    direction: Direction = Direction.BACKWARD


@dataclass(frozen=True, slots=True)
class ConversationQuery:
    """One page of a user's conversation list: newest activity first."""

    user: str
    limit: int
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileUpdate:
    """Fields to change; None leaves a field as it is. ``custom`` keys are merged in."""

    nickname: str | None = None
    avatar_url: str | None = None
    gender: Gender | None = None
    signature: str | None = None
    custom: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    owner: str
    members: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    group_id: str | None = None
    introduction: str = ""
    notification: str = ""
    face_url: str = ""
    join_option: JoinOption | None = None
    max_members: int | None = None


@dataclass(frozen=True, slots=True)
class GroupUpdate:
    """Fields to change; None leaves a field as it is."""

    name: str | None = None
    introduction: str | None = None
    notification: str | None = None
    face_url: str | None = None
    join_option: JoinOption | None = None
    max_members: int | None = None

    @property
    def profile_fields(self) -> dict[str, str]:
        """The profile fields to change (not the join policy), by name."""
        fields = (("name", self.name), ("introduction", self.introduction), ("notification", self.notification),
                  ("face_url", self.face_url))  # fmt: skip
        return {name: value for name, value in fields if value is not None}


def _unsupported(provider: Provider, operation: Operation) -> UnsupportedOperationError:
    return UnsupportedOperationError(
        f"{operation.value} is not supported by {provider.name}", provider=provider.name, operation=operation.value
    )


class Provider:
    """Base class of providers. Subclasses set ``name``, ``settings_class`` and ``capabilities`` and
    implement the operations their map does not declare UNSUPPORTED."""

    name: ClassVar[str]
    settings_class: ClassVar[type[ProviderSettings]]
    #: False for providers that do no HTTP at all (``local``): the client then builds no HTTP pool.
    uses_http: ClassVar[bool] = True
    #: True when the vendor's server asks the app before delivering every message (Tencent's before-send
    #: callbacks, answered by ``EventReceiver.on_before_send``): a client's ``before_send`` is then not applied.
    asks_app_before_send: ClassVar[bool] = False
    #: The nodes of a cluster the executor spreads requests over (None: one server, the URL ``to_http`` builds).
    nodes: NodePool | None = None

    def __init__(self, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()

    @property
    def capabilities(self) -> CapabilityMap:
        raise NotImplementedError

    # -- transport hooks, used by the executor -------------------------------------------------

    def to_http(self, request: Request) -> HTTPRequest:
        """Apply base URL and credentials. Called for every attempt, so renewed credentials apply."""
        raise NotImplementedError(f"{self.name} does not speak HTTP")

    def decode(self, request: Request, response: Response) -> Any:
        """The reply's payload, or the mapped imbridge error raised."""
        raise NotImplementedError(f"{self.name} does not speak HTTP")

    def rate_for(self, request: Request) -> Rate | None:
        """The client-side pace for this request's API, or None for no pacing."""
        return None

    def renew_credentials(self) -> None:
        """Drop cached credentials so the next request signs anew (after an 'expired' answer)."""

    def close(self) -> None:
        """Release what the provider holds (database connections)."""

    def describe(self) -> dict[str, Any]:
        """Settings in effect with secrets masked."""
        return {"provider": self.name, **self.settings.masked()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings!r})"

    # -- operations: each returns a flow. Defaults refuse; the capability map gates calls first. --
    # Grouped by resource, like the modules of imbridge/resources/ and of each provider package.

    # users
    def register_users(self, user_ids: Sequence[str]) -> Flow[BatchResult]:
        raise _unsupported(self, Operation.USERS_REGISTER)

    def get_profiles(self, user_ids: Sequence[str]) -> Flow[list[Profile]]:
        raise _unsupported(self, Operation.USERS_GET_PROFILES)

    def set_profile(self, user_id: str, update: ProfileUpdate) -> Flow[None]:
        raise _unsupported(self, Operation.USERS_SET_PROFILE)

    def login_credentials(
        self, user_id: str, ttl: timedelta, device: DeviceKind | None = None
    ) -> Flow[LoginCredentials]:
        """Credentials for a client of kind ``device`` (None: the provider's default kind)."""
        raise _unsupported(self, Operation.USERS_LOGIN_CREDENTIALS)

    # messages
    def send_message(self, message: OutgoingMessage) -> Flow[SentMessage]:
        raise _unsupported(self, Operation.MESSAGES_SEND)

    def send_batch(self, batch: BatchDraft) -> Flow[BatchResult]:
        raise _unsupported(self, Operation.MESSAGES_SEND_BATCH)

    def find_sent(self, sender: str, to: Conversation, idempotency_key: str) -> Flow[Message | None]:
        """The message ``sender`` sent to ``to`` with this idempotency key, or None if it is not stored (yet):
        how an app reconciles a send that failed with MessageMayHaveLandedError."""
        raise _unsupported(self, Operation.MESSAGES_SEND)

    def history(self, query: HistoryQuery) -> Flow[Page[Message]]:
        raise _unsupported(self, Operation.MESSAGES_HISTORY)

    def revoke(self, ref: MessageRef) -> Flow[None]:
        raise _unsupported(self, Operation.MESSAGES_REVOKE)

    # groups
    def create_group(self, spec: GroupSpec) -> Flow[Group]:
        raise _unsupported(self, Operation.GROUPS_CREATE)

    def get_group(self, group_id: str) -> Flow[Group]:
        raise _unsupported(self, Operation.GROUPS_GET)

    def update_group(self, group_id: str, update: GroupUpdate) -> Flow[Group]:
        raise _unsupported(self, Operation.GROUPS_UPDATE)

    def dismiss_group(self, group_id: str) -> Flow[None]:
        raise _unsupported(self, Operation.GROUPS_DISMISS)

    def add_members(self, group_id: str, user_ids: Sequence[str], role: Role) -> Flow[BatchResult]:
        raise _unsupported(self, Operation.GROUPS_ADD_MEMBERS)

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> Flow[BatchResult]:
        raise _unsupported(self, Operation.GROUPS_REMOVE_MEMBERS)

    def list_members(self, group_id: str) -> Flow[list[Member]]:
        raise _unsupported(self, Operation.GROUPS_MEMBERS)

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | None) -> Flow[None]:
        """Mute for ``duration``, or until unmuted when it is None."""
        raise _unsupported(self, Operation.GROUPS_MUTE)

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        raise _unsupported(self, Operation.GROUPS_UNMUTE)

    def mute_all(self, group_id: str, enabled: bool) -> Flow[None]:
        raise _unsupported(self, Operation.GROUPS_MUTE_ALL)

    def muted(self, group_id: str) -> Flow[list[Member]]:
        raise _unsupported(self, Operation.GROUPS_MUTED)

    # maintenance
    def run_due(self, worker: str, lease: timedelta) -> Flow[MaintenanceReport]:
        """Do the work that has fallen due on the server, as ``worker``; where instances share a store, under
        its lease for ``lease`` (renewed while the run lasts), so one instance does it at a time."""
        raise _unsupported(self, Operation.MAINTENANCE_RUN_DUE)
    # -- member administration, join policy, presence and sessions, system messages, accounts (issue 17)

    # users
    def presence(self, user_ids: Sequence[str]) -> Flow[list[Presence]]:
        raise _unsupported(self, Operation.USERS_PRESENCE)

    def kick(self, user_id: str, device: DeviceKind | None) -> Flow[None]:
        """End the user's sessions on ``device`` (every device when None)."""
        raise _unsupported(self, Operation.USERS_KICK)

    def users_exist(self, user_ids: Sequence[str]) -> Flow[dict[str, bool]]:
        raise _unsupported(self, Operation.USERS_EXISTS)

    def delete_users(self, user_ids: Sequence[str]) -> Flow[BatchResult]:
        raise _unsupported(self, Operation.USERS_DELETE)

    # groups
    def set_role(self, group_id: str, user_id: str, role: Role) -> Flow[None]:
        """Make a member an admin or a plain member (the owner changes only by transfer_owner)."""
        raise _unsupported(self, Operation.GROUPS_SET_ROLE)

    def transfer_owner(self, group_id: str, user_id: str) -> Flow[None]:
        """Make a member the owner; the previous owner stays as a plain member."""
        raise _unsupported(self, Operation.GROUPS_TRANSFER_OWNER)

    def set_name_card(self, group_id: str, user_id: str, name_card: str) -> Flow[None]:
        raise _unsupported(self, Operation.GROUPS_SET_NAME_CARD)

    def joined_groups(self, user_id: str) -> Flow[list[JoinedGroup]]:
        raise _unsupported(self, Operation.GROUPS_JOINED)

    def list_groups(self, limit: int, cursor: str | None) -> Flow[Page[Group]]:
        raise _unsupported(self, Operation.GROUPS_LIST)

    def notify_group(self, group_id: str, text: str, to: Sequence[str] | None) -> Flow[None]:
        """A group system notification from no member: to every member, or to ``to``."""
        raise _unsupported(self, Operation.GROUPS_NOTIFY)

    # conversations and message lookup (issue 16)
    def list_conversations(self, query: ConversationQuery) -> Flow[Page[ConversationSummary]]:
        raise _unsupported(self, Operation.CONVERSATIONS_LIST)

    def delete_conversation(self, user_id: str, conversation: Conversation) -> Flow[None]:
        raise _unsupported(self, Operation.CONVERSATIONS_DELETE)

    def mark_read(self, user_id: str, conversation: Conversation) -> Flow[None]:
        raise _unsupported(self, Operation.CONVERSATIONS_MARK_READ)

    def set_unread(self, user_id: str, conversation: Conversation, count: int) -> Flow[None]:
        raise _unsupported(self, Operation.CONVERSATIONS_SET_UNREAD)

    def get_message(self, ref: MessageRef) -> Flow[Message]:
        raise _unsupported(self, Operation.MESSAGES_GET)

    def get_messages(self, refs: Sequence[MessageRef]) -> Flow[list[Message | None]]:
        raise _unsupported(self, Operation.MESSAGES_GET_MANY)

    def new_group_id(self) -> str:
        """The id of a group created without one, where the provider (not its server) picks ids."""
        return f"grp_{secrets.token_hex(8)}"

    def authenticate(self, token: str) -> str:
        """The user that login credentials issued by this provider belong to; AuthenticationError if they
        are forged, foreign or expired. Lets an app (and the contract suite) check a login token."""
        raise UnsupportedOperationError(f"{self.name} cannot check login tokens", provider=self.name)

    def health(self) -> Flow[Health]:
        """One cheap authenticated call to the server, described as a ``Health`` (see ``imbridge._health``);
        raises nothing for what a network or server can do. A provider without a check says so."""
        raise UnsupportedOperationError(f"{self.name} has no health check", provider=self.name, operation="health")

    def call(self, *args: Any, **kwargs: Any) -> Flow[Any]:
        """The escape hatch: a raw API call with the provider's auth, pacing and error mapping."""
        raise UnsupportedOperationError(f"{self.name} has no raw call", provider=self.name, operation="provider.call")


__all__ = [
    "BatchDraft",
    "ConversationQuery",
    "Direction",
    "GroupSpec",
    "GroupUpdate",
    "HistoryQuery",
    "OutgoingMessage",
    "ProfileUpdate",
    "Provider",
    "ProviderSettings",
    "Rate",
]
