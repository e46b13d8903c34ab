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
    Element,
    Face,
    File,
    Gender,
    Group,
    Image,
    Location,
    Member,
    Message,
    MessageRef,
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

ERROR_TABLE: dict[int, ErrorRule] = {
    # §5.1 common REST codes
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
    # §5.2 account / UserSig
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
    # §5.3 messages
    20001: _rule(_BAD, "invalid request packet"),
    20002: _rule(_AUTH, "UserSig or A2 invalid/expired", credentials_expired=True),
    20003: _rule(_NF, "sender or recipient UserID invalid or not imported"),
    20004: _rule(_UNAV, "network exception", retryable=True),
    20005: _rule(_UNAV, "internal server error", retryable=True),
    20006: _rule(_PERM, "blocked by the before-send webhook"),
    20007: _rule(_PERM, "sender is in the recipient's blocklist"),
    20009: _rule(_PERM, "not friends (friend check configured)"),
    20010: _rule(_PERM, "not friends (friend check configured)"),
    20011: _rule(_PERM, "not friends (friend check configured)"),
    20012: _rule(_PERM, "sender muted (global mute)"),
    20016: _rule(_PERM, "recall time limit exceeded"),
    20022: _rule(_NF, "message to recall not found"),
    20023: _rule(_CONF, "message already recalled"),
    20028: _rule(_CONF, "concurrent modification conflict", retryable=True),
    80001: _rule(_BAD, "sensitive text"),
    80002: _rule(_BAD, "message too long"),
    80003: _rule(_UNAV, "before-send webhook failed or timed out", retryable=True),
    80004: _rule(_BAD, "sensitive image"),
    **{code: _rule(_BAD, "request validation failed") for code in range(90001, 90013)},
    90012: _rule(_NF, "To_Account not imported"),
    90024: _rule(_RATE, "all-user push interval must exceed 1 s", retryable=True),
    90026: _rule(_BAD, "MsgLifeTime over 7 days"),
    90031: _rule(_BAD, "field type error"),
    90043: _rule(_BAD, "request validation failed"),
    90044: _rule(_BAD, "field type error"),
    90048: _rule(_NF, "account does not exist"),
    90054: _rule(_BAD, "invalid MsgKey"),
    90055: _rule(_BAD, "message too long"),
    90992: _rule(_UNAV, "internal service error (check your webhook responds)", retryable=True),
    90994: _rule(_UNAV, "internal service error", retryable=True),
    90995: _rule(_UNAV, "internal service error", retryable=True),
    91000: _rule(_UNAV, "internal service error", retryable=True),
    93000: _rule(_BAD, "JSON packet over 12 KB"),
    # §5.4 groups
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
    10025: _rule(_CONF, "group ID already used by you"),
    10026: _rule(_PERM, "command disabled for this SDKAppID"),
    10030: _rule(_NF, "message to recall does not exist"),
    10031: _rule(_PERM, "message beyond the recall time range"),
    10032: _rule(_PERM, "message cannot be recalled"),
    10033: _rule(_PERM, "group type does not support recall"),
    10036: _rule(_PERM, "quota or edition limit"),
    10037: _rule(_PERM, "user joined too many groups"),
    10038: _rule(_PERM, "quota or edition limit"),
    10041: _rule(_PERM, "recall disabled for this app"),
    10044: _rule(_BAD, "group type has no roaming messages"),
    10049: _rule(_RATE, "custom attribute frequency limit", retryable=True),
    10053: _rule(_BAD, "more than 30 @ targets"),
    10054: _rule(_BAD, "too many members; page"),
    10056: _rule(_CONF, "custom attribute write race", retryable=True),
    10058: _rule(_PERM, "Trial edition: more than 100 groups"),
    10059: _rule(_PERM, "quota or edition limit"),
    11000: _rule(_PERM, "Community groups not enabled"),
    # other families (§3.2, §5.4 "Other families")
    40001: _rule(_BAD, "profile request decode failed"),
    40002: _rule(_BAD, "profile request invalid"),
    40003: _rule(_NF, "account does not exist"),
    40004: _rule(_BAD, "profile request invalid"),
    40006: _rule(_UNAV, "profile service internal error", retryable=True),
    40007: _rule(_PERM, "no read permission on the profile field"),
    40008: _rule(_PERM, "no write permission on the profile field"),
    40009: _rule(_BAD, "profile tag does not exist"),
    40601: _rule(_BAD, "profile value over 500 bytes"),
    40605: _rule(_BAD, "bad standard profile value"),
    40610: _rule(_BAD, "bad profile value type"),
    30006: _rule(_UNAV, "relationship service internal error", retryable=True),
    30007: _rule(_UNAV, "relationship service timeout", retryable=True),
    30008: _rule(_CONF, "relationship write conflict", retryable=True),
    50004: _rule(_UNAV, "recent-contact service internal error", retryable=True),
    50005: _rule(_UNAV, "recent-contact service timeout", retryable=True),
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


# -- dedupe keys ---------------------------------------------------------------------------------


def dedupe_numbers(idempotency_key: str) -> tuple[int, int]:
    """(MsgRandom / Random, MsgSeq): two uint32 derived from the idempotency key, the same on every retry."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:8], "big")


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
        infos = [
            {"Type": 1, "Size": element.size or 0, "Width": element.width or 0, "Height": element.height or 0,
             "URL": element.url},
        ]  # fmt: skip
        if element.thumbnail_url:
            infos.append({"Type": 3, "Size": 0, "Width": 0, "Height": 0, "URL": element.thumbnail_url})
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
                return Image(
                    url=original["URL"], width=_int(original.get("Width")) or None,
                    height=_int(original.get("Height")) or None, size=_int(original.get("Size")),
                    format=_IMAGE_FORMAT_NAMES.get(c.get("ImageFormat", 255), "other"), uuid=c.get("UUID"),
                    thumbnail_url=thumb["URL"] if thumb and thumb is not original else None,
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
    except (KeyError, TypeError, ValidationError):
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


def member_from_wire(item: wire.WireMember, now: datetime) -> Member:
    until = timestamp(item.MuteUntil)
    return Member(
        user_id=item.Member_Account,
        # Documentation samples print "Member " with a trailing space: compare stripped.
        role=ROLES.get(item.Role.strip(), Role.MEMBER),
        joined_at=timestamp(item.JoinTime),
        muted_until=until if until is not None and until > now else None,
        provider=NAME,
        raw=item.model_dump(),
    )


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
