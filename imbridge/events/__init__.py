"""Inbound events: one event model for Tencent callbacks, WuKongIM webhooks and the local provider.

    from imbridge.events import EventReceiver, MessageCreated

    receiver = EventReceiver.from_env()          # IMBRIDGE_PROVIDER + its token/secret + IMBRIDGE_EVENTS_*

    @receiver.on(MessageCreated)
    def index(event: MessageCreated) -> None:
        search.add(str(event.ref), event.message)

    app = receiver.asgi                          # any ASGI server, or mounted in FastAPI/Starlette

``docs/events.md`` describes the model, each vendor's mapping with sources, authenticity, deduplication
and before-send decisions per provider.
"""

from imbridge.events.base import EventSupport, InboundRequest, Reply
from imbridge.events.dedupe import DedupeStore, MemoryDedupeStore
from imbridge.events.models import (
    Allow,
    BaseEvent,
    Decision,
    DeviceKind,
    Event,
    GroupCreated,
    GroupDismissed,
    GroupUpdated,
    MemberJoined,
    MemberLeft,
    MessageCreated,
    MessageRevoked,
    MessageSending,
    ProfileUpdated,
    RecipientsOffline,
    Refuse,
    Rewrite,
    UnknownEvent,
    UserOffline,
    UserOnline,
)
from imbridge.events.receiver import EventReceiver

__all__ = [
    "Allow",
    "BaseEvent",
    "Decision",
    "DedupeStore",
    "DeviceKind",
    "Event",
    "EventReceiver",
    "EventSupport",
    "GroupCreated",
    "GroupDismissed",
    "GroupUpdated",
    "InboundRequest",
    "MemberJoined",
    "MemberLeft",
    "MemoryDedupeStore",
    "MessageCreated",
    "MessageRevoked",
    "MessageSending",
    "ProfileUpdated",
    "RecipientsOffline",
    "Refuse",
    "Reply",
    "Rewrite",
    "UnknownEvent",
    "UserOffline",
    "UserOnline",
]
