"""What a receiver and a provider's inbound adapter exchange: the request, the parsed delivery, the reply.

An adapter (``imbridge.providers.<name>.events``) knows one vendor: how its requests prove where they come
from, how its payloads map onto the neutral events, and how it wants to be answered. It does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from imbridge._inbound import Limits
from imbridge.capabilities import Support
from imbridge.errors import IMBridgeError
from imbridge.events.models import BaseEvent, Decision, Event, MessageSending

__all__ = ["Delivery", "EventSupport", "InboundAdapter", "InboundRequest", "Reply"]

JSON = {"content-type": "application/json"}


# Not frozen (a frozen dataclass costs four times as much to build, and these are built on every request):
# treat them as read-only.


@dataclass(slots=True)
class InboundRequest:
    """One HTTP request as any web framework can describe it. Header names are matched case-insensitively.
    Treat it as read-only."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    client: str | None = None
    """The peer's address (for source allowlists), when the framework gives it."""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(slots=True)
class Reply:
    """What to answer the vendor: status, headers and body, plus what happened (for logs and tests).
    Treat it as read-only."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=lambda: JSON)
    handled: tuple[BaseEvent, ...] = ()
    """The events handed to the app's handlers by this request."""
    duplicates: int = 0
    """Events of this request already handled earlier (a re-delivery): answered, not handed on."""
    refusal: IMBridgeError | None = None
    """Why the request was refused (forged, stale, malformed...), when it was."""
    error: BaseException | None = None
    """What an app handler raised (the vendor is answered with a failure so that it may retry)."""
    decision: Decision | None = None
    """The before-send decision this reply carries."""


@dataclass(slots=True)
class Delivery:
    """One verified request, parsed: its events, or a before-send question."""

    events: tuple[Event, ...] = ()
    pending: MessageSending | None = None


@dataclass(frozen=True, slots=True)
class EventSupport:
    """How a provider reports one neutral event kind (the events' own capability map)."""

    support: Support
    notes: str = ""


class InboundAdapter(Protocol):
    """One vendor's inbound side, without I/O."""

    provider: str

    @property
    def support(self) -> Mapping[str, EventSupport]:
        """Neutral event kind (``message.created``...) and ``before_send`` -> how this provider delivers it."""
        ...

    def verify(self, request: InboundRequest, now: float) -> None:
        """Raise an imbridge error (AuthenticationError, PermissionDeniedError) unless ``request`` provably
        comes from the vendor."""
        ...

    def parse(self, request: InboundRequest, received_at: datetime, limits: Limits) -> Delivery:
        """The request's events (InvalidRequestError when it is not what the vendor sends)."""
        ...

    def acknowledge(self) -> Reply:
        """The answer to a request whose events were all handled (or already had been)."""
        ...

    def answer(self, pending: MessageSending, decision: Decision) -> Reply:
        """The vendor's answer carrying a before-send decision."""
        ...

    def refuse(self, error: IMBridgeError, status: int) -> Reply:
        """The answer to a refused request, or (status 500) to one whose handler failed."""
        ...
