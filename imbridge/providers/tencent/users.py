"""Tencent users: multiaccount_import, portrait_get/portrait_set, UserSigs signed locally, presence, kicks,
account checks and deletion."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from imbridge._flow import Flow, Gather, windows
from imbridge.capabilities import Operation
from imbridge.errors import (
    IMBridgeError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    ServiceUnavailableError,
    UnsupportedOperationError,
)
from imbridge.models import BatchItem, BatchResult, DeviceKind, LoginCredentials, Presence, Profile
from imbridge.providers.base import ProfileUpdate
from imbridge.providers.tencent import mapping, wire
from imbridge.providers.tencent._core import BULK_WINDOW, TencentCore, _check_user_ids, _chunks
from imbridge.providers.tencent.mapping import NAME
from imbridge.providers.tencent.usersig import generate_usersig, verify_usersig

IMPORT_CHUNK = 100


class TencentUsers(TencentCore):
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

    def login_credentials(
        self, user_id: str, ttl: timedelta, device: DeviceKind | None = None
    ) -> Flow[LoginCredentials]:
        # A UserSig names no platform (TLS.identifier, sdkappid, time, expire and the HMAC only): the same sig
        # logs in on web, app and desktop; which platforms may be online at once is the console's
        # multi-device login policy. The device kind is accepted and not bound.
        seconds = int(ttl.total_seconds())
        if seconds < 1:
            raise InvalidRequestError("ttl must be at least one second", provider=NAME)
        issued = int(self.clock.now().timestamp())
        sig = generate_usersig(
            self.tencent.sdk_app_id, self.tencent.secret_key.get_secret_value(), user_id, seconds, now=issued
        )
        return LoginCredentials(
            user_id=user_id, token=SecretStr(sig), expires_at=datetime.fromtimestamp(issued + seconds, UTC),
            extra={"sdk_app_id": self.tencent.sdk_app_id, "requested_device": device.value if device else None},
            provider=NAME,
        )  # fmt: skip
        yield  # pragma: no cover - makes this a generator: signing needs no I/O

    def authenticate(self, token: str) -> str:
        """The user a UserSig was issued to, verified as Tencent's server verifies it (signature with this
        app's key, this SDKAppID, not expired); AuthenticationError otherwise."""
        document = verify_usersig(
            token, self.tencent.sdk_app_id, self.tencent.secret_key.get_secret_value(), now=self.clock.now().timestamp()
        )
        return str(document["TLS.identifier"])

    # -- presence and sessions, accounts (issue 17) -------------------------------------------------

    def presence(self, user_ids: Sequence[str]) -> Flow[list[Presence]]:
        found: dict[str, Presence] = {}
        unknown: list[str] = []
        for chunk in _chunks(user_ids, PRESENCE_CHUNK):
            # query_online_status: at most 500 UserIDs; IsNeedDetail 1 adds each platform's state; unknown
            # accounts come back in ErrorList with 70107 (https://www.tencentcloud.com/document/product/1047/35477).
            body = wire.QueryOnlineStatusRequest(To_Account=chunk, IsNeedDetail=1).body()
            reply = yield self._req("openim", "query_online_status", body)
            answer = wire.QueryOnlineStatusResponse.model_validate(reply)
            for item in answer.QueryResult:
                found[item.To_Account] = mapping.presence_from_wire(item)
            for failure in answer.ErrorList:
                if failure.ErrorCode != 70107:
                    raise mapping.error_for(failure.ErrorCode, failure.To_Account)
                unknown.append(failure.To_Account)
        missing = [uid for uid in user_ids if uid not in found]
        if missing:
            raise NotFoundError(f"unknown users: {', '.join(missing)}", provider=NAME, native_code=70107)
        return [found[uid] for uid in user_ids]

    def kick(self, user_id: str, device: DeviceKind | None) -> Flow[None]:
        if device is not None:
            raise UnsupportedOperationError(
                "Tencent's kick invalidates the login state of every device at once: call kick(user) without device",
                provider=NAME, operation=Operation.USERS_KICK.value,
            )  # fmt: skip
        return self._kick(user_id)

    def _kick(self, user_id: str) -> Flow[None]:
        # im_open_login_svc/kick {"UserID"}: the UserSig in use stops working; a newly generated one logs in
        # (https://www.tencentcloud.com/document/product/1047/34957).
        yield self._req("im_open_login_svc", "kick", wire.KickRequest(UserID=user_id).body())

    def users_exist(self, user_ids: Sequence[str]) -> Flow[dict[str, bool]]:
        status: dict[str, bool] = {}
        for chunk in _chunks(user_ids, ACCOUNT_CHUNK):
            # account_check: at most 100 per request; AccountStatus Imported/NotImported
            # (https://www.tencentcloud.com/document/product/1047/34956).
            body = wire.AccountCheckRequest(CheckItem=[wire.UserIdItem(UserID=uid) for uid in chunk]).body()
            reply = yield self._req("im_open_login_svc", "account_check", body)
            for item in wire.AccountCheckResponse.model_validate(reply).ResultItem:
                if item.ResultCode != 0:
                    raise mapping.error_for(item.ResultCode, f"{item.UserID}: {item.ResultInfo}")
                status[item.UserID] = (item.AccountStatus or "").strip() == "Imported"
        missing = [uid for uid in user_ids if uid not in status]
        if missing:
            raise ServiceUnavailableError(f"account_check did not answer for {', '.join(missing)}", provider=NAME)
        return {uid: status[uid] for uid in user_ids}

    def delete_users(self, user_ids: Sequence[str]) -> Flow[BatchResult]:
        items: list[BatchItem] = []
        raws: list[dict[str, Any]] = []
        for chunk in _chunks(user_ids, ACCOUNT_CHUNK):
            # account_delete: at most 100 per request, one ResultItem per account (70107: does not exist);
            # error 71000 for every app not on the Trial edition (https://www.tencentcloud.com/document/
            # product/1047/34955).
            body = wire.AccountDeleteRequest(DeleteItem=[wire.UserIdItem(UserID=uid) for uid in chunk]).body()
            reply = yield self._req("im_open_login_svc", "account_delete", body)
            raws.append(reply)
            results = {r.UserID: r for r in wire.AccountDeleteResponse.model_validate(reply).ResultItem}
            for uid in chunk:
                result = results.get(uid)
                if result is not None and result.ResultCode == 0:
                    items.append(BatchItem(target=uid, ok=True))
                    continue
                error = (
                    mapping.error_for(result.ResultCode, f"{uid}: {result.ResultInfo}")
                    if result is not None
                    else ProviderError(f"account_delete did not report {uid!r}", provider=NAME)
                )
                items.append(BatchItem(target=uid, ok=False, error=error, native_code=error.native_code,
                                       detail=error.message))  # fmt: skip
        return BatchResult(items=items, provider=NAME, raw={"responses": raws})


PRESENCE_CHUNK = 500
ACCOUNT_CHUNK = 100
