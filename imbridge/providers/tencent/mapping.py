"""Wire <-> normalized mapping for Tencent IM, and the error-code table (reference §5).

The table maps every documented code to an imbridge error class and says whether it is retryable.
Codes not in the table become a plain, non-retryable ProviderError carrying the native code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from imbridge._flow import decode_json, encode_json
from imbridge._inbound import nests_deeper as _nests_deeper
from imbridge.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
)
from imbridge.models import (
    Conversation,
    ConversationKind,
    Custom,
    DeviceKind,
    DeviceSession,
    Element,
    Face,
    File,
    Gender,
    Group,
    Image,
    JoinOption,
    Location,
    Member,
    Message,
    MessageRef,
    Presence,
    PresenceState,
    Profile,
    Role,
    Sound,
    Text,
    Video,
)
from imbridge.providers.tencent import wire

NAME = "tencent"

# -- errors --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """How one native code maps into the hierarchy."""

    kind: type[ProviderError]
    meaning: str
    retryable: bool = False
    credentials_expired: bool = False
    retry_after: float | None = None


def _rule(kind: type[ProviderError], meaning: str, **flags: Any) -> ErrorRule:
    return ErrorRule(kind, meaning, **flags)


_AUTH, _PERM, _BAD, _NF = AuthenticationError, PermissionDeniedError, InvalidRequestError, NotFoundError
_RATE, _UNAV, _CONF = RateLimitError, ServiceUnavailableError, ConflictError

#: Every code of the official error-code page's "Server Error Codes" section that a REST v4 call can meet
#: (https://www.tencentcloud.com/document/product/1047/34348, current copy https://trtc.io/document/34348, CN
#: https://cloud.tencent.com/document/product/269/1671; read 2026-12-02). The page's text is transcribed in
#: tests/fixtures/tencent/official/error_codes.json and a test walks every row of it against this table.
ERROR_TABLE: dict[int, ErrorRule] = {
    # common backend codes
    60002: _rule(_BAD, "HTTP parse error (URL format)"),
    60003: _rule(_BAD, "request JSON parse error"),
    60004: _rule(_AUTH, "account (identifier) or UserSig error in the URL"),
    60005: _rule(_AUTH, "account (identifier) or UserSig error"),
    60006: _rule(_AUTH, "invalid SDKAppID"),
    60007: _rule(_RATE, "REST call frequency limit exceeded", retryable=True),
    60008: _rule(_UNAV, "service request timeout or bad HTTP format", retryable=True),
    60009: _rule(_BAD, "bad resource or URL"),
    60010: _rule(_PERM, "requires an App admin identifier"),
    60011: _rule(_RATE, "SDKAppID request frequency exceeded", retryable=True),
    60012: _rule(_BAD, "missing sdkappid"),
    60013: _rule(_UNAV, "HTTP response JSON parse error", retryable=True),
    60014: _rule(_UNAV, "account switching timeout", retryable=True),
    60015: _rule(_BAD, "account in body is not a string"),
    60016: _rule(_PERM, "SDKAppID disabled"),
    60017: _rule(_PERM, "request disabled"),
    60018: _rule(_RATE, "too many requests, try later", retryable=True),
    60019: _rule(_RATE, "too many requests, try later", retryable=True),
    60020: _rule(_PERM, "Pro plan expired or disabled"),
    60021: _rule(_PERM, "caller IP not allowed"),
    80001: _rule(_BAD, "sensitive text"),
    80002: _rule(_BAD, "message too long"),
    80003: _rule(_UNAV, "before-send webhook failed or timed out", retryable=True),
    80004: _rule(_BAD, "sensitive image"),
    # account / UserSig
    70001: _rule(_AUTH, "UserSig expired", credentials_expired=True),
    70002: _rule(_AUTH, "UserSig empty"),
    70003: _rule(_AUTH, "invalid UserSig"),
    70005: _rule(_AUTH, "invalid UserSig"),
    70009: _rule(_AUTH, "UserSig signed with another app's key"),
    70013: _rule(_AUTH, "UserID does not match the UserSig identifier"),
    70014: _rule(_AUTH, "SDKAppID does not match the UserSig sdkappid"),
    70016: _rule(_AUTH, "key not found (wrong data-centre domain?)"),
    70020: _rule(_AUTH, "SDKAppID not found (wrong data-centre domain?)"),
    70050: _rule(_RATE, "too many failed UserSig verifications; retry after 1 minute", retry_after=60.0),
    70051: _rule(_PERM, "account blocklisted"),
    70107: _rule(_NF, "UserID not imported / does not exist"),
    70114: _rule(_RATE, "login restricted (frequency)", retryable=True),
    70169: _rule(_UNAV, "server timeout", retryable=True),
    70202: _rule(_UNAV, "server timeout", retryable=True),
    70206: _rule(_BAD, "invalid batch quantity"),
    70398: _rule(_PERM, "Trial edition: more than 100 accounts"),
    70402: _rule(_BAD, "invalid parameters"),
    70403: _rule(_PERM, "requires an App admin"),
    70500: _rule(_UNAV, "internal error", retryable=True),
    71000: _rule(_PERM, "account deletion not allowed on a paid edition"),
    72000: _rule(_PERM, "Trial DAU quota exceeded"),
    72001: _rule(_PERM, "online-status feature not enabled"),
    # profile
    40001: _rule(_BAD, "profile request parameters invalid"),
    40002: _rule(_BAD, "profile request names no account"),
    40003: _rule(_NF, "account does not exist"),
    40004: _rule(_PERM, "requires an App admin"),
    40005: _rule(_BAD, "profile field contains sensitive words"),
    40006: _rule(_UNAV, "profile service internal error", retryable=True),
    40007: _rule(_PERM, "no read permission on the profile field"),
    40008: _rule(_PERM, "no write permission on the profile field"),
    40009: _rule(_BAD, "profile tag does not exist"),
    40601: _rule(_BAD, "profile value over 500 bytes"),
    40605: _rule(_BAD, "bad standard profile value"),
    40610: _rule(_BAD, "bad profile value type"),
    # relationship chain
    30001: _rule(_BAD, "relationship request parameters invalid"),
    30002: _rule(_AUTH, "SDKAppID mismatch"),
    30003: _rule(_NF, "account does not exist"),
    30004: _rule(_PERM, "requires an App admin"),
    30005: _rule(_BAD, "relationship field contains sensitive words"),
    30006: _rule(_UNAV, "relationship service internal error", retryable=True),
    30007: _rule(_UNAV, "relationship service timeout", retryable=True),
    30008: _rule(_CONF, "relationship write conflict", retryable=True),
    30009: _rule(_PERM, "this user may not send friend requests"),
    30010: _rule(_PERM, "friend limit reached"),
    30011: _rule(_PERM, "friend list limit reached"),
    30012: _rule(_PERM, "pending friend request limit reached"),
    30013: _rule(_PERM, "blocklist limit reached"),
    30014: _rule(_PERM, "the other party reached the friend limit"),
    30515: _rule(_PERM, "the user is in your blocklist"),
    30516: _rule(_PERM, "the other party rejects all friend requests"),
    30525: _rule(_PERM, "you are in the user's blocklist"),
    30539: _rule(_CONF, "friend request pending approval"),
    30540: _rule(_RATE, "friend request filtered by the security policy (too frequent)"),
    30614: _rule(_NF, "pending request does not exist"),
    31704: _rule(_NF, "no friend relationship with that account"),
    31707: _rule(_RATE, "friend deletion filtered by the security policy (too frequent)"),
    31804: _rule(_NF, "account does not exist"),
    # recent contacts
    50001: _rule(_NF, "account does not exist"),
    50002: _rule(_BAD, "recent-contact request parameters invalid"),
    50003: _rule(_PERM, "requires an App admin"),
    50004: _rule(_UNAV, "recent-contact service internal error", retryable=True),
    50005: _rule(_UNAV, "recent-contact service timeout", retryable=True),
    # messages
    20001: _rule(_BAD, "invalid request packet"),
    20002: _rule(_AUTH, "UserSig or A2 invalid/expired", credentials_expired=True),
    20003: _rule(_NF, "sender or recipient UserID invalid or not imported"),
    20004: _rule(_UNAV, "network exception", retryable=True),
    20005: _rule(_UNAV, "internal server error", retryable=True),
    20006: _rule(_PERM, "blocked by the before-send webhook"),
    20007: _rule(_PERM, "sender is in the recipient's blocklist"),
    20008: _rule(_BAD, "sender and recipient belong to different SDKAppIDs"),
    20009: _rule(_PERM, "not friends (friend check configured)"),
    20010: _rule(_PERM, "not friends (friend check configured)"),
    20011: _rule(_PERM, "not friends (friend check configured)"),
    20012: _rule(_PERM, "sender muted (global mute)"),
    20016: _rule(_PERM, "recall time limit exceeded"),
    20018: _rule(_UNAV, "internal error deleting roaming messages", retryable=True),
    20022: _rule(_NF, "message to recall not found"),
    20023: _rule(_CONF, "message already recalled"),
    20028: _rule(_CONF, "concurrent modification conflict", retryable=True),
    21005: _rule(_BAD, "push token set before login"),
    22001: _rule(_PERM, "no offline push certificate uploaded"),
    22002: _rule(_UNAV, "network exception", retryable=True),
    22003: _rule(_BAD, "push token empty"),
    22004: _rule(_BAD, "push token over 256 bytes"),
    22005: _rule(_BAD, "login request data over 1024 bytes"),
    22006: _rule(_RATE, "request frequency over the limit", retryable=True),
    90001: _rule(_BAD, "JSON parse failed"),
    90002: _rule(_BAD, "MsgBody is not in the message format"),
    90003: _rule(_NF, "To_Account missing or does not exist"),
    90004: _rule(_BAD, "bad MsgSeq"),
    90005: _rule(_BAD, "MsgRandom missing or not an integer"),
    90006: _rule(_BAD, "MsgTimeStamp missing or not an integer"),
    90007: _rule(_BAD, "MsgBody is not an array"),
    90008: _rule(_NF, "From_Account missing or does not exist"),
    90009: _rule(_PERM, "requires an App admin"),
    90010: _rule(_BAD, "not in the message format"),
    90011: _rule(_BAD, "more than 500 recipients in a batch"),
    90012: _rule(_NF, "To_Account not imported"),
    90018: _rule(_BAD, "too many accounts in the request"),
    90022: _rule(_BAD, "push conditions repeat a tag"),
    90024: _rule(_RATE, "all-user push interval must exceed 1 s", retryable=True),
    90026: _rule(_BAD, "MsgLifeTime over 7 days"),
    90030: _rule(_BAD, "attribute length 0 or over 50 bytes"),
    90031: _rule(_BAD, "SyncOtherMachine is not an integer"),
    90032: _rule(_BAD, "more than 10 push tags"),
    90033: _rule(_BAD, "invalid attribute"),
    90034: _rule(_BAD, "push tag over 50 bytes"),
    90040: _rule(_BAD, "null push tag"),
    90043: _rule(_BAD, "OfflinePushInfo not in the documented format"),
    90044: _rule(_BAD, "MsgLifeTime is not an integer"),
    90045: _rule(_PERM, "all-user push not enabled"),
    90047: _rule(_PERM, "daily push quota exhausted"),
    90048: _rule(_NF, "account does not exist"),
    90054: _rule(_BAD, "invalid MsgKey"),
    90055: _rule(_BAD, "message too long"),
    90992: _rule(_UNAV, "internal service error (check your webhook responds)", retryable=True),
    90994: _rule(_UNAV, "internal service error", retryable=True),
    90995: _rule(_UNAV, "internal service error", retryable=True),
    91000: _rule(_UNAV, "internal service error", retryable=True),
    91101: _rule(_PERM, "too many concurrent web instances"),
    93000: _rule(_BAD, "JSON packet over the size limit"),
    # groups
    10002: _rule(_UNAV, "internal server error", retryable=True),
    10003: _rule(_BAD, "invalid command"),
    10004: _rule(_BAD, "invalid parameter"),
    10005: _rule(_BAD, "too many accounts in the request"),
    10006: _rule(_RATE, "operation frequency limit", retryable=True),
    10007: _rule(_PERM, "insufficient permission"),
    10009: _rule(_PERM, "the owner cannot leave"),
    10010: _rule(_NF, "group does not exist or was dismissed"),
    10011: _rule(_BAD, "JSON parse error"),
    10012: _rule(_BAD, "invalid UserID"),
    10013: _rule(_CONF, "already a member"),
    10014: _rule(_PERM, "group is full"),
    10015: _rule(_NF, "invalid group ID"),
    10016: _rule(_PERM, "rejected by webhook"),
    10017: _rule(_PERM, "sender is muted"),
    10018: _rule(_BAD, "response over 1 MB; page smaller"),
    10019: _rule(_NF, "UserID does not exist"),
    10021: _rule(_CONF, "group ID used by another app user"),
    10023: _rule(_RATE, "message frequency limit", retryable=True),
    10024: _rule(_CONF, "invitation or request already processed"),
    10025: _rule(_CONF, "group ID already used by you"),
    10026: _rule(_PERM, "command disabled for this SDKAppID"),
    10030: _rule(_NF, "message to recall does not exist"),
    10031: _rule(_PERM, "message beyond the recall time range"),
    10032: _rule(_PERM, "message cannot be recalled"),
    10033: _rule(_PERM, "group type does not support recall"),
    10034: _rule(_BAD, "this message type cannot be deleted"),
    10035: _rule(_BAD, "this group type does not support message deletion"),
    10036: _rule(_PERM, "quota or edition limit"),
    10037: _rule(_PERM, "user joined too many groups"),
    10038: _rule(_PERM, "quota or edition limit"),
    10041: _rule(_PERM, "recall disabled for this app"),
    10044: _rule(_BAD, "group type has no roaming messages"),
    10045: _rule(_BAD, "custom attribute key over 32 bytes"),
    10046: _rule(_BAD, "custom attribute value over 4,000 bytes"),
    10047: _rule(_BAD, "more than 16 custom attribute keys"),
    10048: _rule(_BAD, "custom attribute values over 16,000 bytes"),
    10049: _rule(_RATE, "custom attribute frequency limit", retryable=True),
    10050: _rule(_NF, "custom attribute does not exist"),
    10051: _rule(_BAD, "message deletion beyond its maximum scope"),
    10052: _rule(_NF, "no message to delete in the group"),
    10053: _rule(_BAD, "more than 30 @ targets"),
    10054: _rule(_BAD, "too many members; page"),
    10056: _rule(_CONF, "custom attribute write race", retryable=True),
    10058: _rule(_PERM, "Trial edition: more than 100 groups"),
    10059: _rule(_PERM, "quota or edition limit"),
    11000: _rule(_PERM, "Community groups not enabled"),
    # operations data (get_history)
    1001: _rule(_BAD, "invalid request URL"),
    1002: _rule(_BAD, "invalid parameter"),
    1003: _rule(_UNAV, "get_history internal error", retryable=True),
    1004: _rule(_UNAV, "history file not generated yet", retryable=True),
    1005: _rule(_NF, "history file expired"),
}

#: Ranges of codes an app's own before-send webhook returns (C2C, then group).
WEBHOOK_REJECT_RANGES = ((120001, 130000), (10100, 10200))


def rule_for(code: int) -> ErrorRule | None:
    if code in ERROR_TABLE:
        return ERROR_TABLE[code]
    if any(low <= code <= high for low, high in WEBHOOK_REJECT_RANGES):
        return ErrorRule(PermissionDeniedError, "rejected by your before-send webhook")
    return None


def error_for(code: int, info: str = "", *, http_status: int | None = 200) -> ProviderError:
    """The imbridge error for a Tencent ErrorCode (never raised here; the caller raises it)."""
    rule = rule_for(code)
    text = f"{rule.meaning}: {info}" if rule and info else (rule.meaning if rule else info or "Tencent IM error")
    context: dict[str, Any] = {"provider": NAME, "native_code": code, "http_status": http_status}
    error: ProviderError
    if rule is None:
        error = ProviderError(text, **context)
    elif rule.kind is AuthenticationError:
        error = AuthenticationError(text, credentials_expired=rule.credentials_expired, **context)
    elif rule.kind in (RateLimitError, ServiceUnavailableError):
        after = timedelta(seconds=rule.retry_after) if rule.retry_after is not None else None
        error = rule.kind(text, retry_after=after, **context)
    else:
        error = rule.kind(text, **context)
    # Instance attribute: overrides the class default (RateLimitError is retryable as a class).
    error.retryable = rule is not None and (rule.retryable or rule.retry_after is not None)
    return error


# -- documented limits ---------------------------------------------------------------------------

USE_LIMITS_PAGE = "https://cloud.tencent.com/document/product/269/9346"
"""The use-limits page (updated 2025-11-04, read 2026-12-02; English https://trtc.io/document/34381)."""


@dataclass(frozen=True, slots=True)
class Limit:
    """One documented limit: its value, its unit (UTF-8 bytes, items or seconds), the page that states it,
    and the ErrorCode the service answers past it (what the emulator answers)."""

    name: str
    value: int
    unit: str
    source: str
    code: int

    def describe(self) -> str:
        return f"Tencent IM limit: {self.name} is at most {self.value:,} {self.unit} ({self.source})"


def _limit(name: str, value: int, unit: str, source: str, code: int) -> Limit:
    return Limit(name, value, unit, source, code)


#: The limits imbridge checks before the network, each with its source (pages read 2026-12-02).
LIMITS: dict[str, Limit] = {
    limit.name: limit
    for limit in (
        # Group profile texts are UTF-8 bytes (group error codes 8502-8505 say so; create_group answers 10004).
        _limit("group name", 30, "bytes", USE_LIMITS_PAGE, 10004),
        _limit("group introduction", 240, "bytes", USE_LIMITS_PAGE, 10004),
        _limit("group notification", 300, "bytes", USE_LIMITS_PAGE, 10004),
        _limit("group face URL", 100, "bytes", USE_LIMITS_PAGE, 10004),
        _limit("group name card", 50, "bytes", USE_LIMITS_PAGE, 10004),
        # Custom group ids: printable ASCII (0x20-0x7e), at most 48 bytes, not starting with @TGS#.
        _limit("custom group id", 48, "bytes", USE_LIMITS_PAGE, 10015),
        _limit("user id", 32, "bytes", USE_LIMITS_PAGE, 70402),
        # "单条消息最大长度限制为12K" (the older error-code page still says 8 KB); the service answers 93000 for
        # C2C and 80002 for group messages.
        _limit("message body", 12 * 1024, "bytes", USE_LIMITS_PAGE, 93000),
        _limit("group message body", 12 * 1024, "bytes", USE_LIMITS_PAGE, 80002),
        _limit("profile value", 500, "bytes", USE_LIMITS_PAGE, 40601),
        _limit("batch recipients", 500, "recipients per request",
               "https://cloud.tencent.com/document/product/269/1612", 90011),
        _limit("mute accounts", 500, "accounts per request",
               "https://www.tencentcloud.com/document/product/1047/34951", 10005),
        _limit("mute time", 4_294_967_295, "seconds",
               "https://www.tencentcloud.com/document/product/1047/34951", 10004),
        # get_group_member_info: Limit "不得超过200" with Offset; "不得超过100" with Next (Community groups only).
        _limit("member page", 200, "members per request", "https://cloud.tencent.com/document/product/269/1617",
               10004),
        _limit("community member page", 100, "members per request",
               "https://cloud.tencent.com/document/product/269/1617", 10004),
        # group_msg_get_simple: "目前一次请求最多返回20条历史消息" (more is answered with IsFinished 0, not refused).
        _limit("group history window", 20, "messages per request",
               "https://cloud.tencent.com/document/api/269/2738", 0),
        _limit("groups per info request", 50, "groups per request",
               "https://cloud.tencent.com/document/product/269/1616", 10004),
    )
}  # fmt: skip


def utf8_len(text: str) -> int:
    return len(text.encode())


# -- dedupe keys ---------------------------------------------------------------------------------


def dedupe_numbers(idempotency_key: str) -> tuple[int, int]:
    """(MsgRandom / Random, MsgSeq): two uint32 derived from the idempotency key, the same on every retry."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:8], "big")


def chunk_key(idempotency_key: str, index: int) -> str:
    """The dedupe key of a batch's chunk ``index``: the batch key itself for the first chunk, so a batch of
    up to 500 recipients sends the numbers it always did."""
    return idempotency_key if index == 0 else f"{idempotency_key}#chunk{index}"


# -- elements ------------------------------------------------------------------------------------

IMAGE_FORMATS = {"jpg": 1, "jpeg": 1, "gif": 2, "png": 3, "bmp": 4}
_IMAGE_FORMAT_NAMES = {1: "jpg", 2: "gif", 3: "png", 4: "bmp", 255: "other"}


def _uuid(value: str | None, url: str) -> str:
    # REST senders must give media a globally unique UUID; the docs suggest an MD5.
    return value or hashlib.md5(url.encode()).hexdigest()  # an identifier, not security


def element_to_wire(element: Element) -> dict[str, Any]:
    """One normalized element as a TIMMsgElement."""
    content: dict[str, Any]
    if isinstance(element, Text):
        kind, content = "TIMTextElem", {"Text": element.text}
    elif isinstance(element, Location):
        kind = "TIMLocationElem"
        content = {"Desc": element.description, "Latitude": element.latitude, "Longitude": element.longitude}
    elif isinstance(element, Face):
        kind, content = "TIMFaceElem", {"Index": element.index, "Data": element.data}
    elif isinstance(element, Custom):
        kind = "TIMCustomElem"
        content = {"Data": element.data, "Desc": element.description, "Ext": element.ext, "Sound": element.sound}
    elif isinstance(element, Sound):
        kind = "TIMSoundElem"
        content = {
            "Url": element.url, "UUID": _uuid(element.uuid, element.url), "Size": element.size or 0,
            "Second": element.duration, "Download_Flag": 2,
        }  # fmt: skip
    elif isinstance(element, Image):
        kind = "TIMImageElem"
        # The docs and every SDK sample carry three entries: Type 1 original, 2 large, 3 thumbnail
        # (https://www.tencentcloud.com/document/product/1047/33527, msg_elements.json); clients look up the one they
        # show. From what the caller gives: the original also serves as the large image, and as the thumbnail
        # when no thumbnail_url is given (sizes and dimensions are the original's, 0 where unknown).
        original = {"Size": element.size or 0, "Width": element.width or 0, "Height": element.height or 0,
                    "URL": element.url}  # fmt: skip
        thumbnail = (
            {"Size": 0, "Width": 0, "Height": 0, "URL": element.thumbnail_url} if element.thumbnail_url else original
        )
        infos = [{"Type": 1, **original}, {"Type": 2, **original}, {"Type": 3, **thumbnail}]
        content = {
            "UUID": _uuid(element.uuid, element.url),
            "ImageFormat": IMAGE_FORMATS.get((element.format or "").lower(), 255),
            "ImageInfoArray": infos,
        }
    elif isinstance(element, File):
        kind = "TIMFileElem"
        content = {
            "Url": element.url, "UUID": _uuid(element.uuid, element.url), "FileSize": element.size or 0,
            "FileName": element.name, "Download_Flag": 2,
        }  # fmt: skip
    elif isinstance(element, Video):
        kind = "TIMVideoFileElem"
        content = {
            "VideoUrl": element.url, "VideoUUID": _uuid(element.uuid, element.url), "VideoSize": element.size or 0,
            "VideoSecond": element.duration, "VideoFormat": element.format or "mp4", "VideoDownloadFlag": 2,
        }  # fmt: skip
        if element.thumbnail_url:
            content.update(
                {
                    "ThumbUrl": element.thumbnail_url,
                    "ThumbUUID": _uuid(element.thumbnail_uuid, element.thumbnail_url),
                    "ThumbSize": element.thumbnail_size or 0,
                    "ThumbWidth": element.thumbnail_width or 0,
                    "ThumbHeight": element.thumbnail_height or 0,
                    "ThumbFormat": element.thumbnail_format or "JPG",
                    "ThumbDownloadFlag": 2,
                }
            )
    else:  # pragma: no cover - Element is a closed union
        raise InvalidRequestError(f"unsupported element {type(element).__name__}", provider=NAME)
    return {"MsgType": kind, "MsgContent": content}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _opaque(element: wire.MsgElement) -> Custom:
    """An element imbridge does not model (TIMRelayElem, media without a URL from 2.x/3.x SDKs):
    kept whole as Custom data so nothing is dropped; ``ext`` says where it came from."""
    payload = json.dumps({"MsgType": element.MsgType, "MsgContent": element.MsgContent}, ensure_ascii=False)
    return Custom(data=payload, description=element.MsgType, ext=f"tencent:{element.MsgType}")


def element_from_wire(element: wire.MsgElement) -> Element:
    c = element.MsgContent
    try:
        match element.MsgType:
            case "TIMTextElem":
                return Text(text=c["Text"])
            case "TIMLocationElem":
                return Location(latitude=c["Latitude"], longitude=c["Longitude"], description=c.get("Desc", ""))
            case "TIMFaceElem":
                return Face(index=c["Index"], data=c.get("Data", ""))
            case "TIMCustomElem":
                return Custom(
                    data=c.get("Data", ""),
                    description=c.get("Desc", ""),
                    ext=c.get("Ext", ""),
                    sound=c.get("Sound", ""),
                )
            case "TIMSoundElem":
                return Sound(url=c["Url"], duration=c.get("Second", 0), size=_int(c.get("Size")), uuid=c.get("UUID"))
            case "TIMImageElem":
                infos = {info.get("Type"): info for info in c.get("ImageInfoArray", [])}
                original = infos.get(1) or infos.get(2) or infos.get(3)
                if original is None:
                    return _opaque(element)
                thumb = infos.get(3)
                thumb_url = thumb.get("URL") if thumb is not None and thumb is not original else None
                return Image(
                    url=original["URL"], width=_int(original.get("Width")) or None,
                    height=_int(original.get("Height")) or None, size=_int(original.get("Size")),
                    format=_IMAGE_FORMAT_NAMES.get(c.get("ImageFormat", 255), "other"), uuid=c.get("UUID"),
                    thumbnail_url=thumb_url if thumb_url != original.get("URL") else None,
                )  # fmt: skip
            case "TIMFileElem":
                return File(url=c["Url"], name=c["FileName"], size=_int(c.get("FileSize")), uuid=c.get("UUID"))
            case "TIMVideoFileElem":
                return Video(
                    url=c["VideoUrl"], duration=c.get("VideoSecond", 0), size=_int(c.get("VideoSize")),
                    format=c.get("VideoFormat"), uuid=c.get("VideoUUID"), thumbnail_url=c.get("ThumbUrl"),
                    thumbnail_width=_int(c.get("ThumbWidth")), thumbnail_height=_int(c.get("ThumbHeight")),
                    thumbnail_size=_int(c.get("ThumbSize")), thumbnail_format=c.get("ThumbFormat"),
                    thumbnail_uuid=c.get("ThumbUUID"),
                )  # fmt: skip
    except (KeyError, TypeError, ValidationError, InvalidRequestError):
        return _opaque(element)
    return _opaque(element)


# -- CloudCustomData <-> metadata ----------------------------------------------------------------


def cloud_custom_data(metadata: Mapping[str, Any], options: Mapping[str, Any]) -> str | None:
    """``metadata`` travels as CloudCustomData JSON. Giving both ``metadata`` and
    ``options["CloudCustomData"]`` is refused: one of them would otherwise be dropped silently."""
    explicit = options.get("CloudCustomData")
    if metadata and explicit is not None:
        raise InvalidRequestError(
            "give either metadata (sent as CloudCustomData JSON) or options['CloudCustomData'], not both",
            provider=NAME,
        )
    if explicit is not None:
        if not isinstance(explicit, str):
            raise InvalidRequestError("options['CloudCustomData'] must be a string", provider=NAME)
        return explicit
    return encode_json(dict(metadata)).decode() if metadata else None


METADATA_MAX_DEPTH = 32
"""CloudCustomData nested deeper than this is kept as the string it is, not unpacked."""


def metadata_from(cloud: str) -> dict[str, Any]:
    """CloudCustomData as metadata: a JSON object is unpacked; anything else is kept under its name."""
    if not cloud:
        return {}
    try:
        value = decode_json(cloud)  # bounded nesting: the string is the sender's, not the server's
    except ValueError:
        value = None
    if isinstance(value, dict) and not _nests_deeper(value, METADATA_MAX_DEPTH):
        return value
    return {"CloudCustomData": cloud}


# -- profiles ------------------------------------------------------------------------------------

TAG_NICK = "Tag_Profile_IM_Nick"
TAG_IMAGE = "Tag_Profile_IM_Image"
TAG_GENDER = "Tag_Profile_IM_Gender"
TAG_SIGNATURE = "Tag_Profile_IM_SelfSignature"
CUSTOM_PREFIX = "Tag_Profile_Custom_"
STANDARD_TAGS = [TAG_NICK, TAG_IMAGE, TAG_GENDER, TAG_SIGNATURE]
GENDERS = {Gender.UNKNOWN: "Gender_Type_Unknown", Gender.FEMALE: "Gender_Type_Female", Gender.MALE: "Gender_Type_Male"}
_GENDERS_BACK = {value: key for key, value in GENDERS.items()}


def profile_from_wire(item: wire.UserProfile) -> Profile:
    values = {entry.Tag: entry.Value for entry in item.ProfileItem}
    custom = {tag[len(CUSTOM_PREFIX) :]: str(v) for tag, v in values.items() if tag.startswith(CUSTOM_PREFIX)}
    gender = values.get(TAG_GENDER)
    return Profile(
        user_id=item.To_Account,
        nickname=values.get(TAG_NICK) or None,
        avatar_url=values.get(TAG_IMAGE) or None,
        gender=_GENDERS_BACK.get(gender) if isinstance(gender, str) else None,
        signature=values.get(TAG_SIGNATURE) or None,
        custom=custom,
        provider=NAME,
        raw=item.model_dump(),
    )


# -- groups and members --------------------------------------------------------------------------

ROLES = {"Owner": Role.OWNER, "Admin": Role.ADMIN, "Member": Role.MEMBER}


def timestamp(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


#: forbid_send_msg ``MuteTime`` 4294967295 is "Permanent muting" (https://www.tencentcloud.com/document/product/
#: 1047/34951). The docs do not say how such a mute reads back; a mute end at or past that second (the
#: year 2106) is read as one without an end.
MUTE_FOREVER = LIMITS["mute time"].value


def mute_state(until_seconds: int | None, now: datetime) -> tuple[bool, datetime | None]:
    """(muted, muted_until) from a MuteUntil/MutedUntil value: (True, None) for a mute without an end."""
    if until_seconds is None or until_seconds <= 0:
        return False, None
    if until_seconds >= MUTE_FOREVER:
        return True, None
    until = timestamp(until_seconds)
    return (True, until) if until is not None and until > now else (False, None)


def member_from_wire(item: wire.WireMember, now: datetime) -> Member:
    muted, until = mute_state(item.MuteUntil, now)
    return Member(
        user_id=item.Member_Account,
        # Documentation samples print "Member " with a trailing space: compare stripped.
        role=ROLES.get(item.Role.strip(), Role.MEMBER),
        joined_at=timestamp(item.JoinTime),
        muted=muted,
        muted_until=until,
        name_card=item.NameCard or None,
        provider=NAME,
        raw=item.model_dump(),
    )


#: ApplyJoinOption values (create_group, modify_group_base_info: /1047/34895, /1047/34962).
JOIN_OPTIONS = {"FreeAccess": JoinOption.FREE, "NeedPermission": JoinOption.APPROVAL,
                "DisableApply": JoinOption.CLOSED}  # fmt: skip
JOIN_OPTIONS_BACK = {option: name for name, option in JOIN_OPTIONS.items()}

#: query_online_status ``Detail.Platform`` values (https://www.tencentcloud.com/document/product/1047/35477).
PLATFORMS = {"iphone": DeviceKind.APP, "android": DeviceKind.APP, "ipad": DeviceKind.APP,
             "web": DeviceKind.WEB, "pc": DeviceKind.DESKTOP, "mac": DeviceKind.DESKTOP}  # fmt: skip
#: query_online_status ``Status``: Online (connected), PushOnline (reachable by push), Offline.
PRESENCE_STATES = {"online": PresenceState.ONLINE, "pushonline": PresenceState.BACKGROUND,
                   "offline": PresenceState.OFFLINE}  # fmt: skip


def presence_from_wire(item: wire.OnlineStatus) -> Presence:
    devices = [
        DeviceSession(kind=PLATFORMS.get(d.Platform.strip().lower()), platform=d.Platform,
                      state=PRESENCE_STATES.get(d.Status.strip().lower(), PresenceState.OFFLINE))
        for d in item.Detail
    ]  # fmt: skip
    state = PRESENCE_STATES.get(item.state.strip().lower(), PresenceState.OFFLINE)
    return Presence(user_id=item.To_Account, state=state, devices=devices, provider=NAME, raw=item.model_dump())


GROUP_BASE_FIELDS = (
    "Name", "Introduction", "Notification", "FaceUrl", "Owner_Account", "CreateTime", "MemberNum", "MuteAllMember",
    "MaxMemberNum", "ApplyJoinOption",
)  # fmt: skip
"""The base-info fields ``group_from_wire`` reads: what ``get_group_info``'s GroupBaseInfoFilter asks for."""


def group_from_wire(info: wire.GroupInfoItem) -> Group:
    raw = info.model_dump()
    raw.pop("MemberList", None)
    return Group(
        id=info.GroupId,
        name=info.Name,
        owner=info.Owner_Account or None,
        introduction=info.Introduction,
        notification=info.Notification,
        face_url=info.FaceUrl,
        mute_all=(info.MuteAllMember or "").strip() == "On",
        member_count=info.MemberNum,
        join_option=JOIN_OPTIONS.get((info.ApplyJoinOption or "").strip()),
        max_members=info.MaxMemberNum or None,
        created_at=timestamp(info.CreateTime),
        provider=NAME,
        raw=raw,
    )


# -- messages ------------------------------------------------------------------------------------

REVOKED_FLAG = 8
"""``MsgFlagBits`` of a recalled C2C message."""
PLACEHOLDER_EXPIRED, PLACEHOLDER_RECALLED = 1, 2
"""``IsPlaceMsg`` values of group history."""


def c2c_ref(sender: str, recipient: str, msg_key: str) -> MessageRef:
    # Ids the server reports are taken as they are (no send-side checks): nothing it reports is lost.
    return MessageRef(
        provider=NAME,
        conversation=Conversation(kind=ConversationKind.USER, id=recipient),
        sender=sender,
        key=msg_key,
        extra={"From_Account": sender, "To_Account": recipient},
    )


def group_ref(group_id: str, sender: str, seq: int) -> MessageRef:
    conversation = Conversation(kind=ConversationKind.GROUP, id=group_id)
    return MessageRef(provider=NAME, conversation=conversation, sender=sender, key=str(seq), seq=seq)


def c2c_message_from_wire(item: wire.RoamMsg, conversation: Conversation) -> Message:
    revoked = bool(item.MsgFlagBits & REVOKED_FLAG)
    return Message(
        ref=c2c_ref(item.From_Account, item.To_Account, item.MsgKey),
        sender=item.From_Account,
        conversation=conversation,
        elements=[] if revoked else [element_from_wire(e) for e in item.MsgBody],
        time=datetime.fromtimestamp(item.MsgTimeStamp, UTC),
        seq=None,
        revoked=revoked,
        metadata=metadata_from(item.CloudCustomData),
        provider=NAME,
        raw=item.model_dump(),
    )


def group_message_from_wire(item: wire.GroupMsg, group_id: str) -> Message:
    revoked = item.IsPlaceMsg == PLACEHOLDER_RECALLED
    return Message(
        ref=group_ref(group_id, item.From_Account, item.MsgSeq),
        sender=item.From_Account,
        conversation=Conversation.group(group_id),
        elements=[] if revoked else [element_from_wire(e) for e in item.MsgBody],
        time=datetime.fromtimestamp(item.MsgTimeStamp, UTC),
        seq=item.MsgSeq,
        revoked=revoked,
        metadata=metadata_from(item.CloudCustomData),
        provider=NAME,
        raw=item.model_dump(),
    )
