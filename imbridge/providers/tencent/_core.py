"""What every Tencent resource module shares: settings, hosts and rates, transport hooks (signing, the
envelope and its error mapping), the escape hatch, and the chunking helpers."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from imbridge._clock import Clock
from imbridge._flow import Flow, HTTPRequest, Request, Response, encode_json, windows
from imbridge._pacing import Rate
from imbridge.config import TencentSettings
from imbridge.errors import (
    ConfigurationError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
)
from imbridge.models._validation import check_json_object
from imbridge.providers.base import Provider, ProviderSettings
from imbridge.providers.tencent import mapping, wire
from imbridge.providers.tencent.mapping import NAME
from imbridge.providers.tencent.usersig import UserSigCache

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
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")

ROLE_CHUNK = 500
"""Accounts per get_role_in_group request ("最多支持500个")."""
NOT_MEMBER = "NotMember"

BULK_WINDOW = 4
"""Chunks handed to the executor at once (run concurrently by the async client)."""


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


class TencentCore(Provider):
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

    def non_members(self, group_id: str, user_ids: Sequence[str]) -> Flow[list[str]]:
        """The accounts of ``user_ids`` that are not members of ``group_id``: get_role_in_group answers
        NotMember for them, 500 accounts per request (https://cloud.tencent.com/document/product/269/1626)."""
        outsiders: list[str] = []
        for chunk in _chunks(user_ids, ROLE_CHUNK):
            body = wire.GetRoleInGroupRequest(GroupId=group_id, User_Account=chunk).body()
            reply = yield self._req("group_open_http_svc", "get_role_in_group", body)
            rows = wire.GetRoleInGroupResponse.model_validate(reply).UserIdList
            roles = {row.Member_Account: row.Role for row in rows}
            outsiders += [uid for uid in chunk if roles.get(uid, NOT_MEMBER) == NOT_MEMBER]
        return outsiders

    def call(self, service: str, command: str, body: dict[str, Any] | None = None) -> Flow[Any]:
        """Any v4 command, with the same auth, pacing, retries and error mapping; returns the JSON reply."""
        for part, what in ((service, "service"), (command, "command")):
            if not isinstance(part, str) or not _NAME_PATTERN.match(part):
                raise InvalidRequestError(f"invalid {what} name {part!r}", provider=NAME, operation="provider.call")
        if body is not None and not isinstance(body, dict):
            raise InvalidRequestError("body must be a JSON object", provider=NAME, operation="provider.call")
        if body:
            check_json_object(body, "body")
        reply = yield self._req(service, command, dict(body or {}))
        return reply


_NOT_FOUND_RULES = {mapping.ERROR_TABLE[40003], mapping.ERROR_TABLE[70107]}
