"""An app's inbound side, written once against imbridge.events and run unchanged on every provider's
events (Tencent's official examples and emulator, WuKongIM's real-server recordings and emulator, local)."""

from __future__ import annotations

from collections import defaultdict

from imbridge.events import (
    EventReceiver,
    MemberJoined,
    MemberLeft,
    MessageCreated,
    MessageRevoked,
    UserOffline,
    UserOnline,
)
from imbridge.models import Text


class ChatIndex:
    """What a search index / presence board of an app keeps: messages by ref, revocations, members, who is on."""

    def __init__(self, receiver: EventReceiver) -> None:
        self.messages: dict[str, str] = {}
        self.created_count: dict[str, int] = defaultdict(int)
        self.revoked: list[MessageRevoked] = []
        self.members: dict[str, set[str]] = defaultdict(set)
        self.left: dict[str, set[str]] = defaultdict(set)
        self.online: dict[str, int] = defaultdict(int)
        receiver.on(MessageCreated)(self.on_created)
        receiver.on(MessageRevoked)(self.revoked.append)
        receiver.on(MemberJoined, MemberLeft)(self.on_membership)
        receiver.on(UserOnline, UserOffline)(self.on_presence)

    def on_created(self, event: MessageCreated) -> None:
        key = str(event.ref)
        self.created_count[key] += 1
        first = event.message.elements[0] if event.message.elements else None
        self.messages[key] = first.text if isinstance(first, Text) else first.type if first else ""

    def on_membership(self, event: MemberJoined | MemberLeft) -> None:
        if isinstance(event, MemberJoined):
            self.members[event.group_id].add(event.user_id)
        else:
            self.members[event.group_id].discard(event.user_id)
            self.left[event.group_id].add(event.user_id)

    def on_presence(self, event: UserOnline | UserOffline) -> None:
        self.online[event.user_id] += 1 if isinstance(event, UserOnline) else -1

    def text_of(self, ref: object) -> str | None:
        return self.messages.get(str(ref))

    def was_revoked(self, ref: object) -> bool:
        from imbridge.models import MessageRef

        target = ref if isinstance(ref, MessageRef) else MessageRef.parse(str(ref))
        return any(event.refers_to(target) for event in self.revoked)
