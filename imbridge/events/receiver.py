"""The event receiver: verify, parse, deduplicate, hand each event to the app once, answer the vendor.

One receiver serves one provider. Its core is framework-agnostic::

    reply = receiver.handle(method, path, headers, query, body)      # -> Reply(status, body, headers)

with an async twin (``handle_async``, which also awaits ``async def`` handlers) and an ASGI app
(``receiver.asgi``) to mount in FastAPI, Starlette or any ASGI server. The steps are written once, as a
generator that yields each handler call; the sync and async drivers only differ in how they call it.
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import secrets
import time
import warnings
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import pydantic

from imbridge._inbound import Limits, not_allowed
from imbridge.config import Selection
from imbridge.errors import ConfigurationError, IMBridgeError, ServiceUnavailableError
from imbridge.events.base import Delivery, EventSupport, InboundAdapter, InboundRequest, Reply
from imbridge.events.config import LocalEventSettings, ReceiverSettings, TencentEventSettings, WukongEventSettings
from imbridge.events.dedupe import DedupeStore, MemoryDedupeStore
from imbridge.events.models import (
    EVENT_TYPES,
    Allow,
    BaseEvent,
    Decision,
    MessageSending,
    Refuse,
    Rewrite,
)
from imbridge.providers import canonical_name

if TYPE_CHECKING:
    from imbridge.events.asgi import ReceiverApp

__all__ = ["EventReceiver"]

_log = logging.getLogger("imbridge.events")

Handler = Callable[[Any], Any]
"""A sync function, or (with ``handle_async`` and the ASGI app) an ``async def``, taking one event."""
BeforeSend = Callable[[MessageSending], Decision | Awaitable[Decision]]


@dataclass(slots=True)
class _Call:
    handler: Callable[[Any], Any]
    argument: Any


def _networks(entries: Sequence[str] | str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    items = [part.strip() for part in entries.split(",")] if isinstance(entries, str) else list(entries)
    try:
        return [ipaddress.ip_network(item, strict=False) for item in items if item]
    except ValueError as error:
        raise ConfigurationError(f"allow_from: {error}") from None


def _settings_error(what: str, error: pydantic.ValidationError) -> ConfigurationError:
    problems = "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors())
    return ConfigurationError(f"invalid {what} settings: {problems}")


def open_dedupe_store(spec: str, *, max_entries: int) -> DedupeStore:
    """``memory``, or a database shared by workers (imbridge's storage layer: ``sqlite:///path``, a file path
    or ``postgresql://...``)."""
    if spec.strip().lower() in ("", "memory", ":memory:"):
        return MemoryDedupeStore(max_entries)
    from imbridge.events.sql_dedupe import SQLDedupeStore

    return SQLDedupeStore(spec)


class EventReceiver:
    """Receives one provider's webhooks (or the local provider's deliveries) as neutral events.

    >>> receiver = EventReceiver("wukong", path_secret=secret)
    >>> @receiver.on(MessageCreated)
    ... def index(event: MessageCreated) -> None: ...
    >>> app = receiver.asgi                     # mount at the path of webhook.httpAddr

    Verification cannot be switched off by leaving a setting out: with no token or secret the receiver
    refuses to start unless ``insecure_skip_verification=True`` (which warns).
    """

    def __init__(
        self,
        provider: str,
        *,
        sdk_app_id: int | None = None,
        callback_token: str | None = None,
        path_secret: str | None = None,
        secret: str | None = None,
        insecure_skip_verification: bool = False,
        dedupe: DedupeStore | None = None,
        dedupe_seconds: float = 3600.0,
        allow_from: Sequence[str] | str = (),
        limits: Limits | None = None,
        max_age: float | None = None,
        adapter: InboundAdapter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if dedupe_seconds <= 0:
            raise ConfigurationError("dedupe_seconds must be positive")
        self._adapter: InboundAdapter = adapter or self._build_adapter(
            canonical_name(provider), sdk_app_id=sdk_app_id, callback_token=callback_token, path_secret=path_secret,
            secret=secret, insecure=insecure_skip_verification, max_age=max_age,
        )  # fmt: skip
        if insecure_skip_verification:
            warnings.warn(
                f"the {self._adapter.provider} event receiver does NOT verify requests "
                "(insecure_skip_verification=True): anyone who can reach it can forge events",
                stacklevel=2,
            )
        self.provider = self._adapter.provider
        self._dedupe: DedupeStore = dedupe if dedupe is not None else MemoryDedupeStore()
        self._ttl = float(dedupe_seconds)
        self._allow = _networks(allow_from)
        self._limits = limits or Limits()
        self._clock = clock
        self._handlers: list[tuple[tuple[type[BaseEvent], ...], Handler]] = []
        self._by_type: dict[type, list[Handler]] = {}
        """Handlers of each event class, in registration order (filled on first use, reset by ``on``)."""
        self._before_send: BeforeSend | None = None
        self._app: ReceiverApp | None = None
        self._ack = self._adapter.acknowledge()

    @staticmethod
    def _build_adapter(
        name: str, *, sdk_app_id: int | None, callback_token: str | None, path_secret: str | None,
        secret: str | None, insecure: bool, max_age: float | None,
    ) -> InboundAdapter:  # fmt: skip
        if name == "tencent":
            from imbridge.providers.tencent.events import TencentInbound

            if sdk_app_id is None:
                raise ConfigurationError("a Tencent receiver needs sdk_app_id (IMBRIDGE_TENCENT_SDK_APP_ID)")
            return TencentInbound(sdk_app_id=sdk_app_id, token=callback_token, max_age=max_age or 60.0,
                                  insecure_skip_verification=insecure)  # fmt: skip
        if name == "wukong":
            from imbridge.providers.wukong.events import WukongInbound

            return WukongInbound(path_secret=path_secret, insecure_skip_verification=insecure)
        if name == "local":
            from imbridge.providers.local.events import LocalInbound

            # In process, the receiver makes its own key and gives it to the provider it is attached to.
            key = secret if secret is not None or insecure else secrets.token_urlsafe(32)
            return LocalInbound(secret=key, max_age=max_age or 300.0, insecure_skip_verification=insecure)
        raise ConfigurationError(f"no event receiver for provider {name!r}; pass adapter= for your own")

    @classmethod
    def from_env(cls, provider: str | None = None, **options: Any) -> EventReceiver:
        """Built from ``IMBRIDGE_PROVIDER`` (or ``provider``), that provider's token or secret and
        ``IMBRIDGE_EVENTS_*``; ``options`` override (``clock``, ``adapter``, ``dedupe``...)."""
        name = canonical_name(provider or Selection().provider)
        try:
            common = ReceiverSettings()
            own: dict[str, Any] = {}
            if name == "tencent":
                tencent = TencentEventSettings()
                token = tencent.callback_token
                own = {"sdk_app_id": tencent.sdk_app_id, "callback_token": token.get_secret_value() if token else None}
            elif name == "wukong":
                secret = WukongEventSettings().webhook_secret
                own = {"path_secret": secret.get_secret_value() if secret else None}
            elif name == "local":
                key = LocalEventSettings().events_secret
                own = {"secret": key.get_secret_value() if key else None}
        except pydantic.ValidationError as error:
            raise _settings_error(f"{name} receiver", error) from None
        limits = Limits(common.max_body_bytes, common.max_json_depth, common.max_decompressed_bytes)
        defaults: dict[str, Any] = {
            "insecure_skip_verification": common.insecure_skip_verification, "dedupe_seconds": common.dedupe_seconds,
            "allow_from": common.allow_from, "limits": limits, "max_age": common.max_age, **own,
        }  # fmt: skip
        if "dedupe" not in options:
            defaults["dedupe"] = open_dedupe_store(common.dedupe_store, max_entries=common.dedupe_max_entries)
        return cls(name, **{**defaults, **options})

    @staticmethod
    def new_secret() -> str:
        """An unguessable secret for a WuKongIM webhook path or the local provider's signatures."""
        return secrets.token_urlsafe(32)

    # -- what the app registers ---------------------------------------------------------------------

    @property
    def support(self) -> Mapping[str, EventSupport]:
        """How this provider delivers each event kind (NATIVE, EMULATED, PARTIAL, UNSUPPORTED, with notes)."""
        return self._adapter.support

    def on(self, *kinds: type[BaseEvent]) -> Callable[[Handler], Handler]:
        """Register a handler for these event classes (every event when none is named)::

        @receiver.on(MessageCreated, MessageRevoked)
        def handle(event): ...
        """
        wanted = kinds or tuple(kind for kind in EVENT_TYPES if kind is not MessageSending)
        for kind in wanted:
            if not (isinstance(kind, type) and issubclass(kind, BaseEvent)):
                raise ConfigurationError(f"{kind!r} is not an event class of imbridge.events")
            if kind is MessageSending:
                raise ConfigurationError("before-send questions go to on_before_send, not on()")

        def register(handler: Handler) -> Handler:
            self._handlers.append((tuple(wanted), handler))
            self._by_type.clear()
            return handler

        return register

    def on_before_send(self, handler: BeforeSend) -> BeforeSend:
        """Register the one handler that answers before-send questions with Allow, Refuse or Rewrite."""
        self._before_send = handler
        return handler

    # -- handling a request ---------------------------------------------------------------------------

    def _check_source(self, client: str | None) -> None:
        if not self._allow:
            return
        try:
            address = ipaddress.ip_address((client or "").split("%")[0])
        except ValueError:
            raise not_allowed("source_not_allowed", "the request's source is unknown", provider=self.provider) from None
        if not any(address in network for network in self._allow):
            raise not_allowed("source_not_allowed", f"requests from {address} are not allowed", provider=self.provider)

    def _refused(self, refusal: IMBridgeError) -> Reply:
        status = getattr(refusal, "http_status", None) or 400
        _log.warning("refused a %s webhook: %s", self.provider, refusal)
        return replace(self._adapter.refuse(refusal, status), refusal=refusal)

    def _flow(self, request: InboundRequest) -> Generator[_Call, Any, Reply]:
        now = self._clock()
        try:
            self._check_source(request.client)
            self._adapter.verify(request, now)
            delivery: Delivery = self._adapter.parse(request, datetime.fromtimestamp(now, UTC), self._limits)
        except IMBridgeError as refusal:
            return self._refused(refusal)
        except Exception as exc:  # a bug of imbridge's: answered as a failure, never raised into the server
            _log.exception("a %s webhook could not be read", self.provider)
            failed = IMBridgeError("the request could not be read", provider=self.provider)
            return replace(self._adapter.refuse(failed, 500), error=exc)
        if delivery.pending is not None:
            return (yield from self._decide(delivery.pending))
        handled: list[BaseEvent] = []
        duplicates = 0
        for event in delivery.events:
            try:
                first = self._dedupe.claim(event.event_id, ttl=self._ttl, now=now)
            except Exception as exc:  # the store is down: answer so that the vendor retries later
                _log.exception("the deduplication store failed")
                unavailable = ServiceUnavailableError("deduplication store unavailable", provider=self.provider)
                reply = self._adapter.refuse(unavailable, 503)
                return replace(reply, handled=tuple(handled), duplicates=duplicates, error=exc)
            if not first:
                duplicates += 1
                continue
            try:
                handlers = self._by_type.get(type(event))
                if handlers is None:
                    handlers = self._by_type[type(event)] = [
                        handler for kinds, handler in self._handlers if issubclass(type(event), kinds)
                    ]
                for handler in handlers:
                    yield _Call(handler, event)
            except Exception as exc:
                self._dedupe.release(event.event_id)  # not handled: the vendor's retry must be
                _log.exception("a %s event handler failed on %s", self.provider, event.event_id)
                failed = IMBridgeError("an event handler failed", provider=self.provider)
                reply = self._adapter.refuse(failed, 500)
                return replace(reply, handled=tuple(handled), duplicates=duplicates, error=exc)
            handled.append(event)
        ack = self._ack
        return Reply(ack.status, ack.body, ack.headers, tuple(handled), duplicates)

    def _decide(self, pending: MessageSending) -> Generator[_Call, Any, Reply]:
        decision: Any = Allow()
        if self._before_send is not None:
            try:
                decision = yield _Call(self._before_send, pending)
                if not isinstance(decision, Allow | Refuse | Rewrite):
                    raise ConfigurationError(f"on_before_send returned {type(decision).__name__}, not a Decision")
            except Exception as exc:
                # A failed answer lets the vendor apply its own timeout policy (Tencent's default: deliver).
                _log.exception("the %s before-send handler failed", self.provider)
                failed = IMBridgeError("the before-send handler failed", provider=self.provider)
                return replace(self._adapter.refuse(failed, 500), error=exc)
        return replace(self._adapter.answer(pending, decision), decision=decision)

    def _request(
        self, method: str, path: str, headers: Mapping[str, str] | None, query: Mapping[str, str] | None,
        body: bytes | bytearray | memoryview | str | None, client: str | None,
    ) -> InboundRequest:  # fmt: skip
        if isinstance(body, str):
            data = body.encode("utf-8", "surrogatepass")
        else:
            data = bytes(body) if body is not None else b""
        return InboundRequest(str(method), str(path), dict(headers or {}), dict(query or {}), data, client)

    def deliver(self, request: InboundRequest) -> Reply:
        """Handle a request already in :class:`InboundRequest` form (what the local provider delivers)."""
        flow = self._flow(request)
        try:
            call = next(flow)
            while True:
                try:
                    result = call.handler(call.argument)
                    if result is not None and inspect.isawaitable(result):
                        if inspect.iscoroutine(result):
                            result.close()
                        raise ConfigurationError("an async handler needs handle_async() or the ASGI app")
                except Exception as exc:
                    call = flow.throw(exc)
                else:
                    call = flow.send(result)
        except StopIteration as stop:
            return cast(Reply, stop.value)

    async def deliver_async(self, request: InboundRequest) -> Reply:
        flow = self._flow(request)
        try:
            call = next(flow)
            while True:
                try:
                    result = call.handler(call.argument)
                    if result is not None and inspect.isawaitable(result):
                        result = await result
                except Exception as exc:
                    call = flow.throw(exc)
                else:
                    call = flow.send(result)
        except StopIteration as stop:
            return cast(Reply, stop.value)

    def handle(
        self, method: str, path: str, headers: Mapping[str, str] | None, query: Mapping[str, str] | None,
        body: bytes | str | None, *, client: str | None = None,
    ) -> Reply:  # fmt: skip
        """One request, from any framework: never raises; the reply says what to answer."""
        return self.deliver(self._request(method, path, headers, query, body, client))

    async def handle_async(
        self, method: str, path: str, headers: Mapping[str, str] | None, query: Mapping[str, str] | None,
        body: bytes | str | None, *, client: str | None = None,
    ) -> Reply:  # fmt: skip
        return await self.deliver_async(self._request(method, path, headers, query, body, client))

    @property
    def asgi(self) -> ReceiverApp:
        """An ASGI application serving this receiver at any path it is mounted under."""
        if self._app is None:
            from imbridge.events.asgi import ReceiverApp

            self._app = ReceiverApp(self)
        return self._app

    @property
    def max_body_bytes(self) -> int:
        return self._limits.max_body_bytes

    # -- the local provider ---------------------------------------------------------------------------

    def attach(self, client: Any) -> None:
        """Receive the events of an imbridge client on the local provider (delivered in process, signed).

        Vendor providers deliver by webhook: mount :attr:`asgi` (or call :meth:`handle`) at the URL
        configured on the vendor's side instead.
        """
        from imbridge.providers.local.events import LocalInbound

        provider = getattr(client, "_provider", client)
        publisher = getattr(provider, "events", None)
        if self.provider != "local" or not isinstance(self._adapter, LocalInbound) or publisher is None:
            raise ConfigurationError(
                f"attach() is for the local provider; {self.provider} events arrive by webhook (mount receiver.asgi)"
            )
        secret = self._adapter.secret
        if secret is None:
            raise ConfigurationError("a receiver without a secret cannot be attached")
        publisher.attach(self.deliver, secret)

    def __repr__(self) -> str:
        return f"EventReceiver({self.provider!r}, handlers={len(self._handlers)}, dedupe={self._dedupe!r})"
