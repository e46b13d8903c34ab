"""Typed WuKongIM v2.2.5 webhook events: ``msg.notify``, ``msg.offline``, ``user.onlinestatus``.

WuKongIM POSTs ``{webhook.httpAddr}?event=<name>`` with a JSON body (``internal/webhook/webhook.go``)
and expects HTTP 200. Shapes, from the server source at the tag:

* ``msg.notify``: a JSON **array** of ``MessageResp`` (every stored message; batched up to 100 per
  POST every 500 ms, retried up to 5 times, then dropped);
* ``msg.offline``: one object, ``MessageResp`` flattened plus ``to_uids`` (or, when ``compress`` is
  ``"gzip"``, ``compress_to_uids``: base64 of the gzipped JSON uid array) and ``source_id``;
* ``user.onlinestatus``: a JSON array of strings ``"<uid>-<deviceFlag>-<online>-<connId>-
  <deviceOnlineCount>-<totalOnlineCount>"`` (a uid may itself contain ``-``: parse from the right).

**WuKongIM signs nothing.** There is no signature, timestamp or shared secret on these requests, so
anyone who can reach the endpoint can forge events. Protect it by network position, not by checking
the request: put an unguessable secret in the path (``webhook.httpAddr:
http://127.0.0.1:8099/wk/<random>``) and compare it in constant time; listen on loopback or a private
interface only, or allowlist the WuKongIM node addresses; or put the endpoint behind a reverse proxy
that adds authentication (mTLS, basic auth) on the WuKongIM side. Treat events as hints and re-read
anything security-relevant (history, membership) through the API.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imbridge._inbound import Limits, gunzip_base64, load_json, malformed
from imbridge.errors import InvalidRequestError
from imbridge.models._build import prevalidated
from imbridge.models.content import Element
from imbridge.providers.wukong import mapping, wire

MSG_NOTIFY = "msg.notify"
MSG_OFFLINE = "msg.offline"
ONLINE_STATUS = "user.onlinestatus"


class WebhookMessage(wire.MessageResp):
    """One message as a webhook carries it (WuKongIM's ``MessageResp``)."""

    @property
    def sender(self) -> str:
        return self.from_uid or wire.SYSTEM_UID

    @property
    def elements(self) -> list[Element]:
        """The content, decoded with imbridge's payload convention."""
        return mapping.payload_to_elements(mapping.decode_payload(self.payload), self.payload)

    @property
    def metadata(self) -> dict[str, Any]:
        return mapping.payload_metadata(mapping.decode_payload(self.payload))

    @property
    def revokes(self) -> str | None:
        """The message id this message revokes, when it is a revoke notice (type 1006)."""
        return mapping.revoked_target(mapping.decode_payload(self.payload))


class MessageNotifyEvent(BaseModel):
    """``msg.notify``: messages WuKongIM stored (with their ``message_seq`` and server timestamp)."""

    model_config = ConfigDict(frozen=True)

    event: Literal["msg.notify"] = "msg.notify"
    messages: list[WebhookMessage]
    raw: list[dict[str, Any]] = Field(default_factory=list, repr=False, exclude=True)
    """Each message as it arrived (the JSON objects ``messages`` were read from)."""


class MessageOfflineEvent(BaseModel):
    """``msg.offline``: a message and the recipients with no master device online.

    ``channel_id`` here is the raw channel id of the send (the recipient uid for a person message) and
    ``timestamp`` the time of the webhook, not of storage.
    """

    model_config = ConfigDict(frozen=True)

    event: Literal["msg.offline"] = "msg.offline"
    message: WebhookMessage
    to_uids: list[str]
    source_id: int = 0


class OnlineStatusChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    uid: str
    device_flag: int
    online: bool
    conn_id: int
    device_online_count: int
    total_online_count: int


class OnlineStatusEvent(BaseModel):
    """``user.onlinestatus``: connections that came up or went down."""

    model_config = ConfigDict(frozen=True)

    event: Literal["user.onlinestatus"] = "user.onlinestatus"
    changes: list[OnlineStatusChange]


class UnknownWebhook(BaseModel):
    """An event name this module does not model; ``body`` is the parsed JSON body."""

    model_config = ConfigDict(frozen=True)

    event: str
    body: Any = None


WebhookEvent = Annotated[MessageNotifyEvent | MessageOfflineEvent | OnlineStatusEvent, Field(discriminator="event")]

_OFFLINE_FIELDS = ("to_uids", "compress", "compress_to_uids", "source_id")


def _invalid(event: str, why: str) -> InvalidRequestError:
    return malformed("malformed", f"malformed WuKongIM {str(event)[:40]} webhook: {why}", provider=mapping.NAME)


def parse_online_status(entry: str) -> OnlineStatusChange:
    """``"<uid>-<deviceFlag>-<online>-<connId>-<deviceOnlineCount>-<totalOnlineCount>"``."""
    parts = entry.rsplit("-", 5)
    if len(parts) != 6 or not parts[0]:
        raise _invalid(ONLINE_STATUS, f"entry {entry!r:.80}")
    uid, *numbers = parts
    try:
        flag, online, conn_id, device_count, total_count = (int(n) for n in numbers)
    except ValueError:
        raise _invalid(ONLINE_STATUS, f"entry {entry!r:.80}") from None
    return OnlineStatusChange(
        uid=uid, device_flag=flag, online=online == 1, conn_id=conn_id,
        device_online_count=device_count, total_online_count=total_count,
    )  # fmt: skip


def _offline_uids(body: dict[str, Any], limits: Limits) -> list[str]:
    uids: Any
    if body.get("compress") == "gzip" and body.get("compress_to_uids"):
        # ``CompresssToUids []byte`` is base64 in Go's JSON; the expansion is capped (a bomb is refused).
        expanded = gunzip_base64(body["compress_to_uids"], limits, what="compress_to_uids", provider=mapping.NAME)
        uids = load_json(expanded, limits, provider=mapping.NAME)
    else:
        uids = body.get("to_uids") or []
    if not isinstance(uids, list) or not all(isinstance(uid, str) for uid in uids):
        raise _invalid(MSG_OFFLINE, "to_uids is not a list of strings")
    return uids


def _source_id(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(MSG_OFFLINE, "source_id is not an integer")
    return value


def parse_webhook(
    event: str, body: bytes | str, *, limits: Limits | None = None
) -> MessageNotifyEvent | MessageOfflineEvent | OnlineStatusEvent | UnknownWebhook:
    """Parse one webhook POST. ``event`` is the ``event`` query parameter; ``body`` the raw body.

    Raises InvalidRequestError (and nothing else) for a body that does not have the shape above (answer
    such a request with 400; WuKongIM retries ``msg.notify`` on non-200). An event name this module does
    not know (``msg.stream`` is declared at v2.2.5 but never sent) is an :class:`UnknownWebhook`.
    """
    bounds = limits or Limits()
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    data = load_json(raw, bounds, provider=mapping.NAME)
    try:
        if event == MSG_NOTIFY:
            if not isinstance(data, list):
                raise _invalid(event, "body is not an array")
            messages = [WebhookMessage.model_validate(item) for item in data]
            # Built from what was just validated (each message; the list it came from): not validated twice.
            return prevalidated(MessageNotifyEvent, {"event": MSG_NOTIFY, "messages": messages, "raw": data},
                                {"messages", "raw"})  # fmt: skip
        if event == MSG_OFFLINE:
            if not isinstance(data, dict):
                raise _invalid(event, "body is not an object")
            message_fields = {k: v for k, v in data.items() if k not in _OFFLINE_FIELDS}
            return MessageOfflineEvent(
                message=WebhookMessage.model_validate(message_fields),
                to_uids=_offline_uids(data, bounds),
                source_id=_source_id(data.get("source_id")),
            )
        if event == ONLINE_STATUS:
            if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
                raise _invalid(event, "body is not an array of strings")
            return OnlineStatusEvent(changes=[parse_online_status(item) for item in data])
    except ValidationError as exc:
        raise _invalid(event, f"{exc.error_count()} invalid field(s)") from None
    return UnknownWebhook(event=str(event)[:100], body=data)


def path_secret_matches(received: str, expected: str) -> bool:
    """Constant-time check of the secret path segment the endpoint is mounted under."""
    return hmac.compare_digest(received.encode("utf-8", "replace"), expected.encode())
