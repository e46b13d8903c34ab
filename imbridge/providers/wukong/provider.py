"""The WuKongIM v2.2.5 provider: every neutral operation, with WuKongIM's gaps closed explicitly.

What WuKongIM does not do, and what imbridge does instead (each stated in the capability map):

* ``/message/send`` answers before the message is checked or stored and never dedupes
  ``client_msg_no``: sends are confirmed by looking ``client_msg_no`` up, and a send that failed with an
  unknown outcome is re-sent only after the lookup shows it is absent.
* REST sends bypass membership and denylist checks: imbridge refuses group sends from non-members and
  muted members itself (``enforce_policy``), from briefly cached reads.
* No profiles, group names, owners, roles, timed mutes or revocations: those live in imbridge's store
  (the same SQLite code as the ``local`` provider).
* Every channel-info write overwrites all five flags: imbridge always writes the complete set, the
  readable ones (``ban``, ``disband``) read back first.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, SecretStr, ValidationError

from imbridge._clock import Clock
from imbridge._cursor import decode_cursor, encode_cursor
from imbridge._flow import Flow, HTTPRequest, Request, Response, Sleep, encode_json
from imbridge.capabilities import CapabilityMap, Operation, Support
from imbridge.config import WukongSettings
from imbridge.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
    TransportError,
)
from imbridge.models import (
    BatchItem,
    BatchResult,
    Conversation,
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
from imbridge.models._build import prevalidated
from imbridge.providers import _login_tokens as login_tokens
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
from imbridge.providers.local.store import GroupRow, Store, profile_fields, profile_from_fields
from imbridge.providers.wukong import mapping, wire
from imbridge.providers.wukong.mapping import NAME

#: Waits (seconds) between lookups that confirm a send. A message is stored 0.5-2 ms after the send
#: returns on one node, not always by the first poll (FACTS §6); the tail covers a loaded server.
CONFIRM_DELAYS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5)
#: Waits between lookups after a send failed with an unknown outcome, before deciding to re-send.
RECOVERY_DELAYS = (0.0, 0.05, 0.2, 0.5)
#: How many times a send whose first attempt failed is re-sent (each only after a lookup).
MAX_RESENDS = 2
#: ``muted_until`` of a member on the denylist with no expiry in imbridge's store (muted by other means).
MUTED_INDEFINITELY = datetime(9999, 12, 31, tzinfo=UTC)
_FLAGS_TABLE = "CREATE TABLE IF NOT EXISTS wukong_channel_flags (channel_id TEXT PRIMARY KEY, flags TEXT NOT NULL)"
_ISSUER = "imbridge-wukong"


M = TypeVar("M", bound=BaseModel)

_FORBIDDEN = re.compile(f"[{re.escape(wire.FORBIDDEN_ID_CHARS)}]")
#: Revocation records under this scope prefix are intents: a revoke notice about to be sent (see _revoke).
_INTENT_SCOPE = "intent:"


def _readable(model: type[M], reply: Any, where: str) -> M:
    """``reply`` as ``model``; an answer of another shape (a broken proxy, a truncated write) is
    ServiceUnavailableError, which callers treat as an unknown outcome instead of a crash."""
    try:
        # The validator itself: model_validate's Python wrapper doubles the cost of a send's small reply.
        return model.__pydantic_validator__.validate_python(reply)  # type: ignore[no-any-return]
    except ValidationError:
        raise ServiceUnavailableError(f"WuKongIM answered {where} with an unreadable body", provider=NAME) from None


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _channel_created(value: int) -> datetime | None:
    # /cluster/channels reports nanoseconds (created_at 1795480990930317756, FACTS §3).
    return _ts(value / 1e9 if value > 10**12 else value) if value > 0 else None


@dataclass
class _GroupState:
    """What the send policy needs to know about a group, read from WuKongIM."""

    channel: wire.ClusterChannel
    subscribers: set[str] = field(default_factory=set)
    denylist: set[str] = field(default_factory=set)


class WukongProvider(Provider):
    name = NAME
    settings_class = WukongSettings

    def __init__(self, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        super().__init__(settings, clock=clock)
        assert isinstance(settings, WukongSettings)
        self.config: WukongSettings = settings
        self._base_url = settings.base_url.rstrip("/")
        self._manager_token = settings.manager_token.get_secret_value() if settings.manager_token else ""
        self._headers: dict[str, str] = {"token": self._manager_token} if self._manager_token else {}
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self.store: Store | None = Store(settings.store) if settings.store else None
        self._token_key = login_tokens.signing_key(settings.token_secret, self.store, "wukong_token_secret")
        if self.store is not None:
            with self.store.write() as db:
                db.execute(_FLAGS_TABLE)
        self._flags: dict[str, wire.ChannelFlags] = {}
        self._policy_cache: dict[str, tuple[float, _GroupState]] = {}
        #: Makes the random token that ``register`` stores for a new user (a test seam for recordings).
        self.registration_token: Callable[[str], str] = lambda _uid: secrets.token_urlsafe(24)

    # -- capabilities -------------------------------------------------------------------------

    @property
    def capabilities(self) -> CapabilityMap:
        stored = self.store is not None
        no_store = "UNSUPPORTED: needs imbridge's store (settings.store is empty)"
        entries: dict[Operation, tuple[Support, str] | Support] = {
            Operation.USERS_REGISTER: (
                Support.NATIVE,
                "POST /user/token with a random token for settings.device_flag (nobody can log in until "
                "login_credentials); users the store already knows are not re-posted, so their tokens stay.",
            ),
            Operation.USERS_GET_PROFILES: (
                (Support.EMULATED, "WuKongIM keeps no profiles: read from imbridge's store.")
                if stored
                else (Support.UNSUPPORTED, no_store)
            ),
            Operation.USERS_SET_PROFILE: (
                (Support.EMULATED, "WuKongIM keeps no profiles: written to imbridge's store only.")
                if stored
                else (Support.UNSUPPORTED, no_store)
            ),
            Operation.USERS_LOGIN_CREDENTIALS: (
                Support.PARTIAL,
                "An HS256 JWT (token_secret) registered with POST /user/token for settings.device_flag. "
                "WuKongIM compares the token verbatim and never reads its exp claim: expires_at is advisory "
                "(issue a new one, or POST /user/device_quit, to cut a session). Issuing replaces the previous "
                "token of that device flag; device_level 1 kicks that device's live connections.",
            ),
            Operation.MESSAGES_SEND: (
                Support.EMULATED,
                "POST /message/send answers before storing; imbridge confirms with GET /message/byclientmsgno "
                "(returns message_seq; a silent drop by a banned or dismissed group becomes an error; "
                "confirm=False skips it). client_msg_no = idempotency_key; a failed send is re-sent only after "
                "a lookup shows it absent. Group sends from non-members or muted members are refused by "
                "imbridge (WuKongIM's REST send checks neither) unless enforce_policy=False.",
            ),
            Operation.MESSAGES_SEND_BATCH: (
                Support.PARTIAL,
                "POST /message/sendbatch: no per-recipient message ids or refs, client_msg_no is ignored by the "
                "server, so a batch that failed with an unknown outcome is not re-sent (the error says it may "
                "have landed); failed items are the ids WuKongIM rejects synchronously and, with a store, unknown "
                "users (never sent).",
            ),
            Operation.MESSAGES_HISTORY: (
                Support.NATIVE,
                "POST /channel/messagesync (both directions, opaque cursors). No membership check on the server. "
                "Revoked messages are marked from imbridge's revocation records and from revoke notices "
                "(type 1006) in the same page; the notices themselves are not returned as messages.",
            ),
            Operation.MESSAGES_REVOKE: (
                (
                    Support.EMULATED,
                    "WuKongIM has no revoke: imbridge sends a revoke notice (payload type 1006, stored, not "
                    "sync_once) to the conversation and records the revocation in its store; imbridge's history "
                    "shows the message revoked, but WuKongIM keeps its content and other readers must honour the "
                    "notice themselves.",
                )
                if stored
                else (Support.UNSUPPORTED, no_store)
            ),
            Operation.GROUPS_CREATE: (
                Support.EMULATED if stored else Support.PARTIAL,
                "POST /channel with all members (reset=1, all flags written); name, owner, roles, introduction "
                "and notification live in imbridge's store"
                + ("." if stored else " (without a store they are not kept)."),
            ),
            Operation.GROUPS_GET: (
                Support.EMULATED if stored else Support.PARTIAL,
                "ban/disband from GET /cluster/channels, member count from the subscriber list, the rest from "
                "imbridge's store.",
            ),
            Operation.GROUPS_UPDATE: (
                (Support.EMULATED, "WuKongIM channels have no name or profile: kept in imbridge's store.")
                if stored
                else (Support.UNSUPPORTED, no_store)
            ),
            Operation.GROUPS_DISMISS: (
                Support.NATIVE,
                "POST /channel/delete sets disband=1; WuKongIM keeps messages, members and denylist, and a later "
                "create with the same id revives the channel.",
            ),
            Operation.GROUPS_ADD_MEMBERS: (
                Support.NATIVE,
                "POST /channel/subscriber_add; roles in imbridge's store. WuKongIM has no user registry to check "
                "ids against.",
            ),
            Operation.GROUPS_REMOVE_MEMBERS: (Support.NATIVE, "POST /channel/subscriber_remove."),
            Operation.GROUPS_MEMBERS: (
                Support.NATIVE,
                "GET /cluster/channels/{id}/2/subscribers (unordered) with roles and mutes from imbridge's store.",
            ),
            Operation.GROUPS_MUTE: (
                (
                    Support.EMULATED,
                    "Denylist (POST /channel/blacklist_add); WuKongIM has no timed mute, so the expiry is kept in "
                    "imbridge's store and the member is taken off the denylist on the first read or send after it.",
                )
                if stored
                else (Support.UNSUPPORTED, "timed mutes need imbridge's store (settings.store is empty)")
            ),
            Operation.GROUPS_UNMUTE: (Support.NATIVE, "POST /channel/blacklist_remove."),
            Operation.GROUPS_MUTE_ALL: (
                Support.PARTIAL,
                "POST /channel/info ban=1 with every other flag preserved. WuKongIM's ban drops every send, the "
                "owner's and admins' too, so imbridge refuses all group sends while it is on.",
            ),
            Operation.GROUPS_MUTED: (
                Support.EMULATED,
                "The denylist (GET /cluster/channels/{id}/2/denylist) with expiries from imbridge's store; a "
                "denylisted member with no stored expiry is reported muted until 9999-12-31.",
            ),
        }
        return CapabilityMap(NAME, entries)

    # -- transport hooks ----------------------------------------------------------------------

    def to_http(self, request: Request) -> HTTPRequest:
        content = None if request.json is None else encode_json(request.json)
        if request.headers:
            headers = {**(self._json_headers if content is not None else self._headers), **request.headers}
        else:  # the common case: shared, never mutated (the HTTP clients copy what they are given)
            headers = self._json_headers if content is not None else self._headers
        return HTTPRequest(request.method, self._base_url + request.path, request.params, headers, content)

    def decode(self, request: Request, response: Response) -> Any:
        if request.path == "/cluster/users" and response.status_code == 500 and not response.content:
            # Verified on v2.2.5: the user search answers HTTP 500 with an empty body for an unknown uid
            # (its store lookup fails with "not found"), and 200 with the user for a known one.
            raise NotFoundError(f"WuKongIM knows no user {request.params.get('uid')!r}", http_status=500)
        try:
            return mapping.unwrap(response.status_code, response.content, where=f"{request.method} {request.path}")
        except (RateLimitError, ServiceUnavailableError) as error:
            error.retry_after = response.retry_after()  # a proxy or load balancer in front may say when
            raise

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def __repr__(self) -> str:
        return f"WukongProvider(base_url={self._base_url!r}, store={self.config.store!r})"

    # -- small helpers ------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.now().timestamp()

    @staticmethod
    def _get(path: str, params: dict[str, str] | None = None) -> Request:
        return Request("GET", path, params=params or {}, api=path.split("/cluster/channels/")[0] or path)

    @staticmethod
    def _post(path: str, body: Any, *, replay_safe: bool = True) -> Request:
        return Request("POST", path, json=body, api=path, replay_safe=replay_safe)

    @staticmethod
    def _check_ids(ids: Sequence[str], operation: Operation) -> None:
        # One search over the ids run together (a send checks three ids on its hot path).
        if _FORBIDDEN.search("".join(ids)):
            bad = [uid for uid in ids if _FORBIDDEN.search(uid)]
            raise InvalidRequestError(
                f"WuKongIM ids must not contain any of {wire.FORBIDDEN_ID_CHARS!r}: {', '.join(bad)}",
                provider=NAME,
                operation=operation.value,
            )

    def _need_store(self, operation: Operation) -> Store:
        if self.store is None:
            raise InvalidRequestError(
                f"{operation.value} needs imbridge's store (settings.store)", provider=NAME, operation=operation.value
            )
        return self.store

    # -- channel reads ------------------------------------------------------------------------

    def _channel(self, group_id: str) -> Flow[wire.ClusterChannel]:
        reply = yield self._get("/cluster/channels", {"channel_id": group_id, "channel_type": str(wire.GROUP)})
        data = wire.ClusterChannels.model_validate(reply).data
        return data[0] if data else wire.ClusterChannel()

    def _uid_list(self, group_id: str, which: str) -> Flow[set[str]]:
        reply = yield self._get(f"/cluster/channels/{quote(group_id, safe='')}/{wire.GROUP}/{which}")
        return {str(uid) for uid in (reply or [])}

    def _require_group(self, group_id: str, operation: Operation) -> Flow[wire.ClusterChannel]:
        """The group's channel; NotFoundError if WuKongIM does not know it or it was dismissed."""
        channel = yield from self._channel(group_id)
        if not channel.channel_id:
            raise NotFoundError(f"unknown group {group_id!r}", provider=NAME, operation=operation.value)
        if channel.disband:
            raise NotFoundError(f"group {group_id!r} was dismissed", provider=NAME, operation=operation.value)
        return channel

    def _group_state(self, group_id: str) -> Flow[_GroupState]:
        ttl = self.config.policy_cache_seconds
        cached = self._policy_cache.get(group_id)
        if cached is not None and ttl > 0 and self.clock.monotonic() - cached[0] < ttl:
            return cached[1]
        channel = yield from self._channel(group_id)
        state = _GroupState(channel)
        if channel.channel_id and not channel.disband:
            state.subscribers = yield from self._uid_list(group_id, "subscribers")
            state.denylist = yield from self._uid_list(group_id, "denylist")
        if ttl > 0:
            self._policy_cache[group_id] = (self.clock.monotonic(), state)
        return state

    def _invalidate(self, group_id: str) -> None:
        self._policy_cache.pop(group_id, None)

    # -- flags --------------------------------------------------------------------------------

    def _stored_flags(self, group_id: str) -> wire.ChannelFlags:
        if group_id in self._flags:
            return self._flags[group_id]
        if self.store is not None:
            with self.store.write() as db:
                row = db.execute("SELECT flags FROM wukong_channel_flags WHERE channel_id = ?", (group_id,)).fetchone()
            if row is not None:
                return wire.ChannelFlags.model_validate_json(row["flags"])
        return wire.ChannelFlags()

    def _remember_flags(self, group_id: str, flags: wire.ChannelFlags) -> None:
        """Keep the flags WuKongIM cannot read back (send_ban, allow_stranger, large) as last written."""
        self._flags[group_id] = flags
        if self.store is not None:
            with self.store.write() as db:
                db.execute(
                    "INSERT INTO wukong_channel_flags (channel_id, flags) VALUES (?, ?) "
                    "ON CONFLICT (channel_id) DO UPDATE SET flags = excluded.flags",
                    (group_id, flags.model_dump_json()),
                )

    def _current_flags(self, group_id: str, channel: wire.ClusterChannel) -> wire.ChannelFlags:
        """The full flag set now in force: ban and disband as read, the rest as imbridge last wrote them."""
        return self._stored_flags(group_id).model_copy(update={"ban": channel.ban, "disband": channel.disband})

    # -- mutes --------------------------------------------------------------------------------

    def _sweep_mutes(self, group_id: str) -> Flow[None]:
        """Lift timed mutes that are due: off the denylist first, then out of the store."""
        if self.store is None:
            return
        now = self._now()
        due = [m.user_id for m in self.store.members(group_id) if m.muted_until is not None and m.muted_until <= now]
        if not due:
            return
        yield self._post("/channel/blacklist_remove", {"channel_id": group_id, "channel_type": wire.GROUP, "uids": due})
        self.store.set_mutes(group_id, due, None)
        self._invalidate(group_id)

    def _store_mute(self, group_id: str, user_id: str) -> float | None:
        if self.store is None:
            return None
        row = self.store.member(group_id, user_id)
        return row.muted_until if row is not None and row.muted_until and row.muted_until > self._now() else None

    # -- users --------------------------------------------------------------------------------

    def _require_users(self, user_ids: Sequence[str], operation: Operation) -> Flow[None]:
        """Users known to the store, or to WuKongIM (then remembered); NotFoundError otherwise."""
        store = self._need_store(operation)
        missing = [uid for uid in user_ids if uid not in store.existing_users(user_ids)]
        unknown = []
        for uid in missing:
            try:
                reply = yield self._get("/cluster/users", {"uid": uid})
            except NotFoundError:
                unknown.append(uid)
                continue
            rows = reply.get("data") if isinstance(reply, dict) else None
            if any(isinstance(row, dict) and row.get("uid") == uid for row in rows or []):
                store.add_users([uid], self._now())
            else:
                unknown.append(uid)
        if unknown:
            raise NotFoundError(f"unknown users: {', '.join(unknown)}", provider=NAME, operation=operation.value)

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

    def login_credentials(self, user_id: str, ttl: timedelta) -> Flow[LoginCredentials]:
        self._check_ids([user_id], Operation.USERS_LOGIN_CREDENTIALS)
        return self._login(user_id, ttl)

    def _login(self, user_id: str, ttl: timedelta) -> Flow[LoginCredentials]:
        if self.store is not None:
            yield from self._require_users([user_id], Operation.USERS_LOGIN_CREDENTIALS)
        issued = int(self._now())
        expires = issued + int(ttl.total_seconds())
        token = login_tokens.issue(
            self._token_key, user_id=user_id, issuer=_ISSUER, issued=issued, expires=expires,
            dfl=self.config.device_flag,
        )  # fmt: skip
        body = {"uid": user_id, "token": token, "device_flag": self.config.device_flag,
                "device_level": self.config.device_level}  # fmt: skip
        yield self._post("/user/token", body)
        return LoginCredentials(
            user_id=user_id, token=SecretStr(token), expires_at=_ts(expires),
            extra={"device_flag": self.config.device_flag, "device_level": self.config.device_level,
                   "algorithm": "HS256", "issuer": _ISSUER, "expiry_enforced_by_server": False},
            provider=NAME,
        )  # fmt: skip

    def authenticate(self, token: str) -> str:
        """The user a login token was issued to, checked as imbridge issued it (signature, issuer, expiry);
        AuthenticationError otherwise. WuKongIM itself only compares the token verbatim on connect."""
        return login_tokens.verify(token, self._token_key, issuer=_ISSUER, now=self._now(), provider=NAME)

    # -- sending ------------------------------------------------------------------------------

    @staticmethod
    def _target(sender: str, to: Conversation) -> tuple[int, str]:
        """(channel_type, id that GET /message/byclientmsgno needs: the fake id for person chats)."""
        if to.is_group:
            return wire.GROUP, to.id
        return wire.PERSON, wire.fake_channel_id(sender, to.id)

    def _lookup(
        self, sender: str, to: Conversation, client_msg_no: str, message_id: int | None
    ) -> Flow[wire.MessageResp | None]:
        """The stored message with this client_msg_no (and id, when given), or None."""
        channel_type, lookup_id = self._target(sender, to)
        params = {"channel_id": lookup_id, "channel_type": str(channel_type), "client_msg_no": client_msg_no}
        try:
            reply = yield self._get("/message/byclientmsgno", params)
        except NotFoundError:
            return None
        found = _readable(wire.MessageResp, reply, "GET /message/byclientmsgno")
        if message_id is None or found.message_id == message_id:
            return found
        # byclientmsgno returns the FIRST message with this client_msg_no, /messages the LAST (FACTS §9).
        body = {"login_uid": sender, "channel_id": to.id, "channel_type": channel_type,
                "client_msg_nos": [client_msg_no]}  # fmt: skip
        latest = _readable(wire.SyncResult, (yield self._post("/messages", body)), "POST /messages")
        return next((m for m in latest.messages if m.message_id == message_id), None)

    def _lookup_own(self, sender: str, to: Conversation, client_msg_no: str) -> Flow[wire.MessageResp | None]:
        """The sender's own message with this client_msg_no: another sender in the same channel may have used
        the key too, and byclientmsgno returns the FIRST such message, /messages the LAST (FACTS §9)."""
        found = yield from self._lookup(sender, to, client_msg_no, None)
        if found is None or found.from_uid == sender:
            return found
        body = {"login_uid": sender, "channel_id": to.id, "channel_type": self._target(sender, to)[0],
                "client_msg_nos": [client_msg_no]}  # fmt: skip
        latest = _readable(wire.SyncResult, (yield self._post("/messages", body)), "POST /messages")
        return next((m for m in latest.messages if m.from_uid == sender), None)

    def _poll(
        self, sender: str, to: Conversation, client_msg_no: str, message_id: int | None, delays: Sequence[float]
    ) -> Flow[wire.MessageResp | None]:
        for delay in delays:
            if delay:
                yield Sleep(delay)
            found = yield from self._lookup(sender, to, client_msg_no, message_id)
            if found is not None:
                return found
        return None

    def _deliver(
        self, body: dict[str, Any], sender: str, to: Conversation
    ) -> Flow[tuple[wire.SendResult, wire.MessageResp | None]]:
        """POST /message/send once, and again only after a lookup proves an attempt did not land.

        The request is not replay-safe, so the executor hands a failure with an unknown outcome back
        here instead of re-sending it.
        """
        client_msg_no = str(body["client_msg_no"])
        for attempt in range(MAX_RESENDS + 1):
            try:
                reply = yield self._post("/message/send", body, replay_safe=False)
                result = wire.SendResult.read(reply)
                if result is None:
                    # An answer that cannot be read is an unknown outcome too: looked up below like a reset.
                    raise ServiceUnavailableError(
                        "WuKongIM answered POST /message/send with an unreadable body", provider=NAME
                    )
                return result, None
            except (TransportError, ServiceUnavailableError) as error:
                if isinstance(error, TransportError) and not error.may_have_landed:
                    raise  # never reached the server; the executor already retried it
                try:
                    found = yield from self._poll(sender, to, client_msg_no, None, RECOVERY_DELAYS)
                except (ProviderError, TransportError) as lookup_error:
                    raise type(error)(
                        f"{error.message}; the message MAY HAVE LANDED: its lookup failed too "
                        f"({lookup_error.message}). Look client_msg_no {client_msg_no!r} up before re-sending.",
                        provider=NAME, operation=Operation.MESSAGES_SEND.value,
                    ) from lookup_error  # fmt: skip
                if found is not None:
                    return wire.SendResult(message_id=found.message_id, client_msg_no=found.client_msg_no), found
                if attempt == MAX_RESENDS:
                    raise type(error)(
                        f"{error.message}; not stored after {attempt + 1} attempts (client_msg_no "
                        f"{client_msg_no!r} looked up after each); a late landing cannot be ruled out",
                        provider=NAME, operation=Operation.MESSAGES_SEND.value,
                    ) from error  # fmt: skip
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_may_send(self, group_id: str, sender: str) -> Flow[None]:
        op = Operation.MESSAGES_SEND.value
        state = yield from self._group_state(group_id)
        if not state.channel.channel_id or state.channel.disband:
            raise NotFoundError(f"unknown or dismissed group {group_id!r}", provider=NAME, operation=op)
        if sender not in state.subscribers:
            raise PermissionDeniedError(
                f"{sender!r} is not a member of group {group_id!r}", provider=NAME, operation=op
            )
        if sender in state.denylist or self._store_mute(group_id, sender) is not None:
            raise PermissionDeniedError(f"{sender!r} is muted in group {group_id!r}", provider=NAME, operation=op)
        if state.channel.ban:
            raise PermissionDeniedError(
                f"group {group_id!r} is muted as a whole; WuKongIM's ban drops every send, the owner's too",
                provider=NAME, operation=op,
            )  # fmt: skip

    def send_message(self, message: OutgoingMessage) -> Flow[SentMessage]:
        self._check_ids((message.sender, message.to.id, message.idempotency_key), Operation.MESSAGES_SEND)
        return self._send(message)

    def _send(self, message: OutgoingMessage) -> Flow[SentMessage]:
        to, sender = message.to, message.sender
        if self.store is not None:
            # WuKongIM accepts any uid; with a store, users are checked once and then remembered.
            yield from self._require_users([sender] if to.is_group else [sender, to.id], Operation.MESSAGES_SEND)
        if message.key_from_caller:
            # The server never deduplicates client_msg_no: a caller-chosen key is looked up first, so
            # sending it again returns the stored message instead of storing a second one.
            earlier = yield from self._lookup_own(sender, to, message.idempotency_key)
            if earlier is not None:
                return self._sent(
                    to,
                    sender,
                    wire.SendResult(message_id=earlier.message_id, client_msg_no=earlier.client_msg_no),
                    earlier,
                )
        if to.is_group:
            yield from self._sweep_mutes(to.id)
            if self.config.enforce_policy:
                yield from self._check_may_send(to.id, sender)
        payload = mapping.encode_payload(message.elements, dict(message.metadata) if message.metadata else {})
        body: dict[str, Any] = {
            "header": {"red_dot": 1},
            "client_msg_no": message.idempotency_key,
            "from_uid": sender,
            "channel_id": to.id,
            "channel_type": wire.GROUP if to.is_group else wire.PERSON,
        }
        if message.options:  # provider fields passed through; never the ones imbridge owns
            body.update((k, v) for k, v in message.options.items() if k not in ("payload", "from_uid", "client_msg_no"))
        body["payload"] = mapping.to_base64(payload)
        result, found = yield from self._deliver(body, sender, to)
        confirm = message.confirm if message.confirm is not None else self.config.confirm_sends
        if found is None and confirm:
            try:
                found = yield from self._poll(sender, to, result.client_msg_no, result.message_id, CONFIRM_DELAYS)
            except (ProviderError, TransportError):
                # WuKongIM accepted the send (it gave a message id); only the confirming lookups failed.
                # Failing the send now would invite a re-send of a message that is most likely stored.
                return self._sent(to, sender, result, None)
            if found is None:
                yield from self._explain_drop(to, result)
        return self._sent(to, sender, result, found)

    @staticmethod
    def _sent(to: Conversation, sender: str, result: wire.SendResult, found: wire.MessageResp | None) -> SentMessage:
        seq = found.message_seq if found else None
        raw: dict[str, Any] = {"message_id": result.message_id, "client_msg_no": result.client_msg_no}
        if found:
            raw |= {"message_seq": found.message_seq, "timestamp": found.timestamp}
        # Every value comes from validated parts: the send's checked input and the reply read above.
        ref = prevalidated(
            MessageRef,
            {"provider": NAME, "conversation": to, "sender": sender, "key": str(result.message_id), "seq": seq,
             "extra": {"client_msg_no": result.client_msg_no}},
        )  # fmt: skip
        return prevalidated(
            SentMessage,
            {"ref": ref, "time": mapping.timestamp(found.timestamp) if found else None, "seq": seq,
             "confirmed": found is not None, "provider": NAME, "raw": raw},
        )  # fmt: skip

    def _explain_drop(self, to: Conversation, result: wire.SendResult) -> Flow[None]:
        """A send WuKongIM accepted but never stored: say why, as the hosted providers would have refused."""
        op = Operation.MESSAGES_SEND.value
        what = f"WuKongIM accepted message {result.message_id} ({result.client_msg_no!r}) but did not store it"
        if to.is_group:
            channel = yield from self._channel(to.id)
            self._invalidate(to.id)
            if channel.disband:
                raise NotFoundError(f"{what}: group {to.id!r} is dismissed", provider=NAME, operation=op)
            if channel.ban:
                raise PermissionDeniedError(f"{what}: group {to.id!r} is muted (ban)", provider=NAME, operation=op)
        raise ServiceUnavailableError(
            f"{what} within {sum(CONFIRM_DELAYS):.1f} s; it MAY HAVE LANDED and be stored later "
            "(send with confirm=False to skip)",
            provider=NAME, operation=op,
        )  # fmt: skip

    def send_batch(self, batch: BatchDraft) -> Flow[BatchResult]:
        self._check_ids([batch.sender], Operation.MESSAGES_SEND_BATCH)
        return self._send_batch(batch)

    def _send_batch(self, batch: BatchDraft) -> Flow[BatchResult]:
        op = Operation.MESSAGES_SEND_BATCH.value
        unknown: set[str] = set()
        if self.store is not None:
            yield from self._require_users([batch.sender], Operation.MESSAGES_SEND_BATCH)
            for uid in batch.recipients:
                if any(ch in uid for ch in wire.FORBIDDEN_ID_CHARS):
                    continue  # never a registered user: WuKongIM refuses it per item below (FACTS §7)
                try:
                    yield from self._require_users([uid], Operation.MESSAGES_SEND_BATCH)
                except NotFoundError:
                    unknown.add(uid)
        recipients = [uid for uid in batch.recipients if uid not in unknown]
        payload = mapping.encode_payload(batch.elements, dict(batch.metadata))
        body = {"header": {"red_dot": 1}, "from_uid": batch.sender, "subscribers": recipients,
                "payload": mapping.to_base64(payload)}  # fmt: skip
        reply: Any = {"fail_uids": [], "reason": []}
        try:
            if recipients:  # none left: nothing to send (WuKongIM answers 400 to an empty list, FACTS §7)
                reply = yield self._post("/message/sendbatch", body, replay_safe=False)
        except (TransportError, ServiceUnavailableError) as error:
            if isinstance(error, TransportError) and not error.may_have_landed:
                raise
            raise type(error)(
                f"{error.message}; the batch MAY HAVE LANDED (sendbatch ignores client_msg_no, so it cannot be "
                "looked up); not re-sent", provider=NAME, operation=op,
            ) from error  # fmt: skip
        result = wire.SendBatchResult.model_validate(reply)
        reasons = dict(zip(result.fail_uids, result.reason, strict=False))
        items = []
        for uid in batch.recipients:
            if uid in unknown:
                missing = NotFoundError(f"unknown user {uid!r}", provider=NAME, operation=op)
                items.append(BatchItem(target=uid, ok=False, error=missing, detail=missing.message))
            elif uid in reasons:
                refusal = InvalidRequestError(f"WuKongIM refused {uid!r}: {reasons[uid]}", provider=NAME, operation=op)
                items.append(BatchItem(target=uid, ok=False, error=refusal, native_code=reasons[uid],
                                       detail=refusal.message))  # fmt: skip
            else:
                items.append(BatchItem(target=uid, ok=True, detail="accepted (no message id returned)"))
        return BatchResult(items=items, provider=NAME, raw=result.model_dump())

    # -- history ------------------------------------------------------------------------------

    @staticmethod
    def _scope(sender: str, conversation: Conversation) -> str:
        """Revocation-record scope: one per WuKongIM channel."""
        if conversation.is_group:
            return f"wukong:g:{conversation.id}"
        return f"wukong:p:{wire.fake_channel_id(sender, conversation.id)}"

    def history(self, query: HistoryQuery) -> Flow[Page[Message]]:
        self._check_ids([query.viewer, query.conversation.id], Operation.MESSAGES_HISTORY)
        bound: int | None = None
        if query.cursor is not None:
            position = decode_cursor(NAME, query.cursor)
            if position.get("d") != query.direction.value or not isinstance(position.get("s"), int):
                raise InvalidRequestError(
                    "history cursor does not fit this query's direction",
                    provider=NAME, operation=Operation.MESSAGES_HISTORY.value,
                )  # fmt: skip
            bound = position["s"]
        return self._history(query, bound)

    def _history(self, query: HistoryQuery, bound: int | None) -> Flow[Page[Message]]:
        conversation, backward = query.conversation, query.direction is Direction.BACKWARD
        if conversation.is_group and bound is None:
            yield from self._require_group_or_past(conversation.id)
        want = query.limit + 1  # one more than asked: `more` is only len == limit (FACTS §8)
        body: dict[str, Any] = {
            "login_uid": query.viewer,
            "channel_id": conversation.id,
            "channel_type": wire.GROUP if conversation.is_group else wire.PERSON,
            "end_message_seq": 0,
            "limit": want,
        }
        if backward:
            if bound is not None and bound <= 1:
                return Page(items=[], next_cursor=None, provider=NAME)
            # pull_mode 0 returns the window [max(1, start-limit+1), start] (start=0: the latest `limit`);
            # start = bound-1 always exists, so the window holds `want` messages when there are that many.
            body.update(pull_mode=0, start_message_seq=0 if bound is None else bound - 1)
        else:
            body.update(pull_mode=1, start_message_seq=1 if bound is None else bound + 1)
        result = wire.SyncResult.model_validate((yield self._post("/channel/messagesync", body)))
        rows = sorted(result.messages, key=lambda m: m.message_seq, reverse=backward)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        next_cursor = (
            encode_cursor(NAME, {"d": query.direction.value, "s": rows[-1].message_seq}) if more and rows else None
        )
        payloads = {row.message_id: mapping.decode_payload(row.payload) for row in rows}
        revoked = {target for p in payloads.values() if (target := mapping.revoked_target(p)) is not None}
        if self.store is not None:
            scope = self._scope(query.viewer, conversation)
            revoked |= self.store.revoked_keys(scope, [str(r.message_id) for r in rows])
        items = [
            self._message(row, payloads[row.message_id], query, str(row.message_id) in revoked)
            for row in rows
            if mapping.revoked_target(payloads[row.message_id]) is None
        ]
        return Page(items=items, next_cursor=next_cursor, provider=NAME)

    def _require_group_or_past(self, group_id: str) -> Flow[None]:
        """History of a dismissed group stays readable (WuKongIM keeps it); an unknown group is NotFound."""
        channel = yield from self._channel(group_id)
        if not channel.channel_id and (self.store is None or self.store.group(group_id) is None):
            raise NotFoundError(
                f"unknown group {group_id!r}", provider=NAME, operation=Operation.MESSAGES_HISTORY.value
            )

    def _message(
        self, row: wire.MessageResp, payload: dict[str, Any] | None, query: HistoryQuery, revoked: bool
    ) -> Message:
        sender = row.from_uid or wire.SYSTEM_UID
        conversation = query.conversation
        # One-to-one: the ref names the conversation as its sender sees it, so it can be revoked.
        ref_conversation = (
            Conversation.user(query.viewer) if not conversation.is_group and sender != query.viewer else conversation
        )
        ref = MessageRef(provider=NAME, conversation=ref_conversation, sender=sender, key=str(row.message_id),
                         seq=row.message_seq, extra={"client_msg_no": row.client_msg_no})  # fmt: skip
        return Message(
            ref=ref, sender=sender, conversation=conversation,
            elements=[] if revoked else mapping.payload_to_elements(payload, row.payload),
            time=mapping.timestamp(row.timestamp), seq=row.message_seq, revoked=revoked,
            metadata=mapping.payload_metadata(payload), provider=NAME,
            raw=row.model_dump(exclude={"payload"}) if revoked else row.model_dump(),
        )  # fmt: skip

    # -- revoke -------------------------------------------------------------------------------

    def revoke(self, ref: MessageRef) -> Flow[None]:
        op = Operation.MESSAGES_REVOKE
        if ref.provider != NAME:
            raise InvalidRequestError(f"a {ref.provider} reference cannot be revoked on {NAME}", provider=NAME)
        if not ref.key.isdigit():
            raise InvalidRequestError(f"not a WuKongIM message id: {ref.key!r}", provider=NAME, operation=op.value)
        self._check_ids([ref.sender, ref.conversation.id], op)
        return self._revoke(ref, self._need_store(op))

    def _revoke(self, ref: MessageRef, store: Store) -> Flow[None]:
        op = Operation.MESSAGES_REVOKE.value
        to, sender, message_id = ref.conversation, ref.sender, int(ref.key)
        channel_type = wire.GROUP if to.is_group else wire.PERSON
        lookup = {"login_uid": sender, "channel_id": to.id, "channel_type": channel_type, "message_id": message_id}
        try:
            target = wire.MessageResp.model_validate((yield self._post("/message", lookup)))
        except NotFoundError:
            raise NotFoundError(f"no message {message_id}", provider=NAME, operation=op) from None
        # POST /message looks ids up globally, ignoring the channel (FACTS §9): check it is this one.
        if to.is_group:
            same = target.channel_type == wire.GROUP and target.channel_id == to.id
        else:
            same = target.channel_type == wire.PERSON and {target.from_uid or wire.SYSTEM_UID, target.channel_id} == {
                sender, to.id}  # fmt: skip
        if not same:
            raise NotFoundError(f"message {message_id} is not in {to}", provider=NAME, operation=op)
        scope = self._scope(sender, to)
        if store.revoked_keys(scope, [ref.key]):
            return  # already revoked: nothing more to say
        notice_key = f"revoke-{message_id}"
        # The intent is recorded before the notice is sent, the revocation after. A revoke interrupted
        # between the two (a killed process, a failed send) is found by its intent when repeated: the
        # notice is then looked up and sent only if it is not there, so it is never sent twice (WuKongIM
        # does not deduplicate client_msg_no). A first revoke pays no lookup.
        intent = _INTENT_SCOPE + scope
        if not store.record_revocation(intent, ref.key, self._now()):
            found = yield from self._lookup(sender, to, notice_key, None)
            if found is not None:
                store.record_revocation(scope, ref.key, self._now())
                return
        notice = mapping.revoke_payload(target, message_id, sender)
        body = {"header": {"red_dot": 0}, "client_msg_no": notice_key, "from_uid": sender,
                "channel_id": to.id, "channel_type": channel_type, "payload": mapping.to_base64(notice)}  # fmt: skip
        yield from self._deliver(body, sender, to)
        store.record_revocation(scope, ref.key, self._now())

    # -- groups -------------------------------------------------------------------------------

    def _group(
        self, group_id: str, channel: wire.ClusterChannel, row: GroupRow | None, member_count: int | None
    ) -> Group:
        return Group(
            id=group_id, name=row.name if row else group_id, owner=row.owner if row else None,
            introduction=row.introduction if row else "", notification=row.notification if row else "",
            face_url=row.face_url if row else "", mute_all=bool(channel.ban), member_count=member_count,
            created_at=_ts(row.created_at) if row else _channel_created(channel.created_at), provider=NAME,
            raw={"channel": channel.model_dump(), "emulated_fields": row is not None},
        )  # fmt: skip

    def _store_group(self, group_id: str) -> GroupRow | None:
        """The store's record of a group, made (named after its id) if WuKongIM has it and the store not."""
        if self.store is None:
            return None
        row = self.store.group(group_id)
        if row is None:
            self.store.create_group(group_id, name=group_id, owner=None, introduction="", notification="",
                                    face_url="", now=self._now(), members=[])  # fmt: skip
            row = self.store.group(group_id)
        return row

    def create_group(self, spec: GroupSpec) -> Flow[Group]:
        group_id = spec.group_id or self.new_group_id()
        self._check_ids([group_id, spec.owner, *spec.members, *spec.admins], Operation.GROUPS_CREATE)
        return self._create_group(group_id, spec)

    def _create_group(self, group_id: str, spec: GroupSpec) -> Flow[Group]:
        channel = yield from self._channel(group_id)
        if channel.channel_id and not channel.disband:
            raise ConflictError(
                f"group {group_id!r} already exists", provider=NAME, operation=Operation.GROUPS_CREATE.value
            )
        members = [spec.owner, *spec.admins, *spec.members]
        flags = wire.ChannelFlags()
        # reset=1: a dismissed channel keeps its subscribers (FACTS §10); a new group starts with these.
        yield self._post("/channel", {**flags.body(group_id), "reset": 1, "subscribers": members})
        if channel.disband:
            yield self._post("/channel/blacklist_remove_all", {"channel_id": group_id, "channel_type": wire.GROUP})
        self._remember_flags(group_id, flags)
        self._invalidate(group_id)
        row = None
        if self.store is not None:
            self.store.dismiss_group(group_id, self._now())  # forget a stale record of an earlier group
            roles = {uid: Role.MEMBER.value for uid in spec.members}
            roles.update({uid: Role.ADMIN.value for uid in spec.admins})
            roles[spec.owner] = Role.OWNER.value
            self.store.create_group(
                group_id, name=spec.name, owner=spec.owner, introduction=spec.introduction,
                notification=spec.notification, face_url=spec.face_url, now=self._now(), members=list(roles.items()),
            )  # fmt: skip
            row = self.store.group(group_id)
        created = wire.ClusterChannel(channel_id=group_id, channel_type=wire.GROUP)
        return self._group(group_id, created, row, len(members))

    def get_group(self, group_id: str) -> Flow[Group]:
        self._check_ids([group_id], Operation.GROUPS_GET)
        return self._get_group(group_id, Operation.GROUPS_GET)

    def _get_group(self, group_id: str, operation: Operation) -> Flow[Group]:
        channel = yield from self._require_group(group_id, operation)
        subscribers = yield from self._uid_list(group_id, "subscribers")
        return self._group(group_id, channel, self._store_group(group_id), len(subscribers))

    def update_group(self, group_id: str, update: GroupUpdate) -> Flow[Group]:
        self._check_ids([group_id], Operation.GROUPS_UPDATE)
        return self._update_group(group_id, update)

    def _update_group(self, group_id: str, update: GroupUpdate) -> Flow[Group]:
        store = self._need_store(Operation.GROUPS_UPDATE)
        yield from self._require_group(group_id, Operation.GROUPS_UPDATE)
        self._store_group(group_id)
        fields = {
            name: value
            for name, value in (("name", update.name), ("introduction", update.introduction),
                                ("notification", update.notification), ("face_url", update.face_url))
            if value is not None
        }  # fmt: skip
        store.update_group(group_id, fields)
        return (yield from self._get_group(group_id, Operation.GROUPS_UPDATE))

    def dismiss_group(self, group_id: str) -> Flow[None]:
        self._check_ids([group_id], Operation.GROUPS_DISMISS)
        return self._dismiss(group_id)

    def _dismiss(self, group_id: str) -> Flow[None]:
        yield from self._require_group(group_id, Operation.GROUPS_DISMISS)
        yield self._post("/channel/delete", {"channel_id": group_id, "channel_type": wire.GROUP})
        self._remember_flags(group_id, self._stored_flags(group_id).model_copy(update={"disband": 1}))
        self._invalidate(group_id)
        if self.store is not None:
            self.store.dismiss_group(group_id, self._now())

    def add_members(self, group_id: str, user_ids: Sequence[str], role: Role) -> Flow[BatchResult]:
        self._check_ids([group_id, *user_ids], Operation.GROUPS_ADD_MEMBERS)
        if role is Role.OWNER:
            raise InvalidRequestError("a group has one owner; add admins or members", provider=NAME)
        return self._add_members(group_id, user_ids, role)

    def _add_members(self, group_id: str, user_ids: Sequence[str], role: Role) -> Flow[BatchResult]:
        yield from self._require_group(group_id, Operation.GROUPS_ADD_MEMBERS)
        current = yield from self._uid_list(group_id, "subscribers")
        new = [uid for uid in user_ids if uid not in current]
        if new:
            body = {"channel_id": group_id, "channel_type": wire.GROUP, "subscribers": new}
            yield self._post("/channel/subscriber_add", body)
        self._invalidate(group_id)
        if self.store is not None:
            self._store_group(group_id)
            self.store.add_members(group_id, [(uid, role.value) for uid in new], self._now())
        items = [
            BatchItem(target=uid, ok=True, detail="already a member" if uid in current else "") for uid in user_ids
        ]
        return BatchResult(items=items, provider=NAME)

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> Flow[BatchResult]:
        self._check_ids([group_id, *user_ids], Operation.GROUPS_REMOVE_MEMBERS)
        return self._remove_members(group_id, user_ids)

    def _remove_members(self, group_id: str, user_ids: Sequence[str]) -> Flow[BatchResult]:
        op = Operation.GROUPS_REMOVE_MEMBERS.value
        yield from self._require_group(group_id, Operation.GROUPS_REMOVE_MEMBERS)
        current = yield from self._uid_list(group_id, "subscribers")
        row = self.store.group(group_id) if self.store is not None else None
        owner = row.owner if row else None
        removable = [uid for uid in user_ids if uid in current and uid != owner]
        if removable:
            body = {"channel_id": group_id, "channel_type": wire.GROUP, "subscribers": removable}
            yield self._post("/channel/subscriber_remove", body)
            muted = [uid for uid in removable if self._store_mute(group_id, uid) is not None]
            if muted:  # a timed mute dies with the membership; nothing is left to lift it later
                yield self._post(
                    "/channel/blacklist_remove", {"channel_id": group_id, "channel_type": wire.GROUP, "uids": muted}
                )
            if self.store is not None:
                self.store.set_mutes(group_id, removable, None)
                self.store.remove_members(group_id, removable)
        self._invalidate(group_id)
        items = []
        for uid in user_ids:
            if uid in removable:
                items.append(BatchItem(target=uid, ok=True))
                continue
            error: ProviderError = (
                PermissionDeniedError("the owner cannot be removed", provider=NAME, operation=op)
                if uid == owner and uid in current
                else NotFoundError(f"{uid!r} is not a member", provider=NAME, operation=op)
            )
            items.append(BatchItem(target=uid, ok=False, error=error, detail=error.message))
        return BatchResult(items=items, provider=NAME)

    def _members(self, group_id: str, subscribers: set[str], denylist: set[str]) -> list[Member]:
        rows = {row.user_id: row for row in self.store.members(group_id)} if self.store is not None else {}
        ordered = [uid for uid in rows if uid in subscribers] + sorted(subscribers - set(rows))
        members = []
        for uid in ordered:
            row = rows.get(uid)
            until = self._store_mute(group_id, uid)
            muted_until = _ts(until) if until is not None else (MUTED_INDEFINITELY if uid in denylist else None)
            member = Member(
                user_id=uid, role=Role(row.role) if row else Role.MEMBER,
                joined_at=_ts(row.joined_at) if row else None, muted_until=muted_until, provider=NAME,
                raw={"denylisted": uid in denylist, "in_store": row is not None},
            )  # fmt: skip
            members.append(member)
        return members

    def list_members(self, group_id: str) -> Flow[list[Member]]:
        self._check_ids([group_id], Operation.GROUPS_MEMBERS)
        return self._list_members(group_id, Operation.GROUPS_MEMBERS, muted_only=False)

    def _list_members(self, group_id: str, operation: Operation, *, muted_only: bool) -> Flow[list[Member]]:
        yield from self._require_group(group_id, operation)
        yield from self._sweep_mutes(group_id)
        subscribers = yield from self._uid_list(group_id, "subscribers")
        denylist = yield from self._uid_list(group_id, "denylist")
        members = self._members(group_id, subscribers, denylist)
        return [m for m in members if m.muted_until is not None] if muted_only else members

    def _mute_targets(self, group_id: str, user_ids: Sequence[str], operation: Operation) -> Flow[None]:
        yield from self._require_group(group_id, operation)
        current = yield from self._uid_list(group_id, "subscribers")
        outsiders = [uid for uid in user_ids if uid not in current]
        if outsiders:
            raise NotFoundError(
                f"not members of {group_id!r}: {', '.join(outsiders)}", provider=NAME, operation=operation.value
            )

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta) -> Flow[None]:
        self._check_ids([group_id, *user_ids], Operation.GROUPS_MUTE)
        return self._mute(group_id, user_ids, duration, self._need_store(Operation.GROUPS_MUTE))

    def _mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta, store: Store) -> Flow[None]:
        yield from self._mute_targets(group_id, user_ids, Operation.GROUPS_MUTE)
        body = {"channel_id": group_id, "channel_type": wire.GROUP, "uids": list(user_ids)}
        yield self._post("/channel/blacklist_add", body)
        self._store_group(group_id)
        known = {row.user_id for row in store.members(group_id)}
        store.add_members(group_id, [(uid, Role.MEMBER.value) for uid in user_ids if uid not in known], self._now())
        store.set_mutes(group_id, user_ids, self._now() + duration.total_seconds())
        self._invalidate(group_id)

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        self._check_ids([group_id, *user_ids], Operation.GROUPS_UNMUTE)
        return self._unmute(group_id, user_ids)

    def _unmute(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        yield from self._mute_targets(group_id, user_ids, Operation.GROUPS_UNMUTE)
        body = {"channel_id": group_id, "channel_type": wire.GROUP, "uids": list(user_ids)}
        yield self._post("/channel/blacklist_remove", body)
        if self.store is not None:
            self.store.set_mutes(group_id, user_ids, None)
        self._invalidate(group_id)

    def mute_all(self, group_id: str, enabled: bool) -> Flow[None]:
        self._check_ids([group_id], Operation.GROUPS_MUTE_ALL)
        return self._mute_all(group_id, enabled)

    def _mute_all(self, group_id: str, enabled: bool) -> Flow[None]:
        channel = yield from self._require_group(group_id, Operation.GROUPS_MUTE_ALL)
        # /channel/info overwrites all five flags: write the current set with only `ban` changed.
        flags = self._current_flags(group_id, channel).model_copy(update={"ban": int(enabled)})
        yield self._post("/channel/info", flags.body(group_id))
        self._remember_flags(group_id, flags)
        self._invalidate(group_id)
        if self.store is not None and self._store_group(group_id) is not None:
            self.store.update_group(group_id, {"mute_all": int(enabled)})

    def muted(self, group_id: str) -> Flow[list[Member]]:
        self._check_ids([group_id], Operation.GROUPS_MUTED)
        return self._list_members(group_id, Operation.GROUPS_MUTED, muted_only=True)

    # -- escape hatch -------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None, *, params: dict[str, Any] | None = None) -> Flow[Any]:
        """Any v2 route, with the manager token and the envelope/error mapping. A GET is retried after a
        failure; any other method is not (it may have landed). Flags written through ``/channel`` or
        ``/channel/info`` for a group are remembered, so imbridge's later flag writes preserve them."""
        verb = method.upper()
        if not path.startswith("/"):
            path = "/" + path
        request = Request(
            verb, path, json=body, params={k: str(v) for k, v in (params or {}).items()}, api=path,
            replay_safe=verb == "GET",
        )  # fmt: skip
        return self._call(request)

    def _call(self, request: Request) -> Flow[Any]:
        reply = yield request
        body = request.json
        if (
            request.method == "POST"
            and request.path in ("/channel", "/channel/info")
            and isinstance(body, dict)
            and body.get("channel_type", wire.GROUP) == wire.GROUP
            and isinstance(body.get("channel_id"), str)
        ):
            flags = wire.ChannelFlags.model_validate({k: int(body.get(k) or 0) for k in wire.FLAG_NAMES})
            self._remember_flags(body["channel_id"], flags)
            self._invalidate(body["channel_id"])
        return reply
