"""Local users: accounts, profiles and login tokens in the SQLite store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import SecretStr

from imbridge._flow import Flow
from imbridge.capabilities import Operation
from imbridge.models import BatchItem, BatchResult, LoginCredentials, Profile
from imbridge.models.device import DeviceKind
from imbridge.providers import _login_tokens as login_tokens
from imbridge.providers.base import ProfileUpdate
from imbridge.providers.local._core import NAME, LocalCore, _ts
from imbridge.providers.local.store import profile_fields, profile_from_fields

_ISSUER = "imbridge-local"


class LocalUsers(LocalCore):
    def register_users(self, user_ids: Sequence[str]) -> Flow[BatchResult]:
        def compute() -> BatchResult:
            created = self.store.add_users(user_ids, self._now())
            items = [
                BatchItem(target=uid, ok=True, detail="" if new else "already registered")
                for uid, new in created.items()
            ]
            return BatchResult(items=items, provider=NAME)

        return self._run(compute)

    def get_profiles(self, user_ids: Sequence[str]) -> Flow[list[Profile]]:
        def compute() -> list[Profile]:
            self._require_users(user_ids, Operation.USERS_GET_PROFILES.value)
            return [self._profile(uid) for uid in user_ids]

        return self._run(compute)

    def _profile(self, user_id: str) -> Profile:
        fields = self.store.profile(user_id)
        return profile_from_fields(user_id, fields, provider=NAME, raw={"fields": fields})

    def set_profile(self, user_id: str, update: ProfileUpdate) -> Flow[None]:
        def compute() -> None:
            self._require_users([user_id], Operation.USERS_SET_PROFILE.value)
            self.store.set_profile_fields(user_id, profile_fields(update))

        return self._run(compute)

    def login_credentials(
        self, user_id: str, ttl: timedelta, device: DeviceKind | None = None
    ) -> Flow[LoginCredentials]:
        def compute() -> LoginCredentials:
            self._require_users([user_id], Operation.USERS_LOGIN_CREDENTIALS.value)
            issued = self.clock.now()
            expires = issued + ttl
            # The device kind is recorded in the token (claim "dev") for the app to read; local clients are
            # not told apart, so the token logs in on any kind.
            claims = {"dev": device.value} if device is not None else {}
            token = login_tokens.issue(
                self._token_key, user_id=user_id, issuer=_ISSUER,
                issued=int(issued.timestamp()), expires=int(expires.timestamp()), **claims,
            )  # fmt: skip
            return LoginCredentials(
                user_id=user_id, token=SecretStr(token), expires_at=_ts(int(expires.timestamp())), device=device,
                extra={"algorithm": "HS256", "issuer": _ISSUER}, provider=NAME,
            )  # fmt: skip

        return self._run(compute)

    def authenticate(self, token: str) -> str:
        """The user a login token was issued to; AuthenticationError if forged, foreign or expired."""
        return login_tokens.verify(token, self._token_key, issuer=_ISSUER, now=self._now(), provider=NAME)
