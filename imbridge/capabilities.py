"""What each provider can do, declared up front rather than discovered by failing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Support(StrEnum):
    """How a provider supports a neutral operation."""

    NATIVE = "native"
    """The provider's own API does it."""
    EMULATED = "emulated"
    """imbridge builds it from other calls or its own store; the notes say how."""
    PARTIAL = "partial"
    """It works with stated limits (the notes say which)."""
    UNSUPPORTED = "unsupported"
    """Calling it raises UnsupportedOperationError before any request."""


class Operation(StrEnum):
    """Every neutral operation, named as ``resource.method``."""

    USERS_REGISTER = "users.register"
    USERS_GET_PROFILES = "users.get_profiles"
    USERS_SET_PROFILE = "users.set_profile"
    USERS_LOGIN_CREDENTIALS = "users.login_credentials"
    MESSAGES_SEND = "messages.send"
    MESSAGES_SEND_BATCH = "messages.send_batch"
    MESSAGES_HISTORY = "messages.history"
    MESSAGES_REVOKE = "messages.revoke"
    GROUPS_CREATE = "groups.create"
    GROUPS_GET = "groups.get"
    GROUPS_UPDATE = "groups.update"
    GROUPS_DISMISS = "groups.dismiss"
    GROUPS_ADD_MEMBERS = "groups.add_members"
    GROUPS_REMOVE_MEMBERS = "groups.remove_members"
    GROUPS_MEMBERS = "groups.members"
    GROUPS_MUTE = "groups.mute"
    GROUPS_UNMUTE = "groups.unmute"
    GROUPS_MUTE_ALL = "groups.mute_all"
    GROUPS_MUTED = "groups.muted"
    # due work on the server (issue 15)
    MAINTENANCE_RUN_DUE = "maintenance.run_due"
    # -- member administration, join policy, presence and sessions, system messages, accounts (issue 17)
    USERS_PRESENCE = "users.presence"
    USERS_KICK = "users.kick"
    USERS_EXISTS = "users.exists"
    USERS_DELETE = "users.delete"
    MESSAGES_DELIVERY = "messages.delivery"
    GROUPS_SET_ROLE = "groups.set_role"
    GROUPS_TRANSFER_OWNER = "groups.transfer_owner"
    GROUPS_SET_NAME_CARD = "groups.set_name_card"
    GROUPS_JOIN_POLICY = "groups.join_policy"
    GROUPS_JOINED = "groups.joined"
    GROUPS_LIST = "groups.list"
    GROUPS_NOTIFY = "groups.notify"

    # Conversations and message lookup (issue 16): each user's conversation list with unread counts.
    CONVERSATIONS_LIST = "conversations.list"
    CONVERSATIONS_DELETE = "conversations.delete"
    CONVERSATIONS_MARK_READ = "conversations.mark_read"
    CONVERSATIONS_SET_UNREAD = "conversations.set_unread"
    MESSAGES_GET = "messages.get"
    MESSAGES_GET_MANY = "messages.get_many"


class Capability(BaseModel):
    """One operation's level of support on one provider."""

    model_config = ConfigDict(frozen=True)

    operation: Operation
    support: Support
    notes: str = ""

    @property
    def available(self) -> bool:
        """True unless the operation is UNSUPPORTED."""
        return self.support is not Support.UNSUPPORTED


class CapabilityMap(Mapping[Operation, Capability]):
    """Operation -> Capability for one provider. Every operation has an entry."""

    def __init__(self, provider: str, entries: Mapping[Operation, tuple[Support, str] | Support]) -> None:
        missing = set(Operation) - set(entries)
        if missing:
            names = ", ".join(sorted(op.value for op in missing))
            raise ValueError(f"capability map of {provider!r} lacks {names}")
        self.provider = provider
        self._entries: dict[Operation, Capability] = {}
        for operation, declared in entries.items():
            support, notes = (declared, "") if isinstance(declared, Support) else declared
            self._entries[operation] = Capability(operation=operation, support=support, notes=notes)

    def __getitem__(self, operation: Operation | str) -> Capability:
        return self._entries[Operation(operation)]

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def replace(self, operation: Operation, support: Support, notes: str = "") -> CapabilityMap:
        """A copy with one entry changed (a provider's settings can narrow what it supports)."""
        entries: dict[Operation, tuple[Support, str] | Support] = {
            op: (cap.support, cap.notes) for op, cap in self._entries.items()
        }
        entries[operation] = (support, notes)
        return CapabilityMap(self.provider, entries)

    def as_table(self) -> list[dict[str, str]]:
        """Rows for printing: operation, support, notes."""
        return [
            {"operation": op.value, "support": cap.support.value, "notes": cap.notes}
            for op, cap in self._entries.items()
        ]

    def __repr__(self) -> str:
        summary = ", ".join(f"{op.value}={cap.support.value}" for op, cap in self._entries.items())
        return f"CapabilityMap({self.provider!r}: {summary})"
