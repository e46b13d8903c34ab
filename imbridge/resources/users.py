"""``im.users``: accounts, profiles and login credentials."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from imbridge.capabilities import Operation
from imbridge.errors import InvalidRequestError
from imbridge.models import BatchResult, DeviceKind, Gender, LoginCredentials, Presence, Profile
from imbridge.models._validation import check_id, check_ids
from imbridge.providers.base import ProfileUpdate
from imbridge.resources._base import AsyncResource, Call, Operations, SyncResource, _seconds, _text

DEFAULT_LOGIN_TTL = timedelta(days=1)


def _device(device: DeviceKind | str | None) -> DeviceKind | None:
    if device is None:
        return None
    try:
        return DeviceKind(device)
    except ValueError:
        raise InvalidRequestError(f"device must be one of {[d.value for d in DeviceKind]}, got {device!r}") from None


class UserOperations(Operations):
    def register(self, user_ids: Sequence[str]) -> Call[BatchResult]:
        operation = self._gate(Operation.USERS_REGISTER)
        return operation, self.provider.register_users(check_ids(user_ids, "user ids"))

    def get_profiles(self, user_ids: Sequence[str]) -> Call[list[Profile]]:
        operation = self._gate(Operation.USERS_GET_PROFILES)
        return operation, self.provider.get_profiles(check_ids(user_ids, "user ids"))

    def set_profile(
        self, user_id: str, *, nickname: str | None, avatar_url: str | None, gender: Gender | str | None,
        signature: str | None, custom: Mapping[str, str] | None,
    ) -> Call[None]:  # fmt: skip
        operation = self._gate(Operation.USERS_SET_PROFILE)
        if custom is not None and not isinstance(custom, Mapping):
            raise InvalidRequestError(f"custom must be a mapping of keys to strings, not {type(custom).__name__}")
        custom = dict(custom or {})
        for key, value in custom.items():
            check_id(key, "custom profile key", max_bytes=32)
            if not isinstance(value, str):
                raise InvalidRequestError(f"custom profile value {key!r} must be a string")
            _text(value, f"custom profile value {key!r}", max_bytes=500)
        try:
            gender_value = Gender(gender) if gender is not None else None
        except ValueError:
            raise InvalidRequestError(f"gender must be one of {[g.value for g in Gender]}, got {gender!r}") from None
        update = ProfileUpdate(
            nickname=_text(nickname, "nickname", max_bytes=500),
            avatar_url=_text(avatar_url, "avatar_url", max_bytes=500),
            gender=gender_value,
            signature=_text(signature, "signature", max_bytes=500),
            custom=custom,
        )
        if update == ProfileUpdate():
            raise InvalidRequestError("set_profile needs at least one field to change")
        return operation, self.provider.set_profile(check_id(user_id, "user id"), update)

    def login_credentials(
        self, user_id: str, ttl: timedelta | int, device: DeviceKind | str | None
    ) -> Call[LoginCredentials]:
        operation = self._gate(Operation.USERS_LOGIN_CREDENTIALS)
        return operation, self.provider.login_credentials(
            check_id(user_id, "user id"), _seconds(ttl, "ttl"), _device(device)
        )

    # -- presence and sessions, accounts (issue 17) -------------------------------------------------

    def presence(self, user_ids: Sequence[str]) -> Call[list[Presence]]:
        operation = self._gate(Operation.USERS_PRESENCE)
        return operation, self.provider.presence(check_ids(user_ids, "user ids"))

    def kick(self, user_id: str, device: DeviceKind | str | None) -> Call[None]:
        operation = self._gate(Operation.USERS_KICK)
        return operation, self.provider.kick(check_id(user_id, "user id"), _device(device))

    def exists(self, user_ids: Sequence[str]) -> Call[dict[str, bool]]:
        operation = self._gate(Operation.USERS_EXISTS)
        return operation, self.provider.users_exist(check_ids(user_ids, "user ids"))

    def delete(self, user_ids: Sequence[str]) -> Call[BatchResult]:
        operation = self._gate(Operation.USERS_DELETE)
        return operation, self.provider.delete_users(check_ids(user_ids, "user ids"))


class Users(SyncResource[UserOperations]):
    _operations = UserOperations

    def register(self, user_ids: Sequence[str]) -> BatchResult:
        """Create accounts (an existing account is left as it is). One BatchItem per user."""
        return self._run(self._ops.register(user_ids))

    def get_profiles(self, user_ids: Sequence[str]) -> list[Profile]:
        """Profiles in the order asked. NotFoundError names any unknown user."""
        return self._run(self._ops.get_profiles(user_ids))

    def set_profile(
        self, user_id: str, *, nickname: str | None = None, avatar_url: str | None = None,
        gender: Gender | str | None = None, signature: str | None = None, custom: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        """Change the given fields; others stay. ``custom`` keys are merged into the existing ones."""
        self._run(
            self._ops.set_profile(
                user_id, nickname=nickname, avatar_url=avatar_url, gender=gender, signature=signature, custom=custom
            )
        )

    def login_credentials(
        self, user_id: str, ttl: timedelta | int = DEFAULT_LOGIN_TTL, *, device: DeviceKind | str | None = None
    ) -> LoginCredentials:
        """What a client SDK logs in with (a UserSig on Tencent, a token on WuKongIM and local), for a client
        of kind ``device`` ("app", "web", "desktop"; None: the provider's default).

        WuKongIM keeps one token per user and device kind, and a client connecting as another kind is never
        answered: pass ``device="web"`` for the JavaScript SDK (its default), "app" for the iOS/Android SDKs
        and "desktop" for PC clients. Without ``device`` the token is issued for ``settings.device_flag``
        (0, app, unless configured). A Tencent UserSig and a local token log in on any kind of device."""
        return self._run(self._ops.login_credentials(user_id, ttl, device))

    # -- presence and sessions, accounts (issue 17) -------------------------------------------------

    def presence(self, user_ids: Sequence[str]) -> list[Presence]:
        """Who is online, per user in the order asked, with each device the server reports (its kind where
        known). NotFoundError names any unknown user."""
        return self._run(self._ops.presence(user_ids))

    def kick(self, user_id: str, device: DeviceKind | str | None = None) -> None:
        """End the user's sessions on one kind of device, or on every device; the client must log in again
        (see the capability notes for what each provider does to the old credentials)."""
        self._run(self._ops.kick(user_id, device))

    def exists(self, user_ids: Sequence[str]) -> dict[str, bool]:
        """Whether each account exists, in the order asked."""
        return self._run(self._ops.exists(user_ids))

    def delete(self, user_ids: Sequence[str]) -> BatchResult:
        """Delete accounts; one item per user (an unknown user fails with NotFoundError)."""
        return self._run(self._ops.delete(user_ids))


class AsyncUsers(AsyncResource[UserOperations]):
    _operations = UserOperations

    async def register(self, user_ids: Sequence[str]) -> BatchResult:
        """Create accounts (an existing account is left as it is). One BatchItem per user."""
        return await self._run(self._ops.register(user_ids))

    async def get_profiles(self, user_ids: Sequence[str]) -> list[Profile]:
        """Profiles in the order asked. NotFoundError names any unknown user."""
        return await self._run(self._ops.get_profiles(user_ids))

    async def set_profile(
        self, user_id: str, *, nickname: str | None = None, avatar_url: str | None = None,
        gender: Gender | str | None = None, signature: str | None = None, custom: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        """Change the given fields; others stay. ``custom`` keys are merged into the existing ones."""
        await self._run(
            self._ops.set_profile(
                user_id, nickname=nickname, avatar_url=avatar_url, gender=gender, signature=signature, custom=custom
            )
        )

    async def login_credentials(
        self, user_id: str, ttl: timedelta | int = DEFAULT_LOGIN_TTL, *, device: DeviceKind | str | None = None
    ) -> LoginCredentials:
        """What a client SDK logs in with (a UserSig on Tencent, a token on WuKongIM and local), for a client
        of kind ``device`` ("app", "web", "desktop"; None: the provider's default).

        WuKongIM keeps one token per user and device kind, and a client connecting as another kind is never
        answered: pass ``device="web"`` for the JavaScript SDK (its default), "app" for the iOS/Android SDKs
        and "desktop" for PC clients. Without ``device`` the token is issued for ``settings.device_flag``
        (0, app, unless configured). A Tencent UserSig and a local token log in on any kind of device."""
        return await self._run(self._ops.login_credentials(user_id, ttl, device))

    # -- presence and sessions, accounts (issue 17) -------------------------------------------------

    async def presence(self, user_ids: Sequence[str]) -> list[Presence]:
        """Who is online, per user in the order asked, with each device the server reports (its kind where
        known). NotFoundError names any unknown user."""
        return await self._run(self._ops.presence(user_ids))

    async def kick(self, user_id: str, device: DeviceKind | str | None = None) -> None:
        """End the user's sessions on one kind of device, or on every device; the client must log in again
        (see the capability notes for what each provider does to the old credentials)."""
        await self._run(self._ops.kick(user_id, device))

    async def exists(self, user_ids: Sequence[str]) -> dict[str, bool]:
        """Whether each account exists, in the order asked."""
        return await self._run(self._ops.exists(user_ids))

    async def delete(self, user_ids: Sequence[str]) -> BatchResult:
        """Delete accounts; one item per user (an unknown user fails with NotFoundError)."""
        return await self._run(self._ops.delete(user_ids))
