"""WuKongIM wire <-> imbridge: the response envelopes and their error table, and the payload convention.

Envelopes (``pkg/wkhttp/http.go``, all four confirmed on a real v2.2.5 server):

* a bare JSON object or array (most reads);
* ``{"status":200}`` (writes);
* ``{"status":200,"data":…}`` (``/message/send``);
* ``{"status":N}`` with HTTP **200** for logical results: 404 = not found, other values are WuKongIM
  reason codes (``/user/token`` answers ``{"status":19}`` for a banned user).

Errors: HTTP 400 ``{"msg":…,"status":N}``; HTTP 401 with an empty body (wrong ``token`` header);
HTTP 404 ``404 page not found`` as text (unknown route *or* wrong method); HTTP 500 with an empty body
(a recovered panic).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from imbridge._flow import Request, decode_json, encode_json
from imbridge.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
)
from imbridge.models._build import prevalidated
from imbridge.models.content import Custom, Element, Face, File, Image, Location, Sound, Text, Video
from imbridge.providers.wukong import wire

NAME = "wukong"

# -- envelopes and errors ------------------------------------------------------------------------

#: Reason code -> (error class, what it means). Codes from WuKongIMGoProto ``ReasonCode``.
REASON_ERRORS: dict[int, tuple[type[ProviderError], str]] = {
    wire.REASON_AUTH_FAIL: (AuthenticationError, "authentication failed"),
    wire.REASON_SUBSCRIBER_NOT_EXIST: (PermissionDeniedError, "not a subscriber of the channel"),
    wire.REASON_IN_BLACKLIST: (PermissionDeniedError, "on the channel's denylist"),
    wire.REASON_CHANNEL_NOT_EXIST: (NotFoundError, "channel does not exist"),
    wire.REASON_NOT_ALLOW_SEND: (PermissionDeniedError, "not allowed to send"),
    wire.REASON_NOT_IN_WHITELIST: (PermissionDeniedError, "not on the channel's allowlist"),
    wire.REASON_SYSTEM_ERROR: (ServiceUnavailableError, "server system error"),
    wire.REASON_CHANNEL_ID_ERROR: (InvalidRequestError, "invalid channel id"),
    wire.REASON_BAN: (PermissionDeniedError, "banned"),
    wire.REASON_RATE_LIMIT: (RateLimitError, "rate limited"),
    wire.REASON_NOT_SUPPORT_CHANNEL_TYPE: (InvalidRequestError, "channel type not supported"),
    wire.REASON_DISBAND: (NotFoundError, "disbanded"),
    wire.REASON_SEND_BAN: (PermissionDeniedError, "sending is banned"),
}

#: ``status`` inside an HTTP 400 body -> error class (plugin routes use 403/404/503 there).
_BODY_STATUS_ERRORS: dict[int, type[ProviderError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


# -- a cluster's answers -------------------------------------------------------------------------------
#
# A node answers for data another node owns by forwarding to it, and answers HTTP 400 (the envelope of every
# handler error, pkg/wkhttp/http.go:79-84) when that fails. Two such failures are transient, seen for 6-8 s
# after a node dies, until the cluster has moved its slots and channels to the survivors (measured on three
# v2.2.5 nodes; cassettes/wukong/cluster/):
#
# * "获取频道所在节点失败" + a fullwidth "!" ("cannot get the node of the channel"): the channel's slot
#   has no leader while the slot is being re-elected (SlotLeaderOfChannel,
#   pkg/cluster/cluster/iserver.go:40-50, answered by e.g. internal/api/message.go:781-786 for
#   /message/byclientmsgno, internal/api/channel.go:81-85 for /channel).
# * Go's own error text from the forwarding request to a leader that is gone ("Post \"http://…\": dial tcp …:
#   connect: connection refused"): gin's ForwardWithBody answers rest.API's error verbatim
#   (pkg/wkhttp/http.go:138-141), as does every node-to-node call that hands its error to ResponseError.
#
# Both are the cluster's state, not the request's: ServiceUnavailableError (retryable), never InvalidRequestError.
_FAILOVER = re.compile(
    r"获取频道所在节点失败|slot\[\d+\] leader not found|slot leader node not found|leader not found"
    r"|节点信息不存在|节点不存在|dial tcp|connect: connection refused|connection reset by peer|i/o timeout"
    r"|context deadline exceeded|Client\.Timeout exceeded|\bEOF\b"
)
#: How long to wait before retrying a failover answer: the cluster needs seconds, not milliseconds.
FAILOVER_RETRY_AFTER = timedelta(seconds=1)

# A defect of v2.2.5 clusters: some node-to-node calls are made without the ``token`` header, so with a
# managerToken set the peer answers 401 and the node answers 400 with its own text (verified on three v2.2.5
# nodes with managerToken; cassettes/wukong/cluster/). Each pattern names the call that omits the header.
_TOKEN_DEFECT = {
    # /user/onlinestatus asks each uid's slot leader with network.Post(url, body, nil)
    # (internal/api/user.go:211-226)
    "获取在线用户状态请求状态错误\uff01[401]": "internal/api/user.go:219 (/user/onlinestatus on the uid's slot leader)",
    # /conversation/sync with msg_count > 0 reads recent messages from each channel's leader over rest.Request
    # with no headers (internal/api/request.go:244-268, answered at internal/api/conversation.go:500-507)
    "获取最近消息失败\uff01": "internal/api/request.go:251-268 (recent messages from each channel's leader)",
    # persisted /message/send with subscribers sets the temporary channel's subscribers on its slot leader
    # (internal/api/message.go:207-235)
    "请求设置临时频道的订阅者失败\uff01": "internal/api/message.go:218-229 (tmpchannel/subscriber_set, slot leader)",
    # /user/systemuids_add and _remove update every node's cache (internal/api/user.go:457-470, 552-565)
    "添加系统账号到缓存失败\uff01": "internal/api/user.go:457-470 (systemuids_add_to_cache on every node)",
    "移除系统账号从缓存失败\uff01": "internal/api/user.go:552-565 (systemuids_remove_from_cache on every node)",
}
#: ``native_code`` of the error raised for that defect (tested by callers that work around it).
TOKEN_DEFECT = "cluster-forwarding-without-token"


def cluster_error(msg: str, *, where: str) -> ProviderError | None:
    """The error for a cluster's HTTP 400 answer with this ``msg``, or None when it is an ordinary refusal."""
    if _FAILOVER.search(msg):
        return ServiceUnavailableError(
            f"WuKongIM cluster could not reach the node that owns the data for {where} (a node is down or its "
            f"leadership is moving; retry in a few seconds): {msg}",
            http_status=400, native_code=msg, retry_after=FAILOVER_RETRY_AFTER,
        )  # fmt: skip
    source = _TOKEN_DEFECT.get(msg)
    if source is not None:
        return ProviderError(
            f"WuKongIM cluster defect on {where}: a node forwarded part of the request to another node without "
            f"the manager token and was refused (HTTP 401), {source}. It cannot succeed on a v2.2.5 cluster with "
            f"a managerToken (a single node, or a cluster without managerToken, answers it); not retried: {msg}",
            http_status=400, native_code=TOKEN_DEFECT,
        )  # fmt: skip
    return None


def is_token_defect(error: ProviderError) -> bool:
    """Whether ``error`` is the cluster's token-forwarding defect (see ``cluster_error``)."""
    return error.native_code == TOKEN_DEFECT


def _json(content: bytes) -> Any:
    try:
        return decode_json(content)
    except (ValueError, UnicodeDecodeError):
        return None if not content.strip() else _NOT_JSON


_NOT_JSON = object()


def _is_status_object(body: Any) -> bool:
    # ``/health`` answers {"status":"ok"}: only an integer status is an envelope.
    status = body.get("status") if isinstance(body, dict) else None
    return isinstance(status, int) and not isinstance(status, bool)


def error_for(status_code: int, content: bytes, *, where: str) -> ProviderError | None:
    """The imbridge error an HTTP answer stands for, or None when it is a success."""
    return _error_for_body(status_code, _json(content), where=where)


def _error_for_body(status_code: int, body: Any, *, where: str) -> ProviderError | None:
    if status_code == 200 and type(body) is dict and body.get("status", 200) == 200:
        return None  # the common case first: a success, in any of the four shapes
    if status_code == 401:
        return AuthenticationError(
            f"WuKongIM refused the manager token on {where} (check manager_token)", http_status=401, native_code=401
        )
    if status_code == 404 and not isinstance(body, dict):
        # gin's text 404: no such route, or the right route with the wrong method.
        return InvalidRequestError(
            f"WuKongIM has no route {where} (unknown path or wrong method)", http_status=404, native_code="404 page"
        )
    if status_code == 429:
        return RateLimitError(f"WuKongIM rate-limited {where}", http_status=429, native_code=429)
    if status_code >= 500:
        detail = body.get("message") or body.get("msg") if isinstance(body, dict) else None
        return ServiceUnavailableError(
            f"WuKongIM failed on {where} (HTTP {status_code}{': ' + str(detail) if detail else ''})",
            http_status=status_code,
            native_code=status_code,
        )
    if status_code != 200:
        msg = body.get("msg") or body.get("error") or body.get("message") if isinstance(body, dict) else None
        if status_code == 400 and isinstance(msg, str):
            clustered = cluster_error(msg, where=where)
            if clustered is not None:
                return clustered
        inner = body.get("status") if _is_status_object(body) else None
        error_class = _BODY_STATUS_ERRORS.get(inner if isinstance(inner, int) and inner != 400 else status_code)
        if error_class is None:
            error_class = PermissionDeniedError if status_code == 403 else InvalidRequestError
        return error_class(
            f"WuKongIM rejected {where}: {msg or f'HTTP {status_code}'}",
            http_status=status_code,
            native_code=msg if isinstance(msg, str) else (inner if inner is not None else status_code),
        )
    if body is _NOT_JSON:
        # Retryable: a 200 whose body cannot be read was garbled on the way (WuKongIM only writes JSON).
        return ServiceUnavailableError(f"WuKongIM answered {where} with a body that is not JSON", http_status=200)
    if _is_status_object(body) and body["status"] != 200:
        code = int(body["status"])
        if code == 404:
            return NotFoundError(f"not found ({where})", http_status=200, native_code=404)
        error_class, meaning = REASON_ERRORS.get(code, (ProviderError, "unexpected reason code"))
        return error_class(
            f"WuKongIM answered {where} with reason {code}: {meaning}", http_status=200, native_code=code
        )
    return None


def unwrap(status_code: int, content: bytes, *, where: str | Request) -> Any:
    """The payload of a successful answer (``data`` unwrapped); raises the mapped error otherwise.

    ``where`` names the request in errors: a string, or the request itself (its method and path, only
    put together when there is an error to name it in)."""
    body = _json(content)  # parsed once: this runs for every answer
    if status_code == 200 and type(body) is dict:  # a success in one of the two common shapes, checked first
        if "status" not in body:
            return body
        status = body["status"]
        if type(status) is int and status == 200:
            return body.get("data")
    if not isinstance(where, str):
        where = f"{where.method} {where.path}"
    error = _error_for_body(status_code, body, where=where)
    if error is not None:
        raise error
    if _is_status_object(body):
        return body.get("data")
    return body


def is_missing_channel(error: ProviderError) -> bool:
    """``/channel/max_message_seq`` and ``/channel/last_message`` answer HTTP 400 for a channel that
    was never used (FACTS §9): that means "no messages", not a bad request."""
    return isinstance(error, InvalidRequestError) and error.http_status == 400


# -- the payload convention ----------------------------------------------------------------------
#
# WuKongIM never reads ``payload``; its documented convention (docs/design/protocol.md) is a JSON object
# with ``type``: 1 text {content}, 2 image {url,width,height}, 3 GIF, 4 voice {url,timeTrad}, 8 file
# {url,name,size}, 99 command, 1001-1010 group notices, 1006 revoke. WuKongIM's SDKs also use 5 video
# and 6 location. imbridge's own numbers (outside the reserved 1000-2000 system range):
# 101 face, 102 custom. The first element is written in this convention so WuKongIM clients render it;
# a message of several elements, or with metadata, also carries them all under ``imbridge``.

TYPE_TEXT = 1
TYPE_IMAGE = 2
TYPE_GIF = 3
TYPE_VOICE = 4
TYPE_VIDEO = 5
TYPE_LOCATION = 6
TYPE_FILE = 8
TYPE_COMMAND = 99
TYPE_REVOKE = 1006
TYPE_FACE = 101
TYPE_CUSTOM = 102

IMBRIDGE_KEY = "imbridge"
"""The payload key under which imbridge keeps what the convention has no field for."""

_ELEMENTS = TypeAdapter(list[Element])


def _drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def element_to_payload(element: Element) -> dict[str, Any]:
    """One element in WuKongIM's payload convention."""
    if type(element) is Text or isinstance(element, Text):  # exact type first: pydantic's ABCMeta isinstance is slow
        return {"type": TYPE_TEXT, "content": element.text}
    if isinstance(element, Image):
        return _drop_none(
            {"type": TYPE_GIF if (element.format or "").lower() == "gif" else TYPE_IMAGE, "url": element.url,
             "width": element.width, "height": element.height, "size": element.size, "format": element.format,
             "uuid": element.uuid, "thumbnail_url": element.thumbnail_url}
        )  # fmt: skip
    if isinstance(element, Sound):
        return _drop_none(
            {"type": TYPE_VOICE, "url": element.url, "timeTrad": element.duration, "size": element.size,
             "uuid": element.uuid}
        )  # fmt: skip
    if isinstance(element, File):
        return _drop_none(
            {"type": TYPE_FILE, "url": element.url, "name": element.name, "size": element.size, "uuid": element.uuid}
        )
    if isinstance(element, Video):
        fields = element.model_dump(exclude={"type"}, exclude_none=True)
        fields["second"] = fields.pop("duration")
        fields["cover"] = fields.get("thumbnail_url")
        return _drop_none({"type": TYPE_VIDEO, **fields})
    if isinstance(element, Location):
        return {"type": TYPE_LOCATION, "lat": element.latitude, "lng": element.longitude, "title": element.description}
    if isinstance(element, Face):
        return {"type": TYPE_FACE, "index": element.index, "data": element.data}
    if isinstance(element, Custom):
        return {"type": TYPE_CUSTOM, **element.model_dump(exclude={"type"})}
    raise InvalidRequestError(f"{NAME} cannot send a {type(element).__name__} element")  # pragma: no cover


def encode_payload(elements: Sequence[Element], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON payload of a message: the first element in the convention, the rest under ``imbridge``."""
    payload = element_to_payload(elements[0])
    extra: dict[str, Any] = {}
    if len(elements) > 1:
        extra["elements"] = [element.model_dump(mode="json", exclude_none=True) for element in elements]
    if metadata:
        extra["metadata"] = dict(metadata)
    if extra:
        payload[IMBRIDGE_KEY] = {"v": 1, **extra}
    return payload


def to_base64(payload: dict[str, Any]) -> str:
    """Standard, padded base64 of compact JSON (the server refuses unpadded base64, FACTS §6)."""
    # binascii directly: base64.b64encode is a Python wrapper around it, called once per send.
    return binascii.b2a_base64(encode_json(payload), newline=False).decode("ascii")


def decode_payload(b64: str) -> dict[str, Any] | None:
    """The payload as JSON, or None when it is not a JSON object (WuKongIM accepts any bytes)."""
    try:
        value = decode_json(base64.b64decode(b64, validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _opt_int(value: Any) -> int | None:
    return _int(value) if isinstance(value, int | float | str) and str(value).lstrip("-").isdigit() else None


def payload_to_elements(payload: dict[str, Any] | None, raw_b64: str = "") -> list[Element]:
    """Elements of a stored payload. Anything outside the convention becomes a Custom element carrying
    the raw payload, so nothing is dropped."""
    if payload is None:
        return [Custom(data=raw_b64, description="non-JSON payload (base64)")]
    extra = payload.get(IMBRIDGE_KEY)
    if isinstance(extra, dict) and isinstance(extra.get("elements"), list):
        try:
            return _ELEMENTS.validate_python(extra["elements"])
        except ValidationError:
            pass
    kind = payload.get("type")
    try:
        content = payload.get("content")
        if kind == TYPE_TEXT and type(content) is str and content:
            # A non-empty str is a valid Text: built without validating it again (every message of a
            # webhook batch, every page of history).
            return [prevalidated(Text, {"type": "text", "text": content}, {"text"})]
        if kind in (TYPE_IMAGE, TYPE_GIF):
            return [Image(url=payload["url"], width=_opt_int(payload.get("width")),
                          height=_opt_int(payload.get("height")), size=_opt_int(payload.get("size")),
                          format=payload.get("format") or ("gif" if kind == TYPE_GIF else None),
                          uuid=payload.get("uuid"), thumbnail_url=payload.get("thumbnail_url"))]  # fmt: skip
        if kind == TYPE_VOICE:
            return [Sound(url=payload["url"], duration=_int(payload.get("timeTrad")),
                          size=_opt_int(payload.get("size")), uuid=payload.get("uuid"))]  # fmt: skip
        if kind == TYPE_FILE:
            return [File(url=payload["url"], name=payload.get("name") or payload["url"].rsplit("/", 1)[-1],
                         size=_opt_int(payload.get("size")), uuid=payload.get("uuid"))]  # fmt: skip
        if kind == TYPE_VIDEO:
            fields = {k: v for k, v in payload.items() if k in Video.model_fields and k not in ("type", "duration")}
            fields.setdefault("thumbnail_url", payload.get("cover"))
            return [Video(duration=_int(payload.get("second")), **fields)]
        if kind == TYPE_LOCATION:
            return [Location(latitude=float(payload["lat"]), longitude=float(payload["lng"]),
                             description=str(payload.get("title") or ""))]  # fmt: skip
        if kind == TYPE_FACE:
            return [Face(index=_int(payload.get("index")), data=str(payload.get("data") or ""))]
        if kind == TYPE_CUSTOM:
            return [Custom(**{k: v for k, v in payload.items() if k in Custom.model_fields and k != "type"})]
    except (KeyError, TypeError, ValueError, ValidationError, InvalidRequestError):
        pass
    data = encode_json(payload).decode()
    content = payload.get("content")
    return [Custom(data=data, description=content if isinstance(content, str) else "")]


def payload_metadata(payload: dict[str, Any] | None) -> dict[str, Any]:
    extra = payload.get(IMBRIDGE_KEY) if payload else None
    metadata = extra.get("metadata") if isinstance(extra, dict) else None
    return dict(metadata) if isinstance(metadata, dict) else {}


def revoke_payload(
    target: wire.MessageResp | None, message_id: int, revoker: str, *, channel_type: int, channel_id: str
) -> dict[str, Any]:
    """The revoke notice of WuKongIM's convention (type 1006), with imbridge's exact target.

    The notice is stored in the command twin ``<id>____cmd``, and a person channel's twin renders ambiguously
    (``MessageResp.From`` splits ``a@b____cmd`` at ``@``: internal/types/message.go:68-77), so the
    conversation as the revoker's side names it travels in the payload: whoever reads the notice (webhooks,
    history) finds the target's conversation without parsing the stored id."""
    return {
        "type": TYPE_REVOKE,
        "message_id": str(message_id),
        "content": "{0}撤回了一条消息",
        "extra": [{"uid": revoker, "name": revoker}],
        IMBRIDGE_KEY: {
            "v": 1,
            "revoke": {
                "message_id": str(message_id),
                "client_msg_no": target.client_msg_no if target else "",
                "message_seq": target.message_seq if target else 0,
                "channel_type": channel_type,
                "channel_id": channel_id,
            },
        },
    }


def revoked_target(payload: dict[str, Any] | None) -> str | None:
    """The message id a revoke notice names, or None when the payload is not one."""
    if not payload or payload.get("type") != TYPE_REVOKE:
        return None
    target = payload.get("message_id")
    return str(target) if isinstance(target, str | int) and str(target).isdigit() else None


def timestamp(seconds: int) -> datetime:
    """WuKongIM's Unix seconds as an aware UTC datetime."""
    # The last one is remembered: the sends a shared read confirms were mostly stored within the same second,
    # and building an aware datetime costs more than everything else a confirmed send's result needs.
    global _last_timestamp
    last = _last_timestamp
    if last[0] == seconds and type(seconds) is int:
        return last[1]
    moment = datetime.fromtimestamp(seconds, UTC)
    _last_timestamp = (seconds, moment)
    return moment


_last_timestamp: tuple[int, datetime] = (0, datetime.fromtimestamp(0, UTC))
