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
        entries.update(self._conversation_capabilities())
        return CapabilityMap(NAME, entries)
