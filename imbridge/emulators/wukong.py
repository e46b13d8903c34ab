"""An emulator of the WuKongIM v2.2.5 server REST API (the routes imbridge uses), with its real quirks.

Every behaviour below was checked against a real v2.2.5 server (tag ``v2.2.5-20260422``, commit
``a888f895``) on loopback; ``docs/emulators.md`` ("WuKongIM emulator") lists what is covered and every
known difference. The quirks that matter to a client:

* ``/message/send`` answers before the message is stored (``store_delay_requests``: it is stored after
  that many further requests), never dedupes ``client_msg_no`` and skips membership and denylist
  checks; a banned or disbanded channel drops the message silently after answering 200.
* Four response shapes: a bare object/array, ``{"status":200}``, ``{"status":200,"data":…}``, and
  ``{"status":N}`` with HTTP 200 (``404`` = not found, reason codes 19/24 from ``/user/token``). Errors
  are HTTP 400 ``{"msg":…,"status":400}``; unknown routes and wrong methods gin's text ``404 page not
  found``; a wrong ``token`` header 401 with an empty body; a recovered panic 500 with an empty body.
* ``/channel`` and ``/channel/info`` overwrite all five flags; only ``ban``/``disband`` read back.
* One-to-one chats live under the CRC32-ordered fake id ``a@b``; ``channel_id`` in a message is
  rendered as ``MessageResp.From`` does.
* ``/channel/messagesync`` follows ``LoadPrevRangeMsgs``/``LoadNextRangeMsgs`` to the letter;
  ``POST /message`` by ``client_msg_no`` always misses; ``byclientmsgno`` returns the first duplicate,
  ``POST /messages`` the last; ``max_message_seq``/``last_message`` answer 400 for a channel that has
  no cluster config yet (never messaged, synced or subscribed).

State lives in :class:`imbridge.providers.local.store.Store` (the ``local`` provider's storage, SQLite only here):
messages (per-channel seq), users, and subscribers as ``members`` rows; channel flags, deny/allow lists,
devices and a ``client_msg_no`` index in small tables of the emulator's own in the same database.
"""

# The server answers in Chinese with full-width punctuation; the texts are reproduced verbatim.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import base64
import gzip
import json
import random
import re
import secrets
import sqlite3
import threading
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from imbridge._clock import Clock, SystemClock
from imbridge.emulators._base import (
    Callback,
    CallbackDispatcher,
    CallbackTarget,
    EmulatorReply,
    EmulatorRequest,
    EmulatorTransport,
)
from imbridge.errors import ServiceUnavailableError
from imbridge.providers.local.store import MessageRow, Store
from imbridge.providers.wukong import mapping, wire
from imbridge.storage import SQLiteWriter

__all__ = ["VERSION", "JsonRpcSession", "WukongEmulator"]

VERSION = "v2.2.5-20260422"
"""The server version this emulator reproduces."""

PERSON, GROUP = wire.PERSON, wire.GROUP
SYSTEM_UID = wire.SYSTEM_UID
_SNOWFLAKE_EPOCH_MS = 1288834974657  # message ids are Twitter-style snowflakes (about 2.1e18 in 2026)
_SLOT_COUNT = 64  # slot = crc32(channel_id) % 64, as /cluster/channels reports it
_PAGE_SIZE = 20
_SYNC_LIMIT_CAP = 10000
_ZERO_HEADER = {"no_persist": 0, "red_dot": 0, "sync_once": 0}  # see _render: what a header-less read shows
_CMD_SUFFIX = "____cmd"
_SPECIAL = ("@", "#", "&")  # options.IsSpecialChar
_CLUSTER_LIST = re.compile(r"^/cluster/channels/([^/]+)/([^/]+)/(subscribers|denylist|allowlist)$")
_FILTERS_THAT_PANIC = (
    "ban", "disband", "subscriber_count_gte", "subscriber_count_lte", "denylist_count_gte",
    "denylist_count_lte", "allowlist_count_gte", "allowlist_count_lte",
)  # fmt: skip
_FLAGS = ("large", "ban", "disband", "send_ban", "allow_stranger")
_DEVICE_FLAGS = {0: "APP", 1: "WEB", 2: "PC"}

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS wukong_emu_channels (
        channel_type INTEGER NOT NULL, channel_id TEXT NOT NULL,
        info INTEGER NOT NULL DEFAULT 0, configured INTEGER NOT NULL DEFAULT 0,
        large INTEGER NOT NULL DEFAULT 0, ban INTEGER NOT NULL DEFAULT 0, disband INTEGER NOT NULL DEFAULT 0,
        send_ban INTEGER NOT NULL DEFAULT 0, allow_stranger INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL DEFAULT 0,
        denylist_count INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (channel_type, channel_id))""",
    """CREATE TABLE IF NOT EXISTS wukong_emu_lists (
        channel_type INTEGER NOT NULL, channel_id TEXT NOT NULL, list TEXT NOT NULL, uid TEXT NOT NULL,
        id INTEGER NOT NULL, added_at INTEGER NOT NULL,
        PRIMARY KEY (channel_type, channel_id, list, uid))""",
    """CREATE TABLE IF NOT EXISTS wukong_emu_devices (
        uid TEXT NOT NULL, device_flag INTEGER NOT NULL, device_level INTEGER NOT NULL, token TEXT NOT NULL,
        id INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        PRIMARY KEY (uid, device_flag))""",
    """CREATE TABLE IF NOT EXISTS wukong_emu_client_msg_nos (
        conversation TEXT NOT NULL, client_msg_no TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (conversation, client_msg_no, seq))""",
    # Each user's conversations (pkg/wkdb Conversation): a row with cached_until_ns set is still in the
    # ConversationManager's write cache (no row on the server yet) until that time.
    """CREATE TABLE IF NOT EXISTS wukong_emu_conversations (
        uid TEXT NOT NULL, channel_type INTEGER NOT NULL, channel_id TEXT NOT NULL,
        read_seq INTEGER NOT NULL DEFAULT 0, deleted_seq INTEGER NOT NULL DEFAULT 0,
        updated_ns INTEGER, cached_until_ns INTEGER,
        PRIMARY KEY (uid, channel_type, channel_id))""",
)


class _BadRequest(Exception):
    """An HTTP 400 ``{"msg":…,"status":400}``."""

    def __init__(self, msg: str, *, content_type: str = "application/json; charset=utf-8") -> None:
        super().__init__(msg)
        self.msg = msg
        self.content_type = content_type


_JSON_TYPE = {"content-type": "application/json; charset=utf-8"}
# gin's c.BindJSON (used by /message/send and /message/sendbatch) sets text/plain before the JSON error body.
_GIN_BIND_TYPE = "text/plain; charset=utf-8"


def _reply(payload: Any, status: int = 200) -> EmulatorReply:
    """A JSON answer as gin renders it (compact, UTF-8, ``application/json; charset=utf-8``)."""
    return EmulatorReply(status, json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(), _JSON_TYPE)


# -- Go encoding/json, as far as the routes' request structs see it ------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    gotype: str  # string, int, int64, uint8, uint32, uint64, []string, []uint32, []int64, []uint8, header
    path: str = ""  # the Go field path when it differs from the json name (embedded structs)
    shown: str = ""  # the type name Go prints when it is a named type


@dataclass(frozen=True, slots=True)
class _Struct:
    name: str
    fields: Mapping[str, _Field]
    wrap: str = "plain"  # how the handler reports a bind error: plain, wrap ("数据格式有误！: …"), fixed
    gin: bool = False  # bound with gin's c.BindJSON: a bind error is answered as text/plain


_INT_RANGES = {
    "uint8": (0, 255), "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1),
    "int": (-(2**63), 2**63 - 1), "int64": (-(2**63), 2**63 - 1),
}  # fmt: skip
_HEADER_FIELDS = {"no_persist": _Field("int"), "red_dot": _Field("int"), "sync_once": _Field("int")}
_CHANNEL_ITEM = {"channel_id": _Field("string"), "channel_type": _Field("uint8")}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "number"


def _go_syntax_error(text: str, error: json.JSONDecodeError) -> str:
    """Go's json syntax errors, approximately (the common cases are exact)."""
    if error.pos >= len(text) or error.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    char = text[error.pos]
    shown = repr(char)[1:-1]
    if error.msg.startswith("Expecting property name"):
        return f"invalid character '{shown}' looking for beginning of object key string"
    if error.msg.startswith("Expecting ':'"):
        return f"invalid character '{shown}' after object key"
    if error.msg.startswith("Expecting ','"):
        opener = text.rfind("[", 0, error.pos) > text.rfind("{", 0, error.pos)
        return f"invalid character '{shown}' after {'array element' if opener else 'object key:value pair'}"
    if error.msg.startswith("Invalid control character"):
        return f"invalid character {shown!r} in string literal"
    return f"invalid character '{shown}' looking for beginning of value"


def _go_b64decode(src: str) -> bytes:
    """``base64.StdEncoding.DecodeString``, with Go's error positions (``illegal base64 data at input byte N``)."""
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    si, n, out = 0, len(src), []
    while si < n:
        quantum: list[str] = []
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    break
                raise _BadRequest(f"illegal base64 data at input byte {si - j}")
            ch = src[si]
            si += 1
            if ch in alphabet:
                quantum.append(ch)
                j += 1
                continue
            if ch in "\r\n":
                continue
            if ch != "=" or j < 2:
                raise _BadRequest(f"illegal base64 data at input byte {si - 1}")
            if j == 2:
                while si < n and src[si] in "\r\n":
                    si += 1
                if si == n:
                    raise _BadRequest(f"illegal base64 data at input byte {n}")
                if src[si] != "=":
                    raise _BadRequest(f"illegal base64 data at input byte {si - 1}")
                si += 1
            while si < n and src[si] in "\r\n":
                si += 1
            if si < n:
                raise _BadRequest(f"illegal base64 data at input byte {si}")
            break
        if quantum:
            chunk = "".join(quantum)
            out.append(base64.b64decode(chunk + "=" * (-len(chunk) % 4)))
    return b"".join(out)


def _convert(value: Any, spec: _Field, struct: str, field: str) -> Any:
    """One JSON value into a Go field: the value, or raise the error Go's decoder reports."""
    where = f"Go struct field {struct}.{field} of type {spec.shown or spec.gotype}"
    if value is None:
        return None
    gotype = spec.gotype
    if gotype == "string":
        if not isinstance(value, str):
            raise _BadRequest(f"json: cannot unmarshal {_kind(value)} into {where}")
        return value
    if gotype in _INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise _BadRequest(f"json: cannot unmarshal {_kind(value)} into {where}")
        low, high = _INT_RANGES[gotype]
        if isinstance(value, Decimal) or not low <= value <= high:
            raise _BadRequest(f"json: cannot unmarshal number {value} into {where}")
        return value
    if gotype == "[]uint8":
        if not isinstance(value, str):
            raise _BadRequest(f"json: cannot unmarshal {_kind(value)} into {where}")
        return _go_b64decode(value)
    if gotype == "[]byte":  # a []uint8 Go also fills from a JSON array of numbers
        if isinstance(value, str):
            return list(_go_b64decode(value))
        return _convert(value, _Field("[]uint8_numbers", shown="[]uint8"), struct, field)
    if gotype == "[]uint8_numbers":
        if not isinstance(value, list):
            raise _BadRequest(f"json: cannot unmarshal {_kind(value)} into {where}")
        return [_convert(item, _Field("uint8"), struct, field) for item in value]
    if gotype == "channels":  # []struct{ChannelId string; ChannelType uint8} (conversation.go:710-713)
        if not isinstance(value, list):
            raise _BadRequest(
                f"json: cannot unmarshal {_kind(value)} into Go struct field .{field} of type []struct {{ ChannelId "
                'string "json:\\"channel_id\\""; ChannelType uint8 "json:\\"channel_type\\"" }'
            )
        items: list[dict[str, Any]] = []
        for item in value:
            if item is None:
                items.append({})
                continue
            if not isinstance(item, dict):
                raise _BadRequest(f"json: cannot unmarshal {_kind(item)} into Go struct field .{field} of type struct")
            items.append(_bind_fields(item, _CHANNEL_ITEM, struct, prefix=f"{field}."))
        return items
    if gotype.startswith("[]"):
        if not isinstance(value, list):
            raise _BadRequest(f"json: cannot unmarshal {_kind(value)} into {where}")
        element = _Field(gotype[2:])
        return [_convert(item, element, struct, field) for item in value]
    if gotype == "header":
        if not isinstance(value, dict):
            raise _BadRequest(
                f"json: cannot unmarshal {_kind(value)} into Go struct field {struct}.{field} of type "
                "types.MessageHeader"
            )
        return _bind_fields(value, _HEADER_FIELDS, struct, prefix=f"{field}.")
    raise AssertionError(gotype)  # pragma: no cover


def _bind_fields(body: dict[str, Any], fields: Mapping[str, _Field], struct: str, prefix: str = "") -> dict[str, Any]:
    # Go matches keys case-insensitively (an exact match wins); the last duplicate wins.
    lowered = {name.lower(): name for name in fields}
    result: dict[str, Any] = {}
    first_error: _BadRequest | None = None
    for key, value in body.items():
        name = key if key in fields else lowered.get(key.lower())
        if name is None:
            continue
        spec = fields[name]
        try:
            result[name] = _convert(value, spec, struct, prefix + (spec.path or name))
        except _BadRequest as error:
            first_error = first_error or error  # Go keeps decoding and reports the first type error
    if first_error is not None:
        raise first_error
    return result


def _bind(raw: bytes, struct: _Struct) -> dict[str, Any]:
    """Decode a request body as Go's ``json.Decoder`` would into ``struct``; 400 as the handler reports it."""
    try:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = raw.decode(errors="replace")
        start = len(text) - len(text.lstrip(" \t\r\n"))
        if start == len(text):
            raise _BadRequest("EOF")
        try:
            body, _ = json.JSONDecoder(parse_float=Decimal).raw_decode(text, start)  # trailing data is ignored
        except json.JSONDecodeError as error:
            raise _BadRequest(_go_syntax_error(text, error)) from None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise _BadRequest(f"json: cannot unmarshal {_kind(body)} into Go value of type api.{struct.name}")
        return _bind_fields(body, struct.fields, struct.name)
    except _BadRequest as error:
        if struct.wrap == "wrap":
            raise _BadRequest(f"数据格式有误！: {error.msg}") from None
        if struct.wrap == "fixed":
            raise _BadRequest("数据格式有误！") from None
        if struct.gin:
            raise _BadRequest(error.msg, content_type=_GIN_BIND_TYPE) from None
        raise


def _bind_string_list(raw: bytes) -> list[str]:
    """gin's ``c.BindJSON(&uids)`` into ``[]string``: its errors are text/plain 400s like the sends' binds."""
    text = raw.decode(errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise _BadRequest("EOF", content_type=_GIN_BIND_TYPE)
    try:
        body, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise _BadRequest(_go_syntax_error(text, error), content_type=_GIN_BIND_TYPE) from None
    if body is None:
        return []
    if not isinstance(body, list):
        raise _BadRequest(f"json: cannot unmarshal {_kind(body)} into Go value of type []string",
                          content_type=_GIN_BIND_TYPE)  # fmt: skip
    for item in body:
        if not isinstance(item, str) and item is not None:
            raise _BadRequest(f"json: cannot unmarshal {_kind(item)} into Go value of type string",
                              content_type=_GIN_BIND_TYPE)  # fmt: skip
    return [item or "" for item in body]


def _fields(**specs: str | _Field) -> dict[str, _Field]:
    return {name: spec if isinstance(spec, _Field) else _Field(spec) for name, spec in specs.items()}


_INFO_FIELDS = _fields(
    channel_id=_Field("string", "channelInfoReq.channel_id"),
    channel_type=_Field("uint8", "channelInfoReq.channel_type"),
    **{flag: _Field("int", f"channelInfoReq.{flag}") for flag in _FLAGS},
)  # fmt: skip
_CHANNEL_CREATE = _Struct("channelCreateReq", {**_INFO_FIELDS, **_fields(reset="int", subscribers="[]string")}, "wrap")
_CHANNEL_INFO = _Struct(
    "channelInfoReq", _fields(channel_id="string", channel_type="uint8", **dict.fromkeys(_FLAGS, "int")), "fixed"
)
_CHANNEL_DELETE = _Struct("channelDeleteReq", _fields(channel_id="string", channel_type="uint8"), "wrap")
_SUBSCRIBER_ADD = _Struct(
    "subscriberAddReq",
    _fields(channel_id="string", channel_type="uint8", reset="int", temp_subscriber="int", subscribers="[]string"),
    "wrap",
)
_SUBSCRIBER_REMOVE = _Struct(
    "subscriberRemoveReq",
    _fields(channel_id="string", channel_type="uint8", temp_subscriber="int", subscribers="[]string"),
    "wrap",
)
_CHANNEL_REQ_WRAP = _Struct("channelReq", _fields(channel_id="string", channel_type="uint8"), "wrap")
_CHANNEL_REQ = _Struct("channelReq", _fields(channel_id="string", channel_type="uint8"))
_BLACKLIST = _Struct("blacklistReq", _fields(channel_id="string", channel_type="uint8", uids="[]string"))
_WHITELIST = _Struct("whitelistReq", _fields(channel_id="string", channel_type="uint8", uids="[]string"))
_USER_TOKEN = _Struct(
    "UpdateTokenReq",
    _fields(uid="string", token="string", device_flag=_Field("uint8", shown="wkproto.DeviceFlag"),
            device_level=_Field("uint8", shown="wkproto.DeviceLevel")),
)  # fmt: skip
_DEVICE_QUIT = _Struct("", _fields(uid="string", device_flag="int"))  # an anonymous struct (api/user.go:57-60)
_SEND = _Struct(
    "messageSendReq",
    _fields(header="header", client_msg_no="string", is_stream="int", from_uid="string", channel_id="string",
            channel_type="uint8", expire="uint32", subscribers="[]string", payload="[]uint8", tag_key="string"),
    gin=True,
)  # fmt: skip
_SEND_BATCH = _Struct(
    "", _fields(header="header", from_uid="string", subscribers="[]string", payload="[]uint8"), gin=True
)
_SYNC = _Struct(
    "",
    _fields(login_uid="string", channel_id="string", channel_type="uint8", start_message_seq="uint64",
            end_message_seq="uint64", limit="int", pull_mode=_Field("int", shown="api.PullMode"),
            event_summary_mode="string"),
)  # fmt: skip
_SEARCH_MANY = _Struct(
    "",
    _fields(login_uid="string", channel_id="string", channel_type="uint8", message_seqs="[]uint32",
            message_ids="[]int64", client_msg_nos="[]string"),
    "fixed",
)  # fmt: skip
_SEARCH_ONE = _Struct(
    "",
    _fields(login_uid="string", channel_id="string", channel_type="uint8", message_id="int64", client_msg_no="string"),
    "fixed",
)


# -- conversations (internal/api/conversation.go at v2.2.5-20260422) --------------------------------------
_CONV_SYNC = _Struct(
    "",
    _fields(uid="string", version="int64", last_msg_seqs="string", msg_count="int64", only_unread="uint8",
            exclude_channel_types="[]byte", page="int", page_size="int"),
)  # fmt: skip
_CONV_CLEAR = _Struct(
    "clearConversationUnreadReq", _fields(uid="string", channel_id="string", channel_type="uint8", message_seq="uint32")
)
_CONV_SET_UNREAD = _Struct("", _fields(uid="string", channel_id="string", channel_type="uint8", unread="int"))
_CONV_DELETE = _Struct("deleteChannelReq", _fields(uid="string", channel_id="string", channel_type="uint8"))
_CONV_BY_CHANNELS = _Struct("", _fields(uid="string", channels="channels", msg_count="int"))
_USER_MAX_CONVERSATIONS = 1000  # options conversation.userMaxCount default (internal/options/options.go:451)
_CONVERSATION_CACHE_NS = 60 * 10**9  # conversation.syncInterval default, one minute (options.go:452)
_LIVE = 5  # wkproto.ChannelTypeLive: no conversations (manager_conversation.go:58)


# -- helpers -----------------------------------------------------------------------------------------


def _fnv64a(text: str) -> int:
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) % 2**64
    return value


def _channel_num(channel_id: str, channel_type: int) -> int:
    """``key.ChannelToNum``: the ``id`` /cluster/channels reports."""
    return _fnv64a(f"{channel_id}-{channel_type}")


def _slot(channel_id: str) -> int:
    return zlib.crc32(channel_id.encode()) % _SLOT_COUNT


def _minute(ns: int) -> str:
    """``wkutil.ToyyyyMMddHHmm`` in the server's local time."""
    return datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M") if ns else ""


def _uint8(text: str | None) -> int:
    """``wkutil.StringToUint8``: anything unparsable is 0."""
    try:
        value = int(text or "")
    except ValueError:
        return 0
    return value if 0 <= value <= 255 else 0


def _is_blank(text: str | None) -> bool:
    return not (text or "").strip()


def _special(text: str) -> bool:
    return any(ch in text for ch in _SPECIAL)


def _new_client_msg_no() -> str:
    return uuid.uuid4().hex + "0"  # fmt.Sprintf("%s0", wkutil.GenUUID())


def _conversation(channel_type: int, stored_id: str) -> str:
    return f"wk:{channel_type}:{stored_id}"


def _member_key(channel_type: int, channel_id: str) -> str:
    return f"{channel_type}:{channel_id}"


@dataclass
class _Pending:
    """A message /message/send accepted and has not stored yet."""

    countdown: int
    message_id: int
    channel_type: int
    stored_id: str
    from_uid: str
    client_msg_no: str
    payload: bytes
    expire: int
    setting: int
    red_dot: int = 0
    sync_once: int = 0
    sent_id: str = ""
    """The channel id as the send named it (the recipient of a person message; no command-twin suffix)."""


_RPC_PAYLOAD_OBJECT = ("jsonrpc: failed to unmarshal field: send params: json: cannot unmarshal object into Go "
                       "struct field SendParams.payload of type []uint8")  # fmt: skip
_RPC_PAYLOAD_BASE64 = "jsonrpc: failed to unmarshal field: send params: illegal base64 data at input byte 0"


def _object(value: Any) -> dict[str, Any]:
    """A JSON object field of a frame; anything else reads as empty (as Go decodes an absent struct)."""
    return value if isinstance(value, dict) else {}


class JsonRpcSession:
    """One connection to the emulated node's JSON-RPC WebSocket, as the real v2.2.5 node answered one
    (tests/fixtures/wukong/jsonrpc/recording.json; its PROVENANCE.md cites the server source for each):

    * the first frame must be ``connect``, else the connection is closed (internal/server/proto.go:210-213); a
      refused token gets no answer at all (the node then drops the connection about 6 s later; here at once);
    * a ``send`` is answered once stored, with its seq (``reasonCode`` 1), or refused by the permission steps with
      their reason code and seq 0, a message id assigned either way; ``noPersist`` is answered with seq 0; a
      channel whose store stalled answers ``ReasonSystemError`` (15: event_persist.go:31-36, where the real node
      answers after its store's timeout);
    * a frame it cannot decode (a payload that is not base64, a send without an id) is answered with an ``error``
      object (code 0), and every later frame on the connection with that same answer: the connection is stuck;
    * ``recvack`` is not answered, ``ping`` with ``{"jsonrpc":"2.0","id":…}``;
    * a stored message is pushed as a ``recv`` notification to the recipients' other JSON-RPC connections.
    """

    def __init__(self, emulator: WukongEmulator, push: Callable[[dict[str, Any]], None]) -> None:
        self._emulator = emulator
        self.push = push
        self.uid: str | None = None
        self._conn_id = 0
        self._stuck: dict[str, Any] | None = None

    def receive(self, text: str | bytes) -> tuple[list[dict[str, Any]], bool]:
        """The frames that answer ``text``, and whether the node closes the connection (without answering)."""
        emulator = self._emulator
        with emulator._lock:
            if self._stuck is not None:
                return [self._stuck], False
            try:
                frame = json.loads(text)
            except ValueError:
                return self._stick(None, "jsonrpc decode: invalid character")
            if not isinstance(frame, dict):
                return self._stick(None, "jsonrpc decode: not an object")
            method, request_id = frame.get("method"), frame.get("id")
            if self.uid is None:
                return self._connect(frame) if method == "connect" else ([], True)
            if method == "send":
                if request_id is None:
                    return self._stick(None, "jsonrpc decode: unknown notification method 'send'")
                return self._send(frame, str(request_id))
            if method == "ping":
                return [{"jsonrpc": "2.0", "id": request_id}], False
            return [], False  # recvack, and anything else it reads: no answer

    def _stick(self, request_id: str | None, message: str) -> tuple[list[dict[str, Any]], bool]:
        answer: dict[str, Any] = {"jsonrpc": "2.0"}
        if request_id is not None:
            answer["id"] = request_id
        answer["error"] = {"code": 0, "message": message}
        self._stuck = answer
        return [answer], False

    def _connect(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        emulator = self._emulator
        params = _object(frame.get("params"))
        uid, token, flag = str(params.get("uid") or ""), params.get("token"), params.get("deviceFlag") or 0
        with emulator.store.sqlite_write() as db:
            row = db.execute("SELECT token, device_level FROM wukong_emu_devices WHERE uid = ? AND device_flag = ?",
                             (uid, flag)).fetchone()  # fmt: skip
        if emulator.token_auth and (not token or row is None or row["token"] != token):
            return [], True  # event_connect.go:23-26: logged, never answered
        self.uid = uid
        level = row["device_level"] if emulator.token_auth and row is not None else 0
        self._conn_id = emulator._add_connection(uid, int(flag), level)
        emulator._rpc_sessions.setdefault(uid, []).append(self)
        now_ms = int(emulator.clock.now().timestamp() * 1000)
        result = {"serverVersion": 5, "timeDiff": now_ms - int(params.get("clientTimestamp") or 0), "reasonCode": 1,
                  "nodeId": emulator.node_id}  # fmt: skip
        return [{"jsonrpc": "2.0", "id": frame.get("id"), "result": result}], False

    def _send(self, frame: dict[str, Any], request_id: str) -> tuple[list[dict[str, Any]], bool]:
        emulator, uid = self._emulator, self.uid
        assert uid is not None
        params = _object(frame.get("params"))
        payload_text = params.get("payload")
        if payload_text is not None and not isinstance(payload_text, str):
            return self._stick(request_id, _RPC_PAYLOAD_OBJECT)
        try:
            payload = base64.b64decode(payload_text or "", validate=True)
        except ValueError:
            return self._stick(request_id, _RPC_PAYLOAD_BASE64)
        header = _object(params.get("header"))
        channel_id, channel_type = str(params.get("channelId") or ""), int(params.get("channelType") or 0)
        client_msg_no = str(params.get("clientMsgNo") or "")
        message_id = emulator._next_message_id()
        reason, seq = emulator._rpc_permission(uid, channel_id, channel_type), 0
        if reason == 1 and not header.get("noPersist"):
            # syncOnce does not move a message to the command twin here, as POST /message/send does
            # (api/message.go:256-258): the node stored it in the chat itself, listed with sync_once 0 (scenario 10).
            stored_id = wire.fake_channel_id(uid, channel_id) if channel_type == PERSON else channel_id
            emulator._configure(channel_type, stored_id)
            seq = emulator._persist(_Pending(
                0, message_id, channel_type, stored_id, uid, client_msg_no, payload, int(params.get("expire") or 0),
                0, 1 if header.get("redDot") else 0, 0, channel_id,
            ))  # fmt: skip
            if seq == 0:
                reason = wire.REASON_SYSTEM_ERROR
        if reason == 1:
            self._deliver(header, message_id, seq, client_msg_no, channel_id, channel_type, params.get("payload"))
        result = {"header": header, "messageId": str(message_id), "messageSeq": seq, "reasonCode": reason}
        return [{"jsonrpc": "2.0", "id": request_id, "result": result}], False

    def _deliver(
        self, header: dict[str, Any], message_id: int, seq: int, client_msg_no: str, channel_id: str,
        channel_type: int, payload: Any,
    ) -> None:  # fmt: skip
        """Push the message to its recipients' JSON-RPC connections (recording.json scenario 08: a person message
        arrives with the sender's uid as ``channelId``)."""
        emulator, uid = self._emulator, self.uid
        assert uid is not None
        shown_channel = uid if channel_type == PERSON else channel_id
        notice = {"jsonrpc": "2.0", "method": "recv", "params": {
            "header": header, "messageId": str(message_id), "messageSeq": seq, "clientMsgNo": client_msg_no,
            "timestamp": int(emulator.clock.now().timestamp()), "channelId": shown_channel,
            "channelType": channel_type, "fromUid": uid, "payload": payload,
        }}  # fmt: skip
        for recipient in emulator._rpc_recipients(uid, channel_id, channel_type):
            for session in emulator._rpc_sessions.get(recipient, []):
                if session is not self:
                    session.push(notice)

    def close(self) -> None:
        """The connection ended (either side): the user's device goes offline."""
        emulator = self._emulator
        with emulator._lock:
            if self.uid is None:
                return
            sessions = emulator._rpc_sessions.get(self.uid, [])
            if self in sessions:
                sessions.remove(self)
            connection = emulator._connections.pop(self._conn_id, None)
            if connection is not None:
                emulator._status(self.uid, connection[1], False, self._conn_id)
            self.uid = None


class WukongEmulator:
    """A stateful WuKongIM v2.2.5 REST server: in process (:meth:`transport`) or on 127.0.0.1
    (:func:`imbridge.emulators.serve`)."""

    def __init__(
        self,
        *,
        manager_token: str | None = None,
        store: str = ":memory:",
        clock: Clock | None = None,
        store_delay_requests: int = 0,
        version: str = "v2.2.5-20260422",
        webhook: str | CallbackTarget | None = None,
        webhook_retry_max: int = 5,
        webhook_retry_delay: float = 1.0,
        webhook_count_per_push: int = 100,
        subscriber_compress_of_count: int = 0,
        node_id: int = 1001,
    ) -> None:
        if store_delay_requests < 0:
            raise ValueError("store_delay_requests must be >= 0")
        if webhook_retry_max < 1 or webhook_count_per_push < 1 or subscriber_compress_of_count < 0:
            raise ValueError("webhook_retry_max and webhook_count_per_push must be >= 1, the compress count >= 0")
        # Webhooks as v2.2.5 sends them (internal/webhook/webhook.go): POST {webhook}?event=<name>, JSON body,
        # anything but 200 is a failure. msg.notify batches (<= msgNotifyEventCountPerPush, default 100) are
        # retried msgNotifyEventRetryMaxCount times (default 5) with 1 s between (webhook.go:305-560);
        # user.onlinestatus likewise (563-618); msg.offline is sent once (201-289).
        self.webhooks = CallbackDispatcher(webhook, timeout=30.0) if webhook is not None else None
        self.webhook_retry_max = webhook_retry_max
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_count_per_push = webhook_count_per_push
        self.subscriber_compress_of_count = subscriber_compress_of_count
        self.node_id = node_id
        self._notify_queue: list[dict[str, Any]] = []
        self._status_queue: list[str] = []
        # Simulated client connections (the emulator has no TCP/WebSocket side): id -> (uid, device_flag,
        # device_level), what /user/onlinestatus reports and /user/device_quit ends.
        self._connections: dict[int, tuple[str, int, int]] = {}
        #: The node's ``tokenAuthOn`` (off by default, as in the server's own default configuration): checked by the
        #: JSON-RPC login only (the REST API is guarded by the manager token).
        self.token_auth = False
        self._rpc_sessions: dict[str, list[JsonRpcSession]] = {}  # logged-in JSON-RPC connections by uid
        self._last_conn_id = 0
        #: Connections ended by /user/device_quit: id -> the DISCONNECT reason code sent (12, ConnectKick).
        self.kicked: dict[int, int] = {}
        self.manager_token = manager_token or None
        self.store = Store(store)
        self.clock: Clock = clock or SystemClock()
        self.store_delay_requests = store_delay_requests
        #: What ``GET /varz`` reports as ``version`` (the real server: its ``-X main.Version`` ldflag).
        self.version = version
        self._started = self.clock.monotonic()
        self._pending: list[_Pending] = []
        # Channels whose store stalled (stall_channel): conversation -> (how many messages the stuck batch takes,
        # the messages in it), which only byclientmsgno answers.
        self._stalled: dict[str, tuple[int, list[MessageRow]]] = {}
        self._last_id = 0
        self._lock = threading.RLock()
        with self.store.sqlite_write() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            row = db.execute("SELECT MAX(CAST(key AS INTEGER)) FROM messages").fetchone()
            self._last_id = int(row[0] or 0)
        self._routes: dict[tuple[str, str], Callable[[EmulatorRequest], EmulatorReply]] = {
            ("GET", "/health"): lambda _r: _reply({"status": "ok"}),
            ("GET", "/varz"): self._varz,
            ("POST", "/user/token"): self._user_token,
            ("POST", "/user/device_quit"): self._device_quit,
            ("POST", "/user/onlinestatus"): self._online_status,
            ("POST", "/channel"): self._channel_create,
            ("POST", "/channel/info"): self._channel_info,
            ("POST", "/channel/delete"): self._channel_delete,
            ("POST", "/channel/subscriber_add"): self._subscriber_add,
            ("POST", "/channel/subscriber_remove"): self._subscriber_remove,
            ("POST", "/channel/subscriber_remove_all"): self._subscriber_remove_all,
            ("POST", "/channel/blacklist_add"): lambda r: self._list_add(r, "denylist", _BLACKLIST),
            ("POST", "/channel/blacklist_set"): lambda r: self._list_set(r, "denylist", _BLACKLIST),
            ("POST", "/channel/blacklist_remove"): lambda r: self._list_remove(r, "denylist", _BLACKLIST),
            ("POST", "/channel/blacklist_remove_all"): lambda r: self._list_remove_all(r, "denylist"),
            ("POST", "/channel/whitelist_add"): lambda r: self._list_add(r, "allowlist", _WHITELIST),
            ("POST", "/channel/whitelist_set"): lambda r: self._list_set(r, "allowlist", _WHITELIST),
            ("POST", "/channel/whitelist_remove"): lambda r: self._list_remove(r, "allowlist", _WHITELIST),
            ("POST", "/channel/whitelist_remove_all"): lambda r: self._list_remove_all(r, "allowlist"),
            ("GET", "/channel/whitelist"): self._whitelist_get,
            ("POST", "/message/send"): self._send,
            ("POST", "/message/sendbatch"): self._send_batch,
            ("POST", "/channel/messagesync"): self._messagesync,
            ("POST", "/messages"): self._search_messages,
            ("POST", "/message"): self._search_message,
            ("GET", "/message/byclientmsgno"): self._by_client_msg_no,
            ("GET", "/channel/max_message_seq"): self._max_message_seq,
            ("GET", "/channel/last_message"): self._last_message,
            ("GET", "/cluster/channels"): self._cluster_channels,
            ("GET", "/cluster/users"): self._cluster_users,
            ("GET", "/cluster/devices"): self._cluster_devices,
            # conversations (issue 16)
            ("POST", "/conversation/sync"): self._conversation_sync,
            ("POST", "/conversation/syncByChannels"): self._conversation_sync_by_channels,
            ("POST", "/conversations/clearUnread"): self._conversation_clear_unread,
            ("POST", "/conversations/setUnread"): self._conversation_set_unread,
            ("POST", "/conversations/delete"): self._conversation_delete,
        }

    # -- construction and plumbing ---------------------------------------------------------------

    @classmethod
    def for_client(cls, settings: Mapping[str, Any], **options: Any) -> WukongEmulator:
        """An emulator that accepts an imbridge client configured with these WukongSettings-style keys
        (``manager_token``). The client's own ``store`` is imbridge's, not the server's, so the emulator
        keeps its state in memory; sends are stored one request late, so clients must confirm them."""
        token = settings.get("manager_token")
        if token is not None and hasattr(token, "get_secret_value"):
            token = token.get_secret_value()
        return cls(manager_token=str(token) if token else None, **{"store_delay_requests": 1, **options})

    def transport(self) -> EmulatorTransport:
        """An httpx transport (sync and async) answering from this emulator in process."""
        return EmulatorTransport(self)

    def close(self) -> None:
        if self.webhooks is not None:
            self.webhooks.close()
        self.store.close()

    def drain_callbacks(self, timeout: float = 10.0) -> bool:
        """Store what was accepted (:meth:`flush`), then wait until every webhook queued so far was
        delivered (or given up); True if all were."""
        self.flush()
        return self.webhooks.drain(timeout) if self.webhooks is not None else True

    def flush(self) -> None:
        """Store every accepted message now (what the real server does within a few milliseconds)."""
        with self._lock:
            pending, self._pending = self._pending, []
            for message in pending:
                self._persist(message)

    def _now_ns(self) -> int:
        return int(self.clock.now().timestamp() * 1e9)

    def connect(self, uid: str, device_flag: int = 0, *, master: bool = True) -> int:
        """Simulate a client connection of ``uid`` on ``device_flag``; returns its connection id. Like the
        real server with token auth on, it needs the token of that uid and device flag not to be blank
        (a device_quit blanks it, api/user.go:93-116). Sends user.onlinestatus as the server does when a
        device comes online."""
        with self._lock:
            with self.store.sqlite_write() as db:
                row = db.execute(
                    "SELECT token FROM wukong_emu_devices WHERE uid = ? AND device_flag = ?", (uid, device_flag)
                ).fetchone()
            if row is None or not row["token"]:
                raise ValueError(f"{uid!r} has no token for device_flag {device_flag}: the server would not answer")
            return self._add_connection(uid, device_flag, 1 if master else 0)

    def _add_connection(self, uid: str, device_flag: int, level: int) -> int:
        """A new live connection (simulated, or a JSON-RPC one): its id, with user.onlinestatus sent."""
        self._last_conn_id += 1
        self._connections[self._last_conn_id] = (uid, device_flag, level)
        self._status(uid, device_flag, True, self._last_conn_id)
        return self._last_conn_id

    def disconnect(self, conn_id: int) -> None:
        """End a simulated connection as its client would (user.onlinestatus with online 0)."""
        with self._lock:
            uid, flag, _ = self._connections.pop(conn_id)
            self._status(uid, flag, False, conn_id)

    def connections(self, uid: str) -> list[int]:
        """The ids of ``uid``'s live simulated connections."""
        with self._lock:
            return [conn for conn, (u, _flag, _level) in self._connections.items() if u == uid]

    def jsonrpc(self, push: Callable[[dict[str, Any]], None]) -> JsonRpcSession:
        """A new connection to the node's JSON-RPC WebSocket (its ``wsAddr``); ``push`` writes a frame to it unasked
        (a ``recv`` notification). :func:`imbridge.emulators.serve_jsonrpc` serves these over a real WebSocket."""
        return JsonRpcSession(self, push)

    def _rpc_permission(self, uid: str, channel_id: str, channel_type: int) -> int:
        """The reason code the node's permission steps give a client's send, in their order
        (internal/service/permission.go): the channel's ban (19) and disband (24), then the sender on its denylist
        (4), not a subscriber (3; a group that does not exist has none: recording.json scenario 06), not on a
        non-empty allowlist (13). A person chat checks the recipient's denylist only (scenario 07; its allowlist
        is off by default, whitelistOffOfPerson)."""
        if channel_type == GROUP:
            row = self._channel_row(GROUP, channel_id)
            if row is not None and row["ban"]:
                return wire.REASON_BAN
            if row is not None and row["disband"]:
                return wire.REASON_DISBAND
            if uid in self._list(GROUP, channel_id, "denylist"):
                return wire.REASON_IN_BLACKLIST
            if uid not in self._list(GROUP, channel_id, "subscribers"):
                return wire.REASON_SUBSCRIBER_NOT_EXIST
            allowed = self._list(GROUP, channel_id, "allowlist")
            if allowed and uid not in allowed:
                return wire.REASON_NOT_IN_WHITELIST
        elif uid in self._list(PERSON, channel_id, "denylist"):
            return wire.REASON_IN_BLACKLIST
        return 1

    def _rpc_recipients(self, uid: str, channel_id: str, channel_type: int) -> list[str]:
        if channel_type == PERSON:
            return [channel_id]
        return [member for member in self._list(GROUP, channel_id, "subscribers") if member != uid]

    def _tick(self) -> None:
        """Each request brings every accepted message one step closer to being stored."""
        due = []
        for message in self._pending:
            message.countdown -= 1
            if message.countdown <= 0:
                due.append(message)
        if due:
            self._pending = [m for m in self._pending if m.countdown > 0]
            for message in due:
                self._persist(message)

    def handle(self, request: EmulatorRequest) -> EmulatorReply:
        with self._lock:
            self._tick()
            if self.manager_token is not None and request.headers.get("token") != self.manager_token:
                return EmulatorReply(401, b"", {})
            if request.method == "OPTIONS":
                return EmulatorReply(204, b"", {})  # CORS preflight (with the token, as the server wants)
            handler = self._routes.get((request.method, request.path))
            if handler is None:
                match = _CLUSTER_LIST.match(request.path) if request.method == "GET" else None
                if match is None:
                    return EmulatorReply(404, b"404 page not found", {"content-type": "text/plain"})
                handler = lambda _r: self._cluster_list(match.group(1), _uint8(match.group(2)), match.group(3))  # noqa: E731
            try:
                return handler(request)
            except _BadRequest as error:
                body = json.dumps({"msg": error.msg, "status": 400}, ensure_ascii=False, separators=(",", ":"))
                return EmulatorReply(400, body.encode(), {"content-type": error.content_type})
            except (sqlite3.Error, ServiceUnavailableError, ValueError, KeyError, TypeError):
                return EmulatorReply(500, b"", {})  # gin's recovery: a panic is an empty 500

    # -- state: channels ---------------------------------------------------------------------------

    def _channel_row(self, channel_type: int, channel_id: str) -> sqlite3.Row | None:
        with self.store.sqlite_write() as db:
            row: sqlite3.Row | None = db.execute(
                "SELECT * FROM wukong_emu_channels WHERE channel_type = ? AND channel_id = ?",
                (channel_type, channel_id),
            ).fetchone()
        return row

    def _ensure_channel(self, db: SQLiteWriter, channel_type: int, channel_id: str) -> None:
        db.execute(
            "INSERT OR IGNORE INTO wukong_emu_channels (channel_type, channel_id) VALUES (?, ?)",
            (channel_type, channel_id),
        )

    def _configure(self, channel_type: int, channel_id: str) -> None:
        """Give the channel a cluster config (what makes max_message_seq/last_message answer)."""
        with self.store.sqlite_write() as db:
            self._ensure_channel(db, channel_type, channel_id)
            db.execute(
                "UPDATE wukong_emu_channels SET configured = 1 WHERE channel_type = ? AND channel_id = ?",
                (channel_type, channel_id),
            )

    def _configured(self, channel_type: int, channel_id: str) -> bool:
        row = self._channel_row(channel_type, channel_id)
        return bool(row is not None and row["configured"])

    def _write_info(self, channel_type: int, channel_id: str, flags: Mapping[str, Any]) -> None:
        """addOrUpdateChannel: every flag is overwritten (an omitted one becomes 0); created_at stays what the
        first write set (verified: /channel/info after /channel moves updated_at only)."""
        now = self._now_ns()
        values = [1 if flags.get(flag) == 1 else 0 for flag in _FLAGS]
        with self.store.sqlite_write() as db:
            self._ensure_channel(db, channel_type, channel_id)
            db.execute(
                "UPDATE wukong_emu_channels SET info = 1, large = ?, ban = ?, disband = ?, send_ban = ?, "
                "allow_stranger = ?, created_at = CASE WHEN created_at > 0 THEN created_at ELSE ? END, "
                "updated_at = ? WHERE channel_type = ? AND channel_id = ?",
                (*values, now, now, channel_type, channel_id),
            )

    def _has_info(self, channel_type: int, channel_id: str) -> bool:
        row = self._channel_row(channel_type, channel_id)
        return bool(row is not None and row["info"])

    def _list(self, channel_type: int, channel_id: str, which: str) -> list[str]:
        if which == "subscribers":
            return [m.user_id for m in self.store.members(_member_key(channel_type, channel_id))]
        with self.store.sqlite_write() as db:
            rows = db.execute(
                "SELECT uid FROM wukong_emu_lists WHERE channel_type = ? AND channel_id = ? AND list = ? "
                "ORDER BY added_at, id",
                (channel_type, channel_id, which),
            ).fetchall()
        return [row["uid"] for row in rows]

    # -- state: messages ---------------------------------------------------------------------------

    def _next_message_id(self) -> int:
        now_ms = int(self.clock.now().timestamp() * 1000)
        candidate = ((now_ms - _SNOWFLAKE_EPOCH_MS) << 22) | (1 << 12)
        self._last_id = max(self._last_id + 1, candidate)
        return self._last_id

    def _accept(
        self, *, from_uid: str, channel_id: str, channel_type: int, client_msg_no: str, payload: bytes,
        header: Mapping[str, Any], expire: int, setting: int = 0,
    ) -> int:  # fmt: skip
        """What sendMessageToChannel does synchronously: an id, and the message handed to the pipeline."""
        message_id = self._next_message_id()
        stored_id = wire.fake_channel_id(from_uid, channel_id) if channel_type == PERSON else channel_id
        if header.get("sync_once") == 1:
            stored_id += _CMD_SUFFIX  # a command message goes to the channel's cmd twin
        if header.get("no_persist") == 1 or channel_type == 0:
            return message_id  # answered, never stored
        row = self._channel_row(channel_type, stored_id)
        if row is None or not (row["ban"] or row["disband"]):
            self._configure(channel_type, stored_id)
        message = _Pending(self.store_delay_requests, message_id, channel_type, stored_id, from_uid, client_msg_no,
                           payload, expire, setting, 1 if header.get("red_dot") == 1 else 0,
                           1 if header.get("sync_once") == 1 else 0, channel_id)  # fmt: skip
        if message.countdown <= 0:
            self._persist(message)
        else:
            self._pending.append(message)
        return message_id

    def stall_channel(self, channel_type: int, stored_id: str, batch: int = 1) -> None:
        """Make the channel's store stall as a real v2.2.5 single node's did under load (2026-12-02: the server
        logged ``propose batch until applied timeout``, then ``store message failed: context deadline exceeded``
        every 5 s, until it was restarted). Sends keep being answered with a message id. The ``batch`` messages
        that next reach the stalled store (the raft proposal that never applied) are answered by ``GET
        /message/byclientmsgno`` at seqs N+1, N+2, ... while ``/channel/messagesync`` and
        ``/channel/max_message_seq`` stay at N; every later message is lost, found by no route. Seen with sends
        made one at a time: one such message per stall, on four channels (N = 518, 736, 670 and 34), an hour
        later too; with 64 in flight: 19 (the history listed 605 messages, the lookups found 624; the log's
        first timed-out proposal was raft index 606). ``stored_id`` is the id the channel is stored under (the
        fake ``a@b`` id of a person chat)."""
        if batch < 0:
            raise ValueError("batch must be >= 0")
        with self._lock:
            self._stalled.setdefault(_conversation(channel_type, stored_id), (batch, []))

    def _persist(self, message: _Pending) -> int:
        """The pipeline's end: the stored message's seq; 0 when a banned or disbanded channel drops it silently, or
        its channel's store stalled (stall_channel)."""
        row = self._channel_row(message.channel_type, message.stored_id)
        if row is not None and (row["ban"] or row["disband"]):
            return 0
        conversation = _conversation(message.channel_type, message.stored_id)
        if conversation in self._stalled:
            batch, stuck = self._stalled[conversation]
            if len(stuck) < batch:  # in the proposal that never applied: found by key at the next seq
                stuck.append(MessageRow(
                    conversation, self._last_seq(conversation) + 1 + len(stuck), str(message.message_id),
                    message.from_uid, [],
                    {"client_msg_no": message.client_msg_no, "channel_id": message.stored_id,
                     "channel_type": message.channel_type, "payload": base64.b64encode(message.payload).decode(),
                     "expire": message.expire, "setting": message.setting, "red_dot": message.red_dot},
                    self.clock.now().timestamp(), None, False,
                ))  # fmt: skip
            return 0
        stored, _ = self.store.append_message(
            conversation, key=str(message.message_id), sender=message.from_uid, elements=[],
            metadata={"client_msg_no": message.client_msg_no, "channel_id": message.stored_id,
                      "channel_type": message.channel_type, "payload": base64.b64encode(message.payload).decode(),
                      "expire": message.expire, "setting": message.setting, "red_dot": message.red_dot},
            time=self.clock.now().timestamp(), dedupe=None,
        )  # fmt: skip
        with self.store.sqlite_write() as db:
            db.execute(
                "INSERT OR IGNORE INTO wukong_emu_client_msg_nos (conversation, client_msg_no, seq) VALUES (?, ?, ?)",
                (conversation, message.client_msg_no, stored.seq),
            )
        self._push_conversation(message, stored.seq)
        if self.webhooks is not None:
            self._message_webhooks(message, stored)
        return stored.seq

    # -- webhooks ----------------------------------------------------------------------------------

    def _message_webhooks(self, message: _Pending, stored: MessageRow) -> None:
        """msg.notify for every stored message (event_persist.go:90-100 -> webhook.go:291-303), and
        msg.offline for the recipients with no master device online, the sender filtered out
        (event_distribute.go:136-146, 178-199 -> webhook.go:243-289).

        A command message (``sync_once``, stored in the twin ``<id>____cmd``) is reported like any other: in
        msg.notify with the twin's id rendered as ``MessageResp.From`` renders it and its header kept
        (``sync_once: 1``), and in msg.offline to the original channel's subscribers (makeChannelTag,
        event_distribute.go:291-330), under the channel id the send named. Both as the real server POSTed them
        for imbridge's revoke notices (tests/fixtures/wukong/webhooks/recording.json, 2026-12-02)."""
        rendered = self._render(stored)
        rendered["header"] = {"no_persist": 0, "red_dot": message.red_dot, "sync_once": message.sync_once}
        self._notify_queue.append(rendered)
        dispatcher = self.webhooks
        assert dispatcher is not None
        dispatcher.enqueue(self._push_notify)
        original = message.stored_id.removesuffix(_CMD_SUFFIX)
        if message.channel_type == PERSON:
            parts = original.split("@")
            members = [uid for uid in parts if uid != message.from_uid] or parts[:1]
        elif message.channel_type == GROUP:
            members = self._list(GROUP, original, "subscribers")
        else:
            return
        masters_online = {uid for uid, _flag, level in self._connections.values() if level == 1}
        offline = [uid for uid in members if uid != SYSTEM_UID and uid not in masters_online]
        if not offline:
            return
        to_uids = list(dict.fromkeys(uid for uid in offline if uid != message.from_uid))
        # MessageResp of the send packet: its channel id and header are the ones sent (the recipient, for a
        # person message), its timestamp the time of the webhook (webhook.go:264-282).
        body: dict[str, Any] = {
            **rendered, "channel_id": message.sent_id or rendered["channel_id"],
            "timestamp": int(self.clock.now().timestamp()), "to_uids": to_uids,
        }  # fmt: skip
        if 0 < self.subscriber_compress_of_count < len(to_uids):
            packed = gzip.compress(json.dumps(to_uids, separators=(",", ":")).encode())
            body.update(to_uids=[], compress="gzip", compress_to_uids=base64.b64encode(packed).decode())
        if self.node_id:
            body["source_id"] = self.node_id
        callback = Callback({"event": "msg.offline"}, json.dumps(body, ensure_ascii=False).encode())
        dispatcher.enqueue(dispatcher.deliverer(callback))

    def _push_notify(self) -> None:
        """One msg.notify POST of the messages waiting (at most the per-push count), retried as configured."""
        with self._lock:
            batch = self._notify_queue[: self.webhook_count_per_push]
            del self._notify_queue[: len(batch)]
        if batch and self.webhooks is not None:
            body = json.dumps(batch, ensure_ascii=False).encode()
            self.webhooks.deliver(Callback({"event": "msg.notify"}, body, attempts=self.webhook_retry_max,
                                           retry_delay=self.webhook_retry_delay))  # fmt: skip

    def _push_status(self) -> None:
        with self._lock:
            batch, self._status_queue = self._status_queue, []
        if batch and self.webhooks is not None:
            body = json.dumps(batch, ensure_ascii=False).encode()
            self.webhooks.deliver(Callback({"event": "user.onlinestatus"}, body, attempts=self.webhook_retry_max,
                                           retry_delay=self.webhook_retry_delay))  # fmt: skip

    def _status(self, uid: str, device_flag: int, online: bool, conn_id: int) -> None:
        devices = sum(1 for u, flag, _ in self._connections.values() if u == uid and flag == device_flag)
        total = sum(1 for u, _, _ in self._connections.values() if u == uid)
        # "<uid>-<deviceFlag>-<online>-<connId>-<deviceOnlineCount>-<totalOnlineCount>" (webhook.go:180-198)
        self._status_queue.append(f"{uid}-{device_flag}-{int(online)}-{conn_id}-{devices}-{total}")
        if self.webhooks is not None:
            self.webhooks.enqueue(self._push_status)

    def _last_seq(self, conversation: str) -> int:
        rows = self.store.messages(conversation, limit=1, descending=True)
        return rows[0].seq if rows else 0

    def _range(self, conversation: str, low: int, high_exclusive: int, limit: int) -> list[MessageRow]:
        """Seqs in [low, high) ascending, at most ``limit`` (0 = all), as pebble's iterator yields them."""
        if high_exclusive <= low:
            return []
        return self.store.messages(
            conversation, after=low - 1, before=high_exclusive, limit=limit if limit > 0 else -1, descending=False
        )

    def _by_seq(self, conversation: str, seq: int) -> MessageRow | None:
        rows = self.store.messages(conversation, after=seq - 1, before=seq + 1, limit=1)
        return rows[0] if rows else None

    def _client_msg_no_seq(self, conversation: str, client_msg_no: str, *, last: bool) -> int | None:
        with self.store.sqlite_write() as db:
            row = db.execute(
                f"SELECT {'MAX' if last else 'MIN'}(seq) FROM wukong_emu_client_msg_nos "
                "WHERE conversation = ? AND client_msg_no = ?",
                (conversation, client_msg_no),
            ).fetchone()
        return int(row[0]) if row[0] is not None else None

    @staticmethod
    def _render(row: MessageRow, *, header: bool = False) -> dict[str, Any]:
        """``MessageResp.From``: the system sender reads as ""; a person message's channel_id is the last
        part of the fake id that is not the (rendered) sender.

        ``header``: whether the stored header flags survive the read. ``iteratorChannelMessagesDirection``
        (pkg/wkdb/message.go:1211-1228) calls ``iter.First()`` and then ``iter.Next()`` before reading the
        first key, so the first message of every forward read loses its first column, the header: single
        reads (by seq, id or client_msg_no) and the oldest message of a range read back with every flag 0."""
        meta = row.metadata
        from_uid = "" if row.sender == SYSTEM_UID else row.sender
        channel_id = str(meta["channel_id"])
        channel_type = int(meta["channel_type"])
        if channel_type == PERSON and "@" in channel_id:
            for part in channel_id.split("@"):
                if part != from_uid:
                    channel_id = part
        message_id = int(row.key)
        flags = {**_ZERO_HEADER, "red_dot": int(meta.get("red_dot", 0))} if header else dict(_ZERO_HEADER)
        return {
            "header": flags, "setting": meta.get("setting", 0), "message_id": message_id,
            "message_idstr": str(message_id), "client_msg_no": meta["client_msg_no"], "message_seq": row.seq,
            "from_uid": from_uid, "channel_id": channel_id, "channel_type": channel_type,
            "expire": meta.get("expire", 0), "timestamp": int(row.time), "payload": meta["payload"],
        }  # fmt: skip

    # -- users -------------------------------------------------------------------------------------

    def _varz(self, _request: EmulatorRequest) -> EmulatorReply:
        """``GET /varz`` (internal/api/varz.go:41-76, ``CreateVarz`` :89-136): the ``Varz`` struct's fields in its
        order, with this emulator's addresses and zero load; ``manager_token_on`` from the token it requires.
        The key set is compared with a real server's answer in tests/deploy/test_health.py."""
        uptime = int(self.clock.monotonic() - self._started)
        return _reply({
            "server_id": "1001", "server_name": "WuKongIM", "version": self.version, "connections": 0,
            "user_handler_count": 0, "user_handler_conn_count": 0, "uptime": f"{uptime // 60}m{uptime % 60}s",
            "goroutine": 0, "mem": 0, "cpu": 0, "in_msgs": 0, "out_msgs": 0, "in_bytes": 0, "out_bytes": 0,
            "slow_clients": 0, "retry_queue": 0, "tcp_addr": "127.0.0.1:5100", "ws_addr": "ws://127.0.0.1:5200",
            "wss_addr": "", "manager_addr": "", "manager_on": 0, "commit": "", "commit_date": "", "tree_state": "",
            "api_url": "", "manager_uid": "____manager", "manager_token_on": int(self.manager_token is not None),
            "conversation_cache_count": 0,
        })  # fmt: skip

    def _user_token(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _USER_TOKEN)
        uid, token = req.get("uid") or "", req.get("token") or ""
        if uid == "":
            raise _BadRequest("uid不能为空！")
        if token == "":
            raise _BadRequest("token不能为空！")
        if _special(uid):
            raise _BadRequest("uid不能包含特殊字符！")
        if uid == SYSTEM_UID:
            raise _BadRequest("系统账号不允许更新token！")
        person = self._channel_row(PERSON, uid)
        if person is not None and person["ban"]:
            return _reply({"status": wire.REASON_BAN})
        if person is not None and person["disband"]:
            return _reply({"status": wire.REASON_DISBAND})
        now = self._now_ns()
        self.store.add_users([uid], now / 1e9)
        with self.store.sqlite_write() as db:
            db.execute(
                "INSERT INTO wukong_emu_devices (uid, device_flag, device_level, token, id, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uid, device_flag) DO UPDATE SET "
                "device_level = excluded.device_level, token = excluded.token, updated_at = excluded.updated_at",
                (uid, req.get("device_flag") or 0, req.get("device_level") or 0, token, self._next_message_id(), now,
                 now),
            )  # fmt: skip
        return _reply({"status": 200})

    def _device_quit(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _DEVICE_QUIT)
        uid, flag = req.get("uid") or "", req.get("device_flag") or 0
        if uid == "":
            return EmulatorReply(500, b"", {})  # verified: an empty uid panics in the slot lookup (recovered, 500)
        # -1 quits APP, WEB and PC; any other value that one flag (api/user.go:80-86). For each device that
        # has a token: blank it (a blank token never logs in), DISCONNECT its connections with ConnectKick
        # (12) and close them (api/user.go:93-131). Unknown uids and devices are not errors.
        flags = [0, 1, 2] if flag == -1 else [flag]
        with self.store.sqlite_write() as db:
            for device_flag in flags:
                db.execute(
                    "UPDATE wukong_emu_devices SET token = '', device_level = 1 WHERE uid = ? AND device_flag = ?",
                    (uid, device_flag),
                )
        for conn_id, (conn_uid, conn_flag, _level) in list(self._connections.items()):
            if conn_uid == uid and conn_flag in flags:
                del self._connections[conn_id]
                self.kicked[conn_id] = wire.REASON_CONNECT_KICK
                self._status(conn_uid, conn_flag, False, conn_id)
        return _reply({"status": 200})

    def _online_status(self, request: EmulatorRequest) -> EmulatorReply:
        """``POST /user/onlinestatus`` with a JSON array of uids: one entry per live connection, offline uids
        absent; an empty (or null) array answers ``{"status":200}`` (api/user.go:134-156, 236-251)."""
        uids = _bind_string_list(request.body)
        if not uids:
            return _reply({"status": 200})
        wanted = set(uids)
        rows = [
            {"uid": uid, "device_flag": flag, "online": 1}
            for uid in dict.fromkeys(uids)
            for conn_uid, flag, _level in self._connections.values()
            if conn_uid == uid and uid in wanted
        ]
        return _reply(rows)

    def _cluster_users(self, request: EmulatorRequest) -> EmulatorReply:
        uid = (request.query.get("uid") or "").strip()
        with self.store.sqlite_write() as db:
            if uid:
                rows = db.execute("SELECT id, created_at FROM users WHERE id = ?", (uid,)).fetchall()
                if not rows:
                    return EmulatorReply(500, b"", {})  # the real server panics on an unknown uid
            else:
                rows = db.execute("SELECT id, created_at FROM users ORDER BY created_at DESC LIMIT ?",
                                  (_PAGE_SIZE + 1,)).fetchall()  # fmt: skip
        data = []
        for row in rows[:_PAGE_SIZE]:
            created = int(row["created_at"] * 1e9)
            data.append({
                "id": _fnv64a(row["id"]), "uid": row["id"], "device_count": 0, "online_device_count": 0,
                "conn_count": 0, "send_msg_count": 0, "recv_msg_count": 0, "send_msg_bytes": 0,
                "recv_msg_bytes": 0, "created_at": created, "updated_at": created,
                "created_at_format": _minute(created), "updated_at_format": _minute(created), "slot": _slot(row["id"]),
            })  # fmt: skip
        return _reply({"total": 0, "more": int(len(rows) > _PAGE_SIZE), "data": data})

    def _cluster_devices(self, request: EmulatorRequest) -> EmulatorReply:
        uid = (request.query.get("uid") or "").strip()
        with self.store.sqlite_write() as db:
            rows = db.execute(
                "SELECT * FROM wukong_emu_devices WHERE (? = '' OR uid = ?) ORDER BY created_at DESC, id DESC LIMIT ?",
                (uid, uid, _PAGE_SIZE),
            ).fetchall()
        data = [
            {
                "id": row["id"], "uid": row["uid"], "token": row["token"], "device_flag": row["device_flag"],
                "device_flag_format": _DEVICE_FLAGS.get(row["device_flag"], ""), "device_level": row["device_level"],
                "device_level_format": "主设备" if row["device_level"] == 1 else "从设备", "conn_count": 0,
                "send_msg_count": 0, "recv_msg_count": 0, "send_msg_bytes": 0, "recv_msg_bytes": 0,
                "created_at": row["created_at"], "updated_at": row["updated_at"],
                "created_at_format": _minute(row["created_at"]), "updated_at_format": _minute(row["updated_at"]),
            }
            for row in rows
        ]  # fmt: skip
        return _reply({"total": 0, "more": 0, "data": data})

    # -- channels, subscribers, lists ------------------------------------------------------------

    def _channel_create(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _CHANNEL_CREATE)
        channel_id, channel_type = req.get("channel_id") or "", req.get("channel_type") or 0
        subscribers = req.get("subscribers") or []
        if _is_blank(channel_id):
            raise _BadRequest("频道ID不能为空！")
        if channel_type == 0:
            raise _BadRequest("频道类型错误！")
        if _special(channel_id):
            raise _BadRequest("频道ID不能包含特殊字符！")
        if channel_type == PERSON and subscribers:
            raise _BadRequest("不支持个人频道添加订阅者！")
        self._write_info(channel_type, channel_id, req)
        self._add_subscribers(channel_type, channel_id, subscribers, reset=req.get("reset") == 1)
        return _reply({"status": 200})

    def _add_subscribers(self, channel_type: int, channel_id: str, uids: Sequence[str], *, reset: bool) -> None:
        key = _member_key(channel_type, channel_id)
        if reset:
            self.store.remove_members(key, self._list(channel_type, channel_id, "subscribers"))
        if uids:
            self.store.add_members(key, [(uid, "member") for uid in uids], self._now_ns() / 1e9)
            self._configure(channel_type, channel_id)
            self._subscriber_conversations(channel_type, channel_id, uids)

    def _channel_info(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _CHANNEL_INFO)  # no validation at all on this route (FACTS §3)
        self._write_info(req.get("channel_type") or 0, req.get("channel_id") or "", req)
        return _reply({"status": 200})

    def _channel_delete(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _CHANNEL_DELETE)
        channel_id, channel_type = req.get("channel_id") or "", req.get("channel_type") or 0
        if channel_type == PERSON:
            raise _BadRequest("个人频道不支持添加订阅者！")  # sic: the server's own text
        if self._has_info(channel_type, channel_id):  # unknown channel: 200 and nothing happens
            with self.store.sqlite_write() as db:
                db.execute(
                    "UPDATE wukong_emu_channels SET disband = 1, updated_at = ? "
                    "WHERE channel_type = ? AND channel_id = ?",
                    (self._now_ns(), channel_type, channel_id),
                )  # messages, subscribers and lists stay
        return _reply({"status": 200})

    @staticmethod
    def _check_subscribers(req: Mapping[str, Any]) -> tuple[str, int, list[str]]:
        channel_id, channel_type = req.get("channel_id") or "", req.get("channel_type") or 0
        subscribers = req.get("subscribers") or []
        if _is_blank(channel_id):
            raise _BadRequest("频道ID不能为空！")
        if _special(channel_id):
            raise _BadRequest("频道ID不能包含特殊字符！")
        if all(_is_blank(uid) for uid in subscribers):
            raise _BadRequest("订阅者不能为空！")
        return channel_id, channel_type, subscribers

    def _subscriber_add(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _SUBSCRIBER_ADD)
        channel_id, channel_type, subscribers = self._check_subscribers(req)
        if channel_type == PERSON:
            raise _BadRequest("个人频道不支持添加订阅者！")
        if req.get("temp_subscriber") == 1:
            raise _BadRequest("新版本临时订阅者已不支持！")
        channel_type = channel_type or GROUP
        with self.store.sqlite_write() as db:  # an unknown channel gets an info record with created_at 0
            self._ensure_channel(db, channel_type, channel_id)
            db.execute(
                "UPDATE wukong_emu_channels SET info = 1 WHERE channel_type = ? AND channel_id = ?",
                (channel_type, channel_id),
            )
        self._add_subscribers(channel_type, channel_id, subscribers, reset=req.get("reset") == 1)
        return _reply({"status": 200})

    def _subscriber_remove(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _SUBSCRIBER_REMOVE)
        channel_id, channel_type, subscribers = self._check_subscribers(req)
        if channel_type == PERSON:
            raise _BadRequest("个人频道不支持添加订阅者！")
        self.store.remove_members(_member_key(channel_type, channel_id), subscribers)
        self._configure(channel_type, channel_id)
        return _reply({"status": 200})

    def _subscriber_remove_all(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _CHANNEL_REQ_WRAP)
        channel_id, channel_type = self._check_channel_req(req)
        if channel_type == PERSON:
            raise _BadRequest("个人频道不支持此操作！")
        key = _member_key(channel_type, channel_id)
        self.store.remove_members(key, [m.user_id for m in self.store.members(key)])
        return _reply({"status": 200})

    @staticmethod
    def _check_channel_req(req: Mapping[str, Any]) -> tuple[str, int]:
        channel_id, channel_type = req.get("channel_id") or "", req.get("channel_type") or 0
        if channel_id == "":
            raise _BadRequest("channel_id不能为空！")
        if channel_type == 0:
            raise _BadRequest("频道类型不能为0！")
        return channel_id, channel_type

    def _check_list_req(self, req: Mapping[str, Any], which: str) -> tuple[str, int, list[str]]:
        channel_id, channel_type, uids = (
            req.get("channel_id") or "",
            req.get("channel_type") or 0,
            req.get("uids") or [],
        )
        if channel_id == "":
            raise _BadRequest("channel_id不能为空！")
        if which == "allowlist" and _special(channel_id):
            raise _BadRequest("频道ID不能包含特殊字符！")  # the denylist routes have no such check
        if channel_type == 0:
            raise _BadRequest("频道类型不能为0！")
        if (which == "allowlist" and all(_is_blank(uid) for uid in uids)) or not uids:
            raise _BadRequest("uids不能为空！")
        return channel_id, channel_type, uids

    def _put_list(self, channel_type: int, channel_id: str, which: str, uids: Sequence[str]) -> None:
        now = self._now_ns()
        with self.store.sqlite_write() as db:
            self._ensure_channel(db, channel_type, channel_id)
            for uid in uids:
                db.execute(
                    "INSERT OR IGNORE INTO wukong_emu_lists (channel_type, channel_id, list, uid, id, added_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (channel_type, channel_id, which, uid, self._next_message_id(), now),
                )
            if which == "denylist":  # the real counter over-counts duplicate adds (FACTS §3)
                db.execute(
                    "UPDATE wukong_emu_channels SET denylist_count = denylist_count + ? "
                    "WHERE channel_type = ? AND channel_id = ?",
                    (len(uids), channel_type, channel_id),
                )

    def _drop_list(self, channel_type: int, channel_id: str, which: str, uids: Sequence[str] | None) -> None:
        with self.store.sqlite_write() as db:
            if uids is None:
                db.execute(
                    "DELETE FROM wukong_emu_lists WHERE channel_type = ? AND channel_id = ? AND list = ?",
                    (channel_type, channel_id, which),
                )
                removed = None
            else:
                removed = 0
                for uid in uids:
                    removed += db.execute(
                        "DELETE FROM wukong_emu_lists "
                        "WHERE channel_type = ? AND channel_id = ? AND list = ? AND uid = ?",
                        (channel_type, channel_id, which, uid),
                    ).rowcount
            if which == "denylist":
                db.execute(
                    "UPDATE wukong_emu_channels SET denylist_count = "
                    + ("0" if removed is None else "MAX(denylist_count - ?, 0)")
                    + " WHERE channel_type = ? AND channel_id = ?",
                    (channel_type, channel_id) if removed is None else (removed, channel_type, channel_id),
                )

    def _list_add(self, request: EmulatorRequest, which: str, struct: _Struct) -> EmulatorReply:
        channel_id, channel_type, uids = self._check_list_req(_bind(request.body, struct), which)
        self._put_list(channel_type, channel_id, which, uids)
        return _reply({"status": 200})

    def _list_set(self, request: EmulatorRequest, which: str, struct: _Struct) -> EmulatorReply:
        req = _bind(request.body, struct)
        channel_id, channel_type, uids = (
            req.get("channel_id") or "",
            req.get("channel_type") or 0,
            req.get("uids") or [],
        )
        if _is_blank(channel_id):
            raise _BadRequest("频道ID不能为空！")
        self._drop_list(channel_type, channel_id, which, None)
        if uids:
            self._put_list(channel_type, channel_id, which, uids)
        return _reply({"status": 200})

    def _list_remove(self, request: EmulatorRequest, which: str, struct: _Struct) -> EmulatorReply:
        channel_id, channel_type, uids = self._check_list_req(_bind(request.body, struct), which)
        self._drop_list(channel_type, channel_id, which, uids)
        return _reply({"status": 200})

    def _list_remove_all(self, request: EmulatorRequest, which: str) -> EmulatorReply:
        channel_id, channel_type = self._check_channel_req(_bind(request.body, _CHANNEL_REQ))
        self._drop_list(channel_type, channel_id, which, None)
        return _reply({"status": 200})

    def _whitelist_get(self, request: EmulatorRequest) -> EmulatorReply:
        channel_id, channel_type = request.query.get("channel_id") or "", _uint8(request.query.get("channel_type"))
        with self.store.sqlite_write() as db:
            rows = db.execute(
                "SELECT uid, id, added_at FROM wukong_emu_lists WHERE channel_type = ? AND channel_id = ? "
                "AND list = 'allowlist' ORDER BY added_at, id",
                (channel_type, channel_id),
            ).fetchall()

        def rfc3339(ns: int) -> str:
            return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"

        return _reply(
            [{"id": r["id"], "uid": r["uid"], "created_at": rfc3339(r["added_at"]),
              "updated_at": rfc3339(r["added_at"])} for r in rows]
        )  # fmt: skip

    def _cluster_list(self, channel_id: str, channel_type: int, which: str) -> EmulatorReply:
        return _reply(self._list(channel_type, channel_id, which))

    def _channel_element(self, row: sqlite3.Row | None, *, counts: bool) -> dict[str, Any]:
        if row is None or not row["info"]:
            channel_id, channel_type, ban, disband, created, updated, ident = "", 0, 0, 0, 0, 0, 0
        else:
            channel_id, channel_type = row["channel_id"], row["channel_type"]
            ban, disband, created, updated = row["ban"], row["disband"], row["created_at"], row["updated_at"]
            ident = _channel_num(channel_id, channel_type)
        subscriber_count = allowlist_count = denylist_count = last_seq = last_time = 0
        if counts and row is not None:  # only the scan path fills these; the exact lookup reports 0
            subscriber_count = len(self._list(channel_type, channel_id, "subscribers"))
            allowlist_count = len(self._list(channel_type, channel_id, "allowlist"))
            denylist_count = row["denylist_count"]
            last = self.store.messages(_conversation(channel_type, channel_id), limit=1, descending=True)
            if last:
                last_seq, last_time = last[0].seq, int(last[0].time * 1e9)
        return {
            "id": ident, "slot": _slot(channel_id), "channel_id": channel_id, "channel_type": channel_type,
            "ban": ban, "disband": disband, "subscriber_count": subscriber_count, "allowlist_count": allowlist_count,
            "denylist_count": denylist_count, "last_msg_seq": last_seq, "last_msg_time": last_time,
            "last_msg_time_format": _minute(last_time),
            "status_format": "封禁" if ban else ("解散" if disband else "正常"), "created_at": created,
            "updated_at": updated, "created_at_format": _minute(created), "updated_at_format": _minute(updated),
        }  # fmt: skip

    def _cluster_channels(self, request: EmulatorRequest) -> EmulatorReply:
        query = request.query
        if any((query.get(name) or "").strip() for name in _FILTERS_THAT_PANIC):
            return EmulatorReply(500, b"", {})  # a nil-pointer write in the real handler
        channel_id = (query.get("channel_id") or "").strip()
        channel_type = _uint8(query.get("channel_type"))
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            limit = 0
        limit = limit if limit > 0 else _PAGE_SIZE
        try:
            offset = int(query.get("offset_created_at") or 0)
        except ValueError:
            offset = 0
        if channel_id and channel_type:  # an exact lookup: always one element, counts always 0
            element = self._channel_element(self._channel_row(channel_type, channel_id), counts=False)
            return _reply({"total": 0, "more": 0, "data": [element]})
        # The created-at index scan: channels known only from subscriber_add (created_at 0) are not in it.
        with self.store.sqlite_write() as db:
            rows = db.execute(
                "SELECT * FROM wukong_emu_channels WHERE info = 1 AND created_at > 0 AND (? = '' OR channel_id = ?) "
                "AND (? = 0 OR channel_type = ?) AND (? <= 0 OR created_at < ?) ORDER BY created_at DESC LIMIT ?",
                # offset_created_at: strictly older, newest first (pkg/wkdb/channel.go:196-200, 226-255)
                (channel_id, channel_id, channel_type, channel_type, offset, offset, limit + 1),
            ).fetchall()
        data = [self._channel_element(row, counts=True) for row in rows[:limit]]
        return _reply({"total": 0, "more": int(len(rows) > limit), "data": data})

    # -- messages ----------------------------------------------------------------------------------

    def _send(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _SEND)
        payload: bytes | None = req.get("payload")
        if not payload:
            raise _BadRequest("payload不能为空！")
        header = req.get("header") or {}
        from_uid = req.get("from_uid") or ""
        if _is_blank(from_uid):
            from_uid = SYSTEM_UID
        channel_id, channel_type = req.get("channel_id") or "", req.get("channel_type") or 0
        subscribers = req.get("subscribers") or []
        if _is_blank(channel_id) and not subscribers:
            raise _BadRequest("无法处理发送消息请求！")
        if subscribers and header.get("sync_once") != 1:
            raise _BadRequest("无法处理发送消息请求！")
        if not _is_blank(channel_id) and subscribers:
            raise _BadRequest("无法处理发送消息请求！")
        if subscribers:
            return _reply({"status": 200})  # a command to a temporary channel: no ids, nothing kept
        client_msg_no = req.get("client_msg_no") or ""
        if _is_blank(client_msg_no):
            client_msg_no = _new_client_msg_no()
        if _special(channel_id):
            raise _BadRequest("频道ID不合法！")
        setting = 1 if req.get("is_stream") == 1 else 0
        message_id = self._accept(
            from_uid=from_uid, channel_id=channel_id, channel_type=channel_type, client_msg_no=client_msg_no,
            payload=payload, header=header, expire=req.get("expire") or 0, setting=setting,
        )  # fmt: skip
        return _reply({"data": {"client_msg_no": client_msg_no, "message_id": message_id}, "status": 200})

    def _send_batch(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _SEND_BATCH)
        from_uid = req.get("from_uid") or ""
        if _is_blank(from_uid):
            raise _BadRequest("from_uid不能为空！")
        subscribers = req.get("subscribers") or []
        if not subscribers:
            raise _BadRequest("subscribers不能为空！")
        payload: bytes | None = req.get("payload")
        if not payload:
            raise _BadRequest("payload不能为空！")
        fail_uids: list[str] = []
        reasons: list[str] = []
        for uid in subscribers:  # client_msg_no is ignored: each message gets its own
            if _special(uid):
                fail_uids.append(uid)
                reasons.append("频道ID不合法！")
            elif uid != "":  # an empty uid is neither stored nor reported (FACTS §7)
                self._accept(from_uid=from_uid, channel_id=uid, channel_type=PERSON,
                             client_msg_no=_new_client_msg_no(), payload=payload, header=req.get("header") or {},
                             expire=0)  # fmt: skip
        return _reply({"fail_uids": fail_uids, "reason": reasons})

    def _messagesync(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _SYNC)
        channel_id, login_uid = req.get("channel_id") or "", req.get("login_uid") or ""
        if _is_blank(channel_id):
            raise _BadRequest("channel_id不能为空！")
        if _is_blank(login_uid):
            raise _BadRequest("login_uid不能为空！")
        channel_type = req.get("channel_type") or 0
        start, end = req.get("start_message_seq") or 0, req.get("end_message_seq") or 0
        limit = min(req.get("limit") or 0, _SYNC_LIMIT_CAP)
        pull_up = req.get("pull_mode") == 1
        stored_id = wire.fake_channel_id(login_uid, channel_id) if channel_type == PERSON else channel_id
        self._configure(channel_type, stored_id)  # LeaderOfChannel creates the channel's cluster config
        conversation = _conversation(channel_type, stored_id)
        last = self._last_seq(conversation)
        rows: list[MessageRow] = []
        if start == 0 and end == 0:
            rows = self._prev_range(conversation, last, 0, limit, last) if last else []
        elif pull_up:
            high = end if end != 0 else 2**64
            rows = self._range(conversation, start, min(high, last + 1), limit)
        elif end <= start:
            rows = self._prev_range(conversation, start, end, limit, last)
        messages = [self._render(row, header=index > 0) for index, row in enumerate(rows)]
        more = not len(messages) < limit
        if messages and end != 0:  # the server's own end checks; they never fire in practice
            edge = messages[-1 if pull_up else 0]["message_seq"]
            if edge == end:
                more = False
        return _reply({"start_message_seq": start, "end_message_seq": end, "more": int(more), "messages": messages})

    def _prev_range(self, conversation: str, start: int, end: int, limit: int, last: int) -> list[MessageRow]:
        """``LoadPrevRangeMsgs``: the seq window [max(end+1, start-limit+1), min(start, last)], ascending."""
        ulimit = limit if limit >= 0 else 2**64 + limit  # Go converts limit to uint64
        if end == 0:
            low = 1 if start < ulimit else start - ulimit + 1
        else:
            low = start - ulimit + 1 if start - end > ulimit else end + 1
        high = min(start + 1, last + 1)
        return self._range(conversation, low, high, limit)

    def _search_messages(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _SEARCH_MANY)
        channel_id, channel_type = req.get("channel_id") or "", req.get("channel_type") or 0
        if _is_blank(channel_id):
            raise _BadRequest("channel_id不能为空！")
        stored_id = (
            wire.fake_channel_id(req.get("login_uid") or "", channel_id) if channel_type == PERSON else channel_id
        )
        conversation = _conversation(channel_type, stored_id)
        found: list[tuple[MessageRow, bool]] = []
        for seq in req.get("message_seqs") or []:
            row = self._by_seq(conversation, seq)
            if row is not None:
                found.append((row, False))
        for message_id in req.get("message_ids") or []:
            row = self.store.message_by_key(str(message_id)) if message_id > 0 else None  # a global lookup
            if row is not None and row.conversation.startswith("wk:"):
                found.append((row, False))
        for client_msg_no in req.get("client_msg_nos") or []:
            seq = self._client_msg_no_seq(conversation, client_msg_no, last=True)
            row = self._by_seq(conversation, seq) if seq is not None else None
            if row is not None:
                # SearchMessages reads the channel backward here (message.go:785): the header survives.
                found.append((row, True))
        messages = [self._render(row, header=header) for row, header in found]
        return _reply({"start_message_seq": 0, "end_message_seq": 0, "more": 0, "messages": messages})

    def _search_message(self, request: EmulatorRequest) -> EmulatorReply:
        req = _bind(request.body, _SEARCH_ONE)
        if _is_blank(req.get("channel_id")):
            raise _BadRequest("channel_id不能为空！")
        channel_type = req.get("channel_type") or 0
        if channel_type == 0:
            raise _BadRequest("channel_type不能为0")
        if channel_type == PERSON and _is_blank(req.get("login_uid")):
            raise _BadRequest("login_uid不能为空！")
        message_id = req.get("message_id") or 0
        # By id the lookup is global (the channel is not compared); by client_msg_no it never finds anything
        # (SearchMessages runs with Limit 0 and stops before collecting, FACTS §9).
        row = self.store.message_by_key(str(message_id)) if message_id > 0 else None
        if row is None or not row.conversation.startswith("wk:"):
            return _reply({"status": 404})
        return _reply(self._render(row))

    def _by_client_msg_no(self, request: EmulatorRequest) -> EmulatorReply:
        query = request.query
        channel_id, channel_type = query.get("channel_id") or "", _uint8(query.get("channel_type"))
        client_msg_no = query.get("client_msg_no") or ""
        if _is_blank(channel_id):
            raise _BadRequest("channel_id不能为空")
        if channel_type == 0:
            raise _BadRequest("channel_type不能为0")
        if _is_blank(client_msg_no):
            raise _BadRequest("client_msg_no不能为空")
        conversation = _conversation(channel_type, channel_id)  # a person chat needs the fake id verbatim
        seq = self._client_msg_no_seq(conversation, client_msg_no, last=False)
        row = self._by_seq(conversation, seq) if seq is not None else None
        if row is None and conversation in self._stalled:  # a stalled store's stuck batch: found here, listed nowhere
            stuck = self._stalled[conversation][1]
            row = next((m for m in stuck if m.metadata["client_msg_no"] == client_msg_no), None)
        return _reply(self._render(row) if row is not None else {"status": 404})

    @staticmethod
    def _stored_channel(query: Mapping[str, str], *, fake_id_as_is: bool) -> tuple[int, str]:
        """``channel_type`` and the id the channel is stored under, from a ``channel_id``/``channel_type``/
        ``login_uid`` query: a person chat is stored under the fake id built with ``login_uid``."""
        channel_id, channel_type = query.get("channel_id") or "", _uint8(query.get("channel_type"))
        login_uid = query.get("login_uid") or ""
        if channel_id == "":
            raise _BadRequest("channel_id不能为空")
        if channel_type != PERSON or (fake_id_as_is and "@" in channel_id):
            return channel_type, channel_id
        if _is_blank(login_uid):
            raise _BadRequest("login_uid不能为空")
        return channel_type, wire.fake_channel_id(login_uid, channel_id)

    def _max_message_seq(self, request: EmulatorRequest) -> EmulatorReply:
        # A fake id is accepted as is here; /channel/last_message has no such exemption.
        channel_type, stored_id = self._stored_channel(request.query, fake_id_as_is=True)
        if not self._configured(channel_type, stored_id):
            raise _BadRequest("not found")  # a channel with no cluster config (FACTS §9)
        return _reply({"message_seq": self._last_seq(_conversation(channel_type, stored_id))})

    def _last_message(self, request: EmulatorRequest) -> EmulatorReply:
        channel_type, stored_id = self._stored_channel(request.query, fake_id_as_is=False)
        if not self._configured(channel_type, stored_id):
            raise _BadRequest("获取频道所在节点失败！")
        conversation = _conversation(channel_type, stored_id)
        row = self._by_seq(conversation, self._last_seq(conversation))
        return _reply(self._render(row) if row is not None else {"status": 404})

    # -- conversations (internal/api/conversation.go, internal/manager/manager_conversation.go) --------------

    def _push_conversation(self, message: _Pending, seq: int) -> None:
        """ConversationManager.Push (manager_conversation.go:53-103): a person chat's first message (seq 1)
        puts a conversation for both users into the write cache, the sender's read up to its message, the
        other's at 0; it is written as a row a sync interval later (storeConversations, :158-204). Group
        messages create nothing: group conversations come from subscriber_add (channel.go:257-276)."""
        if message.channel_type != PERSON or seq != 1 or message.stored_id.endswith(_CMD_SUFFIX):
            return
        users = message.stored_id.split("@")
        if len(users) != 2:
            return
        until = self._now_ns() + _CONVERSATION_CACHE_NS
        with self.store.sqlite_write() as db:
            for uid in users:
                db.execute(
                    "INSERT OR IGNORE INTO wukong_emu_conversations "
                    "(uid, channel_type, channel_id, read_seq, cached_until_ns) VALUES (?, ?, ?, ?, ?)",
                    (uid, PERSON, message.stored_id, seq if uid == message.from_uid else 0, until),
                )

    def _subscriber_conversations(self, channel_type: int, channel_id: str, uids: Sequence[str]) -> None:
        """addSubscriberWithReq (channel.go:257-276): every listed subscriber's conversation is written afresh
        (AddOrUpdateConversations overwrites), read up to the channel's last seq."""
        if channel_type == _LIVE:
            return
        last = self._last_seq(_conversation(channel_type, channel_id))
        now = self._now_ns()
        with self.store.sqlite_write() as db:
            for uid in uids:
                db.execute(
                    "INSERT INTO wukong_emu_conversations "
                    "(uid, channel_type, channel_id, read_seq, deleted_seq, updated_ns, cached_until_ns) "
                    "VALUES (?, ?, ?, ?, 0, ?, NULL) ON CONFLICT (uid, channel_type, channel_id) DO UPDATE SET "
                    "read_seq = excluded.read_seq, deleted_seq = 0, updated_ns = excluded.updated_ns, "
                    "cached_until_ns = NULL",
                    (uid, channel_type, channel_id, last, now),
                )

    def _conversation_rows(self, uid: str) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
        """(rows written, rows still in the write cache) of ``uid``; a cache entry whose interval has passed
        is a row, updated when it was written."""
        now = self._now_ns()
        with self.store.sqlite_write() as db:
            rows = db.execute(
                "SELECT * FROM wukong_emu_conversations WHERE uid = ?", (uid,)
            ).fetchall()  # fmt: skip
        written = [r for r in rows if r["cached_until_ns"] is None or r["cached_until_ns"] <= now]
        cached = [r for r in rows if r["cached_until_ns"] is not None and r["cached_until_ns"] > now]
        return written, cached

    def _conversation_row(self, uid: str, channel_type: int, stored_id: str) -> sqlite3.Row | None:
        """GetConversation: the written row, or None (a cache entry is not a row)."""
        written, _ = self._conversation_rows(uid)
        return next((r for r in written if r["channel_type"] == channel_type and r["channel_id"] == stored_id), None)

    def _write_conversation(self, uid: str, channel_type: int, stored_id: str, read_seq: int) -> None:
        """AddOrUpdateUserConversations of a read position: the row is created if missing (read 0 before)."""
        with self.store.sqlite_write() as db:
            db.execute(
                "INSERT INTO wukong_emu_conversations "
                "(uid, channel_type, channel_id, read_seq, deleted_seq, updated_ns, cached_until_ns) "
                "VALUES (?, ?, ?, ?, 0, ?, NULL) ON CONFLICT (uid, channel_type, channel_id) DO UPDATE SET "
                "read_seq = excluded.read_seq, updated_ns = excluded.updated_ns, cached_until_ns = NULL, "
                "deleted_seq = CASE WHEN wukong_emu_conversations.cached_until_ns IS NULL "
                "THEN wukong_emu_conversations.deleted_seq ELSE 0 END",
                # ReadToMsgSeq is a uint64 (setUnread can wrap it to 2**64 - 1); SQLite keeps signed 64 bits.
                (uid, channel_type, stored_id, read_seq - 2**64 if read_seq >= 2**63 else read_seq, self._now_ns()),
            )

    @staticmethod
    def _read_seq(row: sqlite3.Row | None) -> int:
        """A row's ReadToMsgSeq as the uint64 the server holds (0 without a row)."""
        return int(row["read_seq"]) % 2**64 if row is not None else 0

    def _user_last_seq(self, uid: str, conversation: str) -> int:
        """GetUserLastMsgSeqBatch: the seq of the user's own newest message in the channel."""
        with self.store.sqlite_write() as db:
            row = db.execute(
                "SELECT MAX(seq) FROM messages WHERE conversation = ? AND sender = ?", (conversation, uid)
            ).fetchone()
        return int(row[0] or 0)

    def _recents(self, conversation: str, start_seq: int, msg_count: int) -> list[MessageRow]:
        """loadMsgsWithDb with OrderByLast (pkg/wkdb/message.go:1028-1078, after request.go:366-369 turned
        a start seq into ``start - 1``): up to ``msg_count`` of the newest messages after that seq, newest
        first (read ascending, so the oldest of them loses its header)."""
        last = self._last_seq(conversation)
        if last == 0:
            return []
        end = start_seq - 1 if start_seq > 0 else 0
        if end > last:
            return []
        if end == 0:
            low = 1 if last < msg_count else last - msg_count + 1
        else:
            low = last - msg_count + 1 if last - end > msg_count else end + 1
        return self._range(conversation, low, last + 1, msg_count)

    def _conversation_resp(
        self, uid: str, channel_type: int, stored_id: str, row: sqlite3.Row | None, start_seq: int, msg_count: int,
        *, by_channels: bool,
    ) -> dict[str, Any]:  # fmt: skip
        """newSyncUserConversationResp and the unread arithmetic (conversation.go:516-548; syncByChannels
        :824-858 differs only in one condition)."""
        real_id = stored_id
        if channel_type == PERSON:
            parts = stored_id.split("@")
            if len(parts) == 2:
                real_id = parts[1] if parts[0] == uid else parts[0]
        # ReadedToMsgSeq is a uint32 (conversation_model.go:52); the arithmetic below compares that.
        read_seq = self._read_seq(row) & 0xFFFFFFFF
        updated = row["updated_ns"] if row is not None else None
        resp: dict[str, Any] = {
            "channel_id": real_id, "channel_type": channel_type, "unread": 0, "timestamp": 0, "last_msg_seq": 0,
            "last_client_msg_no": "", "offset_msg_seq": 0, "readed_to_msg_seq": read_seq,
            "version": int(updated or 0), "recents": [],
        }  # fmt: skip
        conversation = _conversation(channel_type, stored_id)
        recents = self._recents(conversation, start_seq, msg_count)
        rendered = [self._render(r, header=i > 0) for i, r in enumerate(recents)][::-1]
        if rendered:
            last = rendered[0]
            resp.update(last_msg_seq=last["message_seq"], last_client_msg_no=last["client_msg_no"],
                        timestamp=last["timestamp"])  # fmt: skip
            if last["message_seq"] > read_seq:
                resp["unread"] = last["message_seq"] - read_seq
            own = self._user_last_seq(uid, conversation)
            if own > read_seq:
                fits = last["message_seq"] >= read_seq or by_channels
                if last["message_seq"] - own < resp["unread"] and fits:
                    resp["unread"] = last["message_seq"] - own
                    resp["readed_to_msg_seq"] = own & 0xFFFFFFFF
            resp["version"] = last["timestamp"] * 10**9
        resp["recents"] = rendered
        if rendered and rendered[0]["from_uid"] == uid:  # the user's own last message: nothing unread
            resp["readed_to_msg_seq"] = rendered[0]["message_seq"] & 0xFFFFFFFF
            resp["unread"] = 0
        return resp

    def _conversation_sync(self, request: EmulatorRequest) -> EmulatorReply:
        """syncUserConversation (conversation.go:318-568)."""
        req = _bind(request.body, _CONV_SYNC)
        uid = req.get("uid") or ""
        msg_count = req.get("msg_count") or 0
        excluded = set(req.get("exclude_channel_types") or [])
        client_seqs: dict[tuple[str, int], int] = {}
        for part in (req.get("last_msg_seqs") or "").split("|"):  # getChannelLastMsgSeqMap (:584-598)
            fields = part.split(":")
            if len(fields) == 3:
                kind = int(fields[1]) if fields[1].lstrip("-").isdigit() else 0
                seq = int(fields[2]) if fields[2].isdigit() else 0
                client_seqs[(fields[0], kind)] = seq
        written, cached = self._conversation_rows(uid)
        # GetLastConversations: newest update first (a row never updated last), at most userMaxCount.
        # A cache entry whose interval passed was written then, with that update time.
        written.sort(key=lambda r: -int(r["updated_ns"] or r["cached_until_ns"] or 0))
        entries: list[tuple[int, str, sqlite3.Row | None]] = [
            (int(r["channel_type"]), str(r["channel_id"]), r) for r in written[:_USER_MAX_CONVERSATIONS]
        ]
        known = {(kind, cid) for kind, cid, _ in entries}

        def real(kind: int, stored: str) -> str:
            parts = stored.split("@")
            return (parts[1] if parts[0] == uid else parts[0]) if kind == PERSON and len(parts) == 2 else stored

        def allowed(kind: int, stored: str) -> bool:  # isAllowSync (:396-408)
            return kind not in excluded or (real(kind, stored), kind) in client_seqs

        for r in cached:  # the write cache's channels follow, as empty conversations (:410-432)
            kind, cid = int(r["channel_type"]), str(r["channel_id"])
            if (kind, cid) not in known and allowed(kind, cid):
                entries.append((kind, cid, None))
                known.add((kind, cid))
        page = req.get("page") or 0
        if page > 0:  # the page is cut before empty conversations are dropped (:436-457)
            size = req.get("page_size") or 0
            size = 100 if size <= 0 else min(size, 500)
            start = (page - 1) * size
            if start >= len(entries):
                return _reply([])
            entries = entries[start : start + size]
        answers: list[dict[str, Any]] = []
        if msg_count > 0:  # the answer is only assembled when messages are asked for (:499)
            for kind, cid, row in entries:
                if cid.endswith(_CMD_SUFFIX) or not allowed(kind, cid):
                    continue
                if kind == PERSON and real(kind, cid) == SYSTEM_UID:  # the system chat is not returned (:513)
                    continue
                client_seq = client_seqs.get((real(kind, cid), kind), 0)
                read_seq = self._read_seq(row)
                deleted = int(row["deleted_seq"]) if row is not None else 0
                start_seq = client_seq + 1 if client_seq else (
                    read_seq + 1 if (req.get("version") or 0) > 0 or req.get("only_unread") == 1 else 0
                )  # fmt: skip
                if deleted > 0 and deleted > start_seq:
                    start_seq = deleted + 1
                resp = self._conversation_resp(uid, kind, cid, row, start_seq, msg_count, by_channels=False)
                if client_seq and client_seq >= resp["last_msg_seq"]:
                    continue
                if resp["recents"]:
                    answers.append(resp)
        return _reply(answers)

    def _conversation_sync_by_channels(self, request: EmulatorRequest) -> EmulatorReply:
        """syncConversationByChannels (conversation.go:707-867): named channels, their deletion ignored."""
        req = _bind(request.body, _CONV_BY_CHANNELS)
        uid = req.get("uid") or ""
        if uid == "":
            raise _BadRequest("uid cannot be empty")
        channels = req.get("channels") or []
        if not channels:
            raise _BadRequest("channels cannot be empty")
        msg_count = req.get("msg_count") or 0
        msg_count = 15 if msg_count <= 0 else msg_count
        answers = []
        for item in channels:
            channel_id, kind = item.get("channel_id") or "", item.get("channel_type") or 0
            stored = wire.fake_channel_id(uid, channel_id) if kind == PERSON else channel_id
            row = self._conversation_row(uid, kind, stored)
            answers.append(self._conversation_resp(uid, kind, stored, row, 0, msg_count, by_channels=True))
        return _reply(answers)

    @staticmethod
    def _conversation_target(req: Mapping[str, Any], empty_uid: str) -> tuple[str, int, str]:
        uid, channel_id, kind = req.get("uid") or "", req.get("channel_id") or "", req.get("channel_type") or 0
        if uid == "":
            raise _BadRequest(empty_uid)
        if channel_id == "" or kind == 0:
            raise _BadRequest("channel_id or channel_type cannot be empty")
        return uid, kind, wire.fake_channel_id(uid, channel_id) if kind == PERSON else channel_id

    def _conversation_clear_unread(self, request: EmulatorRequest) -> EmulatorReply:
        """clearConversationUnread (conversation.go:87-163): read up to the last seq; a missing row is made."""
        uid, kind, stored = self._conversation_target(_bind(request.body, _CONV_CLEAR), "uid cannot be empty")
        row = self._conversation_row(uid, kind, stored)
        last = self._last_seq(_conversation(kind, stored))
        if self._read_seq(row) < last:
            self._write_conversation(uid, kind, stored, last)
        return _reply({"status": 200})

    def _conversation_set_unread(self, request: EmulatorRequest) -> EmulatorReply:
        """setConversationUnread (conversation.go:165-264): the read position only ever moves forward."""
        req = _bind(request.body, _CONV_SET_UNREAD)
        uid, kind, stored = self._conversation_target(req, "UID cannot be empty")
        unread = req.get("unread") or 0
        last = self._last_seq(_conversation(kind, stored))
        target = last
        if unread > last:  # uint64(unread) > lastMsgSeq: one less than the last (uint64, so 0 - 1 wraps)
            target = (last - 1) % 2**64
        elif unread > 0:
            target = last - unread
        row = self._conversation_row(uid, kind, stored)
        if self._read_seq(row) < target:
            self._write_conversation(uid, kind, stored, target)
        return _reply({"status": 200})

    def _conversation_delete(self, request: EmulatorRequest) -> EmulatorReply:
        """deleteConversation (conversation.go:266-316): the last seq becomes the deletion point, only on a
        written row (UpdateConversationDeletedAtMsgSeq returns early without one, pkg/wkdb/conversation.go:218-227)."""
        uid, kind, stored = self._conversation_target(_bind(request.body, _CONV_DELETE), "Uid cannot be empty")
        if self._conversation_row(uid, kind, stored) is not None:
            last = self._last_seq(_conversation(kind, stored))
            with self.store.sqlite_write() as db:
                db.execute(
                    "UPDATE wukong_emu_conversations SET deleted_seq = ? "
                    "WHERE uid = ? AND channel_type = ? AND channel_id = ?",
                    (last, uid, kind, stored),
                )
        return _reply({"status": 200})

    # -- seeding -----------------------------------------------------------------------------------

    def seed(self, size: str = "small", *, rng_seed: int = 7) -> dict[str, int]:
        """Fill the server with a realistic dataset: users with tokens, groups with subscribers and a
        denylisted member each, group and one-to-one history (payloads in WuKongIM's convention).
        ``small``: 20 users, 4 groups; ``demo``: 200 users, 20 groups. Deterministic per ``rng_seed``."""
        sizes = {"small": (20, 4, (5, 8), (8, 15), 10), "demo": (200, 20, (10, 30), (50, 150), 100)}
        if size not in sizes:
            raise ValueError(f"unknown seed size {size!r} (choose from {', '.join(sizes)})")
        user_count, group_count, (min_members, max_members), (min_msgs, max_msgs), pairs = sizes[size]
        rng = random.Random(rng_seed)
        with self._lock:
            users = [f"user{n:03d}" for n in range(1, user_count + 1)]
            now = self._now_ns()
            self.store.add_users(users, now / 1e9)
            with self.store.sqlite_write() as db:
                for uid in users:
                    db.execute(
                        "INSERT OR IGNORE INTO wukong_emu_devices "
                        "(uid, device_flag, device_level, token, id, created_at, updated_at) "
                        "VALUES (?, 0, 1, ?, ?, ?, ?)",
                        (uid, secrets.token_urlsafe(16), self._next_message_id(), now, now),
                    )
            groups = [f"group{n:02d}" for n in range(1, group_count + 1)]
            messages = 0
            for group_id in groups:
                members = rng.sample(users, rng.randint(min_members, max_members))
                self._write_info(GROUP, group_id, {})
                self._add_subscribers(GROUP, group_id, members, reset=True)
                self._put_list(GROUP, group_id, "denylist", [members[-1]])
                for n in range(rng.randint(min_msgs, max_msgs)):
                    self._seed_message(rng.choice(members[:-1]), group_id, GROUP, f"{group_id} message {n + 1}")
                    messages += 1
            for n in range(pairs):
                sender, recipient = rng.sample(users, 2)
                for m in range(rng.randint(1, 4)):
                    first, second = (sender, recipient) if m % 2 == 0 else (recipient, sender)
                    self._seed_message(first, second, PERSON, f"hello {n}-{m}")
                    messages += 1
            return {"users": len(users), "groups": len(groups), "messages": messages}

    def _seed_message(self, sender: str, to: str, channel_type: int, text: str) -> None:
        payload = base64.b64decode(mapping.to_base64({"type": mapping.TYPE_TEXT, "content": text}))
        message_id = self._next_message_id()
        stored_id = wire.fake_channel_id(sender, to) if channel_type == PERSON else to
        self._configure(channel_type, stored_id)
        self._persist(_Pending(0, message_id, channel_type, stored_id, sender, _new_client_msg_no(), payload, 0, 0,
                               sent_id=to))  # fmt: skip
