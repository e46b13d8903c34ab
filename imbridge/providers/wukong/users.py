"""WuKongIM users: register, profiles (kept in imbridge's store), login tokens, presence and kicks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import SecretStr

from imbridge._flow import Flow, windows
from imbridge.capabilities import Operation
from imbridge.errors import AuthenticationError, ProviderError
from imbridge.models import (
    BatchItem,
    BatchResult,
    DeviceKind,
    DeviceSession,
    LoginCredentials,
    Presence,
    PresenceState,
    Profile,
)
from imbridge.providers import _login_tokens as login_tokens
from imbridge.providers.base import ProfileUpdate
from imbridge.providers.local.store import profile_fields, profile_from_fields
from imbridge.providers.wukong import mapping, wire
from imbridge.providers.wukong._core import _ts
from imbridge.providers.wukong.cluster import WukongCluster
from imbridge.providers.wukong.mapping import NAME

_ISSUER = "imbridge-wukong"


class WukongUsers(WukongCluster):
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
            except AuthenticationError:
                raise  # the manager token was refused: the whole call failed, not this user
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

    # -- presence and sessions, accounts (issue 17) -------------------------------------------------

    def presence(self, user_ids: Sequence[str]) -> Flow[list[Presence]]:
        self._check_ids(user_ids, Operation.USERS_PRESENCE)
        return self._presence(user_ids)

    def _presence(self, user_ids: Sequence[str]) -> Flow[list[Presence]]:
        # WuKongIM answers for any uid; unknown users are refused as the other providers do.
        yield from self._require_known(user_ids, Operation.USERS_PRESENCE)
        connections: dict[str, list[wire.OnlineConnection]] = {uid: [] for uid in user_ids}
        for chunk in windows(list(user_ids), PRESENCE_CHUNK):
            # One entry per live connection, offline users absent (api/user.go:236-251). Never an empty
            # list: the server then answers {"status":200} instead of a list (api/user.go:141-144).
            try:
                reply = yield self._post("/user/onlinestatus", list(chunk))
            except ProviderError as error:
                if not mapping.is_token_defect(error):
                    raise
                reply = yield from self._presence_per_node(chunk, error)  # a cluster's defect: cluster.py
            for row in reply if isinstance(reply, list) else []:
                connection = wire.OnlineConnection.model_validate(row)
                # SYSTEM connections are imbridge's own (JSON-RPC sends), not the user's: the user is not online.
                if connection.uid in connections and connection.online and \
                        connection.device_flag != wire.SYSTEM_DEVICE_FLAG:
                    connections[connection.uid].append(connection)
        result = []
        for uid in user_ids:
            devices = [
                DeviceSession(kind=wire.DEVICE_KINDS.get(c.device_flag), platform=_flag_name(c.device_flag),
                              state=PresenceState.ONLINE)
                for c in connections[uid]
            ]  # fmt: skip
            state = PresenceState.ONLINE if devices else PresenceState.OFFLINE
            raw = {"connections": [c.model_dump() for c in connections[uid]]}
            result.append(Presence(user_id=uid, state=state, devices=devices, provider=NAME, raw=raw))
        return result

    def kick(self, user_id: str, device: DeviceKind | None) -> Flow[None]:
        self._check_ids([user_id], Operation.USERS_KICK)
        return self._kick(user_id, device)

    def _kick(self, user_id: str, device: DeviceKind | None) -> Flow[None]:
        # device_quit answers 200 for any uid (api/user.go:56-89): check the user first.
        yield from self._require_known([user_id], Operation.USERS_KICK)
        flag = wire.ALL_DEVICES if device is None else wire.DEVICE_FLAGS[device]
        # Blanks that device's token (a blank token never connects) and sends DISCONNECT ConnectKick to its
        # connections, closing them 2 s later (api/user.go:93-131).
        yield self._post("/user/device_quit", {"uid": user_id, "device_flag": flag})

    def users_exist(self, user_ids: Sequence[str]) -> Flow[dict[str, bool]]:
        self._check_ids(user_ids, Operation.USERS_EXISTS)
        return self._exist(user_ids)

    def _exist(self, user_ids: Sequence[str]) -> Flow[dict[str, bool]]:
        known = yield from self._known_users(user_ids)
        return {uid: uid in known for uid in user_ids}


#: uids per POST /user/onlinestatus (the server takes any number; a bounded body is kinder to it).
PRESENCE_CHUNK = 500


def _flag_name(flag: int) -> str:
    # The names /cluster/devices gives them (pkg/cluster/cluster/model.go:1238-1252).
    return {0: "APP", 1: "WEB", 2: "PC"}.get(flag, f"device_flag {flag}")
