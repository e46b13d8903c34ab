"""What every WuKongIM resource module shares: settings, transport hooks, the escape hatch, and the
channel, flag, mute and user helpers used by more than one resource."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imbridge._clock import Clock
from imbridge._coalesce import Combine
from imbridge._flow import EMPTY, Flow, HTTPRequest, Request, Response, encode_json
from imbridge._kept import Kept
from imbridge._masking import mask_url
from imbridge._nodes import NodePool
from imbridge.capabilities import Operation
from imbridge.config import WukongSettings
from imbridge.errors import InvalidRequestError, NotFoundError, RateLimitError, ServiceUnavailableError
from imbridge.models._validation import check_json_value, path_segment, utf8_size
from imbridge.providers import _login_tokens as login_tokens
from imbridge.providers.base import Provider, ProviderSettings
from imbridge.providers.local.store import Store
from imbridge.providers.wukong import mapping, wire
from imbridge.providers.wukong.mapping import NAME
from imbridge.storage.maintenance import DueMute, MuteSchedule

STORE_HINT = (
    "Set one with store= or IMBRIDGE_WUKONG_STORE: sqlite:///path for app instances on one host, "
    "postgresql://user:password@host/db for instances on several hosts."
)

_FORBIDDEN = re.compile(f"[{re.escape(wire.FORBIDDEN_ID_CHARS)}]")
_METHODS = ("GET", "POST", "PUT", "DELETE")
#: Channels whose confirmation state is remembered (floors, channel keys, read builders); forgotten all at once beyond.
SEEN_CHANNELS_MAX = 10_000
#: A route of the v2 API: segments of URL-unreserved characters and ``@`` (no dot segment, query or fragment).
_ROUTE = re.compile(r"(?!\.\.?(?:/|$))[A-Za-z0-9._~@-]+(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~@-]+)*")


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class _GroupState:
    """What the send policy needs to know about a group, read from WuKongIM."""

    channel: wire.ClusterChannel
    subscribers: set[str] = field(default_factory=set)
    denylist: set[str] = field(default_factory=set)


class WukongCore(Provider):
    name = NAME
    settings_class = WukongSettings

    def __init__(self, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        super().__init__(settings, clock=clock)
        assert isinstance(settings, WukongSettings)
        self.config: WukongSettings = settings
        urls = settings.base_urls
        self._base_url = urls[0]
        #: Several nodes of a cluster: the executor spreads requests over them (imbridge/_nodes.py).
        self.nodes = NodePool(urls, cooldown=settings.node_cooldown) if len(urls) > 1 else None
        self._manager_token = settings.manager_token.get_secret_value() if settings.manager_token else ""
        self._headers: dict[str, str] = {"token": self._manager_token} if self._manager_token else {}
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self.store: Store | None = Store(settings.store) if settings.store else None
        self._token_key = login_tokens.signing_key(settings.token_secret, self.store, "wukong_token_secret")
        self._flags: dict[str, wire.ChannelFlags] = {}
        self._policy_cache: dict[str, tuple[float, _GroupState]] = {}
        #: The highest message_seq a shared confirmation read saw, per channel (messages.py: confirmation floors).
        self._seen_seqs: dict[tuple[str, int, str], int] = {}
        #: What the latest of those reads showed, per channel (messages.py: _Recent).
        self._recent: dict[tuple[str, int, str], Any] = {}
        #: Each conversation's channel key, and the builders of those reads (messages.py: _channel_key, _combine).
        self._channel_keys: Kept[tuple[str, str, bool], tuple[str, int, str]] = Kept(SEEN_CHANNELS_MAX)
        self._combines: Kept[tuple[str, tuple[str, int, str]], Combine] = Kept(SEEN_CHANNELS_MAX)
        #: What the tokens of JSON-RPC connections derive from: the manager token when there is one, so that every
        #: process configured alike sets the same token; else the signing key (messages.py: _rpc_send).
        self._rpc_key = self._manager_token or self._token_key
        #: Per sender: the login of its new connections, and the request that sets their token first.
        self._rpc_logins: Kept[str, tuple[Callable[[], dict[str, Any]], Request]] = Kept(SEEN_CHANNELS_MAX)
        #: Makes the random token that ``register`` stores for a new user (a test seam for recordings).
        self.registration_token: Callable[[str], str] = lambda _uid: secrets.token_urlsafe(24)
        #: Makes the client_msg_no of a group system notification.
        self.new_notice_key: Callable[[], str] = lambda: "notice-" + secrets.token_hex(12)

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
            return mapping.unwrap(response.status_code, response.content, where=request)
        except (RateLimitError, ServiceUnavailableError) as error:
            # A proxy or load balancer in front may say when; else the mapping's own estimate (a failover).
            error.retry_after = response.retry_after() or error.retry_after
            raise

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def describe(self) -> dict[str, Any]:
        none = f"none: the operations that need one are UNSUPPORTED. {STORE_HINT}"
        return {**super().describe(), "store": self.store.shown if self.store is not None else none}

    def __repr__(self) -> str:
        shown = ",".join(mask_url(url) for url in self.config.base_urls)
        return f"WukongProvider(base_url={shown!r}, store={mask_url(self.config.store)!r})"

    # -- small helpers ------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.now().timestamp()

    @staticmethod
    def _get(path: str, params: dict[str, str] | None = None) -> Request:
        return Request("GET", path, params=params or {}, api=path.split("/cluster/channels/")[0] or path)

    @staticmethod
    def _post(path: str, body: Any, *, replay_safe: bool = True) -> Request:
        # params and headers given: Request's default factories are a Python call each, on every send.
        return Request("POST", path, json=body, params=EMPTY, headers=EMPTY, api=path, replay_safe=replay_safe)

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
                f"{operation.value} needs imbridge's store. {STORE_HINT}", provider=NAME, operation=operation.value
            )
        return self.store

    # -- channel reads ------------------------------------------------------------------------

    def _channel(self, group_id: str) -> Flow[wire.ClusterChannel]:
        reply = yield self._get("/cluster/channels", {"channel_id": group_id, "channel_type": str(wire.GROUP)})
        data = wire.ClusterChannels.model_validate(reply).data
        return data[0] if data else wire.ClusterChannel()

    def _uid_list(self, group_id: str, which: str) -> Flow[set[str]]:
        reply = yield self._get(f"/cluster/channels/{path_segment(group_id, 'group id')}/{wire.GROUP}/{which}")
        return {str(uid) for uid in (reply or [])}

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
        if self.store is not None and (stored := self.store.channel_flags(group_id)) is not None:
            return wire.ChannelFlags.model_validate_json(stored)
        return wire.ChannelFlags()

    def _remember_flags(self, group_id: str, flags: wire.ChannelFlags) -> None:
        """Keep the flags WuKongIM cannot read back (send_ban, allow_stranger, large) as last written."""
        self._flags[group_id] = flags
        if self.store is not None:
            self.store.set_channel_flags(group_id, flags.model_dump_json())

    def _current_flags(self, group_id: str, channel: wire.ClusterChannel) -> wire.ChannelFlags:
        """The full flag set now in force: ban and disband as read, the rest as imbridge last wrote them."""
        return self._stored_flags(group_id).model_copy(update={"ban": channel.ban, "disband": channel.disband})

    # -- mutes --------------------------------------------------------------------------------

    def _sweep_mutes(self, group_id: str) -> Flow[None]:
        """Lift this group's timed mutes that are due, on the way through a read or a send (the maintenance
        worker does the same for every group without waiting for a call: maintenance.py)."""
        if self.store is None:
            return
        due = MuteSchedule(self.store.db).due_in_group(group_id, self._now())
        if due:
            yield from self._lift_mutes(group_id, due)

    def _lift_mutes(self, group_id: str, due: Sequence[DueMute]) -> Flow[set[str]]:
        """Take ended mutes off the denylist, then out of the store (WuKongIM has no timed mute: blacklist_add
        stores a uid with no end, internal/api/channel.go:592-660). A member muted again meanwhile is put back
        on the denylist: ``_mute`` stores the new end before it adds to the denylist, so it is seen here.
        Returns those members."""
        assert self.store is not None
        target = {"channel_id": group_id, "channel_type": wire.GROUP}
        yield self._post("/channel/blacklist_remove", {**target, "uids": sorted({m.user_id for m in due})})
        restored = MuteSchedule(self.store.db).clear(due)
        if restored:
            yield self._post("/channel/blacklist_add", {**target, "uids": sorted(restored)})
        self._invalidate(group_id)
        return restored

    def _store_mute(self, group_id: str, user_id: str) -> float | None:
        if self.store is None:
            return None
        row = self.store.member(group_id, user_id)
        return row.muted_until if row is not None and row.muted_until and row.muted_until > self._now() else None

    # -- users --------------------------------------------------------------------------------

    def _require_users(self, user_ids: Sequence[str], operation: Operation) -> Flow[None]:
        """Users known to the store, or to WuKongIM (then remembered); NotFoundError otherwise."""
        self._need_store(operation)
        yield from self._require_known(user_ids, operation)

    def _require_known(self, user_ids: Sequence[str], operation: Operation) -> Flow[None]:
        """Like ``_require_users``, with or without a store."""
        known = yield from self._known_users(user_ids)
        unknown = [uid for uid in user_ids if uid not in known]
        if unknown:
            raise NotFoundError(f"unknown users: {', '.join(unknown)}", provider=NAME, operation=operation.value)

    def _known_users(self, user_ids: Sequence[str]) -> Flow[set[str]]:
        """The users WuKongIM knows: from the store when it has them, else ``GET /cluster/users?uid=`` (a user
        exists once it has had a token, api/user.go:300-316; 500 with an empty body for an unknown uid),
        remembered in the store."""
        known = self.store.existing_users(user_ids) if self.store is not None else set()
        for uid in user_ids:
            if uid in known:
                continue
            try:
                reply = yield self._get("/cluster/users", {"uid": uid})
            except NotFoundError:
                continue
            rows = reply.get("data") if isinstance(reply, dict) else None
            if any(isinstance(row, dict) and row.get("uid") == uid for row in rows or []):
                known.add(uid)
                if self.store is not None:
                    self.store.add_users([uid], self._now())
        return known

    # -- escape hatch -------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None, *, params: dict[str, Any] | None = None) -> Flow[Any]:
        """Any v2 route, with the manager token and the envelope/error mapping. A GET is retried after a
        failure; any other method is not (it may have landed). Flags written through ``/channel`` or
        ``/channel/info`` for a group are remembered, so imbridge's later flag writes preserve them."""
        verb = method.upper() if isinstance(method, str) else ""
        if verb not in _METHODS:
            raise InvalidRequestError(f"method must be one of {', '.join(_METHODS)}, got {method!r}",
                                      provider=NAME, operation="provider.call")  # fmt: skip
        if not isinstance(path, str) or not _ROUTE.fullmatch(path.lstrip("/")):
            raise InvalidRequestError(
                f"path must be a WuKongIM route such as /channel/info (no dot segments, query or fragment), "
                f"got {path!r:.80}", provider=NAME, operation="provider.call",
            )  # fmt: skip
        path = "/" + path.lstrip("/")
        if params is not None and not isinstance(params, dict):
            raise InvalidRequestError("params must be a mapping", provider=NAME, operation="provider.call")
        query = {}
        for key, value in (params or {}).items():
            if not isinstance(key, str) or not isinstance(value, str | int | float) or isinstance(value, bool):
                raise InvalidRequestError(f"params must map names to strings or numbers, got {key!r:.40}",
                                          provider=NAME, operation="provider.call")  # fmt: skip
            query[key] = str(value)
            utf8_size(key, "a params name")
            utf8_size(query[key], f"params[{key!r}]")
        if body is not None:
            check_json_value(body, "body")
        request = Request(verb, path, json=body, params=query, api=path, replay_safe=verb == "GET")
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
