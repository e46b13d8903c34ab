"""Events of the embedded provider: signed deliveries in imbridge's own format, and their inbound adapter.

The local provider has no server to send webhooks, so it delivers its events itself, in process: after
each write it hands every attached sink a request shaped like a webhook (``POST``, a JSON body
``{"events": [...]}``, the neutral events as JSON), signed with HMAC-SHA256 over
``"<timestamp>." + body`` in ``X-IMBridge-Signature: v1=<hex>`` with ``X-IMBridge-Timestamp``. A receiver
verifies it like any vendor's webhook, so the same checks (forged, stale, duplicate) apply to every
provider. Sinks see only the writes of their own process.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from imbridge._inbound import Limits, forged, load_json, malformed
from imbridge.capabilities import Support
from imbridge.errors import ConfigurationError, IMBridgeError
from imbridge.events.base import Delivery, EventSupport, InboundRequest, Reply
from imbridge.events.models import (
    Decision,
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
)

__all__ = [
    "EventPublisher",
    "GroupCreated",
    "GroupDismissed",
    "GroupUpdated",
    "LocalInbound",
    "MemberJoined",
    "MemberLeft",
    "MessageCreated",
    "MessageRevoked",
    "ProfileUpdated",
]  # fmt: skip

NAME = "local"
TIMESTAMP_HEADER = "x-imbridge-timestamp"
SIGNATURE_HEADER = "x-imbridge-signature"
PATH = "/imbridge/events"
MIN_SECRET_LENGTH = 16
DEFAULT_MAX_AGE = 300.0

_EVENTS: TypeAdapter[list[Event]] = TypeAdapter(list[Event])
_log = logging.getLogger("imbridge.events")

SUPPORT: dict[str, EventSupport] = {
    **{
        kind: EventSupport(Support.NATIVE, "delivered in process, after the write, to attached receivers")
        for kind in (
            "message.created", "message.revoked", "member.joined", "member.left", "group.created",
            "group.dismissed", "group.updated", "profile.updated",
        )
    },
    "user.online": EventSupport(Support.UNSUPPORTED, "the local provider has no client connections"),
    "user.offline": EventSupport(Support.UNSUPPORTED, "the local provider has no client connections"),
    "message.recipients_offline": EventSupport(Support.UNSUPPORTED, "the local provider has no client connections"),
    "before_send": EventSupport(
        Support.EMULATED,
        "IMClient(before_send=policy) applies the policy to each messages.send, before it is stored "
        "(send_batch is not asked, as Tencent's batchsendmsg is not)",
    ),
}  # fmt: skip

Sink = Callable[[InboundRequest], Any]
"""Where a delivery goes: typically ``EventReceiver.deliver`` (it answers; the answer is not used)."""


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "v1=" + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _check_secret(secret: str) -> bytes:
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise ConfigurationError(f"the local events secret must be at least {MIN_SECRET_LENGTH} characters")
    return secret.encode()


class EventPublisher:
    """The local provider's outgoing side: signs each batch of events and hands it to every sink."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._sinks: list[tuple[Sink, bytes]] = []
        self._lock = threading.Lock()

    def attach(self, sink: Sink, secret: str) -> None:
        key = _check_secret(secret)
        with self._lock:
            self._sinks.append((sink, key))

    def detach(self, sink: Sink) -> None:
        with self._lock:
            self._sinks = [(s, k) for s, k in self._sinks if s is not sink]

    @property
    def active(self) -> bool:
        return bool(self._sinks)

    def publish(self, events: Sequence[Event]) -> None:
        """Deliver ``events`` to every sink now (after the write that caused them has committed)."""
        if not events or not self._sinks:
            return
        body = orjson.dumps({"events": [event.model_dump(mode="json") for event in events]})
        timestamp = int(self._clock())
        for sink, key in list(self._sinks):
            request = InboundRequest(
                method="POST", path=PATH, query={}, body=body,
                headers={"content-type": "application/json", TIMESTAMP_HEADER: str(timestamp),
                         SIGNATURE_HEADER: sign(key, timestamp, body)},
            )  # fmt: skip
            try:
                sink(request)
            except Exception:  # a sink's failure must not fail the write that already happened
                _log.exception("an event sink of the local provider failed")


class LocalInbound:
    """Verifies (HMAC signature, freshness) and parses the local provider's deliveries."""

    provider = NAME
    support = SUPPORT

    def __init__(self, *, secret: str | None, max_age: float = DEFAULT_MAX_AGE,
                 insecure_skip_verification: bool = False) -> None:  # fmt: skip
        if secret is None and not insecure_skip_verification:
            raise ConfigurationError(
                "no local events secret (IMBRIDGE_LOCAL_EVENTS_SECRET): set one, or insecure_skip_verification=True"
            )
        self._secret = _check_secret(secret) if secret is not None else None
        self._max_age = max_age

    @property
    def secret(self) -> str | None:
        return self._secret.decode() if self._secret is not None else None

    def verify(self, request: InboundRequest, now: float) -> None:
        if request.method.upper() != "POST":
            raise forged("method", "events are POSTed", provider=NAME, status=405)
        if self._secret is None:
            return
        stamp, signature = request.header(TIMESTAMP_HEADER), request.header(SIGNATURE_HEADER)
        if not stamp or not signature:
            raise forged("unsigned", "delivery is not signed", provider=NAME)
        if not (len(stamp) <= 12 and stamp.isascii() and stamp.isdigit()):
            raise forged("bad_timestamp", "delivery timestamp is not a Unix time", provider=NAME)
        if abs(now - int(stamp)) > self._max_age:
            raise forged("stale", "delivery timestamp is outside the accepted window", provider=NAME)
        expected = sign(self._secret, int(stamp), request.body).encode()
        if not hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace")):
            raise forged("bad_sign", "delivery signature does not match", provider=NAME)

    def parse(self, request: InboundRequest, received_at: datetime, limits: Limits) -> Delivery:
        data = load_json(request.body, limits, provider=NAME)
        items = data.get("events") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise malformed("malformed", "delivery has no events array", provider=NAME)
        try:
            events = _EVENTS.validate_python(items)
        except ValidationError as exc:
            raise malformed("malformed", f"{exc.error_count()} invalid event field(s)", provider=NAME) from None
        # Each event is stamped with this receiver's time, as a vendor's would be.
        return Delivery(events=tuple(event.model_copy(update={"received_at": received_at}) for event in events))

    def acknowledge(self) -> Reply:
        return Reply(200, b'{"ok":true}')

    def answer(self, pending: MessageSending, decision: Decision) -> Reply:  # pragma: no cover - never asked
        raise AssertionError("the local provider asks its policy in process, not by delivery")

    def refuse(self, error: IMBridgeError, status: int) -> Reply:
        return Reply(status, orjson.dumps({"ok": False, "error": error.message[:200]}))
