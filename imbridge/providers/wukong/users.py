"""WuKongIM users: register, profiles (kept in imbridge's store), login tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import SecretStr

from imbridge._flow import Flow
from imbridge.capabilities import Operation
from imbridge.errors import ProviderError
from imbridge.models import BatchItem, BatchResult, LoginCredentials, Profile
from imbridge.models.device import DeviceKind
from imbridge.providers import _login_tokens as login_tokens
from imbridge.providers.base import ProfileUpdate
from imbridge.providers.local.store import profile_fields, profile_from_fields
from imbridge.providers.wukong import wire
from imbridge.providers.wukong._core import WukongCore, _ts
from imbridge.providers.wukong.mapping import NAME

_ISSUER = "imbridge-wukong"


class WukongUsers(WukongCore):
    def register_users(self, user_ids: Sequence[str]) -> Flow[BatchResult]:
        self._check_ids(user_ids, Operation.USERS_REGISTER)
        return self._register(user_ids)

    def _register(self, user_ids: Sequence[str]) -> Flow[BatchResult]:
        known = self.store.existing_users(user_ids) if self.store is not None else set()
        items = []
        for uid in user_ids:
            if uid in known:
                items.append(BatchItem(target=uid, ok=True, detail="already registered"))
                continue
            body = {"uid": uid, "token": self.registration_token(uid), "device_flag": self.config.device_flag,
                    "device_level": 0}  # fmt: skip
            try:
                yield self._post("/user/token", body)
            except ProviderError as error:
                items.append(BatchItem(target=uid, ok=False, error=error, native_code=error.native_code,
                                       detail=error.message))  # fmt: skip
                continue
            if self.store is not None:
                self.store.add_users([uid], self._now())
            items.append(BatchItem(target=uid, ok=True))
        return BatchResult(items=items, provider=NAME)

    def get_profiles(self, user_ids: Sequence[str]) -> Flow[list[Profile]]:
        yield from self._require_users(user_ids, Operation.USERS_GET_PROFILES)
        store = self._need_store(Operation.USERS_GET_PROFILES)
        profiles = []
        for uid in user_ids:
            fields = store.profile(uid)
            profiles.append(profile_from_fields(uid, fields, provider=NAME, raw={"emulated": True, "fields": fields}))
        return profiles

    def set_profile(self, user_id: str, update: ProfileUpdate) -> Flow[None]:
        yield from self._require_users([user_id], Operation.USERS_SET_PROFILE)
        self._need_store(Operation.USERS_SET_PROFILE).set_profile_fields(user_id, profile_fields(update))

    def login_credentials(
        self, user_id: str, ttl: timedelta, device: DeviceKind | None = None
    ) -> Flow[LoginCredentials]:
        self._check_ids([user_id], Operation.USERS_LOGIN_CREDENTIALS)
        return self._login(user_id, ttl, device)

    def _login(self, user_id: str, ttl: timedelta, device: DeviceKind | None) -> Flow[LoginCredentials]:
        if self.store is not None:
            yield from self._require_users([user_id], Operation.USERS_LOGIN_CREDENTIALS)
        # WuKongIM keeps one token per (uid, device_flag) and checks a CONNECT against the token of the flag
        # the client sends (user/handler/event_connect.go:77-89); a mismatch is never answered.
        flag = wire.DEVICE_FLAGS[device] if device is not None else self.config.device_flag
        issued = int(self._now())
        expires = issued + int(ttl.total_seconds())
        token = login_tokens.issue(
            self._token_key, user_id=user_id, issuer=_ISSUER, issued=issued, expires=expires, dfl=flag,
        )  # fmt: skip
        body = {"uid": user_id, "token": token, "device_flag": flag, "device_level": self.config.device_level}
        yield self._post("/user/token", body)
        return LoginCredentials(
            user_id=user_id, token=SecretStr(token), expires_at=_ts(expires), device=wire.DEVICE_KINDS.get(flag),
            extra={"device_flag": flag, "device_level": self.config.device_level,
                   "algorithm": "HS256", "issuer": _ISSUER, "expiry_enforced_by_server": False},
            provider=NAME,
        )  # fmt: skip

    def authenticate(self, token: str) -> str:
        """The user a login token was issued to, checked as imbridge issued it (signature, issuer, expiry);
        AuthenticationError otherwise. WuKongIM itself only compares the token verbatim on connect."""
        return login_tokens.verify(token, self._token_key, issuer=_ISSUER, now=self._now(), provider=NAME)
