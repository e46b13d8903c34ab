"""The embedded provider: every operation NATIVE on imbridge's store (SQLite or PostgreSQL); the reference semantics.

Rules it enforces, as the hosted providers do: senders and recipients must be registered; a group
send needs a member who is not muted (and, while the group is muted as a whole, the owner or an
admin); unknown groups, users and messages raise NotFoundError.
"""

from __future__ import annotations

from imbridge.capabilities import CapabilityMap, Operation, Support
from imbridge.providers.local._core import NAME
from imbridge.providers.local.conversations import LocalConversations
from imbridge.providers.local.groups import LocalGroups
from imbridge.providers.local.maintenance import LocalMaintenance
from imbridge.providers.local.messages import LocalMessages
from imbridge.providers.local.users import LocalUsers


class LocalProvider(LocalConversations, LocalUsers, LocalMessages, LocalGroups, LocalMaintenance):
    """The operations live by resource: ``users.py``, ``messages.py``, ``groups.py``, ``conversations.py``
    (conversation lists with exact unread counts, message lookup); what they share
    (the store, flows, the user and group checks) in ``_core.py``; the SQL in ``store.py``."""

    @property
    def capabilities(self) -> CapabilityMap:
        entries: dict[Operation, tuple[Support, str] | Support] = {operation: Support.NATIVE for operation in Operation}
        entries.update(_ADMIN_NOTES)
        entries.update(self._conversation_capabilities())
        return CapabilityMap(NAME, entries)


#: Member administration, join policy, presence and sessions, system messages, accounts (issue 17): native,
#: with what "native" means for a provider that has no client connections.
_ADMIN_NOTES: dict[Operation, tuple[Support, str] | Support] = {
    Operation.USERS_PRESENCE: (
        Support.NATIVE,
        "The local provider has no client connections: every registered user is reported offline.",
    ),
    Operation.USERS_KICK: (
        Support.NATIVE,
        "Ends every session of the user (device kinds are not told apart): login tokens issued before the kick are "
        "refused by authenticate; new ones work.",
    ),
    Operation.USERS_DELETE: (
        Support.NATIVE,
        "The account, its profile, memberships, name cards and mutes are deleted (its messages stay in history); a "
        "group it owned is left without an owner; its login tokens are refused.",
    ),
    Operation.MESSAGES_DELIVERY: (
        Support.NATIVE,
        "A message that is not persisted is checked like any send and stored nowhere (no client is connected to "
        "receive it; returned unconfirmed). unread / update_conversation are kept with a stored message for "
        "conversation lists and unread counts.",
    ),
    Operation.GROUPS_JOIN_POLICY: (
        Support.NATIVE,
        "Kept with the group; max_members is enforced on add_members (all or nothing); join_option is for the app's "
        "own join flow (adding members is never held up).",
    ),
    Operation.GROUPS_NOTIFY: (
        Support.NATIVE,
        "Checked (group, recipients are members) and delivered to nobody: the local provider has no clients.",
    ),
}
