"""An emulator of Tencent Cloud IM's server REST API v4, stateful, on the local provider's SQLite store.

What it checks, as the real service does (reference: ``tencent-im-api.md``): the admin UserSig in the
query of every request, the App admin ``identifier``, documented batch sizes, page sizes, per-command
frequency limits, the C2C (120 s) and group (5 min) dedupe windows, and the history retention window.
It answers HTTP 200 with the ``{ActionStatus, ErrorCode, ErrorInfo, ...}`` envelope and the documented
error codes. ``docs/emulators.md`` lists what it covers and what it does not.

State: users, profiles (stored under their Tencent tag names), groups, members and roles, mutes and
messages live in :class:`imbridge.providers.local.store.Store`. Message bodies are stored as Tencent
``MsgBody`` arrays; the Tencent-only fields (MsgSeq, MsgRandom, MsgKey, Random, CloudCustomData, ...)
ride in each message's metadata, and a group's ``Type`` in the store's meta table.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import string
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from imbridge._clock import Clock, SystemClock
from imbridge.emulators._base import (
    Callback,
    CallbackDispatcher,
    CallbackTarget,
    EmulatorReply,
    EmulatorRequest,
    EmulatorTransport,
)
from imbridge.errors import AuthenticationError
from imbridge.providers.local.store import MUTED_FOREVER, MessageRow, Store, conversation_key
from imbridge.providers.tencent import mapping
from imbridge.providers.tencent.usersig import verify_usersig

if TYPE_CHECKING:
    from imbridge.emulators._tencent_seed import SeedSize

__all__ = ["CALLBACK_COMMANDS", "DEFAULT_RATE_LIMITS", "TencentEmulator"]

#: The callbacks this emulator sends (each page: https://www.tencentcloud.com/document/product/1047/<id>).
CALLBACK_COMMANDS = (
    "C2C.CallbackBeforeSendMsg",  # 34364: sendmsg, before delivery; the answer decides
    "C2C.CallbackAfterSendMsg",  # 34365: sendmsg, after (batchsendmsg triggers none: reference §6.3)
    "C2C.CallbackAfterMsgWithDraw",  # 43466: admin_msgwithdraw
    "Group.CallbackBeforeSendMsg",  # 34374: send_group_msg, before delivery; the answer decides
    "Group.CallbackAfterSendMsg",  # 34375: send_group_msg, after
    "Group.CallbackAfterRecallMsg",  # 46979: group_msg_recall
    "Group.CallbackAfterCreateGroup",  # 34369: create_group
    "Group.CallbackAfterGroupDestroyed",  # 34377: destroy_group
    "Group.CallbackAfterGroupInfoChanged",  # 34378: modify_group_base_info (name, introduction, notice, face)
    "Group.CallbackAfterNewMemberJoin",  # 34372: add_group_member
    "Group.CallbackAfterMemberExit",  # 34373: delete_group_member
    "Profile.CallbackPortraitSet",  # 48733: portrait_set
)
#: Before-send answers that refuse with an app code passed to the sender (/1047/34364, /1047/34374).
C2C_APP_CODES, GROUP_APP_CODES = (120001, 130000), (10100, 10200)

#: Documented default frequency limits, calls per second by command (reference §0.3, §8); 200/s otherwise.
DEFAULT_RATE_LIMITS: dict[str, float] = {
    "*": 200.0,
    "multiaccount_import": 100.0,
    "account_delete": 100.0,
    "account_check": 100.0,
    "get_appid_group_list": 1.0,
    "get_history": 10.0,
}
BATCH_RECIPIENTS_PER_SECOND = 200.0
"""batchsendmsg: 12,000 recipient-messages per minute (a bucket holding one minute's worth)."""
GROUP_MSGS_PER_SECOND = 40.0
"""send_group_msg: 40 messages per second per group; beyond it the answer is OK with MsgDropReason."""

C2C_DEDUPE_SECONDS = 120.0
GROUP_DEDUPE_SECONDS = 300.0
ROAM_PAGE_BYTES = 13 * 1024
GROUP_PAGE = mapping.LIMITS["group history window"].value
MAX_MESSAGE_BYTES = mapping.LIMITS["message body"].value
MUTE_PERMANENT = mapping.LIMITS["mute time"].value
HISTORY_ANSWER_BYTES = 16 * 1024
"""group_msg_get_simple answers "只返回部分" when "消息长度太长" (IsFinished 0) but the docs give no figure: this
per-answer budget of RspMsgList bytes is ours (at least one message always fits: a message is at most 12 KB)."""
MEMBER_ANSWER_BYTES = 1024 * 1024
"""get_group_member_info without Limit answers 10018 past 1 MB ("应答包长度超过最大包长(1MB)")."""
COMMUNITY_PREFIX = "@TGS#_"
_NEXT_BASE = 144115188075855872
"""Community member cursors look like the doc's sample ``"144115265295492787"``: opaque digit strings."""

# Batch sizes. Where two official pages disagree the smaller one is enforced, so code that passes here
# passes against the real service.
IMPORT_MAX = 100
BATCH_SEND_MAX = mapping.LIMITS["batch recipients"].value
CREATE_MEMBERS_MAX = 100
ADD_MEMBERS_MAX = 100
DELETE_MEMBERS_MAX = 100
FORBID_MAX = mapping.LIMITS["mute accounts"].value
ROLE_QUERY_MAX = 500  # get_role_in_group: "最多支持500个" (https://cloud.tencent.com/document/product/269/1626)
RECALL_MAX = 10
GROUP_INFO_MAX = mapping.LIMITS["groups per info request"].value
MEMBER_PAGE_MAX = mapping.LIMITS["member page"].value
COMMUNITY_PAGE_MAX = mapping.LIMITS["community member page"].value
GROUP_LIST_MAX = 10_000

ACCOUNT_MAX = 100  # account_check, account_delete: "up to 100 accounts" (/1047/34956, /1047/34955)
ONLINE_STATUS_MAX = 500  # query_online_status: "up to 500 UserIDs at a time" (/1047/35477), 90011 past it
NOTIFY_MAX = 50  # send_group_system_notification ToMembers_Account: "上限50个" (zh /1047/34958, 2025-11-07)
JOINED_LIMIT_MAX = 5000  # get_joined_group_list Limit "cannot exceed 5,000" (/1047/34925)
NAME_CARD_MAX = mapping.LIMITS["group name card"].value
DEFAULT_MAX_MEMBERS = 2000
"""MaxMemberNum of a group created without MaxMemberCount ("the upper limit of the paid package": this emulator's
package allows 2,000; the real figure depends on the edition)."""
JOIN_OPTIONS = ("FreeAccess", "NeedPermission", "DisableApply")
SEND_CONTROLS = ("NoUnread", "NoLastMsg", "WithMuteNotifications")  # sendmsg/batchsendmsg/send_group_msg
PLATFORMS = ("iPhone", "Android", "Web", "PC", "iPad", "Mac")  # query_online_status Detail.Platform

GROUP_TYPES = ("Public", "Private", "ChatRoom", "AVChatRoom", "Community", "BChatRoom")
_CREATABLE = ("Public", "Private", "ChatRoom", "AVChatRoom", "Community")
_ELEMENT_TYPES = {
    "TIMTextElem", "TIMLocationElem", "TIMFaceElem", "TIMCustomElem", "TIMSoundElem", "TIMImageElem",
    "TIMFileElem", "TIMVideoFileElem", "TIMRelayElem",
}  # fmt: skip
_PRIORITIES = {"High": 1, "Normal": 2, "Low": 3, "Lowest": 4}
_STANDARD_TAGS = {
    "Tag_Profile_IM_Nick", "Tag_Profile_IM_Gender", "Tag_Profile_IM_BirthDay", "Tag_Profile_IM_Location",
    "Tag_Profile_IM_SelfSignature", "Tag_Profile_IM_AllowType", "Tag_Profile_IM_Language", "Tag_Profile_IM_Image",
    "Tag_Profile_IM_MsgSettings", "Tag_Profile_IM_AdminForbidType", "Tag_Profile_IM_Level", "Tag_Profile_IM_Role",
}  # fmt: skip
_INT_TAGS = {"Tag_Profile_IM_BirthDay", "Tag_Profile_IM_Language", "Tag_Profile_IM_Level", "Tag_Profile_IM_Role",
             "Tag_Profile_IM_MsgSettings"}  # fmt: skip
_TAG_VALUES = {
    "Tag_Profile_IM_Gender": {"Gender_Type_Unknown", "Gender_Type_Female", "Gender_Type_Male"},
    "Tag_Profile_IM_AllowType": {"AllowType_Type_NeedConfirm", "AllowType_Type_AllowAny", "AllowType_Type_DenyAny"},
    "Tag_Profile_IM_AdminForbidType": {"AdminForbid_Type_None", "AdminForbid_Type_SendOut"},
}
_GROUP_SERVICE = "group_open_http_svc"
_TYPE_META = "tencent.group_type."
CONVERSATION_META = "tencent.conversations."


class _Fail(Exception):
    """A FAIL answer: the documented code and its text."""

    def __init__(self, code: int, info: str) -> None:
        super().__init__(info)
        self.code = code
        self.info = info


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, **fields}


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


@dataclass
class _Bucket:
    """A token bucket: ``rate`` per second, holding at most ``capacity``."""

    rate: float
    capacity: float
    tokens: float
    at: float

    def take(self, now: float, cost: float = 1.0) -> bool:
        self.tokens = min(self.capacity, self.tokens + max(now - self.at, 0.0) * self.rate)
        self.at = now
        # A tenth of one call's interval of slack: a client pacing at exactly the limit is not refused
        # because its requests arrived a few milliseconds closer together than they were sent.
        if self.tokens + 0.1 < cost:
            return False
        self.tokens -= cost
        return True


class _Args:
    """Typed access to a request body, failing with the command family's parameter error code."""

    def __init__(self, body: dict[str, Any], code: int) -> None:
        self.body = body
        self.code = code

    def fail(self, info: str, code: int | None = None) -> _Fail:
        return _Fail(code or self.code, info)

    def has(self, name: str) -> bool:
        return self.body.get(name) is not None

    def text(self, name: str, default: str | None = None, *, code: int | None = None) -> str:
        value = self.body.get(name, default)
        if not isinstance(value, str) or (default is None and value == ""):
            raise self.fail(f"{name} is missing or not a string", code)
        return value

    def opt_str(self, name: str) -> str | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{name} is not a string")
        return value

    def integer(self, name: str, default: int | None = None, *, code: int | None = None, low: int = 0) -> int:
        value = self.body.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(f"{name} is missing or not an integer >= {low}", code)
        return value

    def array(self, name: str, *, code: int | None = None, required: bool = True) -> list[Any]:
        value = self.body.get(name)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            raise self.fail(f"{name} is missing or not an array", code)
        return value

    def accounts(self, name: str, *, code: int | None = None) -> list[str]:
        values = self.array(name, code=code)
        if not all(isinstance(v, str) and v for v in values):
            raise self.fail(f"{name} must hold non-empty strings", code)
        return values


class TencentEmulator:
    """Tencent IM REST v4, in process (:meth:`transport`) or on 127.0.0.1 (``imbridge.emulators.serve``)."""

    def __init__(
        self,
        *,
        sdk_app_id: int = 1400000000,
        secret_key: str,
        admin: str = "administrator",
        store: str = ":memory:",
        clock: Clock | None = None,
        rate_limits: dict[str, float] | None = None,
        retention: timedelta = timedelta(days=7),
        recent_contacts_limit: int = 100,
        recent_contacts_page: int = 20,
        batch_recipients_per_second: float = BATCH_RECIPIENTS_PER_SECOND,
        batch_window_seconds: float = 60.0,
        history_answer_bytes: int = HISTORY_ANSWER_BYTES,
        community_groups: bool = False,
        callback: str | CallbackTarget | None = None,
        callback_token: str | None = None,
        callback_commands: Iterable[str] | None = None,
        callback_retries: int = 0,
        callback_timeout: float = 2.0,
    ) -> None:
        if not secret_key:
            raise ValueError("secret_key is empty")
        self.sdk_app_id = int(sdk_app_id)
        self._key = secret_key
        self.admin = admin
        self.store = Store(store)
        self.clock: Clock = clock or SystemClock()
        self.rate_limits = {**DEFAULT_RATE_LIMITS, **(rate_limits or {})}
        for command, rate in self.rate_limits.items():
            if rate <= 0:
                raise ValueError(f"rate limit for {command!r} must be positive")
        self.retention = retention
        self.recent_contacts_limit = recent_contacts_limit
        # The docs give no page size for recentcontact/get_list; 20 is this emulator's (our reading).
        self.recent_contacts_page = recent_contacts_page
        if batch_recipients_per_second <= 0 or batch_window_seconds <= 0:
            raise ValueError("the batchsendmsg rate and window must be positive")
        # batchsendmsg counts recipients: 12,000 per minute by default. A benchmark sets a shorter window so
        # that a client pacing too fast is refused within its run, not after a minute's burst allowance.
        self.batch_recipients_per_second = batch_recipients_per_second
        self.batch_window_seconds = batch_window_seconds
        if history_answer_bytes < 1:
            raise ValueError("history_answer_bytes must be positive")
        # Lower it in tests to make group history answers come back truncated (IsFinished 0).
        self.history_answer_bytes = history_answer_bytes
        # Community groups need the Ultimate edition and a console switch; off, create_group answers 11000.
        self.community_groups = community_groups
        # C2C duplicates: "发送人 ID,MsgSeq,MsgRandom,消息内容的 CRC32 校验和组成去重 Key,该 Key 的有效期是120秒"
        # (https://cloud.tencent.com/document/product/269/2282, 2026-02-04): the recipient is not part of the key.
        self._c2c_dedupe: dict[str, tuple[float, str]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.RLock()
        #: Simulated logins (the emulator has no client side): account -> {platform: "Online" | "PushOnline"}.
        self.sessions: dict[str, dict[str, str]] = {}
        #: Group system notifications sent: (GroupId, recipients, Content), in order.
        self.notifications: list[tuple[str, list[str], str]] = []
        # Callbacks: POSTed to ``callback`` (a URL, or an in-process receiver) for the commands enabled, signed
        # when a token is set; "after" ones are not retried by default and are sent once the call is answered.
        self.callbacks = CallbackDispatcher(callback, timeout=callback_timeout) if callback is not None else None
        self.callback_token = callback_token
        self.callback_commands = frozenset(CALLBACK_COMMANDS if callback_commands is None else callback_commands)
        unknown = self.callback_commands - set(CALLBACK_COMMANDS)
        if unknown:
            raise ValueError(f"this emulator sends no {', '.join(sorted(unknown))} callback")
        if callback_retries < 0:
            raise ValueError("callback_retries must be >= 0")
        self.callback_retries = callback_retries
        self.store.add_users([admin], self._now())  # the App admin is an account like any other
        self._commands: dict[str, Callable[[_Args], dict[str, Any]]] = {
            "im_open_login_svc/account_import": self._account_import,
            "im_open_login_svc/multiaccount_import": self._multiaccount_import,
            "im_open_login_svc/account_check": self._account_check,
            "im_open_login_svc/account_delete": self._account_delete,
            "im_open_login_svc/kick": self._kick,
            "openim/query_online_status": self._query_online_status,
            "profile/portrait_get": self._portrait_get,
            "profile/portrait_set": self._portrait_set,
            "openim/sendmsg": self._sendmsg,
            "openim/batchsendmsg": self._batchsendmsg,
            "openim/admin_getroammsg": self._getroammsg,
            "openim/admin_msgwithdraw": self._msgwithdraw,
            "recentcontact/get_list": self._recent_contacts,
            # conversations and unread counts (issue 16)
            "recentcontact/delete": self._delete_contact,
            "openim/get_c2c_unread_msg_num": self._c2c_unread_num,
            "openim/admin_set_msg_read": self._set_msg_read,
            f"{_GROUP_SERVICE}/set_unread_msg_num": self._set_unread_num,
            **{
                f"{_GROUP_SERVICE}/{name}": handler
                for name, handler in (
                    ("get_appid_group_list", self._group_list),
                    ("create_group", self._create_group),
                    ("get_group_info", self._group_info),
                    ("modify_group_base_info", self._modify_group),
                    ("destroy_group", self._destroy_group),
                    ("add_group_member", self._add_members),
                    ("delete_group_member", self._delete_members),
                    ("modify_group_member_info", self._modify_member),
                    ("get_group_member_info", self._member_info),
                    ("forbid_send_msg", self._forbid),
                    ("get_group_muted_account", self._muted),
                    ("get_role_in_group", self._roles),
                    ("send_group_msg", self._send_group_msg),
                    ("group_msg_recall", self._recall),
                    ("group_msg_get_simple", self._get_simple),
                    ("change_group_owner", self._change_owner),
                    ("get_joined_group_list", self._joined_groups),
                    ("send_group_system_notification", self._system_notification),
                )
            },
        }

    # -- construction and plumbing ----------------------------------------------------------------

    @classmethod
    def for_client(cls, settings: Mapping[str, Any], **options: Any) -> TencentEmulator:
        """An emulator that accepts a client built with these TencentSettings-style keys."""
        key = settings["secret_key"]
        key = key.get_secret_value() if hasattr(key, "get_secret_value") else str(key)
        return cls(
            sdk_app_id=int(settings.get("sdk_app_id", 1400000000)),
            secret_key=key,
            admin=str(settings.get("admin", "administrator")),
            **options,
        )

    def transport(self) -> EmulatorTransport:
        """An httpx transport (sync and async) answering from this emulator, in process."""
        return EmulatorTransport(self)

    def close(self) -> None:
        if self.callbacks is not None:
            self.callbacks.close()
        self.store.close()

    def drain_callbacks(self, timeout: float = 10.0) -> bool:
        """Wait until every callback sent so far was delivered (or given up); True if all were."""
        return self.callbacks.drain(timeout) if self.callbacks is not None else True

    @property
    def commands(self) -> list[str]:
        """The ``service/command`` paths this emulator answers."""
        return sorted(self._commands)

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _cutoff(self) -> float:
        """Messages older than this are beyond the roaming retention."""
        return self._now() - self.retention.total_seconds()

    def handle(self, request: EmulatorRequest) -> EmulatorReply:
        with self._lock:
            try:
                payload = self._dispatch(request)
            except _Fail as failure:
                payload = {"ActionStatus": "FAIL", "ErrorInfo": failure.info, "ErrorCode": failure.code}
            return EmulatorReply.json(payload)

    def _dispatch(self, request: EmulatorRequest) -> dict[str, Any]:
        parts = request.path.strip("/").split("/")
        if request.method != "POST":
            raise _Fail(60002, "only POST is supported")
        if len(parts) != 3 or parts[0] != "v4":
            raise _Fail(60009, f"bad resource {request.path!r}")
        route = f"{parts[1]}/{parts[2]}"
        handler = self._commands.get(route)
        self._authenticate(request.query)
        if handler is None:
            raise _Fail(10003 if parts[1] == _GROUP_SERVICE else 60009, f"invalid command {route!r}")
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _Fail(60003, "request body is not a JSON object (send {} at least)")
        self._throttle(parts[1], parts[2])
        return handler(_Args(body, 10004 if parts[1] == _GROUP_SERVICE else 90001))

    def _authenticate(self, query: Mapping[str, str]) -> None:
        app = query.get("sdkappid", "")
        if not app:
            raise _Fail(60012, "sdkappid is missing")
        identifier = query.get("identifier", "")
        if not identifier:
            raise _Fail(60004, "identifier is missing")
        usersig = query.get("usersig", "")
        if not usersig:
            raise _Fail(70002, "usersig is empty")
        if not app.isdigit() or int(app) != self.sdk_app_id:
            # This emulator hosts one app: a request for another one fails the app check of the sig.
            raise _Fail(70014, f"sdkappid {app} does not match the UserSig's app")
        try:
            verify_usersig(usersig, self.sdk_app_id, self._key, now=self._now(), identifier=identifier)
        except AuthenticationError as error:
            code = error.native_code if isinstance(error.native_code, int) else 70003
            raise _Fail(code, error.message) from None
        if identifier != self.admin:
            raise _Fail(60010, f"{identifier!r} is not an App admin")

    def _limit(self, name: str) -> float:
        return self.rate_limits.get(name, self.rate_limits["*"])

    def _bucket(self, name: str, rate: float, capacity: float) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[name] = _Bucket(rate, capacity, capacity, self._now())
        return bucket

    def _throttle(self, service: str, command: str) -> None:
        rate = self._limit(command)
        if not self._bucket(command, rate, max(rate, 1.0)).take(self._now()):
            # Group commands answer with the group family's code, the others with the REST-wide one.
            if service == _GROUP_SERVICE:
                raise _Fail(10006, f"{command}: operation frequency limit ({rate:g}/s)")
            raise _Fail(60007, f"{command}: REST call frequency limit exceeded ({rate:g}/s)")

    # -- callbacks --------------------------------------------------------------------------------

    def _callback_query(self, command: str) -> dict[str, str]:
        """What Tencent appends to the callback URL (overview /1047/34354, "Webhook Protocol"; ``Sign`` =
        sha256(token + RequestTime) with authentication on). Calls come from the REST API, hence the platform."""
        query = {"SdkAppid": str(self.sdk_app_id), "CallbackCommand": command, "contenttype": "json",
                 "ClientIP": "127.0.0.1", "OptPlatform": "RESTAPI"}  # fmt: skip
        if self.callback_token is not None:
            at = int(self._now())
            query["Sign"] = hashlib.sha256(f"{self.callback_token}{at}".encode()).hexdigest()
            query["RequestTime"] = str(at)
        return query

    def _callback(self, command: str, fields: dict[str, Any]) -> Callback | None:
        if self.callbacks is None or command not in self.callback_commands:
            return None
        body = json.dumps({"CallbackCommand": command, **fields}, ensure_ascii=False).encode()
        return Callback(self._callback_query(command), body, attempts=1 + self.callback_retries)

    def _after(self, command: str, fields: dict[str, Any]) -> None:
        """An "after" callback, sent once this call is answered (not retried unless configured)."""
        callback = self._callback(command, fields)
        if callback is not None and self.callbacks is not None:
            self.callbacks.enqueue(self.callbacks.deliverer(callback))

    def _event_time(self) -> int:
        return int(self._now() * 1000)

    def _before_send(
        self, command: str, fields: dict[str, Any], body: list[dict[str, Any]], *, one_to_one: bool
    ) -> tuple[list[dict[str, Any]], str | None, bool]:
        """Ask the before-send callback: (body to deliver, CloudCustomData to use or None to keep, drop).

        The answers of /1047/34364 and /1047/34374: ErrorCode 0 delivers (``MsgBody`` / ``CloudCustomData``
        replace the message's when given), 1 refuses (20006 for one-to-one, 10016 for groups), 2 drops the
        message while the caller sees success, an app code ([120001, 130000] / [10100, 10200]) refuses with
        that code and ``ErrorInfo``. No answer in 2 s, a non-200 or a non-JSON answer: the documented default
        timeout policy, deliver (overview /1047/34354). Before-send callbacks are never retried.
        """
        callback = self._callback(command, fields)
        if callback is None or self.callbacks is None:
            return body, None, False
        answer = self.callbacks.send_now(callback)
        if answer is None or answer.status != 200:
            return body, None, False
        try:
            reply = json.loads(answer.body)
        except ValueError:
            return body, None, False
        code = reply.get("ErrorCode") if isinstance(reply, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            return body, None, False
        low, high = C2C_APP_CODES if one_to_one else GROUP_APP_CODES
        info = reply.get("ErrorInfo") if isinstance(reply.get("ErrorInfo"), str) else ""
        if code == 1:
            raise _Fail(20006 if one_to_one else 10016, "blocked by the before-send callback")
        if low <= code <= high:
            raise _Fail(code, info or "refused by the before-send callback")
        if code == 2:
            return body, None, True
        if code != 0:
            return body, None, False
        new_body = reply.get("MsgBody")
        if isinstance(new_body, list) and new_body:
            body = self._body(_Args({"MsgBody": new_body}, 90001), too_long=93000, bad=90002)
        cloud = reply.get("CloudCustomData")
        return body, cloud if isinstance(cloud, str) else None, False

    # -- helpers ----------------------------------------------------------------------------------

    def _exists(self, user_ids: list[str]) -> set[str]:
        return self.store.existing_users(user_ids)

    def _group_type(self, group_id: str) -> str:
        return self.store.meta(_TYPE_META + group_id) or "Public"

    def _group(self, args: _Args, name: str = "GroupId") -> tuple[str, Any]:
        group_id = args.text(name)
        if len(group_id.encode()) > mapping.LIMITS["custom group id"].value or not group_id.isprintable():
            raise _Fail(10015, f"invalid group id {group_id!r}")
        group = self.store.group(group_id)
        if group is None:
            raise _Fail(10010, f"group {group_id!r} does not exist or was dismissed")
        return group_id, group

    def _body(self, args: _Args, *, too_long: int, bad: int) -> list[dict[str, Any]]:
        body = args.body.get("MsgBody")
        if not isinstance(body, list) or not body:
            raise _Fail(bad, "MsgBody is missing or not a non-empty array")
        customs = 0
        for element in body:
            if not isinstance(element, dict) or element.get("MsgType") not in _ELEMENT_TYPES:
                raise _Fail(bad, "MsgBody holds an element with an unknown MsgType")
            if not isinstance(element.get("MsgContent"), dict):
                raise _Fail(bad, "MsgContent must be an object")
            customs += element["MsgType"] == "TIMCustomElem"
        if customs > 1:
            raise _Fail(bad, "a message may hold only one TIMCustomElem")
        if _size(body) > MAX_MESSAGE_BYTES:
            raise _Fail(too_long, "message body exceeds 12 KB")
        return body

    @staticmethod
    def _uint32(args: _Args, name: str, code: int) -> int:
        value = args.body.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
            raise _Fail(code, f"{name} is missing or not a uint32")
        return value

    # -- accounts and profiles --------------------------------------------------------------------

    def _import(self, accounts: list[tuple[str, dict[str, str]]]) -> list[str]:
        valid = [(uid, tags) for uid, tags in accounts if 0 < len(uid.encode()) <= 32 and uid.isprintable()]
        self.store.add_users([uid for uid, _ in valid], self._now())
        self.store.set_profiles({uid: tags for uid, tags in valid if tags})
        ok = {uid for uid, _ in valid}
        return [uid for uid, _ in accounts if uid not in ok]

    @staticmethod
    def _nick_face(item: Mapping[str, Any]) -> dict[str, str]:
        tags = {}
        for field, tag in (("Nick", "Tag_Profile_IM_Nick"), ("FaceUrl", "Tag_Profile_IM_Image")):
            if isinstance(item.get(field), str):
                tags[tag] = item[field]
        return tags

    def _account_import(self, args: _Args) -> dict[str, Any]:
        uid = args.text("UserID") if args.has("UserID") else args.text("Identifier", code=70402)
        if self._import([(uid, self._nick_face(args.body))]):
            raise _Fail(70402, f"invalid UserID {uid!r}")
        return _ok()

    def _multiaccount_import(self, args: _Args) -> dict[str, Any]:
        accounts: list[tuple[str, dict[str, str]]]
        if args.has("AccountList"):
            items = args.array("AccountList", code=70402)
            if not all(isinstance(i, dict) and isinstance(i.get("UserID"), str) for i in items):
                raise _Fail(70402, "AccountList items need a UserID")
            accounts = [(i["UserID"], self._nick_face(i)) for i in items]
        else:
            accounts = [(uid, {}) for uid in args.accounts("Accounts", code=70402)]
        if not accounts or len(accounts) > IMPORT_MAX:
            raise _Fail(70206, f"1 to {IMPORT_MAX} accounts per request, got {len(accounts)}")
        return _ok(FailAccounts=self._import(accounts))

    def _account_check(self, args: _Args) -> dict[str, Any]:
        items = args.array("CheckItem", code=70402)
        ids: list[str] = [i["UserID"] for i in items if isinstance(i, dict) and isinstance(i.get("UserID"), str)]
        if len(ids) != len(items):
            raise _Fail(70402, "CheckItem items need a UserID")
        if not ids or len(ids) > IMPORT_MAX:
            raise _Fail(70206, f"1 to {IMPORT_MAX} accounts per request, got {len(ids)}")
        known = self._exists(ids)
        return _ok(ResultItem=[
            {"UserID": uid, "ResultCode": 0, "ResultInfo": "",
             "AccountStatus": "Imported" if uid in known else "NotImported"}
            for uid in ids
        ])  # fmt: skip

    def _kick(self, args: _Args) -> dict[str, Any]:
        uid = args.text("UserID") if args.has("UserID") else args.text("Identifier", code=70402)
        if not self._exists([uid]):
            raise _Fail(70107, f"{uid!r} is not imported")
        # "invalidate the user's login state ... the login fails" with the old UserSig (/1047/34957): every
        # device of the account is logged out.
        self.sessions.pop(uid, None)
        return _ok()

    def connect(self, account: str, platform: str = "Web", status: str = "Online") -> None:
        """Simulate a login of ``account`` on ``platform`` (one of the documented Detail.Platform values), in
        ``status`` Online or PushOnline (an app in the background)."""
        if platform not in PLATFORMS or status not in ("Online", "PushOnline"):
            raise ValueError(f"platform one of {PLATFORMS}, status Online or PushOnline; got {platform}, {status}")
        with self._lock:
            self.sessions.setdefault(account, {})[platform] = status

    def _query_online_status(self, args: _Args) -> dict[str, Any]:
        """query_online_status (https://www.tencentcloud.com/document/product/1047/35477): Status per account
        (Online if any device is, else PushOnline if any is, else Offline), Detail per platform with
        IsNeedDetail 1, unknown accounts in ErrorList with 70107; "If the query for all the accounts failed,
        the return value is not 0" (this emulator: 70107)."""
        accounts = args.accounts("To_Account", code=90001)
        if not accounts:
            raise _Fail(90001, "To_Account is an empty array")
        if len(accounts) > ONLINE_STATUS_MAX:
            raise _Fail(90011, f"at most {ONLINE_STATUS_MAX} accounts, got {len(accounts)}")
        detail = args.body.get("IsNeedDetail") == 1
        known = self._exists(accounts)
        errors = [{"To_Account": uid, "ErrorCode": 70107} for uid in accounts if uid not in known]
        if len(errors) == len(accounts):
            return {"ActionStatus": "FAIL", "ErrorInfo": "no To_Account exists", "ErrorCode": 70107,
                    "QueryResult": [], "ErrorList": errors}  # fmt: skip
        results = []
        for uid in accounts:
            if uid not in known:
                continue
            platforms = self.sessions.get(uid, {})
            states = set(platforms.values())
            status = "Online" if "Online" in states else ("PushOnline" if states else "Offline")
            item: dict[str, Any] = {"To_Account": uid, "Status": status}
            if detail and platforms:
                item["Detail"] = [{"Platform": name, "Status": state} for name, state in sorted(platforms.items())]
            results.append(item)
        return _ok(QueryResult=results, ErrorList=errors)

    def _account_delete(self, args: _Args) -> dict[str, Any]:
        """account_delete (https://www.tencentcloud.com/document/product/1047/34955): one ResultItem per UserID,
        70107 for an unknown one. The account leaves every group and its profile is deleted ("relationship
        chain and profile will also be deleted"); what happens to a group it owns is not documented: this
        emulator leaves the group without an owner."""
        items = args.array("DeleteItem", code=70402)
        ids: list[str] = [i["UserID"] for i in items if isinstance(i, dict) and isinstance(i.get("UserID"), str)]
        if len(ids) != len(items) or not ids:
            raise _Fail(70402, "DeleteItem items need a UserID")
        if len(ids) > ACCOUNT_MAX:
            raise _Fail(70402, f"at most {ACCOUNT_MAX} accounts per request, got {len(ids)}")
        known = self._exists(ids)
        results = []
        for uid in ids:
            if uid not in known or uid == self.admin:
                results.append({"ResultCode": 70107, "ResultInfo": "Err_TLS_PT_Open_Login_Account_Not_Exist",
                                "UserID": uid})  # fmt: skip
                continue
            self.store.delete_user(uid)
            self.sessions.pop(uid, None)
            results.append({"ResultCode": 0, "ResultInfo": "", "UserID": uid})
        return _ok(ResultItem=results)

    def _portrait_get(self, args: _Args) -> dict[str, Any]:
        users = args.accounts("To_Account", code=40001)
        tags = args.array("TagList", code=40001)
        if not users or not tags or not all(isinstance(t, str) for t in tags):
            raise _Fail(40001, "To_Account and TagList must be non-empty arrays of strings")
        known = self._exists(users)
        items, failed = [], []
        for uid in users:
            if uid not in known:
                failed.append(uid)
                items.append({"To_Account": uid, "ResultCode": 40003, "ResultInfo": "Err_Profile_Account_Not_Exist"})
                continue
            stored = self.store.profile(uid)
            profile = [
                {"Tag": tag, "Value": int(stored[tag]) if tag in _INT_TAGS else stored[tag]}
                for tag in tags
                if tag in stored
            ]
            items.append({"To_Account": uid, "ProfileItem": profile, "ResultCode": 0, "ResultInfo": ""})
        reply = _ok(UserProfileItem=items, ErrorDisplay="")
        if failed:
            reply["Fail_Account"] = failed
        return reply

    def _portrait_set(self, args: _Args) -> dict[str, Any]:
        uid = args.text("From_Account", code=40001)
        items = args.array("ProfileItem", code=40001)
        if not self._exists([uid]):
            raise _Fail(40003, f"account {uid!r} does not exist")
        fields: dict[str, str] = {}
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("Tag"), str):
                raise _Fail(40001, "ProfileItem entries need a Tag")
            tag, value = item["Tag"], item.get("Value")
            custom = tag.removeprefix("Tag_Profile_Custom_")
            if tag not in _STANDARD_TAGS and not (custom != tag and custom.isalpha() and len(custom) <= 8):
                raise _Fail(40009, f"tag {tag!r} does not exist")
            if tag in _INT_TAGS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise _Fail(40610, f"{tag} takes a uint32")
                fields[tag] = str(value)
                continue
            if not isinstance(value, str):
                raise _Fail(40610, f"{tag} takes a string")
            if len(value.encode()) > 500:
                raise _Fail(40601, f"{tag} value exceeds 500 bytes")
            if tag in _TAG_VALUES and value not in _TAG_VALUES[tag]:
                raise _Fail(40605, f"{value!r} is not a valid {tag}")
            fields[tag] = value
        self.store.set_profile_fields(uid, fields)
        self._after("Profile.CallbackPortraitSet", {
            "Operator_Account": self.admin, "From_Account": uid, "EventTime": self._event_time(),
            "ProfileItem": [{"Tag": item["Tag"], "Value": item.get("Value")} for item in items],
        })  # fmt: skip
        return _ok(ErrorDisplay="")

    # -- one-to-one messages ----------------------------------------------------------------------

    def _c2c_store(
        self, sender: str, recipient: str, body: list[dict[str, Any]], *, msg_seq: int, msg_random: int,
        now: float, metadata: dict[str, Any],
    ) -> tuple[MessageRow, bool]:  # fmt: skip
        conv = conversation_key("user", sender, recipient)
        crc = zlib.crc32(json.dumps(body, sort_keys=True, ensure_ascii=False).encode())
        msg_key = f"{msg_seq}_{msg_random}_{int(now)}"
        key, n = f"{conv}#{msg_key}", 1
        while self.store.message_by_key(key) is not None:  # same seq, random and second, other content
            n += 1
            key = f"{conv}#{msg_key}#{n}"
        meta = {"From_Account": sender, "To_Account": recipient, "MsgSeq": msg_seq, "MsgRandom": msg_random,
                "MsgKey": msg_key, **metadata}  # fmt: skip
        return self.store.append_message(
            conv, key=key, sender=sender, elements=body, metadata=meta, time=now,
            dedupe=f"{sender}:{msg_seq}:{msg_random}:{crc}", dedupe_window=C2C_DEDUPE_SECONDS,
        )  # fmt: skip

    def _c2c_common(self, args: _Args) -> tuple[str, int, int, list[dict[str, Any]], dict[str, Any]]:
        sender = args.text("From_Account", self.admin, code=90001)
        msg_random = self._uint32(args, "MsgRandom", 90005)
        msg_seq = self._uint32(args, "MsgSeq", 90004) if args.has("MsgSeq") else secrets.randbits(32)
        body = self._body(args, too_long=93000, bad=90002)
        life = args.body.get("MsgLifeTime")
        if life is not None and (not isinstance(life, int) or not 0 <= life <= 604_800):
            raise _Fail(90026, "MsgLifeTime must be 0 to 604800 seconds")
        metadata: dict[str, Any] = {}
        for name in ("CloudCustomData", "SyncOtherMachine"):
            if args.body.get(name) is not None:
                metadata[name] = args.body[name]
        control = self._send_control(args, code=90001)
        if control:
            metadata["SendMsgControl"] = control
        if life == 0:
            metadata["MsgLifeTime"] = 0  # "only sent to the recipient online and not retained": never stored
        if not self._exists([sender]):
            raise _Fail(20003, f"sender {sender!r} is not imported")
        return sender, msg_seq, msg_random, body, metadata

    @staticmethod
    def _send_control(args: _Args, *, code: int) -> list[str]:
        """SendMsgControl: NoUnread, NoLastMsg, WithMuteNotifications (sendmsg /1047/34919, send_group_msg
        /1047/34959); other values are refused [the codes are ours: the pages list none for it]."""
        control = args.body.get("SendMsgControl")
        if control is None:
            return []
        if not isinstance(control, list) or not all(isinstance(c, str) and c in SEND_CONTROLS for c in control):
            raise _Fail(code, f"SendMsgControl holds {', '.join(SEND_CONTROLS)}")
        return list(control)

    @staticmethod
    def _dedupe_key(sender: str, msg_seq: int, msg_random: int, body: list[dict[str, Any]]) -> str:
        crc = zlib.crc32(json.dumps(body, sort_keys=True, ensure_ascii=False).encode())
        return f"{sender}:{msg_seq}:{msg_random}:{crc}"

    def _c2c_duplicate(self, key: str, now: float) -> tuple[float, str] | None:
        """(time, MsgKey) of an earlier request with the same documented dedupe key inside 120 s, whoever it
        was sent to. The docs say such a message is deduplicated, not what the answer is: this emulator answers
        OK with the first one's MsgKey and stores nothing [inferred]."""
        seen = self._c2c_dedupe.get(key)
        return seen if seen is not None and seen[0] >= now - C2C_DEDUPE_SECONDS else None

    def _c2c_remember(self, key: str, now: float, msg_key: str) -> None:
        if len(self._c2c_dedupe) > 10_000:
            self._c2c_dedupe = {k: v for k, v in self._c2c_dedupe.items() if v[0] >= now - C2C_DEDUPE_SECONDS}
        self._c2c_dedupe[key] = (now, msg_key)

    def _sendmsg(self, args: _Args) -> dict[str, Any]:
        recipient = args.text("To_Account", code=90003)
        sender, msg_seq, msg_random, body, metadata = self._c2c_common(args)
        if not self._exists([recipient]):
            raise _Fail(90012, f"To_Account {recipient!r} is not imported")
        now = self._now()
        dedupe = self._dedupe_key(sender, msg_seq, msg_random, body)
        duplicate = self._c2c_duplicate(dedupe, now)
        if duplicate is not None:  # deduplicated before anything else: no callback either [inferred]
            return _ok(MsgTime=int(duplicate[0]), MsgKey=duplicate[1])
        msg_key = f"{msg_seq}_{msg_random}_{int(now)}"
        online_only = 1 if args.body.get("MsgLifeTime") == 0 else 0
        message = {"From_Account": sender, "To_Account": recipient, "MsgSeq": msg_seq, "MsgRandom": msg_random,
                   "MsgTime": int(now), "MsgKey": msg_key, "OnlineOnlyFlag": online_only}  # fmt: skip
        cloud = metadata.get("CloudCustomData")
        asked = {**message, "MsgBody": body, **({"CloudCustomData": cloud} if cloud is not None else {})}
        body, new_cloud, drop = self._before_send("C2C.CallbackBeforeSendMsg", asked, body, one_to_one=True)
        if drop:  # ErrorCode 2: the sender is told it was sent
            return _ok(MsgTime=int(now), MsgKey=msg_key)
        if new_cloud is not None:
            metadata["CloudCustomData"] = cloud = new_cloud

        def after_send(key: str) -> None:
            # The after-send callback carries the message as delivered (rewritten, if it was; /1047/34364).
            self._after("C2C.CallbackAfterSendMsg", {
                **message, "MsgKey": key, "SendMsgResult": 0, "ErrorInfo": "send msg succeed",
                "MsgBody": body, **({"CloudCustomData": cloud} if cloud is not None else {}),
            })  # fmt: skip

        if online_only:  # MsgLifeTime 0: to online devices only; nothing is kept to roam
            self._c2c_remember(dedupe, now, msg_key)
            after_send(msg_key)
            return _ok(MsgTime=int(now), MsgKey=msg_key)
        row, new = self._c2c_store(sender, recipient, body, msg_seq=msg_seq, msg_random=msg_random,
                                   now=now, metadata=metadata)  # fmt: skip
        self._c2c_remember(dedupe, now, row.metadata["MsgKey"])
        if new:
            after_send(row.metadata["MsgKey"])
        return _ok(MsgTime=int(row.time), MsgKey=row.metadata["MsgKey"])

    def _batchsendmsg(self, args: _Args) -> dict[str, Any]:
        recipients = args.accounts("To_Account", code=90003)
        if not recipients or len(recipients) > BATCH_SEND_MAX:
            raise _Fail(90011, f"1 to {BATCH_SEND_MAX} recipients per request, got {len(recipients)}")
        sender, msg_seq, msg_random, body, metadata = self._c2c_common(args)
        rate = self.batch_recipients_per_second
        window = self._bucket("batchsendmsg#recipients", rate, rate * self.batch_window_seconds)
        if not window.take(self._now(), len(recipients)):
            raise _Fail(60007, f"batchsendmsg: {rate * 60:,.0f} recipient-messages per minute exceeded")
        known = self._exists(recipients)
        now = self._now()
        errors = [{"To_Account": uid, "ErrorCode": 70107} for uid in recipients if uid not in known]
        if len(errors) == len(recipients):
            raise _Fail(90012, "no To_Account is imported")
        dedupe = self._dedupe_key(sender, msg_seq, msg_random, body)
        duplicate = self._c2c_duplicate(dedupe, now)
        if duplicate is not None:
            # One request reaches all its recipients; a second request with the same sender, MsgSeq, MsgRandom
            # and content inside 120 s is a duplicate, whatever its recipients (the key has none).
            return _ok(MsgKey=duplicate[1])
        msg_key = f"{msg_seq}_{msg_random}_{int(now)}"
        for uid in recipients:
            if uid in known and metadata.get("MsgLifeTime") != 0:
                row, _ = self._c2c_store(sender, uid, body, msg_seq=msg_seq, msg_random=msg_random, now=now,
                                         metadata=metadata)  # fmt: skip
                msg_key = row.metadata["MsgKey"]
        self._c2c_remember(dedupe, now, msg_key)
        if errors:
            return {
                "ActionStatus": "SomeError",
                "ErrorCode": 0,
                "ErrorInfo": "",
                "MsgKey": msg_key,
                "ErrorList": errors,
            }
        return _ok(MsgKey=msg_key)

    @staticmethod
    def _roam_item(row: MessageRow) -> dict[str, Any]:
        meta = row.metadata
        item: dict[str, Any] = {
            "From_Account": meta.get("From_Account", row.sender), "To_Account": meta.get("To_Account", ""),
            "MsgSeq": meta.get("MsgSeq", 0), "MsgRandom": meta.get("MsgRandom", 0), "MsgTimeStamp": int(row.time),
            "MsgFlagBits": mapping.REVOKED_FLAG if row.revoked else 0, "IsPeerRead": 0,
            "MsgKey": meta.get("MsgKey", ""), "MsgBody": row.elements,
        }  # fmt: skip
        if "CloudCustomData" in meta:
            item["CloudCustomData"] = meta["CloudCustomData"]
        return item

    def _c2c_rows(self, operator: str, peer: str) -> list[MessageRow]:
        """The pair's roaming messages as the operator sees them, newest first (second, then MsgSeq)."""
        conv = conversation_key("user", operator, peer)
        cutoff = self._cutoff()
        rows = [
            row
            for row in self.store.messages(conv, limit=-1)
            if row.time >= cutoff
            # SyncOtherMachine 2: not kept in the sender's roaming storage.
            and not (row.sender == operator and row.metadata.get("SyncOtherMachine") == 2)
        ]
        rows.sort(key=lambda r: (int(r.time), r.metadata.get("MsgSeq", 0), r.seq), reverse=True)
        return rows

    def _getroammsg(self, args: _Args) -> dict[str, Any]:
        operator = args.text("Operator_Account", code=90003)
        peer = args.text("Peer_Account", code=90003)
        max_count = args.integer("MaxCnt", low=1)
        min_time, max_time = args.integer("MinTime"), args.integer("MaxTime")
        last_key = args.opt_str("LastMsgKey")
        window = [row for row in self._c2c_rows(operator, peer) if min_time <= int(row.time) <= max_time]
        if last_key:
            keys = [row.metadata.get("MsgKey") for row in window]
            if last_key in keys:
                window = window[keys.index(last_key) + 1 :]
        page: list[MessageRow] = []
        used = 0
        for row in window:
            size = _size(self._roam_item(row))
            if len(page) >= max_count or (page and used + size > ROAM_PAGE_BYTES):
                break
            page.append(row)
            used += size
        complete = len(page) == len(window)
        oldest = page[-1] if page else None
        return _ok(
            Complete=1 if complete else 0,
            MsgCnt=len(page),
            LastMsgTime=int(oldest.time) if oldest else 0,
            LastMsgKey=oldest.metadata.get("MsgKey", "") if oldest else "",
            # Within a page the documentation's samples run oldest to newest; pages walk back in time.
            MsgList=[self._roam_item(row) for row in reversed(page)],
        )

    def _msgwithdraw(self, args: _Args) -> dict[str, Any]:
        sender = args.text("From_Account", code=90003)
        recipient = args.text("To_Account", code=90003)
        msg_key = args.text("MsgKey", code=90054)
        parts = msg_key.split("_")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise _Fail(90054, f"invalid MsgKey {msg_key!r}")
        row = self.store.message_by_key(f"{conversation_key('user', sender, recipient)}#{msg_key}")
        if row is None or row.sender != sender:
            raise _Fail(20022, "the message to recall does not exist")
        if not self.store.revoke_message(row.key):
            raise _Fail(20023, "the message has already been recalled")
        withdrawn = {"From_Account": sender, "To_Account": recipient, "MsgKey": msg_key}
        self._after("C2C.CallbackAfterMsgWithDraw", withdrawn)
        return _ok()

    # -- conversations and unread counts (issue 16) ---------------------------------------------------
    # What each command does, from its page (PROVENANCE.md in tests/fixtures/tencent/official names each):
    # recentcontact/get_list /1047/43087, recentcontact/delete /1047/43088, get_c2c_unread_msg_num
    # /1047/41046, admin_set_msg_read /1047/38996, set_unread_msg_num /1047/34909, get_joined_group_list
    # /1047/34925. Where a page is silent, the choice is marked "our reading".
    # Each user's read positions, deletions and pinned conversations are one JSON value in the store's meta
    # table (CONVERSATION_META + user): c2c {peer: {"t": read before this second, "s": read up to this seq}},
    # grp {group: read seq}, del {conversation key: last seq when deleted}, pin [conversation keys].

    def _state(self, user: str) -> dict[str, Any]:
        stored = self.store.meta(CONVERSATION_META + user)
        state: dict[str, Any] = json.loads(stored) if stored else {}
        for name, empty in (("c2c", {}), ("grp", {}), ("del", {}), ("pin", [])):
            state.setdefault(name, empty)
        return state

    def _save_state(self, user: str, state: dict[str, Any]) -> None:
        self.store.set_meta(CONVERSATION_META + user, json.dumps(state, sort_keys=True))

    def pin(self, user: str, peer: str | None = None, *, group_id: str | None = None, pinned: bool = True) -> None:
        """Pin (or unpin) one of ``user``'s conversations. The REST API has no command for it (clients pin
        through the SDK), so tests of TopFlag and the pinned cursors set it here."""
        key = conversation_key("group", group_id) if group_id else conversation_key("user", user, peer or "")
        with self._lock:
            state = self._state(user)
            pins = [k for k in state["pin"] if k != key] + ([key] if pinned else [])
            state["pin"] = pins
            self._save_state(user, state)

    def _last_seq_of(self, conv: str) -> int:
        newest = self.store.messages(conv, limit=1)
        return newest[0].seq if newest else 0

    def _c2c_unread(self, user: str, peer: str, state: dict[str, Any]) -> int:
        """Messages from ``peer`` to ``user`` not read yet (their read time and seq), within the retention."""
        read = state["c2c"].get(peer, {})
        before, upto = float(read.get("t", 0)), int(read.get("s", 0))
        cutoff = self._cutoff()
        return sum(
            1
            for row in self.store.messages(conversation_key("user", user, peer), limit=-1)
            if row.sender == peer and row.time >= cutoff and not (int(row.time) < before or row.seq <= upto)
        )

    def _group_read_seq(self, user: str, group_id: str, state: dict[str, Any]) -> int:
        """The member's read position (SelfInfo.MsgSeq): as last set during this membership, else what the group
        held when they joined (a new member has nothing unread: our reading of the import_group_member page's
        UnreadMsgNum)."""
        member = self.store.member(group_id, user)
        if member is None:
            return 0
        stored = state["grp"].get(group_id)
        if isinstance(stored, dict) and stored.get("j") == member.joined_at:
            return int(stored["s"])
        older = [r.seq for r in self.store.messages(conversation_key("group", group_id), limit=-1)
                 if r.time < member.joined_at]  # fmt: skip
        return max(older, default=0)

    def _sessions(self, user: str, state: dict[str, Any]) -> list[dict[str, Any]]:
        """Every conversation of ``user`` with a message inside the retention and after its deletion."""
        cutoff = self._cutoff()
        sessions: list[dict[str, Any]] = []
        for conv, newest in self.store.conversations("u:").items():
            low, _, high = conv[2:].partition("|")
            if user in (low, high) and newest >= cutoff and self._last_seq_of(conv) > state["del"].get(conv, 0):
                sessions.append({"Type": 1, "To_Account": high if user == low else low, "MsgTime": int(newest),
                                 "TopFlag": 0, "key": conv, "at": newest})  # fmt: skip
        groups = self.store.conversations("g:")
        for group_id in self.store.groups_of(user):
            conv = conversation_key("group", group_id)
            last = groups.get(conv)
            if last is not None and last >= cutoff and self._last_seq_of(conv) > state["del"].get(conv, 0):
                sessions.append({"Type": 2, "GroupId": group_id, "MsgTime": int(last), "TopFlag": 0, "key": conv,
                                 "at": last})  # fmt: skip
        return sessions

    @staticmethod
    def _after_cursor(items: list[dict[str, Any]], time: int, index: int) -> list[dict[str, Any]]:
        """The items after a (TimeStamp, StartIndex) cursor: later-second items are done, and ``index`` of
        those in that second (our reading of "start time" and "starting point" of the next page)."""
        if time == 0:
            return items
        same = [item for item in items if item["MsgTime"] == time]
        return same[index:] + [item for item in items if item["MsgTime"] < time]

    @staticmethod
    def _cursor(done: list[dict[str, Any]], time: int, index: int) -> tuple[int, int]:
        if not done:
            return time, index
        last = done[-1]["MsgTime"]
        return last, sum(1 for item in done if item["MsgTime"] == last) + (index if last == time else 0)

    def _recent_contacts(self, args: _Args) -> dict[str, Any]:
        user = args.text("From_Account", code=50002)
        if not self._exists([user]):
            raise _Fail(50001, f"{user!r} has not been imported")
        # Every cursor field is marked required; a missing one counts as 0 (the first page: our reading).
        cursors = [args.integer(name, 0, code=50002) for name in ("TimeStamp", "StartIndex", "TopTimeStamp",
                                                                    "TopStartIndex")]  # fmt: skip
        time, index, top_time, top_index = cursors
        flags = args.integer("AssistFlags", 0, code=50002)
        state = self._state(user)
        # Newest message first; within one second by the stored time (MsgTime shows whole seconds only: our
        # reading is that the server orders by its own finer time).
        order = lambda s: (-s["at"], s["key"])  # noqa: E731
        sessions = sorted(self._sessions(user, state), key=order)[: self.recent_contacts_limit]
        pinned_keys = set(state["pin"]) if flags & 1 else set()  # bit 0: pinned conversations supported
        pinned = [dict(s, TopFlag=1) for s in sessions if s["key"] in pinned_keys]
        general = [s for s in sessions if s["key"] not in pinned_keys]
        paged_pins = bool(flags & 4)  # bit 2: pinned conversations are paged with their own cursor
        if paged_pins:
            pinned_left = self._after_cursor(pinned, top_time, top_index)
            page_pinned = pinned_left[: self.recent_contacts_page]
        else:  # otherwise they all come on the first page (TopTimeStamp still 0), whatever their number
            pinned_left = pinned if top_time == 0 else []
            page_pinned = pinned_left
        general_left = self._after_cursor(general, time, index)
        page_general = general_left[: max(self.recent_contacts_page - len(page_pinned), 0)]
        complete = len(page_pinned) == len(pinned_left) and len(page_general) == len(general_left)
        now = int(self._now())
        if complete:  # the doc's sample: both cursors the time of the answer, indexes 0
            time, index, top_time, top_index = now, 0, now, 0
        else:
            time, index = self._cursor(page_general, time, index)
            if paged_pins:
                top_time, top_index = self._cursor(page_pinned, top_time, top_index)
            else:  # the pinned ones were all given: a non-zero TopTimeStamp says so (our reading)
                top_time, top_index = (now if page_pinned or top_time else 0), 0
        items = [{k: v for k, v in s.items() if k not in ("key", "at")} for s in page_pinned + page_general]
        return _ok(SessionItem=items, CompleteFlag=int(complete), TimeStamp=time, StartIndex=index,
                   TopTimeStamp=top_time, TopStartIndex=top_index, ErrorDisplay="")  # fmt: skip

    def _seed_read_positions(self, rng: random.Random) -> None:
        """Seeded users have read part of their conversations (two in three, up to a random message) and pinned
        one now and then, so that unread counts and TopFlag vary as in a live app. A user has always read what
        came before their own newest message, as with a client, which marks a conversation read when it is
        opened to write in it."""
        states: dict[str, dict[str, Any]] = {}
        users: set[str] = set()
        for conv in self.store.conversations("u:"):
            low, _, high = conv[2:].partition("|")
            rows = self.store.messages(conv, limit=-1, descending=False)
            for user, peer in ((low, high), (high, low)):
                users.add(user)
                own = max((r.seq for r in rows if r.sender == user), default=0)
                chosen = rng.choice(rows).seq if rng.random() < 2 / 3 else 0
                if max(own, chosen):
                    state = states.setdefault(user, self._state(user))
                    state["c2c"][peer] = {"s": max(own, chosen)}
        for group_id in self.store.group_ids():
            rows = self.store.messages(conversation_key("group", group_id), limit=-1, descending=False)
            own_last: dict[str, int] = {}
            for row in rows:
                own_last[row.sender] = max(own_last.get(row.sender, 0), row.seq)
            for member in self.store.members(group_id):
                users.add(member.user_id)
                chosen = rng.choice(rows).seq if rows and rng.random() < 2 / 3 else 0
                if max(own_last.get(member.user_id, 0), chosen):
                    state = states.setdefault(member.user_id, self._state(member.user_id))
                    state["grp"][group_id] = {"s": max(own_last.get(member.user_id, 0), chosen),
                                              "j": member.joined_at}  # fmt: skip
        for user in sorted(users):
            if rng.random() < 0.1:
                sessions = sorted(self._sessions(user, self._state(user)), key=lambda s: -s["at"])
                if sessions:
                    state = states.setdefault(user, self._state(user))
                    state["pin"] = [sessions[0]["key"]]
        for user, state in states.items():
            self._save_state(user, state)

    def _delete_contact(self, args: _Args) -> dict[str, Any]:
        user = args.text("From_Account", code=50002)
        if not self._exists([user]):
            raise _Fail(50001, f"{user!r} has not been imported")
        kind = args.integer("Type", code=50002)
        if kind == 1:
            conv = conversation_key("user", user, args.text("To_Account", code=50002))
        elif kind == 2:
            conv = conversation_key("group", args.text("ToGroupid", code=50002))
        else:
            raise _Fail(50002, "Type is 1 (one-to-one) or 2 (group)")
        if args.integer("ClearRamble", 0, code=50002) not in (0, 1):
            raise _Fail(50002, "ClearRamble is 0 or 1")
        # Hidden until a newer message (our reading: the SDK's deleteConversation behaves so). ClearRamble 1 is
        # accepted; this emulator keeps the messages in the roaming history either way (docs/emulators.md).
        state = self._state(user)
        state["del"][conv] = self._last_seq_of(conv)
        self._save_state(user, state)
        return _ok(ErrorDisplay="")

    def _c2c_unread_num(self, args: _Args) -> dict[str, Any]:
        user = args.text("To_Account", code=90003)
        if not self._exists([user]):
            raise _Fail(90003, f"To_Account {user!r} does not exist")
        state = self._state(user)
        if not args.has("Peer_Account"):
            chats = {s["To_Account"] for s in self._sessions(user, {**state, "del": {}}) if s["Type"] == 1}
            return _ok(AllC2CUnreadMsgNum=sum(self._c2c_unread(user, peer, state) for peer in chats))
        peers = args.accounts("Peer_Account", code=90001)
        if len(peers) > 10:
            raise _Fail(90001, "Peer_Account holds at most 10 accounts")
        known = self._exists(peers)
        return _ok(
            C2CUnreadMsgNumList=[{"Peer_Account": p, "C2CUnreadMsgNum": self._c2c_unread(user, p, state)}
                                 for p in peers if p in known],
            **({"ErrorList": [{"Peer_Account": p, "ErrorCode": 70107} for p in peers if p not in known]}
               if len(known) < len(peers) else {}),
        )  # fmt: skip

    def _set_msg_read(self, args: _Args) -> dict[str, Any]:
        # The page's error table names From_Account (90008) and To_Account (90003): the reporting account and
        # the peer (our reading).
        user = args.text("Report_Account", code=90008)
        peer = args.text("Peer_Account", code=90003)
        if not self._exists([user]):
            raise _Fail(90008, f"Report_Account {user!r} does not exist")
        if not self._exists([peer]):
            raise _Fail(90003, f"Peer_Account {peer!r} does not exist")
        raw = args.body.get("MsgReadTime")
        state = self._state(user)
        read = dict(state["c2c"].get(peer, {}))
        if raw is None:  # "the current timestamp is used": everything stored so far is read
            read["s"] = max(int(read.get("s", 0)), self._last_seq_of(conversation_key("user", user, peer)))
        else:  # a String of seconds; the messages *before* it are read
            if isinstance(raw, bool) or not str(raw).isdigit():
                raise _Fail(90001, "MsgReadTime is a timestamp in seconds")
            read["t"] = max(int(read.get("t", 0)), int(raw))
        state["c2c"][peer] = read
        self._save_state(user, state)
        return _ok()

    def _set_unread_num(self, args: _Args) -> dict[str, Any]:
        group_id, _ = self._group(args)
        user = args.text("Member_Account")
        count = args.integer("UnreadMsgNum")
        if self._group_type(group_id) in ("ChatRoom", "AVChatRoom"):
            return _ok()  # "no error will be returned" and nothing is set for these types
        if self.store.member(group_id, user) is None:
            raise _Fail(10007, f"{user!r} is not a member of the group")  # our reading: the permission code
        last = self._last_seq_of(conversation_key("group", group_id))
        member = self.store.member(group_id, user)
        state = self._state(user)
        # More than the group holds: all of it. Kept with the join time, so a later membership starts afresh.
        state["grp"][group_id] = {"s": max(last - count, 0), "j": member.joined_at if member else 0}
        self._save_state(user, state)
        return _ok()

    # -- groups -----------------------------------------------------------------------------------

    def _group_list(self, args: _Args) -> dict[str, Any]:
        limit = args.integer("Limit", GROUP_LIST_MAX, low=1)
        if limit > GROUP_LIST_MAX:
            raise _Fail(10004, f"Limit is at most {GROUP_LIST_MAX}")
        start = args.integer("Next", 0)
        kind = args.opt_str("GroupType")
        if kind is not None and kind not in GROUP_TYPES:
            raise _Fail(10004, f"unknown GroupType {kind!r}")
        ids = [gid for gid in self.store.group_ids() if kind is None or self._group_type(gid) == kind]
        page = ids[start : start + limit]
        after = start + len(page)
        return _ok(TotalCount=len(ids), GroupIdList=[{"GroupId": gid} for gid in page],
                   Next=after if after < len(ids) else 0)  # fmt: skip

    def _new_group_id(self, prefix: str = "@TGS#") -> str:
        while True:
            candidate = prefix + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10))
            if self.store.group(candidate) is None:
                return candidate

    def _create_group(self, args: _Args) -> dict[str, Any]:
        kind = args.text("Type")
        if kind == "Community" and not self.community_groups:
            raise _Fail(11000, "Community groups are not enabled for this app")
        if kind not in _CREATABLE:
            raise _Fail(10004, f"unknown group Type {kind!r}")
        name = args.text("Name")
        self._check_text_limits(args)
        owner = args.opt_str("Owner_Account")
        members = args.array("MemberList", required=False)
        if len(members) > CREATE_MEMBERS_MAX:
            raise _Fail(10005, f"at most {CREATE_MEMBERS_MAX} initial members")
        if members and kind == "AVChatRoom":
            raise _Fail(10007, "an AVChatRoom takes no MemberList")
        roles: dict[str, str] = {}
        for item in members:
            if not isinstance(item, dict) or not isinstance(item.get("Member_Account"), str):
                raise _Fail(10004, "MemberList items need a Member_Account")
            role = item.get("Role", "Member")
            if role not in ("Admin", "Member"):
                raise _Fail(10004, f"initial members may be Admin or Member, not {role!r}")
            roles[item["Member_Account"]] = role
        if owner is not None:
            roles[owner] = "Owner"
        missing = sorted(set(roles) - self._exists(list(roles)))
        if missing:
            raise _Fail(10019, f"accounts do not exist: {', '.join(missing)}")
        texts = {field: args.opt_str(field) or "" for field in ("Introduction", "Notification", "FaceUrl")}
        option, size = self._join_policy(args, None, "MaxMemberCount")
        if size is not None and size < len(roles):
            raise _Fail(10004, f"MaxMemberCount {size} is below the {len(roles)} initial members")
        group_id = args.opt_str("GroupId")
        # Custom ids: printable ASCII, at most 48 bytes, not starting with @TGS# (use limits page,
        # https://cloud.tencent.com/document/product/269/9346); Community ids carry the @TGS#_ prefix
        # (the doc's Community samples, "@TGS#_@TGS#cAVQXXXXXX" on https://cloud.tencent.com/document/product/269/1617)
        # [that a custom Community id must carry it is our reading].
        community = kind == "Community"
        if group_id is not None and (
            not group_id or group_id.startswith("@TGS#") != community
            or (community and not group_id.startswith(COMMUNITY_PREFIX))
            or len(group_id.encode()) > mapping.LIMITS["custom group id"].value
            or not group_id.isascii() or not group_id.isprintable()
        ):  # fmt: skip
            raise _Fail(10015, f"invalid custom group id {group_id!r}")
        final_id = group_id or self._new_group_id(COMMUNITY_PREFIX if community else "@TGS#")
        created = self.store.create_group(
            final_id, name=name, owner=owner, introduction=texts["Introduction"], notification=texts["Notification"],
            face_url=texts["FaceUrl"], now=self._now(), members=[(uid, role.lower()) for uid, role in roles.items()],
        )  # fmt: skip
        if not created:
            raise _Fail(10021, f"group id {final_id!r} is already in use")
        self.store.set_meta(_TYPE_META + final_id, kind)
        if option is not None or size is not None:
            self.store.set_group_policy(final_id, option, size)
        self._after("Group.CallbackAfterCreateGroup", {
            "GroupId": final_id, "Operator_Account": self.admin, "Owner_Account": owner or "", "Type": kind,
            "Name": name, "MemberList": [{"Member_Account": item["Member_Account"]} for item in members],
            "EventTime": self._event_time(),
        })  # fmt: skip
        return _ok(GroupId=final_id)

    @staticmethod
    def _mute_end(until: float | None, now: float) -> int:
        """MuteUntil/MutedUntil: 0 when not muted, 4294967295 for a permanent mute [the docs do not say how
        one reads back: this emulator's choice], else the end in whole seconds."""
        if until is None or until <= now:
            return 0
        return MUTE_PERMANENT if until == MUTED_FOREVER else int(until)

    def _member_item(
        self, member: Any, now: float, fields: set[str] | None, cards: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "Member_Account": member.user_id, "Role": member.role.capitalize(), "JoinTime": int(member.joined_at),
            "MsgSeq": 0, "MsgFlag": "AcceptAndNotify", "LastSendMsgTime": 0,
            "MuteUntil": self._mute_end(member.muted_until, now), "NameCard": (cards or {}).get(member.user_id, ""),
            "AppMemberDefinedData": [],
        }  # fmt: skip
        if fields is None:
            return item
        return {k: v for k, v in item.items() if k == "Member_Account" or k in fields}

    def _next_seq(self, group_id: str) -> tuple[int, float]:
        newest = self.store.messages(conversation_key("group", group_id), limit=1)
        return (newest[0].seq + 1, newest[0].time) if newest else (1, 0.0)

    def _info_item(self, group_id: str, filters: Mapping[str, Any]) -> dict[str, Any]:
        group = self.store.group(group_id)
        if group is None:
            return {"GroupId": group_id, "ErrorCode": 10010, "ErrorInfo": "group does not exist or was dismissed"}
        next_seq, last_time = self._next_seq(group_id)
        policy = self.store.group_policy(group_id)
        base: dict[str, Any] = {
            "Type": self._group_type(group_id), "Name": group.name, "Appid": self.sdk_app_id,
            "Introduction": group.introduction, "Notification": group.notification, "FaceUrl": group.face_url,
            "Owner_Account": group.owner or "", "CreateTime": int(group.created_at),
            "LastInfoTime": int(group.created_at), "LastMsgTime": int(last_time), "NextMsgSeq": next_seq,
            "MemberNum": group.member_count, "MaxMemberNum": policy[1] or DEFAULT_MAX_MEMBERS,
            "ApplyJoinOption": policy[0] or "NeedPermission",
            "MuteAllMember": "On" if group.mute_all else "Off", "AppDefinedData": [],
        }  # fmt: skip
        item: dict[str, Any] = {"GroupId": group_id, "ErrorCode": 0, "ErrorInfo": ""}
        now = self._now()
        cards = self.store.name_cards(group_id)
        if not filters:  # "所有群基础信息、群成员信息和自定义信息"
            members = [self._member_item(m, now, None, cards) for m in self.store.members(group_id)]
            return {**item, **base, "MemberList": members}
        # "如果设置了过滤器,没有在过滤器中指明的字段将不被拉取" (https://cloud.tencent.com/document/api/269/1616):
        # with a ResponseFilter, base fields, members and custom data come back only as far as it names them.
        base_filter = filters.get("GroupBaseInfoFilter")
        if isinstance(base_filter, list):
            item.update({k: v for k, v in base.items() if k in base_filter})
        member_filter = filters.get("MemberInfoFilter")
        if isinstance(member_filter, list):
            fields = set(member_filter)
            item["MemberList"] = [self._member_item(m, now, fields, cards) for m in self.store.members(group_id)]
        return item

    def _group_info(self, args: _Args) -> dict[str, Any]:
        ids = args.accounts("GroupIdList")
        if not ids or len(ids) > GROUP_INFO_MAX:
            raise _Fail(10004, f"1 to {GROUP_INFO_MAX} groups per request, got {len(ids)}")
        filters = args.body.get("ResponseFilter") or {}
        if not isinstance(filters, dict):
            raise _Fail(10004, "ResponseFilter must be an object")
        # Per-group ErrorCode carries each group's outcome; the top-level one stays 0.
        return _ok(GroupInfo=[self._info_item(gid, filters) for gid in ids])

    def _member_info(self, args: _Args) -> dict[str, Any]:
        """get_group_member_info as https://cloud.tencent.com/document/product/269/1617 (2025-11-03) pages it:
        Offset paging with "Limit ... 不得超过200"; Community groups page only with Next ("仅社群支持分批获取",
        "社群目前不支持分页获取"), "Limit ... 不得超过100", Next "" first and "" back at the end. Without Limit
        the whole list comes back, or 10018 past 1 MB."""
        group_id, _ = self._group(args)
        kind = self._group_type(group_id)
        if kind == "AVChatRoom":
            raise _Fail(10007, "AVChatRoom groups keep no member list")
        community = kind == "Community"
        cap = COMMUNITY_PAGE_MAX if community else MEMBER_PAGE_MAX
        limit = args.integer("Limit", low=1) if args.has("Limit") else None
        if limit is not None and limit > cap:
            raise _Fail(10004, f"Limit is at most {cap}{' for Community groups' if community else ''}")
        if community:
            if args.has("Offset"):
                raise _Fail(10004, "Community groups page with Next, not Offset")
            cursor = args.text("Next", "")
            try:
                offset = int(cursor) - _NEXT_BASE if cursor else 0
            except ValueError:
                raise _Fail(10004, f"invalid Next {cursor!r}") from None
            if offset < 0:
                raise _Fail(10004, f"invalid Next {cursor!r}")
        else:
            if args.has("Next"):
                raise _Fail(10004, "only Community groups page with Next")
            offset = args.integer("Offset", 0)
        roles = args.body.get("MemberRoleFilter")
        if roles is not None and (not isinstance(roles, list) or not set(roles) <= {"Owner", "Admin", "Member"}):
            raise _Fail(10004, "MemberRoleFilter holds Owner, Admin and Member")
        member_filter = args.body.get("MemberInfoFilter")
        fields = set(member_filter) if isinstance(member_filter, list) else None
        members = self.store.members(group_id)
        if roles is not None:
            members = [m for m in members if m.role.capitalize() in roles]
        page = members[offset:] if limit is None else members[offset : offset + limit]
        now = self._now()
        cards = self.store.name_cards(group_id)
        items = [self._member_item(m, now, fields, cards) for m in page]
        if limit is None and _size(items) > MEMBER_ANSWER_BYTES:
            raise _Fail(10018, "the answer exceeds 1 MB: page with Limit and Offset")
        reply = _ok(MemberNum=len(members), MemberList=items)
        if community:
            after = offset + len(page)
            reply["Next"] = str(_NEXT_BASE + after) if after < len(members) else ""
        return reply

    #: Group profile texts and their documented limits in UTF-8 bytes (use limits page, "群名称最长30字节,
    #: 群简介最长240字节,群公告最长300字节,群头像 URL 最长100字节"); create_group and modify_group_base_info
    #: answer 10004 (invalid parameter) past them.
    _TEXT_LIMITS = (
        ("Name", "name", mapping.LIMITS["group name"]), ("Introduction", "introduction",
         mapping.LIMITS["group introduction"]), ("Notification", "notification", mapping.LIMITS["group notification"]),
        ("FaceUrl", "face_url", mapping.LIMITS["group face URL"]),
    )  # fmt: skip

    def _check_text_limits(self, args: _Args) -> dict[str, str]:
        fields: dict[str, str] = {}
        for wire_name, column, limit in self._TEXT_LIMITS:
            value = args.opt_str(wire_name)
            if value is None:
                continue
            if mapping.utf8_len(value) > limit.value or (wire_name == "Name" and not value):
                raise _Fail(limit.code, f"invalid {wire_name}: at most {limit.value} bytes, not empty for Name")
            fields[column] = value
        return fields

    def _modify_group(self, args: _Args) -> dict[str, Any]:
        group_id, _ = self._group(args)
        fields: dict[str, Any] = dict(self._check_text_limits(args))
        mute_all = args.opt_str("MuteAllMember")
        if mute_all is not None:
            if mute_all not in ("On", "Off"):
                raise _Fail(10004, "MuteAllMember is On or Off")
            fields["mute_all"] = int(mute_all == "On")
        option, size = self._join_policy(args, group_id, "MaxMemberNum")
        self.store.update_group(group_id, fields)
        if option is not None or size is not None:
            self.store.set_group_policy(group_id, option, size)
        changed = {name: args.body[name] for name in ("Name", "Introduction", "Notification", "FaceUrl")
                   if args.has(name)}  # fmt: skip
        if changed:  # the callback names the profile fields; mute-all is not one of them (/1047/34378)
            self._after("Group.CallbackAfterGroupInfoChanged", {
                "GroupId": group_id, "Type": self._group_type(group_id), "Operator_Account": self.admin, **changed,
                "EventTime": self._event_time(),
            })  # fmt: skip
        return _ok()

    def _join_policy(self, args: _Args, group_id: str | None, size_field: str) -> tuple[str | None, int | None]:
        """ApplyJoinOption (FreeAccess, NeedPermission, DisableApply; "Community groups currently do not support
        this field") and the member limit (MaxMemberCount on create_group, MaxMemberNum on modify_group_base_info,
        /1047/34895, /1047/34962). A limit below the current member count is refused [our choice: the pages do
        not say] with 10004."""
        option = args.opt_str("ApplyJoinOption")
        kind = self._group_type(group_id) if group_id else args.opt_str("Type")
        if option is not None and (option not in JOIN_OPTIONS or kind == "Community"):
            raise _Fail(10004, f"ApplyJoinOption is one of {', '.join(JOIN_OPTIONS)} (not for Community groups)")
        size = args.integer(size_field, low=1) if args.has(size_field) else None
        if size is not None and group_id is not None:
            group = self.store.group(group_id)
            if group is not None and size < group.member_count:
                raise _Fail(10004, f"{size_field} {size} is below the {group.member_count} members")
        return option, size

    def _destroy_group(self, args: _Args) -> dict[str, Any]:
        group_id, group = self._group(args)
        members = [{"Member_Account": m.user_id} for m in self.store.members(group_id)]
        kind = self._group_type(group_id)
        self.store.dismiss_group(group_id, self._now())
        self._after("Group.CallbackAfterGroupDestroyed", {
            "GroupId": group_id, "Type": kind, "Owner_Account": group.owner or "", "Name": group.name,
            "MemberList": members, "EventTime": self._event_time(),
        })  # fmt: skip
        return _ok()

    def _add_members(self, args: _Args) -> dict[str, Any]:
        group_id, _ = self._group(args)
        if self._group_type(group_id) == "AVChatRoom":
            raise _Fail(10007, "members cannot be added to an AVChatRoom")
        items = args.array("MemberList")
        accounts: list[str] = [
            i["Member_Account"] for i in items if isinstance(i, dict) and isinstance(i.get("Member_Account"), str)
        ]
        if len(accounts) != len(items) or not all(accounts):
            raise _Fail(10004, "MemberList items need a Member_Account")
        if not accounts or len(accounts) > ADD_MEMBERS_MAX:
            raise _Fail(10005, f"1 to {ADD_MEMBERS_MAX} members per request, got {len(accounts)}")
        known = self._exists(accounts)
        group = self.store.group(group_id)
        newcomers = {a for a in accounts if a in known and self.store.member(group_id, a) is None}
        limit = self.store.group_policy(group_id)[1] or DEFAULT_MAX_MEMBERS
        if group is not None and group.member_count + len(newcomers) > limit:
            # "cannot be added to the group because the group is already full" (add_group_member, /1047/34921)
            raise _Fail(10014, f"the group is full: {group.member_count} members, MaxMemberNum {limit}")
        added = self.store.add_members(group_id, [(a, "member") for a in accounts if a in known], self._now())
        joined = [a for a in accounts if added.get(a)]
        if joined:
            self._after("Group.CallbackAfterNewMemberJoin", {
                "GroupId": group_id, "Type": self._group_type(group_id), "JoinType": "Invited",
                "Operator_Account": self.admin, "NewMemberList": [{"Member_Account": a} for a in joined],
                "EventTime": self._event_time(),
            })  # fmt: skip
        return _ok(MemberList=[
            {"Member_Account": a, "Result": 0 if a not in known else (1 if added.get(a) else 2)} for a in accounts
        ])  # fmt: skip

    def _delete_members(self, args: _Args) -> dict[str, Any]:
        group_id, group = self._group(args)
        accounts = args.accounts("MemberToDel_Account")
        if not accounts or len(accounts) > DELETE_MEMBERS_MAX:
            raise _Fail(10005, f"1 to {DELETE_MEMBERS_MAX} members per request, got {len(accounts)}")
        if group.owner in accounts:
            raise _Fail(10004, "the owner cannot be removed")
        # Non-members are ignored and nothing is reported per member, as documented.
        removed = self.store.remove_members(group_id, accounts)
        gone = [a for a in accounts if removed.get(a)]
        if gone:
            self._after("Group.CallbackAfterMemberExit", {
                "GroupId": group_id, "Type": self._group_type(group_id), "ExitType": "Kicked",
                "Operator_Account": self.admin, "ExitMemberList": [{"Member_Account": a} for a in gone],
                "EventTime": self._event_time(),
            })  # fmt: skip
        return _ok()

    def _modify_member(self, args: _Args) -> dict[str, Any]:
        group_id, _ = self._group(args)
        account = args.text("Member_Account")
        member = self.store.member(group_id, account)
        if member is None:
            raise _Fail(10007, f"{account!r} is not a member")
        role = args.opt_str("Role")
        if role is not None:
            if role not in ("Admin", "Member") or member.role == "owner":
                raise _Fail(10004, "Role is Admin or Member, and the owner's role cannot change here")
            if role == "Admin" and self._group_type(group_id) == "Private":
                raise _Fail(10007, "Private (Work) groups have no admins")
            self.store.set_role(group_id, account, role.lower())
        card = args.opt_str("NameCard")
        if card is not None:
            if mapping.utf8_len(card) > NAME_CARD_MAX:  # "with a maximum length of 50 bytes" (/1047/34900)
                raise _Fail(10004, f"NameCard is at most {NAME_CARD_MAX} bytes")
            self.store.set_name_card(group_id, account, card)
        if args.has("MuteTime"):
            self._apply_mute(group_id, [account], args.integer("MuteTime"))
        return _ok()

    def _apply_mute(self, group_id: str, accounts: list[str], seconds: int) -> None:
        if self._group_type(group_id) == "Private":
            raise _Fail(10007, "members of Private (Work) groups cannot be muted")
        if seconds > MUTE_PERMANENT:
            raise _Fail(10004, "MuteTime exceeds 4294967295")
        targets = sorted(self._exists(accounts))
        # Whole seconds, as MutedUntil is reported: the client and the server then agree on when it ends.
        # 4294967295 is "Permanent muting" (/1047/34951): it never ends.
        until = MUTED_FOREVER if seconds == MUTE_PERMANENT else int(self._now()) + seconds
        self.store.set_mutes(group_id, targets, until if seconds else None)

    def _forbid(self, args: _Args) -> dict[str, Any]:
        group_id, _ = self._group(args)
        accounts = args.accounts("Members_Account")
        if not accounts or len(accounts) > FORBID_MAX:
            raise _Fail(10005, f"1 to {FORBID_MAX} members per request, got {len(accounts)}")
        # Mutes are kept per account, and survive leaving and re-joining the group (documented).
        self._apply_mute(group_id, accounts, args.integer("MuteTime"))
        return _ok()

    def _muted(self, args: _Args) -> dict[str, Any]:
        group_id, _ = self._group(args)
        mutes = self.store.mutes(group_id, self._now())
        members = {m.user_id for m in self.store.members(group_id)}
        now = self._now()
        return _ok(GroupId=group_id, MutedAccountList=[
            {"Member_Account": uid, "MutedUntil": self._mute_end(until, now)} for uid, until in mutes.items()
            if uid in members
        ])  # fmt: skip

    def _roles(self, args: _Args) -> dict[str, Any]:
        """get_role_in_group (https://cloud.tencent.com/document/product/269/1626): each asked account with
        its Role, Owner/Admin/Member, or NotMember; AVChatRoom groups answer 10007 (they keep no members)."""
        group_id, _ = self._group(args)
        if self._group_type(group_id) == "AVChatRoom":
            raise _Fail(10007, "AVChatRoom groups do not support get_role_in_group")
        accounts = args.accounts("User_Account")
        if not accounts or len(accounts) > ROLE_QUERY_MAX:
            raise _Fail(10004, f"1 to {ROLE_QUERY_MAX} accounts per request, got {len(accounts)}")
        roles = {m.user_id: m.role.capitalize() for m in self.store.members(group_id)}
        return _ok(UserIdList=[{"Member_Account": uid, "Role": roles.get(uid, "NotMember")} for uid in accounts])

    def _send_group_msg(self, args: _Args) -> dict[str, Any]:
        group_id, group = self._group(args)
        random_value = self._uint32(args, "Random", 10004)
        body = self._body(args, too_long=80002, bad=10004)
        sender = args.text("From_Account", self.admin)
        priority = args.text("MsgPriority", "Normal")
        if priority not in _PRIORITIES:
            raise _Fail(10004, f"unknown MsgPriority {priority!r}")
        if self._group_type(group_id) == "AVChatRoom" and args.body.get("OnlineOnlyFlag") == 1:
            raise _Fail(10004, "OnlineOnlyFlag is not for AVChatRoom")
        control = self._send_control(args, code=10004)
        if control and args.body.get("OnlineOnlyFlag") == 1:
            # "If OnlineOnlyFlag is set to 1 for the message, this field cannot be used" (/1047/34959)
            raise _Fail(10004, "SendMsgControl cannot be used with OnlineOnlyFlag 1")
        now = self._now()
        if sender != self.admin:  # the App admin may post in any group
            if not self._exists([sender]):
                raise _Fail(10019, f"account {sender!r} does not exist")
            member = self.store.member(group_id, sender)
            if member is None:
                raise _Fail(10007, f"{sender!r} is not a member of the group")
            if member.muted_until is not None and member.muted_until > now:
                raise _Fail(10017, f"{sender!r} is muted in this group")
            if group.mute_all and member.role == "member":
                raise _Fail(10017, "the whole group is muted; only the owner and admins may post")
        next_seq, _ = self._next_seq(group_id)
        if not self._bucket(f"group#{group_id}", GROUP_MSGS_PER_SECOND, GROUP_MSGS_PER_SECOND).take(now):
            # Dropped by frequency control, yet answered OK: the documented silent drop.
            return _ok(MsgTime=int(now), MsgSeq=next_seq, MsgDropReason="MsgFreqCtrl")
        online_only = 1 if args.body.get("OnlineOnlyFlag") == 1 else 0
        cloud = args.body.get("CloudCustomData")
        message = {"GroupId": group_id, "Type": self._group_type(group_id), "From_Account": sender,
                   "Operator_Account": self.admin, "Random": random_value, "OnlineOnlyFlag": online_only}  # fmt: skip
        asked = {**message, "MsgBody": body, **({"CloudCustomData": cloud} if cloud is not None else {}),
                 "EventTime": self._event_time()}  # fmt: skip
        body, new_cloud, drop = self._before_send("Group.CallbackBeforeSendMsg", asked, body, one_to_one=False)
        if drop:  # ErrorCode 2: the caller is told it was sent
            return _ok(MsgTime=int(now), MsgSeq=next_seq, MsgDropReason="")
        if new_cloud is not None:
            cloud = new_cloud
        if online_only:  # delivered to online members only; never stored
            return _ok(MsgTime=int(now), MsgSeq=next_seq, MsgDropReason="")
        metadata: dict[str, Any] = {"Random": random_value, "MsgPriority": priority}
        if control:
            metadata["SendMsgControl"] = control
        if cloud is not None:
            metadata["CloudCustomData"] = cloud
        conv = conversation_key("group", group_id)
        row, new = self.store.append_message(
            conv, key=f"{conv}#{secrets.token_hex(8)}", sender=sender, elements=body, metadata=metadata, time=now,
            dedupe=f"{sender}:{random_value}", dedupe_window=GROUP_DEDUPE_SECONDS,
        )  # fmt: skip
        if new:
            self._after("Group.CallbackAfterSendMsg", {
                **message, "MsgSeq": row.seq, "MsgTime": int(row.time), "MsgBody": body,
                **({"CloudCustomData": cloud} if cloud is not None else {}), "EventTime": self._event_time(),
            })  # fmt: skip
        return _ok(MsgTime=int(row.time), MsgSeq=row.seq, MsgDropReason="")

    def _group_row(self, group_id: str, seq: int) -> MessageRow | None:
        rows = self.store.messages(conversation_key("group", group_id), before=seq + 1, after=seq - 1, limit=1)
        return rows[0] if rows else None

    def _recall(self, args: _Args) -> dict[str, Any]:
        group_id, _ = self._group(args)
        if self._group_type(group_id) == "AVChatRoom":
            raise _Fail(10033, "AVChatRoom messages cannot be recalled")
        items = args.array("MsgSeqList")
        seqs: list[int] = [
            i["MsgSeq"] for i in items
            if isinstance(i, dict) and isinstance(i.get("MsgSeq"), int) and not isinstance(i["MsgSeq"], bool)
        ]  # fmt: skip
        if len(seqs) != len(items):
            raise _Fail(10004, "MsgSeqList items need an integer MsgSeq")
        if not seqs or len(seqs) > RECALL_MAX:
            raise _Fail(10004, f"1 to {RECALL_MAX} MsgSeq per request, got {len(seqs)}")
        cutoff = self._cutoff()
        results = []
        for seq in seqs:
            row = self._group_row(group_id, seq)
            if row is None:
                code = 10030
            elif row.time < cutoff:
                code = 10031  # only within the roaming retention
            elif row.revoked:
                code = 10032
            else:
                self.store.revoke_message(row.key)
                code = 0
            results.append({"MsgSeq": seq, "RetCode": code})
        recalled = [{"MsgSeq": item["MsgSeq"]} for item in results if item["RetCode"] == 0]
        if recalled:
            self._after("Group.CallbackAfterRecallMsg", {
                "Operator_Account": self.admin, "Type": self._group_type(group_id), "GroupId": group_id,
                "MsgSeqList": recalled, "EventTime": self._event_time(),
            })  # fmt: skip
        return _ok(RecallRetList=results)

    @staticmethod
    def _group_item(row: MessageRow, expired: bool = False) -> dict[str, Any]:
        meta = row.metadata
        # IsPlaceMsg: "当消息被删除或者消息过期后,MsgBody 为空,该字段为1,撤回的消息,该字段为2".
        place = 1 if expired else (2 if row.revoked else 0)
        item: dict[str, Any] = {
            "From_Account": row.sender, "IsPlaceMsg": place, "IsSystemMsg": 0,
            "MsgPriority": _PRIORITIES.get(meta.get("MsgPriority", "Normal"), 2), "MsgRandom": meta.get("Random", 0),
            "MsgSeq": row.seq, "MsgTimeStamp": int(row.time), "MsgBody": row.elements if place == 0 else [],
        }  # fmt: skip
        if "CloudCustomData" in meta and place == 0:
            item["CloudCustomData"] = meta["CloudCustomData"]
        return item

    def _get_simple(self, args: _Args) -> dict[str, Any]:
        """group_msg_get_simple as https://cloud.tencent.com/document/api/269/2738 defines it (read 2026-12-02):
        the window is the ReqMsgNumber messages with seq <= ReqMsgSeq (the newest when it is absent), answered
        newest first; "目前一次请求最多返回20条". IsFinished is 1 "当成功返回了请求区间的全部消息时", 0 "当消息长度
        太长或者区间太大(超过20)导致无法返回全部消息时", and 2 when that happens "且所有消息都过期时". So 1 says
        nothing about older messages: the doc's own sample asks for 2 messages at seq 7803321 and answers 1.
        Expired messages come back as IsPlaceMsg 1 placeholders with an empty MsgBody. What does not fit
        ``history_answer_bytes`` is cut from the old end of the window [which end is our reading: the doc's
        paging asks next for "上次返回的最小 Seq 减1"]."""
        group_id, _ = self._group(args)
        if self._group_type(group_id) == "AVChatRoom":
            raise _Fail(10044, "AVChatRoom groups keep no roaming messages")
        wanted = args.integer("ReqMsgNumber", low=1)
        conv = conversation_key("group", group_id)
        newest, _ = self._next_seq(group_id)
        top = min(args.integer("ReqMsgSeq", low=0), newest - 1) if args.has("ReqMsgSeq") else newest - 1
        low = max(top - wanted + 1, 1)
        with_recalled = args.body.get("WithRecalledMsg") == 1
        cutoff = self._cutoff()
        rows = self.store.messages(conv, before=top + 1, after=low - 1, limit=-1) if top >= 1 else []
        in_window = [row for row in rows if not (row.revoked and not with_recalled)]
        expired = [row.time < cutoff for row in in_window]
        picked: list[dict[str, Any]] = []
        used = 0
        for row, old in zip(in_window, expired, strict=True):  # newest first
            item = self._group_item(row, old)
            size = _size(item)
            if len(picked) == GROUP_PAGE or (picked and used + size > self.history_answer_bytes):
                break
            picked.append(item)
            used += size
        finished = 1
        if len(picked) < len(in_window):
            finished = 2 if all(expired) else 0
        return _ok(GroupId=group_id, IsFinished=finished, RspMsgList=picked)

    # -- seed data --------------------------------------------------------------------------------

    def seed(self, size: str | SeedSize, *, rng_seed: int = 7) -> dict[str, int]:
        """Fill the emulator with a realistic dataset, the same for the same ``rng_seed``: users with
        profiles, groups with owners, admins, members and mutes, and C2C and group history spread
        over the last days (inside the retention window), some of it recalled. ``size`` names one of
        the preset sizes or gives its own (the migration benchmark's). Returns counts."""
        from imbridge.emulators._tencent_seed import SIZES, generate

        if isinstance(size, str) and size not in SIZES:
            raise ValueError(f"seed size is one of {', '.join(SIZES)}, not {size!r}")
        if self.store.meta("tencent.seeded") is not None:
            raise ValueError("this emulator's store is already seeded")
        data = generate(SIZES[size] if isinstance(size, str) else size, random.Random(rng_seed), now=self._now())
        now = self._now()
        self.store.add_users(data.users, now)
        self.store.set_profiles(data.profiles)
        for group in data.groups:
            self.store.create_group(
                group.id, name=group.name, owner=group.owner, introduction=group.introduction, notification="",
                face_url="", now=group.created_at, members=group.members,
            )  # fmt: skip
            if group.mute_all:
                self.store.update_group(group.id, {"mute_all": 1})
            for uid, until in group.mutes.items():
                self.store.set_mutes(group.id, [uid], until)
        self.store.append_messages(data.messages)
        self._seed_read_positions(random.Random(rng_seed * 7919 + 1))
        self.store.set_meta("tencent.seeded", f"{size if isinstance(size, str) else 'custom'}:{rng_seed}")
        counts = {
            "users": len(data.users),
            "profiles": len(data.profiles),
            "groups": len(data.groups),
            "members": sum(len(g.members) for g in data.groups),
            "mutes": sum(len(g.mutes) for g in data.groups),
            "messages": len(data.messages),
            "group_messages": sum(m.conversation.startswith("g:") for m in data.messages),
            "c2c_messages": sum(m.conversation.startswith("u:") for m in data.messages),
            "revoked": sum(m.revoked for m in data.messages),
        }
        return counts

    # -- member administration, system notifications (issue 17) ---------------------------------------

    def _change_owner(self, args: _Args) -> dict[str, Any]:
        """change_group_owner (https://www.tencentcloud.com/document/product/1047/34966): "The new group owner must
        be a member of the group" (10007 otherwise [the code is ours]); AVChatRoom groups answer 10007."""
        group_id, _ = self._group(args)
        new_owner = args.text("NewOwner_Account")
        if self._group_type(group_id) == "AVChatRoom":
            raise _Fail(10007, "AVChatRoom groups do not support transferring ownership")
        if not self.store.transfer_owner(group_id, new_owner):
            raise _Fail(10007, f"{new_owner!r} is not a member of the group")
        return _ok()

    def _joined_groups(self, args: _Args) -> dict[str, Any]:
        """get_joined_group_list (https://www.tencentcloud.com/document/product/1047/34925): Limit (<= 5,000) and
        Offset over the user's groups, TotalCount regardless of them, ResponseFilter's GroupBaseInfoFilter and
        SelfInfoFilter naming what comes back; GroupType filters. AVChatRoom groups only WithHugeGroups 1."""
        account = args.text("Member_Account")
        limit = args.integer("Limit", low=1) if args.has("Limit") else None
        if limit is not None and limit > JOINED_LIMIT_MAX:
            raise _Fail(10004, f"Limit is at most {JOINED_LIMIT_MAX}")
        offset = args.integer("Offset", 0)
        kind = args.opt_str("GroupType")
        huge = args.body.get("WithHugeGroups") == 1
        filters = args.body.get("ResponseFilter") or {}
        if not isinstance(filters, dict):
            raise _Fail(10004, "ResponseFilter must be an object")
        ids = [
            gid for gid in self.store.groups_of(account)
            if (kind is None or self._group_type(gid) == kind) and (huge or self._group_type(gid) != "AVChatRoom")
        ]  # fmt: skip
        page = ids[offset:] if limit is None else ids[offset : offset + limit]
        base_filter = filters.get("GroupBaseInfoFilter")
        self_filter = filters.get("SelfInfoFilter")
        state = self._state(account)
        items = []
        for gid in page:
            item: dict[str, Any] = {"GroupId": gid}
            if isinstance(base_filter, list):
                info = self._info_item(gid, {"GroupBaseInfoFilter": base_filter})
                item.update({k: v for k, v in info.items() if k not in ("ErrorCode", "ErrorInfo")})
            if isinstance(self_filter, list):
                member = self.store.member(gid, account)
                own: dict[str, Any] = {}
                if member is not None:  # MsgSeq: the member's read position (unread = NextMsgSeq - 1 - MsgSeq)
                    own = {"Role": member.role.capitalize(), "JoinTime": int(member.joined_at),
                           "MsgFlag": "AcceptAndNotify",
                           "MsgSeq": self._group_read_seq(account, gid, state)}  # fmt: skip
                item["SelfInfo"] = {k: v for k, v in own.items() if k in self_filter}
            items.append(item)
        return _ok(TotalCount=len(ids), GroupIdList=items)

    def _system_notification(self, args: _Args) -> dict[str, Any]:
        """send_group_system_notification (https://www.tencentcloud.com/document/product/1047/34958): to every
        member, or to ToMembers_Account (up to 50; not for AVChatRoom groups). "An online message, not roamed"
        (https://cloud.tencent.com/document/product/269/1630): nothing is stored; the emulator records it in
        ``notifications``. Recipients that are not members are skipped [the page does not say]."""
        group_id, _ = self._group(args)
        content = args.text("Content")
        recipients = args.accounts("ToMembers_Account") if args.has("ToMembers_Account") else []
        if len(recipients) > NOTIFY_MAX:
            raise _Fail(10004, f"ToMembers_Account holds at most {NOTIFY_MAX} accounts")
        if recipients and self._group_type(group_id) == "AVChatRoom":
            raise _Fail(10004, "AVChatRoom groups take system notifications for all members only")
        members = [m.user_id for m in self.store.members(group_id)]
        chosen = [uid for uid in recipients if uid in members] if recipients else members
        self.notifications.append((group_id, chosen, content))
        return _ok()
