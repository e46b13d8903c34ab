"""TencentProvider: the neutral operations over Tencent Cloud IM REST API v4.

Every call is ``POST https://{host}/v4/{service}/{command}?sdkappid=&identifier=&usersig=&random=&contenttype=json``
with a JSON body. HTTP is 200 even for errors: ``decode`` reads ``ErrorCode`` and raises the mapped error.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from imbridge._clock import Clock
from imbridge._cursor import decode_cursor, encode_cursor
from imbridge._flow import Flow, Gather, HTTPRequest, Request, Response, encode_json, windows
from imbridge._pacing import Rate
from imbridge.capabilities import CapabilityMap, Operation, Support
from imbridge.config import TencentSettings
from imbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    IMBridgeError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
)
from imbridge.models import (
    BatchItem,
    BatchResult,
    Custom,
    Group,
    LoginCredentials,
    Member,
    Message,
    MessageRef,
    Page,
    Profile,
    Role,
    SentMessage,
)
from imbridge.providers.base import (
    BatchDraft,
    Direction,
    GroupSpec,
    GroupUpdate,
    HistoryQuery,
    OutgoingMessage,
    ProfileUpdate,
    Provider,
    ProviderSettings,
)
from imbridge.providers.tencent import mapping, paging, wire
from imbridge.providers.tencent.mapping import NAME
from imbridge.providers.tencent.usersig import UserSigCache, generate_usersig, verify_usersig

T = TypeVar("T")

#: Official REST hosts by data centre (reference §1.1).
HOSTS: dict[str, str] = {
    "china": "console.tim.qq.com",
    "singapore": "adminapisgp.im.qcloud.com",
    "seoul": "adminapikr.im.qcloud.com",
    "tokyo": "adminapijpn.im.qcloud.com",
    "frankfurt": "adminapiger.im.qcloud.com",
    "mumbai": "adminapiind.im.qcloud.com",
    "silicon_valley": "adminapiusa.im.qcloud.com",
    "jakarta": "adminapiidn.im.qcloud.com",
}
_REGION_ALIASES = {"usa": "silicon_valley", "us": "silicon_valley", "siliconvalley": "silicon_valley", "cn": "china"}

#: Documented default frequency limits (reference §0.3, §8), per command.
DEFAULT_RATES: dict[str, Rate] = {
    "multiaccount_import": Rate(100),
    "account_delete": Rate(100),
    "account_check": Rate(100),
    "get_appid_group_list": Rate(1),
    "get_history": Rate(10),
    # 12,000 recipient-messages per minute; each request costs its number of recipients.
    "batchsendmsg": Rate(12_000, 60.0),
}
DEFAULT_RATE = Rate(200)

LIMITS = mapping.LIMITS
IMPORT_CHUNK = 100
BATCH_CHUNK = LIMITS["batch recipients"].value
ADD_MEMBER_CHUNK = 100  # the API page says 300, the limits page 100: the smaller one
DELETE_MEMBER_CHUNK = 100
MUTE_CHUNK = LIMITS["mute accounts"].value
GROUP_HISTORY_PAGE = paging.HISTORY_WINDOW
CREATE_MEMBERS_MAX = 100
MAX_MUTE_SECONDS = mapping.LIMITS["mute time"].value  # the documented "permanent"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")
_RESERVED_OPTIONS = {"MsgRandom", "MsgSeq", "MsgBody", "From_Account", "GroupId", "Random"}

M = TypeVar("M", bound=BaseModel)


BULK_WINDOW = 4
"""Chunks handed to the executor at once (run concurrently by the async client)."""


def _failed(chunk: Sequence[str], error: IMBridgeError) -> Iterator[BatchItem]:
    """The chunk's items failed with ``error``; an error about the whole call (credentials) is raised."""
    if isinstance(error, AuthenticationError):
        raise error
    for uid in chunk:
        yield BatchItem(target=uid, ok=False, error=error, native_code=error.native_code, detail=error.message)


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    """``windows`` of ids as lists, the type the wire models take."""
    return (list(window) for window in windows(items, size))


def _over(limit: mapping.Limit, size: int, what: str) -> InvalidRequestError:
    return InvalidRequestError(f"{what} is {size:,} {limit.unit}: {limit.describe()}", provider=NAME)


def _check_user_ids(user_ids: Sequence[str], what: str = "user id") -> None:
    """Tencent UserIDs are at most 32 bytes: one past it cannot exist there, so the call is refused here."""
    limit = LIMITS["user id"]
    for uid in user_ids:
        if mapping.utf8_len(uid) > limit.value:
            raise _over(limit, mapping.utf8_len(uid), f"{what} {uid[:40]!r}")


def _check_group_texts(**texts: str | None) -> None:
    """The documented group profile limits in UTF-8 bytes (name 30, introduction 240, notification 300,
    face URL 100; https://cloud.tencent.com/document/product/269/9346, read 2026-12-02)."""
    for field, value in texts.items():
        if value is None:
            continue
        limit = LIMITS[f"group {field.replace('_', ' ').replace('url', 'URL')}"]
        if mapping.utf8_len(value) > limit.value:
            raise _over(limit, mapping.utf8_len(value), f"the group {field.replace('_', ' ')}")


def _check_group_id(group_id: str) -> None:
    """Custom group ids: printable ASCII (0x20-0x7e), at most 48 bytes, not starting with @TGS#."""
    limit = LIMITS["custom group id"]
    if group_id.startswith("@TGS#") or not all(0x20 <= ord(c) <= 0x7E for c in group_id):
        raise InvalidRequestError(
            f"custom group ids are printable ASCII and do not start with @TGS# ({limit.source})", provider=NAME
        )
    if len(group_id) > limit.value:
        raise _over(limit, len(group_id), "the group id")


def _build(model: type[M], **fields: Any) -> M:
    """A wire request, or InvalidRequestError naming the offending option (never echoing values)."""
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidRequestError(f"invalid {model.__name__} field: {problems}", provider=NAME) from None


class TencentProvider(Provider):
    name = NAME
    settings_class = TencentSettings

    def __init__(self, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        super().__init__(settings, clock=clock)
        assert isinstance(settings, TencentSettings)
        self.tencent: TencentSettings = settings
        if not settings.secret_key.get_secret_value():
            raise ConfigurationError("tencent: secret_key is empty", provider=NAME)
        self.base_url = self._base_url(settings)
        self._rates = dict(DEFAULT_RATES)
        for command, per_second in settings.rate_limits.items():
            if per_second <= 0:
                raise ConfigurationError(f"tencent: rate limit for {command!r} must be positive", provider=NAME)
            self._rates[command] = Rate(per_second)
        self._sigs = UserSigCache(
            settings.sdk_app_id,
            settings.secret_key.get_secret_value,
            settings.admin,
            settings.usersig_ttl,
            clock=lambda: self.clock.now().timestamp(),
        )
        self._seq_lock = threading.Lock()
        self._last_seq = 0
        # Custom profile keys this client has written: read back along with the configured ones.
        self._custom_keys: set[str] = set()

    @staticmethod
    def _base_url(settings: TencentSettings) -> str:
        if settings.base_url:
            return settings.base_url.rstrip("/")
        region = settings.region.strip().lower().replace("-", "_").replace(" ", "_")
        region = _REGION_ALIASES.get(region, region)
        if region not in HOSTS:
            raise ConfigurationError(
                f"tencent: unknown region {settings.region!r}; one of {', '.join(HOSTS)} (or set base_url)",
                provider=NAME,
            )
        return f"https://{HOSTS[region]}"

    # -- capabilities -----------------------------------------------------------------------------

    @property
    def capabilities(self) -> CapabilityMap:
        n, p = Support.NATIVE, Support.PARTIAL
        return CapabilityMap(
            NAME,
            {
                Operation.USERS_REGISTER: (n, "multiaccount_import, 100 per request; an existing account is not "
                                              "reported as such (Tencent does not say)"),
                Operation.USERS_GET_PROFILES: (p, "portrait_get; custom keys are read only for the keys listed in "
                                                  "settings.profile_custom_keys and those this client has set (Tencent "
                                                  "returns only tags asked for)"),
                Operation.USERS_SET_PROFILE: (n, "portrait_set; custom keys must first be created in the console"),
                Operation.USERS_LOGIN_CREDENTIALS: (n, "a UserSig signed locally; the account is not checked"),
                Operation.MESSAGES_SEND: (n, "sendmsg / send_group_msg; MsgRandom/Random derived from the "
                                             "idempotency key, so retries are deduplicated by the server (C2C 120 s, "
                                             "group 5 min); an OK answer with MsgDropReason raises RateLimitError; "
                                             "sendmsg does not check blocklists or mutes; 40 msgs/s per group is "
                                             "not paced client-side. Tencent limits (refused before the network, "
                                             "other providers have none): the message body (MsgBody JSON) at most "
                                             "12 KB, user ids at most 32 bytes"),
                Operation.MESSAGES_SEND_BATCH: (n, "batchsendmsg, 500 recipients per request (a larger batch is sent "
                                                   "in chunks of 500, each with its own MsgRandom: Tencent's C2C "
                                                   "dedupe key has no recipient), paced at 12,000 "
                                                   "recipient-messages/min; triggers no webhooks"),
                Operation.MESSAGES_HISTORY: (p, "only within the roaming retention (7/30/90 days by edition). C2C "
                                                "reads backward natively; FORWARD re-reads backward from now down to "
                                                "the cursor on every page (cost grows with what remains). Group "
                                                "history reads windows of 20 seqs between 1 and NextMsgSeq-1 (one "
                                                "get_group_info on the first page); a window Tencent cuts short "
                                                "(IsFinished 0) is asked again for its missing part; FORWARD walks "
                                                "up from seq 1, expired seqs included. Group system messages and "
                                                "expired placeholders are skipped"),
                Operation.MESSAGES_REVOKE: (n, "admin_msgwithdraw (no time limit) / group_msg_recall (within "
                                               "retention); revoking twice succeeds"),
                Operation.GROUPS_CREATE: (n, "create_group with Type from settings.group_type (Public by default: "
                                             "Private/Work groups cannot mute members); members beyond 100 are added "
                                             "afterwards. Tencent limits, refused before the network (other "
                                             "providers have none): name 30, introduction 240, notification 300, "
                                             "face URL 100 UTF-8 bytes; custom group ids printable ASCII, at most "
                                             "48 bytes, not starting with @TGS#"),
                Operation.GROUPS_GET: (n, "get_group_info asking exactly the base-info fields imbridge reads "
                                          "(a ResponseFilter returns only what it names)"),
                Operation.GROUPS_UPDATE: (n, "modify_group_base_info; the same text limits as create"),
                Operation.GROUPS_DISMISS: n,
                Operation.GROUPS_ADD_MEMBERS: (n, "add_group_member (100 per request); admins are then set with "
                                                  "modify_group_member_info"),
                Operation.GROUPS_REMOVE_MEMBERS: (p, "delete_group_member reports nothing per member: imbridge reads "
                                                     "the member list first to report non-members and the owner"),
                Operation.GROUPS_MEMBERS: (n, "get_group_member_info paged 200 at a time with Limit/Offset, 100 at a "
                                              "time with Next for Community groups (the documented caps)"),
                Operation.GROUPS_MUTE: (n, "forbid_send_msg MuteTime in seconds (at most 4294967295), 500 accounts "
                                           "per request; not for Private (Work) groups"),
                Operation.GROUPS_UNMUTE: (n, "forbid_send_msg MuteTime 0"),
                Operation.GROUPS_MUTE_ALL: (n, "modify_group_base_info MuteAllMember On/Off"),
                Operation.GROUPS_MUTED: (n, "get_group_muted_account, roles from the member list"),
            },
        )  # fmt: skip

    # -- transport hooks --------------------------------------------------------------------------

    def _req(
        self, service: str, command: str, body: dict[str, Any], *, cost: int = 1, replay_safe: bool = True
    ) -> Request:
        # POST bodies must never be empty: Tencent asks for {} at least.
        return Request(
            "POST", f"v4/{service}/{command}", json=body or {}, api=command, cost=max(cost, 1),
            replay_safe=replay_safe,
        )  # fmt: skip

    def to_http(self, request: Request) -> HTTPRequest:
        params = {
            "sdkappid": str(self.tencent.sdk_app_id),
            "identifier": self.tencent.admin,
            "usersig": self._sigs.get(),
            "random": str(secrets.randbits(32)),
            "contenttype": "json",
        }
        return HTTPRequest(
            method=request.method,
            url=f"{self.base_url}/{request.path.lstrip('/')}",
            params={**params, **request.params},
            headers={"Content-Type": "application/json", **request.headers},
            content=encode_json(request.json if request.json is not None else {}),
        )

    def decode(self, request: Request, response: Response) -> Any:
        status = response.status_code
        if status == 429:
            raise RateLimitError("HTTP 429", retry_after=response.retry_after(), provider=NAME, http_status=status)
        if status >= 500:
            raise ServiceUnavailableError(
                f"HTTP {status}", retry_after=response.retry_after(), provider=NAME, http_status=status
            )
        if status != 200:
            raise ProviderError(f"unexpected HTTP {status}", provider=NAME, http_status=status)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "ActionStatus" not in payload:
            # Every v4 answer carries ActionStatus: anything else was garbled on the way (retryable; sends
            # carry their dedupe numbers, so a retry cannot store a message twice).
            raise ServiceUnavailableError("response is not a Tencent IM answer", provider=NAME, http_status=status)
        envelope = wire.WireResponse.model_validate(payload)
        if envelope.ErrorCode != 0:
            raise mapping.error_for(envelope.ErrorCode, envelope.ErrorInfo)
        if "ErrorCode" not in payload and envelope.ActionStatus == "FAIL":
            raise ProviderError(f"FAIL without ErrorCode: {envelope.ErrorInfo}", provider=NAME, http_status=status)
        self._check_items(request.api, payload)
        return payload

    def _check_items(self, command: str, payload: dict[str, Any]) -> None:
        """Failures that Tencent reports inside an OK answer, raised so they are retried or surfaced."""
        if command == "send_group_msg" and payload.get("MsgDropReason"):
            reason = str(payload["MsgDropReason"])
            # The server dropped the message (frequency control) though it answered OK: retry it with
            # the same Random; after the last attempt the caller sees the reason.
            raise RateLimitError(f"group message dropped: {reason}", provider=NAME, native_code=reason)
        if command == "portrait_get":
            items = wire.PortraitGetResponse.model_validate(payload).UserProfileItem
            failed = [item for item in items if item.ResultCode != 0]
            if failed:
                missing = [i.To_Account for i in failed if mapping.rule_for(i.ResultCode) in _NOT_FOUND_RULES]
                if missing and len(missing) == len(failed):
                    raise NotFoundError(f"unknown users: {', '.join(missing)}", provider=NAME,
                                        native_code=failed[0].ResultCode)  # fmt: skip
                first = failed[0]
                raise mapping.error_for(first.ResultCode, f"{first.To_Account}: {first.ResultInfo}")
        if command == "get_group_info":
            for info in wire.GetGroupInfoResponse.model_validate(payload).GroupInfo:
                if info.ErrorCode != 0:
                    raise mapping.error_for(info.ErrorCode, f"{info.GroupId}: {info.ErrorInfo}")

    def rate_for(self, request: Request) -> Rate | None:
        return self._rates.get(request.api, DEFAULT_RATE)

    def renew_credentials(self) -> None:
        self._sigs.invalidate()

    def call(self, service: str, command: str, body: dict[str, Any] | None = None) -> Flow[Any]:
        """Any v4 command, with the same auth, pacing, retries and error mapping; returns the JSON reply."""
        for part, what in ((service, "service"), (command, "command")):
            if not isinstance(part, str) or not _NAME_PATTERN.match(part):
                raise InvalidRequestError(f"invalid {what} name {part!r}", provider=NAME, operation="provider.call")
        if body is not None and not isinstance(body, dict):
            raise InvalidRequestError("body must be a JSON object", provider=NAME, operation="provider.call")
        reply = yield self._req(service, command, dict(body or {}))
        return reply

    # -- users ------------------------------------------------------------------------------------

    def register_users(self, user_ids: Sequence[str]) -> Flow[BatchResult]:
        _check_user_ids(user_ids)
        items: list[BatchItem] = []
        raws: list[dict[str, Any]] = []
        for window in windows(list(_chunks(user_ids, IMPORT_CHUNK)), BULK_WINDOW):
            requests = [
                self._req("im_open_login_svc", "multiaccount_import", wire.MultiAccountImportRequest(Accounts=c).body())
                for c in window
            ]
            replies = yield Gather(requests)
            for chunk, reply in zip(window, replies, strict=True):
                if isinstance(reply, IMBridgeError):
                    raise reply  # registering is idempotent: the caller can simply run it again
                raws.append(reply)
                items.extend(self._imported(chunk, reply))
        return BatchResult(items=items, provider=NAME, raw={"responses": raws})

    @staticmethod
    def _imported(chunk: Sequence[str], reply: dict[str, Any]) -> Iterator[BatchItem]:
        failed = set(wire.MultiAccountImportResponse.model_validate(reply).FailAccounts)
        for uid in chunk:
            if uid in failed:
                error = ProviderError(f"Tencent did not import {uid!r}", provider=NAME)
                yield BatchItem(target=uid, ok=False, error=error, detail=error.message)
            else:
                yield BatchItem(target=uid, ok=True)

    def get_profiles(self, user_ids: Sequence[str]) -> Flow[list[Profile]]:
        keys = [*self.tencent.profile_custom_keys, *sorted(self._custom_keys - set(self.tencent.profile_custom_keys))]
        tags = mapping.STANDARD_TAGS + [mapping.CUSTOM_PREFIX + key for key in keys]
        found: dict[str, Profile] = {}
        for chunk in _chunks(user_ids, 100):
            reply = yield self._req(
                "profile", "portrait_get", wire.PortraitGetRequest(To_Account=chunk, TagList=tags).body()
            )
            for item in wire.PortraitGetResponse.model_validate(reply).UserProfileItem:
                found[item.To_Account] = mapping.profile_from_wire(item)
        missing = [uid for uid in user_ids if uid not in found]
        if missing:
            raise NotFoundError(f"unknown users: {', '.join(missing)}", provider=NAME)
        return [found[uid] for uid in user_ids]

    def set_profile(self, user_id: str, update: ProfileUpdate) -> Flow[None]:
        items = [
            wire.TagValue(Tag=tag, Value=value)
            for tag, value in (
                (mapping.TAG_NICK, update.nickname),
                (mapping.TAG_IMAGE, update.avatar_url),
                (mapping.TAG_GENDER, mapping.GENDERS[update.gender] if update.gender else None),
                (mapping.TAG_SIGNATURE, update.signature),
            )
            if value is not None
        ]
        for key, value in update.custom.items():
            if not re.fullmatch(r"[A-Za-z]{1,8}", key):
                raise InvalidRequestError(f"Tencent custom profile keys are 1-8 letters: {key!r}", provider=NAME)
            items.append(wire.TagValue(Tag=mapping.CUSTOM_PREFIX + key, Value=value))
        yield self._req(
            "profile", "portrait_set", wire.PortraitSetRequest(From_Account=user_id, ProfileItem=items).body()
        )
        self._custom_keys.update(update.custom)
        return None

    def login_credentials(self, user_id: str, ttl: timedelta) -> Flow[LoginCredentials]:
        seconds = int(ttl.total_seconds())
        if seconds < 1:
            raise InvalidRequestError("ttl must be at least one second", provider=NAME)
        issued = int(self.clock.now().timestamp())
        sig = generate_usersig(
            self.tencent.sdk_app_id, self.tencent.secret_key.get_secret_value(), user_id, seconds, now=issued
        )
        return LoginCredentials(
            user_id=user_id, token=SecretStr(sig), expires_at=datetime.fromtimestamp(issued + seconds, UTC),
            extra={"sdk_app_id": self.tencent.sdk_app_id}, provider=NAME,
        )  # fmt: skip
        yield  # pragma: no cover - makes this a generator: signing needs no I/O

    def authenticate(self, token: str) -> str:
        """The user a UserSig was issued to, verified as Tencent's server verifies it (signature with this
        app's key, this SDKAppID, not expired); AuthenticationError otherwise."""
        document = verify_usersig(
            token, self.tencent.sdk_app_id, self.tencent.secret_key.get_secret_value(), now=self.clock.now().timestamp()
        )
        return str(document["TLS.identifier"])

    # -- messages ---------------------------------------------------------------------------------

    @staticmethod
    def _body(elements: Sequence[Any], limit: mapping.Limit = LIMITS["message body"]) -> list[dict[str, Any]]:
        if sum(isinstance(e, Custom) for e in elements) > 1:
            raise InvalidRequestError("a Tencent message may hold only one Custom element", provider=NAME)
        body = [mapping.element_to_wire(e) for e in elements]
        # "单聊、群聊消息,单条消息最大长度限制为12K": measured as the MsgBody JSON, as the service gets it.
        size = len(encode_json(body))
        if size > limit.value:
            raise _over(limit, size, "the message body (MsgBody JSON)")
        return body

    @staticmethod
    def _options(options: dict[str, Any], *, allow_to: bool) -> dict[str, Any]:
        reserved = _RESERVED_OPTIONS | (set() if allow_to else {"To_Account"})
        clash = sorted(reserved & options.keys())
        if clash:
            raise InvalidRequestError(f"options cannot set {', '.join(clash)}: imbridge sets them", provider=NAME)
        options.pop("CloudCustomData", None)
        return options

    def _ordered_seq(self) -> int:
        """A C2C MsgSeq that grows with every send: Tencent orders one second's messages by MsgSeq.
        Milliseconds since the epoch (kept strictly increasing), so sends of several clients order by
        time too; modulo 2**32 it wraps once every 49.7 days."""
        with self._seq_lock:
            self._last_seq = max(int(self.clock.now().timestamp() * 1000), self._last_seq + 1)
            return self._last_seq % 2**32

    def send_message(self, message: OutgoingMessage) -> Flow[SentMessage]:
        msg_random, msg_seq = mapping.dedupe_numbers(message.idempotency_key)
        if not message.key_from_caller:
            # A generated key is never re-sent by the caller, only retried by the executor with this
            # very body, so MsgSeq can keep send order instead of being derived from the key.
            msg_seq = self._ordered_seq()
        _check_user_ids([message.sender] if message.to.is_group else [message.sender, message.to.id])
        body = self._body(message.elements, LIMITS["group message body" if message.to.is_group else "message body"])
        options = dict(message.options)
        cloud = mapping.cloud_custom_data(message.metadata, options)
        if message.to.is_group:
            group_req = _build(
                wire.SendGroupMsgRequest, GroupId=message.to.id, Random=msg_random, MsgBody=body,
                From_Account=message.sender, CloudCustomData=cloud, **self._options(options, allow_to=True),
            )  # fmt: skip
            reply = yield self._req("group_open_http_svc", "send_group_msg", group_req.body())
            sent = wire.SendGroupMsgResponse.model_validate(reply)
            return SentMessage(
                ref=mapping.group_ref(message.to.id, message.sender, sent.MsgSeq),
                time=mapping.timestamp(sent.MsgTime), seq=sent.MsgSeq, provider=NAME, raw=reply,
            )  # fmt: skip
        extra = self._options(options, allow_to=False)
        extra.setdefault("SyncOtherMachine", 1)  # the sender's devices and roaming see it too
        c2c_req = _build(
            wire.SendMsgRequest, From_Account=message.sender, To_Account=message.to.id, MsgSeq=msg_seq,
            MsgRandom=msg_random, MsgBody=body, CloudCustomData=cloud, **extra,
        )  # fmt: skip
        reply = yield self._req("openim", "sendmsg", c2c_req.body())
        c2c = wire.SendMsgResponse.model_validate(reply)
        return SentMessage(
            ref=mapping.c2c_ref(message.sender, message.to.id, c2c.MsgKey),
            time=mapping.timestamp(c2c.MsgTime), provider=NAME, raw=reply,
        )  # fmt: skip

    def send_batch(self, batch: BatchDraft) -> Flow[BatchResult]:
        _check_user_ids([batch.sender, *batch.recipients])
        _, msg_seq = mapping.dedupe_numbers(batch.idempotency_key)
        body = self._body(batch.elements)
        options = dict(batch.options)
        cloud = mapping.cloud_custom_data(batch.metadata, options)
        extra = self._options(options, allow_to=False)
        extra.setdefault("SyncOtherMachine", 1)
        items: list[BatchItem] = []
        raws: list[dict[str, Any]] = []
        # A few chunks at a time (concurrently on the async client; pacing still spaces them): memory stays
        # flat however many recipients there are.
        chunks = list(_chunks(batch.recipients, BATCH_CHUNK))
        for first, window in zip(range(0, len(chunks), BULK_WINDOW), windows(chunks, BULK_WINDOW), strict=True):
            requests = []
            for index, chunk in enumerate(window, start=first):
                # Tencent's C2C dedupe key is sender + MsgSeq + MsgRandom + CRC32(content), for 120 s, without the
                # recipient (https://cloud.tencent.com/document/product/269/2282): a second chunk with the first's
                # numbers would be dropped as its copy. Each chunk gets its own MsgRandom, derived from the key and
                # the chunk's index before its first attempt, so a retry of a chunk is still deduplicated.
                msg_random = mapping.dedupe_numbers(mapping.chunk_key(batch.idempotency_key, index))[0]
                request = _build(
                    wire.BatchSendMsgRequest, From_Account=batch.sender, To_Account=chunk, MsgSeq=msg_seq,
                    MsgRandom=msg_random, MsgBody=body, CloudCustomData=cloud, **extra,
                )  # fmt: skip
                requests.append(self._req("openim", "batchsendmsg", request.body(), cost=len(chunk)))
            replies = yield Gather(requests)
            for chunk, reply in zip(window, replies, strict=True):
                if isinstance(reply, IMBridgeError):
                    # ErrorCode != 0: the message reached none of this chunk's recipients (a transport
                    # error says whether it may have landed).
                    items.extend(_failed(chunk, reply))
                    continue
                items.extend(self._batch_items(batch.sender, chunk, reply))
                raws.append(reply)
        return BatchResult(items=items, provider=NAME, raw={"responses": raws})

    @staticmethod
    def _batch_items(sender: str, chunk: Sequence[str], reply: dict[str, Any]) -> Iterator[BatchItem]:
        result = wire.BatchSendMsgResponse.model_validate(reply)
        failures = {entry.To_Account: entry.ErrorCode for entry in result.ErrorList}
        for uid in chunk:
            if uid in failures:
                item_error = mapping.error_for(failures[uid], uid)
                yield BatchItem(
                    target=uid, ok=False, error=item_error, native_code=failures[uid], detail=item_error.message
                )
            else:
                yield BatchItem(target=uid, ok=True, ref=mapping.c2c_ref(sender, uid, result.MsgKey))

    # -- history ----------------------------------------------------------------------------------

    def history(self, query: HistoryQuery) -> Flow[Page[Message]]:
        position: dict[str, Any] = {}
        if query.cursor is not None:
            position = decode_cursor(NAME, query.cursor)
            if position.get("d") != query.direction.value:
                raise InvalidRequestError("history cursor does not fit this query's direction", provider=NAME)
        if query.conversation.is_group:
            if query.direction is Direction.BACKWARD:
                return (yield from self._group_backward(query, position))
            return (yield from self._group_forward(query, position))
        if query.direction is Direction.BACKWARD:
            return (yield from self._c2c_backward(query, position))
        return (yield from self._c2c_forward(query, position))

    def _roam(self, query: HistoryQuery, count: int, min_time: int, max_time: int, key: str | None) -> Request:
        body = wire.GetRoamMsgRequest(
            Operator_Account=query.viewer, Peer_Account=query.conversation.id, MaxCnt=count,
            MinTime=min_time, MaxTime=max_time, LastMsgKey=key,
        ).body()  # fmt: skip
        return self._req("openim", "admin_getroammsg", body)

    @staticmethod
    def _newest_first(messages: list[wire.RoamMsg]) -> list[wire.RoamMsg]:
        return sorted(messages, key=lambda m: (m.MsgTimeStamp, m.MsgSeq, m.MsgKey), reverse=True)

    def _c2c_backward(self, query: HistoryQuery, position: dict[str, Any]) -> Flow[Page[Message]]:
        max_time = int(position.get("t", self.clock.now().timestamp()))
        last_key: str | None = position.get("k")
        collected: list[wire.RoamMsg] = []
        more = True
        while len(collected) < query.limit:
            reply = yield self._roam(query, query.limit - len(collected), 0, max_time, last_key)
            page = wire.GetRoamMsgResponse.model_validate(reply)
            batch = self._newest_first(page.MsgList)[: query.limit - len(collected)]
            collected.extend(batch)
            more = page.Complete == 0 and bool(batch)
            if not more:
                break
            # Continue below the oldest message taken, as the docs' LastMsgTime/LastMsgKey do.
            max_time, last_key = batch[-1].MsgTimeStamp, batch[-1].MsgKey
        cursor = None
        if more and collected:
            oldest = collected[-1]
            cursor = encode_cursor(NAME, {"d": "backward", "t": oldest.MsgTimeStamp, "k": oldest.MsgKey})
        return Page(items=[mapping.c2c_message_from_wire(m, query.conversation) for m in collected],
                    next_cursor=cursor, provider=NAME)  # fmt: skip

    def _c2c_forward(self, query: HistoryQuery, position: dict[str, Any]) -> Flow[Page[Message]]:
        # The API only walks backward: read everything from now down to the cursor's second, then
        # serve the oldest part. Honest but costly; the capability note says so.
        since = int(position.get("t", 0))
        seen_at_since = set(position.get("k", []))
        max_time, last_key = int(self.clock.now().timestamp()), None
        remaining: list[wire.RoamMsg] = []
        while True:
            reply = yield self._roam(query, 100, since, max_time, last_key)
            page = wire.GetRoamMsgResponse.model_validate(reply)
            batch = self._newest_first(page.MsgList)
            remaining.extend(batch)
            if page.Complete != 0 or not batch:
                break
            max_time, last_key = batch[-1].MsgTimeStamp, batch[-1].MsgKey
        unique = {m.MsgKey: m for m in remaining if not (m.MsgTimeStamp == since and m.MsgKey in seen_at_since)}
        ordered = sorted(unique.values(), key=lambda m: (m.MsgTimeStamp, m.MsgSeq, m.MsgKey))
        items, rest = ordered[: query.limit], ordered[query.limit :]
        cursor = None
        if rest and items:
            last_time = items[-1].MsgTimeStamp
            keys = [m.MsgKey for m in items if m.MsgTimeStamp == last_time]
            if last_time == since:
                keys += sorted(seen_at_since)
            cursor = encode_cursor(NAME, {"d": "forward", "t": last_time, "k": keys})
        return Page(items=[mapping.c2c_message_from_wire(m, query.conversation) for m in items],
                    next_cursor=cursor, provider=NAME)  # fmt: skip

    def _simple(self, group_id: str, count: int, seq: int | None) -> Request:
        body = wire.GroupMsgGetSimpleRequest(
            GroupId=group_id, ReqMsgNumber=count, ReqMsgSeq=seq, WithRecalledMsg=1
        ).body()
        return self._req("group_open_http_svc", "group_msg_get_simple", body)

    @staticmethod
    def _visible(message: wire.GroupMsg | None) -> bool:
        return message is not None and message.IsPlaceMsg != mapping.PLACEHOLDER_EXPIRED and not message.IsSystemMsg

    def _group_backward(self, query: HistoryQuery, position: dict[str, Any]) -> Flow[Page[Message]]:
        """Newest first, window by window of seqs from ``NextMsgSeq - 1`` (or the cursor) down to seq 1.
        ``IsFinished`` 1 only says a window is complete, not that older messages are gone; 2 says the rest
        has expired, so the walk ends there (https://cloud.tencent.com/document/api/269/2738)."""
        group_id = query.conversation.id
        top: int | None = position.get("s")
        if top is None:
            top = (yield from paging.next_msg_seq(self._req, group_id)) - 1
        collected: list[wire.GroupMsg] = []
        ended = False
        while len(collected) < query.limit and top >= 1 and not ended:
            low = max(1, top - min(GROUP_HISTORY_PAGE, query.limit - len(collected)) + 1)
            window = yield from paging.group_window(self._req, group_id, low, top)
            resume = low - 1
            for seq in range(top, low - 1, -1):
                item = window.messages.get(seq)
                if item is None or not self._visible(item):
                    continue
                if len(collected) == query.limit:
                    resume = seq
                    break
                collected.append(item)
            ended = window.expired and resume == low - 1
            top = resume
        more = top >= 1 and not ended
        cursor = encode_cursor(NAME, {"d": "backward", "s": top}) if more else None
        return Page(items=[mapping.group_message_from_wire(m, group_id) for m in collected],
                    next_cursor=cursor, provider=NAME)  # fmt: skip

    def _group_forward(self, query: HistoryQuery, position: dict[str, Any]) -> Flow[Page[Message]]:
        """Oldest first, window by window from seq 1 (or the cursor) up to the ``NextMsgSeq - 1`` read on the
        first page."""
        group_id = query.conversation.id
        start = int(position.get("s", 1))
        newest: int | None = position.get("n")
        if newest is None:
            newest = (yield from paging.next_msg_seq(self._req, group_id)) - 1
        collected: list[wire.GroupMsg] = []
        while len(collected) < query.limit and start <= newest:
            end = min(start + min(GROUP_HISTORY_PAGE, query.limit - len(collected)) - 1, newest)
            window = yield from paging.group_window(self._req, group_id, start, end)
            resume = end + 1
            for seq in range(start, end + 1):
                item = window.messages.get(seq)
                if item is None or not self._visible(item):
                    continue
                if len(collected) == query.limit:
                    resume = seq
                    break
                collected.append(item)
            start = resume
        cursor = encode_cursor(NAME, {"d": "forward", "s": start, "n": newest}) if start <= newest else None
        return Page(items=[mapping.group_message_from_wire(m, group_id) for m in collected],
                    next_cursor=cursor, provider=NAME)  # fmt: skip

    # -- revoke -----------------------------------------------------------------------------------

    def revoke(self, ref: MessageRef) -> Flow[None]:
        if ref.conversation.is_group:
            seq = ref.seq if ref.seq is not None else int(ref.key)
            body = wire.GroupMsgRecallRequest(GroupId=ref.conversation.id, MsgSeqList=[wire.MsgSeqItem(MsgSeq=seq)])
            reply = yield self._req("group_open_http_svc", "group_msg_recall", body.body())
            for result in wire.GroupMsgRecallResponse.model_validate(reply).RecallRetList:
                if result.MsgSeq != seq or result.RetCode in (0, 20023):
                    continue
                if result.RetCode == 10032 and (yield from self._group_recalled(ref.conversation.id, seq)):
                    continue  # "cannot be recalled" because it already was: the goal is reached
                raise mapping.error_for(result.RetCode, f"seq {seq}")
            return None
        body_c2c = wire.MsgWithdrawRequest(
            From_Account=ref.extra.get("From_Account", ref.sender),
            To_Account=ref.extra.get("To_Account", ref.conversation.id),
            MsgKey=ref.key,
        )
        try:
            yield self._req("openim", "admin_msgwithdraw", body_c2c.body())
        except ProviderError as error:
            if error.native_code != 20023:  # already recalled: the goal is reached
                raise
        return None

    def _group_recalled(self, group_id: str, seq: int) -> Flow[bool]:
        reply = yield self._simple(group_id, 1, seq)
        found = wire.GroupMsgGetSimpleResponse.model_validate(reply).messages()
        return any(m.MsgSeq == seq and m.IsPlaceMsg == mapping.PLACEHOLDER_RECALLED for m in found)

    # -- groups -----------------------------------------------------------------------------------

    def create_group(self, spec: GroupSpec) -> Flow[Group]:
        if spec.group_id is not None:
            _check_group_id(spec.group_id)
        _check_group_texts(name=spec.name, introduction=spec.introduction, notification=spec.notification,
                           face_url=spec.face_url)  # fmt: skip
        _check_user_ids([*([spec.owner] if spec.owner else []), *spec.admins, *spec.members])
        initial = [wire.CreateGroupMember(Member_Account=uid, Role="Admin") for uid in spec.admins]
        initial += [wire.CreateGroupMember(Member_Account=uid) for uid in spec.members]
        first, later = initial[:CREATE_MEMBERS_MAX], initial[CREATE_MEMBERS_MAX:]
        request = wire.CreateGroupRequest(
            Owner_Account=spec.owner, Type=self.tencent.group_type, GroupId=spec.group_id, Name=spec.name,
            Introduction=spec.introduction or None, Notification=spec.notification or None,
            FaceUrl=spec.face_url or None, MemberList=first or None,
        )  # fmt: skip
        # Without a custom id a replay could create a second group: leave that retry to the caller.
        reply = yield self._req(
            "group_open_http_svc", "create_group", request.body(), replay_safe=spec.group_id is not None
        )
        group_id = wire.CreateGroupResponse.model_validate(reply).GroupId
        for role in (Role.ADMIN, Role.MEMBER):
            rest = [m.Member_Account for m in later if (m.Role == "Admin") == (role is Role.ADMIN)]
            if rest:
                added = yield from self.add_members(group_id, rest, role)
                if not added.ok:
                    names = ", ".join(item.target for item in added.failed)
                    raise ProviderError(f"group {group_id} created, but these were not added: {names}", provider=NAME)
        return (yield from self.get_group(group_id))

    def get_group(self, group_id: str) -> Flow[Group]:
        # A ResponseFilter returns only the fields it names ("如果设置了过滤器,没有在过滤器中指明的字段将不被拉取",
        # https://cloud.tencent.com/document/api/269/1616): ask for exactly the base info the mapping reads, and no
        # member list (members() pages it within the documented caps).
        body = wire.GetGroupInfoRequest(
            GroupIdList=[group_id], ResponseFilter={"GroupBaseInfoFilter": list(mapping.GROUP_BASE_FIELDS)}
        )
        reply = yield self._req("group_open_http_svc", "get_group_info", body.body())
        infos = wire.GetGroupInfoResponse.model_validate(reply).GroupInfo
        if not infos:
            raise NotFoundError(f"unknown group {group_id!r}", provider=NAME, operation=Operation.GROUPS_GET.value)
        return mapping.group_from_wire(infos[0])

    def update_group(self, group_id: str, update: GroupUpdate) -> Flow[Group]:
        _check_group_texts(name=update.name, introduction=update.introduction, notification=update.notification,
                           face_url=update.face_url)  # fmt: skip
        body = wire.ModifyGroupBaseInfoRequest(
            GroupId=group_id, Name=update.name, Introduction=update.introduction,
            Notification=update.notification, FaceUrl=update.face_url,
        )  # fmt: skip
        yield self._req("group_open_http_svc", "modify_group_base_info", body.body())
        return (yield from self.get_group(group_id))

    def dismiss_group(self, group_id: str) -> Flow[None]:
        yield self._req("group_open_http_svc", "destroy_group", wire.GroupIdRequest(GroupId=group_id).body())
        return None

    def add_members(self, group_id: str, user_ids: Sequence[str], role: Role) -> Flow[BatchResult]:
        items: list[BatchItem] = []
        raws: list[dict[str, Any]] = []
        for chunk in _chunks(user_ids, ADD_MEMBER_CHUNK):
            body = wire.AddGroupMemberRequest(
                GroupId=group_id, MemberList=[wire.MemberAccount(Member_Account=uid) for uid in chunk]
            )
            reply = yield self._req("group_open_http_svc", "add_group_member", body.body())
            raws.append(reply)
            results = {r.Member_Account: r.Result for r in wire.AddGroupMemberResponse.model_validate(reply).MemberList}
            for uid in chunk:
                outcome = results.get(uid)
                if outcome in (1, 2):
                    item = BatchItem(target=uid, ok=True, native_code=outcome,
                                     detail="already a member" if outcome == 2 else "")  # fmt: skip
                    if role is Role.ADMIN:
                        item = yield from self._make_admin(group_id, item)
                    items.append(item)
                    continue
                error: ProviderError = (
                    PermissionDeniedError(f"{uid!r} awaits approval", provider=NAME, native_code=3)
                    if outcome == 3
                    else ProviderError(f"{uid!r} was not added (Result {outcome})", provider=NAME, native_code=outcome)
                )
                items.append(BatchItem(target=uid, ok=False, error=error, native_code=outcome, detail=error.message))
        return BatchResult(items=items, provider=NAME, raw={"responses": raws})

    def _make_admin(self, group_id: str, item: BatchItem) -> Flow[BatchItem]:
        body = wire.ModifyGroupMemberInfoRequest(GroupId=group_id, Member_Account=item.target, Role="Admin")
        try:
            yield self._req("group_open_http_svc", "modify_group_member_info", body.body())
        except ProviderError as error:
            return BatchItem(target=item.target, ok=False, error=error, native_code=error.native_code,
                             detail=f"added, but not made admin: {error.message}")  # fmt: skip
        return item

    def _members(self, group_id: str) -> Flow[list[wire.WireMember]]:
        return (yield from paging.group_members(self._req, group_id, ["Role", "JoinTime", "MuteUntil"]))

    def list_members(self, group_id: str) -> Flow[list[Member]]:
        rows = yield from self._members(group_id)
        now = self.clock.now()
        return [mapping.member_from_wire(row, now) for row in rows]

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> Flow[BatchResult]:
        operation = Operation.GROUPS_REMOVE_MEMBERS.value
        rows = yield from self._members(group_id)
        roles = {row.Member_Account: row.Role.strip() for row in rows}
        outcome: dict[str, BatchItem] = {}
        removable: list[str] = []
        for uid in user_ids:
            if uid not in roles:
                error: ProviderError = NotFoundError(f"{uid!r} is not a member", provider=NAME, operation=operation)
            elif roles[uid] == "Owner":
                error = PermissionDeniedError("the owner cannot be removed", provider=NAME, operation=operation)
            else:
                removable.append(uid)
                continue
            outcome[uid] = BatchItem(target=uid, ok=False, error=error, detail=error.message)
        for chunk in _chunks(removable, DELETE_MEMBER_CHUNK):
            body = wire.DeleteGroupMemberRequest(GroupId=group_id, MemberToDel_Account=chunk)
            try:
                yield self._req("group_open_http_svc", "delete_group_member", body.body())
            except ProviderError as failure:
                outcome.update({uid: BatchItem(target=uid, ok=False, error=failure, native_code=failure.native_code,
                                               detail=failure.message) for uid in chunk})  # fmt: skip
                continue
            outcome.update({uid: BatchItem(target=uid, ok=True) for uid in chunk})
        return BatchResult(items=[outcome[uid] for uid in user_ids], provider=NAME)

    def _forbid(self, group_id: str, user_ids: Sequence[str], seconds: int) -> Flow[None]:
        _check_user_ids(user_ids)
        for chunk in _chunks(user_ids, MUTE_CHUNK):
            body = wire.ForbidSendMsgRequest(GroupId=group_id, Members_Account=chunk, MuteTime=seconds)
            yield self._req("group_open_http_svc", "forbid_send_msg", body.body())
        return None

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta) -> Flow[None]:
        seconds = max(int(duration.total_seconds()), 1)
        if seconds > MAX_MUTE_SECONDS:
            raise _over(LIMITS["mute time"], seconds, "the mute duration")
        return (yield from self._forbid(group_id, user_ids, seconds))

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        return (yield from self._forbid(group_id, user_ids, 0))

    def mute_all(self, group_id: str, enabled: bool) -> Flow[None]:
        body = wire.ModifyGroupBaseInfoRequest(GroupId=group_id, MuteAllMember="On" if enabled else "Off")
        yield self._req("group_open_http_svc", "modify_group_base_info", body.body())
        return None

    def muted(self, group_id: str) -> Flow[list[Member]]:
        reply = yield self._req(
            "group_open_http_svc", "get_group_muted_account", wire.GroupIdRequest(GroupId=group_id).body()
        )
        now = self.clock.now()
        muted = {
            entry.Member_Account: entry.MutedUntil
            for entry in wire.GetGroupMutedAccountResponse.model_validate(reply).MutedAccountList
            if entry.MutedUntil > now.timestamp()
        }
        if not muted:
            return []
        roles = {row.Member_Account: row for row in (yield from self._members(group_id))}
        result = []
        for uid, until in muted.items():
            row = roles.get(uid) or wire.WireMember(Member_Account=uid)
            row = row.model_copy(update={"MuteUntil": until})
            result.append(mapping.member_from_wire(row, now))
        return result


_NOT_FOUND_RULES = {mapping.ERROR_TABLE[40003], mapping.ERROR_TABLE[70107]}
