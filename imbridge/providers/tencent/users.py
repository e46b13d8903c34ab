"""Tencent users: multiaccount_import, portrait_get/portrait_set, UserSigs signed locally."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from imbridge._flow import Flow, Gather, windows
from imbridge.errors import IMBridgeError, InvalidRequestError, NotFoundError, ProviderError
from imbridge.models import BatchItem, BatchResult, LoginCredentials, Profile
from imbridge.models.device import DeviceKind
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
