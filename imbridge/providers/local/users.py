"""Local users: accounts, profiles and login tokens in the SQLite store."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from pydantic import SecretStr

from imbridge._flow import Flow
from imbridge.capabilities import Operation
from imbridge.errors import AuthenticationError, NotFoundError
from imbridge.models import BatchItem, BatchResult, DeviceKind, LoginCredentials, Presence, PresenceState, Profile
from imbridge.providers import _login_tokens as login_tokens
from imbridge.providers.base import ProfileUpdate
from imbridge.providers.local import events as local_events
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
            fields = profile_fields(update)
            self.store.set_profile_fields(user_id, fields)
            custom = "custom:"  # the store's prefix of app-defined keys
            self._publish(lambda common: [local_events.ProfileUpdated(
                **common, event_id=f"local:profile:{user_id}:{uuid.uuid4().hex}", user_id=user_id,
                changes={k: v for k, v in fields.items() if not k.startswith(custom)},
                custom={k[len(custom):]: v for k, v in fields.items() if k.startswith(custom)},
            )])  # fmt: skip

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
                issued=int(issued.timestamp()), expires=int(expires.timestamp()), gen=self._generation(user_id),
                **claims,
            )  # fmt: skip
            return LoginCredentials(
                user_id=user_id, token=SecretStr(token), expires_at=_ts(int(expires.timestamp())), device=device,
                extra={"algorithm": "HS256", "issuer": _ISSUER}, provider=NAME,
            )  # fmt: skip

        return self._run(compute)

    def authenticate(self, token: str) -> str:
        """The user a login token was issued to; AuthenticationError if forged, foreign, expired, issued before
        the user was kicked, or of a deleted account."""
        user_id = login_tokens.verify(token, self._token_key, issuer=_ISSUER, now=self._now(), provider=NAME)
        if not self.store.existing_users([user_id]):
            raise AuthenticationError("login token of a deleted account", provider=NAME)
        if login_tokens.claim(token, "gen", 0) != self._generation(user_id):
            raise AuthenticationError("login token issued before the user was kicked", provider=NAME)
        return user_id

    # -- presence and sessions, accounts (issue 17) -------------------------------------------------

    def presence(self, user_ids: Sequence[str]) -> Flow[list[Presence]]:
        def compute() -> list[Presence]:
            self._require_users(user_ids, Operation.USERS_PRESENCE.value)
            # The local provider has no client connections: every registered user is offline.
            return [Presence(user_id=uid, state=PresenceState.OFFLINE, provider=NAME) for uid in user_ids]

        return self._run(compute)

    def kick(self, user_id: str, device: DeviceKind | None) -> Flow[None]:
        def compute() -> None:
            self._require_users([user_id], Operation.USERS_KICK.value)
            # A kick moves the user's session generation on: every login token issued before it is refused
            # by authenticate (a token names the generation it was issued in).
            self.store.set_meta(_generation_key(user_id), str(self._generation(user_id) + 1))

        return self._run(compute)

    def _generation(self, user_id: str) -> int:
        return int(self.store.meta(_generation_key(user_id)) or 0)

    def users_exist(self, user_ids: Sequence[str]) -> Flow[dict[str, bool]]:
        def compute() -> dict[str, bool]:
            known = self.store.existing_users(user_ids)
            return {uid: uid in known for uid in user_ids}

        return self._run(compute)

    def delete_users(self, user_ids: Sequence[str]) -> Flow[BatchResult]:
        def compute() -> BatchResult:
            items = []
            for uid in user_ids:
                if self.store.delete_user(uid):
                    items.append(BatchItem(target=uid, ok=True))
                    continue
                error = NotFoundError(f"unknown user {uid!r}", provider=NAME, operation=Operation.USERS_DELETE.value)
                items.append(BatchItem(target=uid, ok=False, error=error, detail=error.message))
            return BatchResult(items=items, provider=NAME)

        return self._run(compute)


def _generation_key(user_id: str) -> str:
    return f"local.session_generation.{user_id}"
