"""IMClient and AsyncIMClient: one provider-neutral interface, switched by configuration.

Both facades are thin: validation, capability gating and the provider flows live in the resource
modules (``imbridge/resources/``) and the providers; the facades only wire the resources to a provider
and an executor.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

import httpx
import pydantic

from imbridge._clock import Clock, SystemClock
from imbridge._exec import AsyncExecutor, SyncExecutor
from imbridge._flow import Flow
from imbridge._http import (
    DEFAULT_TIMEOUT,
    AiohttpTransport,
    AsyncTransport,
    HttpxAsyncTransport,
    HttpxSyncTransport,
    SyncTransport,
)
from imbridge._pacing import Pacer
from imbridge._sockets import AsyncSockets, SyncSockets
from imbridge.capabilities import CapabilityMap
from imbridge.config import Selection
from imbridge.errors import ConfigurationError
from imbridge.models._validation import validation_problems
from imbridge.models.health import Health
from imbridge.providers import load_provider_class
from imbridge.providers.base import Provider, ProviderSettings
from imbridge.resources._base import AsyncResource, Gate, SyncResource
from imbridge.resources.conversations import AsyncConversations, Conversations
from imbridge.resources.groups import AsyncGroups, Groups
from imbridge.resources.maintenance import AsyncMaintenance, Maintenance
from imbridge.resources.messages import AsyncMessages, Messages
from imbridge.resources.users import AsyncUsers, Users
from imbridge.retry import RetryPolicy

if TYPE_CHECKING:
    from imbridge.events.policy import BeforeSendPolicy

E = TypeVar("E", SyncExecutor, AsyncExecutor)
S = TypeVar("S", bound=SyncResource[Any])
A = TypeVar("A", bound=AsyncResource[Any])


def _settings_error(provider: str, error: pydantic.ValidationError) -> ConfigurationError:
    # Only the field names and messages: pydantic's own text would echo input values, secrets included.
    return ConfigurationError(f"invalid {provider} settings: {validation_problems(error)}", provider=provider)


MAX_TIMEOUT = 24 * 3600.0
"""Seconds; a longer timeout is a mistake (and aiohttp and httpx both need a finite number)."""


def _timeout(value: object) -> float:
    """A request timeout in seconds: a positive, finite number of at most a day."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"timeout must be a number of seconds, not {type(value).__name__}")
    if not (0 < value <= MAX_TIMEOUT):  # also false for nan
        raise ConfigurationError(f"timeout must be more than 0 and at most {MAX_TIMEOUT:.0f} seconds, got {value!r}")
    return float(value)


def _retry_policy(value: object) -> RetryPolicy:
    if not isinstance(value, RetryPolicy):
        raise ConfigurationError(f"retry must be a RetryPolicy, not {type(value).__name__}")
    return value


def _count(value: object, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{what} must be an integer of at least {minimum}, got {value!r}")
    return value


def build_provider(
    name: str, settings: Mapping[str, Any] | None = None, *, from_env: bool = False, clock: Clock | None = None
) -> Provider:
    """Instantiate a provider from explicit settings, or from the environment when ``from_env``."""
    provider_class = load_provider_class(name)
    try:
        config: ProviderSettings = (
            provider_class.settings_class()  # reads IMBRIDGE_<PROVIDER>_* and .env
            if from_env
            else provider_class.settings_class.model_validate(dict(settings or {}))
        )
    except pydantic.ValidationError as error:
        raise _settings_error(provider_class.name, error) from None
    try:
        return provider_class(config, clock=clock)
    except (OSError, sqlite3.Error) as error:  # a database path that cannot be opened
        raise ConfigurationError(f"{provider_class.name}: {type(error).__name__}: {error}", provider=name) from None


class _ResourceSlot(Generic[S, A]):
    """A client attribute naming one resource: its sync class on IMClient, its async class on AsyncIMClient.

    Built on first use with the client's executor and kept in the instance's ``__dict__``, which later
    reads find first (this is a non-data descriptor): ``im.messages`` costs no call on the send path.
    """

    def __init__(self, sync_class: type[S], async_class: type[A]) -> None:
        self._sync_class, self._async_class = sync_class, async_class

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: IMClient, owner: type[Any]) -> S: ...
    @overload
    def __get__(self, client: AsyncIMClient, owner: type[Any]) -> A: ...
    def __get__(self, client: _ClientBase[Any] | None, owner: type[Any]) -> Self | S | A:
        if client is None:
            return self
        resource_class = self._async_class if isinstance(client, AsyncIMClient) else self._sync_class
        resource = resource_class(client._gate, client._executor)
        client.__dict__[self._name] = resource
        return resource


class _ClientBase(Generic[E]):
    _executor: E
    _sockets: SyncSockets | AsyncSockets | None  # the JSON-RPC connections of a provider that sends over them

    # The resources: a new one is its module in imbridge/resources/ and one line here.
    users = _ResourceSlot(Users, AsyncUsers)
    messages = _ResourceSlot(Messages, AsyncMessages)
    groups = _ResourceSlot(Groups, AsyncGroups)
    maintenance = _ResourceSlot(Maintenance, AsyncMaintenance)
    conversations = _ResourceSlot(Conversations, AsyncConversations)

    def __init__(
        self,
        provider: str | Provider,
        *,
        retry: RetryPolicy | None,
        timeout: float | None,
        clock: Clock | None,
        settings: Mapping[str, Any],
        bulk_concurrency: int = 8,
        before_send: Any = None,
    ) -> None:
        self._bulk_concurrency = _count(bulk_concurrency, "bulk_concurrency", minimum=1)
        self._retry = _retry_policy(retry) if retry is not None else RetryPolicy()
        self._timeout = _timeout(timeout) if timeout is not None else DEFAULT_TIMEOUT
        self._clock: Clock = clock or SystemClock()
        if isinstance(provider, Provider):
            if settings:
                raise ConfigurationError("pass settings either to the provider or to the client, not both")
            self._provider, self._owns_provider = provider, False
        else:
            self._provider, self._owns_provider = build_provider(provider, settings, clock=self._clock), True
        self._pacer = Pacer(self._clock.monotonic)
        if before_send is not None and not callable(before_send):
            raise ConfigurationError("before_send must be a function of a MessageSending returning a Decision")
        self._gate = Gate(self._provider, before_send)

    def _share(self, clone: _ClientBase[E]) -> None:
        """Copy this client's state into ``clone`` (``with_options``), but not its resources: they run on
        this client's executor, and the clone builds its own on first use."""
        clone.__dict__.update(
            (name, value)
            for name, value in self.__dict__.items()
            if not isinstance(value, SyncResource | AsyncResource)
        )

    def _executor_options(self) -> dict[str, Any]:
        return {
            "retry": self._retry, "timeout": self._timeout, "clock": self._clock, "pacer": self._pacer,
            "bulk_concurrency": self._bulk_concurrency, "sockets": self._sockets,
        }  # fmt: skip

    def _health_options(self, timeout: float | None) -> dict[str, Any]:
        """The executor settings of a health check: one attempt, and its own timeout when given."""
        options = {**self._executor_options(), "retry": RetryPolicy.none()}
        if timeout is not None:
            options["timeout"] = _timeout(timeout)
        return options

    @property
    def provider_name(self) -> str:
        return self._provider.name

    @property
    def capabilities(self) -> CapabilityMap:
        """Operation -> Capability (NATIVE, EMULATED, PARTIAL or UNSUPPORTED, with notes)."""
        return self._gate.capabilities

    def describe(self) -> dict[str, Any]:
        """Settings in effect, secrets masked; what ``imbridge doctor`` prints."""
        return {**self._provider.describe(), "timeout": self._timeout, "retry": self._retry.model_dump()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self._provider.name!r}, timeout={self._timeout})"


# ---------------------------------------------------------------------------------------------
# Sync
# ---------------------------------------------------------------------------------------------


class BoundProvider:
    """``im.provider``: the provider itself, with ``call(...)`` run through the client's executor."""

    def __init__(self, provider: Provider, executor: SyncExecutor) -> None:
        self._provider = provider
        self._executor = executor

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """The escape hatch for any API the neutral interface does not model (same auth, pacing, retries)."""
        flow: Flow[Any] = self._provider.call(*args, **kwargs)
        return self._executor.run("provider.call", flow)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)


class IMClient(_ClientBase[SyncExecutor]):
    """The synchronous client.

    >>> im = IMClient("local", database=":memory:")
    >>> im.users.register(["alice", "bob"]).ok
    True
    """

    def __init__(
        self,
        provider: str | Provider,
        *,
        http_client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        clock: Clock | None = None,
        before_send: BeforeSendPolicy | None = None,
        **settings: Any,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise ConfigurationError(f"http_client must be an httpx.Client, not {type(http_client).__name__}")
        super().__init__(provider, retry=retry, timeout=timeout, clock=clock, settings=settings,
                         before_send=before_send)  # fmt: skip
        self._transport: SyncTransport | None = None
        self._owns_transport = False
        self._sockets: SyncSockets | None = None  # JSON-RPC connections: nothing is opened until a flow asks
        self._owns_sockets = True
        if self._provider.uses_http:
            self._transport = HttpxSyncTransport(http_client)
            self._owns_transport = True
            self._sockets = SyncSockets()
        self._executor = SyncExecutor(self._provider, self._transport, **self._executor_options())

    @classmethod
    def from_env(cls, **options: Any) -> IMClient:
        """Build from ``IMBRIDGE_PROVIDER`` and that provider's ``IMBRIDGE_<PROVIDER>_*`` (``.env`` honoured)."""
        clock = options.get("clock")
        provider = build_provider(Selection().provider, from_env=True, clock=clock)
        client = cls(provider, **options)
        client._owns_provider = True
        return client

    def health(self, *, timeout: float | None = None) -> Health:
        """One cheap authenticated call to the server, in one attempt (no retries), ``timeout`` seconds at most
        (default: the client's). Raises nothing for a down server or refused credentials: the answer says so
        (``reachable``, ``authenticated``, ``server_version``, ``latency_ms``, ``warnings``; ``ok`` for both)."""
        executor = SyncExecutor(self._provider, self._transport, **self._health_options(timeout))
        return executor.run("health", self._provider.health())

    @property
    def provider(self) -> BoundProvider:
        return BoundProvider(self._provider, self._executor)

    def with_options(self, *, retry: RetryPolicy | None = None, timeout: float | None = None) -> IMClient:
        """A client sharing this one's provider and connection pool with other retry/timeout settings."""
        clone = object.__new__(IMClient)
        self._share(clone)
        clone._retry = _retry_policy(retry) if retry is not None else self._retry
        clone._timeout = _timeout(timeout) if timeout is not None else self._timeout
        clone._owns_provider = clone._owns_transport = clone._owns_sockets = False
        clone._executor = SyncExecutor(self._provider, self._transport, **clone._executor_options())
        return clone

    def close(self) -> None:
        if self._transport is not None and self._owns_transport:
            self._transport.close()
        if self._sockets is not None and self._owns_sockets:
            self._sockets.close()
        if self._owns_provider:
            self._provider.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Async: the same names, awaited.
# ---------------------------------------------------------------------------------------------


class AsyncBoundProvider:
    """``im.provider`` on the async client: ``await im.provider.call(...)``."""

    def __init__(self, provider: Provider, executor: AsyncExecutor) -> None:
        self._provider = provider
        self._executor = executor

    async def call(self, *args: Any, **kwargs: Any) -> Any:
        """The escape hatch for any API the neutral interface does not model (same auth, pacing, retries)."""
        flow: Flow[Any] = self._provider.call(*args, **kwargs)
        return await self._executor.run("provider.call", flow)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)


class AsyncIMClient(_ClientBase[AsyncExecutor]):
    """The asyncio client: the same names as IMClient, awaited. HTTP goes through aiohttp unless an
    ``httpx.AsyncClient`` is injected as ``http_client``."""

    def __init__(
        self,
        provider: str | Provider,
        *,
        http_client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        clock: Clock | None = None,
        max_connections: int = 100,
        bulk_concurrency: int = 8,
        before_send: BeforeSendPolicy | None = None,
        background_maintenance: float | None = None,
        **settings: Any,
    ) -> None:
        _count(max_connections, "max_connections", minimum=0)  # 0: no limit (aiohttp's meaning)
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(f"http_client must be an httpx.AsyncClient, not {type(http_client).__name__}")
        super().__init__(
            provider, retry=retry, timeout=timeout, clock=clock, settings=settings, bulk_concurrency=bulk_concurrency,
            before_send=before_send,
        )
        self._background_maintenance = background_maintenance
        self._transport: AsyncTransport | None = None
        self._owns_transport = False
        self._sockets: AsyncSockets | None = None  # JSON-RPC connections: nothing is opened until a flow asks
        self._owns_sockets = True
        if self._provider.uses_http:
            self._sockets = AsyncSockets()
            if http_client is not None:
                self._transport = HttpxAsyncTransport(http_client)
            else:
                self._transport = AiohttpTransport(max_connections=max_connections)
                self._owns_transport = True
        self._executor = AsyncExecutor(self._provider, self._transport, **self._executor_options())
        if background_maintenance is not None:
            self._start_maintenance(background_maintenance, at_once=False)

    def _start_maintenance(self, interval: float, *, at_once: bool) -> None:
        """``background_maintenance``: run due work every ``interval`` seconds in the background, from now if an
        event loop is running, else from ``async with`` (or call ``im.maintenance.start()`` in async code)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if at_once:
                raise ConfigurationError("background_maintenance needs a running event loop") from None
            if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
                raise ConfigurationError(f"background_maintenance must be seconds > 0, got {interval!r}") from None
            return
        self.maintenance.start(interval)

    @classmethod
    def from_env(cls, **options: Any) -> AsyncIMClient:
        """Build from ``IMBRIDGE_PROVIDER`` and that provider's ``IMBRIDGE_<PROVIDER>_*`` (``.env`` honoured)."""
        provider = build_provider(Selection().provider, from_env=True, clock=options.get("clock"))
        client = cls(provider, **options)
        client._owns_provider = True
        return client

    async def health(self, *, timeout: float | None = None) -> Health:
        """One cheap authenticated call to the server, in one attempt (no retries), ``timeout`` seconds at most
        (default: the client's). Raises nothing for a down server or refused credentials: the answer says so
        (``reachable``, ``authenticated``, ``server_version``, ``latency_ms``, ``warnings``; ``ok`` for both)."""
        executor = AsyncExecutor(self._provider, self._transport, **self._health_options(timeout))
        return await executor.run("health", self._provider.health())

    @property
    def provider(self) -> AsyncBoundProvider:
        return AsyncBoundProvider(self._provider, self._executor)

    def with_options(self, *, retry: RetryPolicy | None = None, timeout: float | None = None) -> AsyncIMClient:
        """A client sharing this one's provider and connection pool with other retry/timeout settings."""
        clone = object.__new__(AsyncIMClient)
        self._share(clone)
        clone._background_maintenance = None  # the background runs stay this client's
        clone._retry = _retry_policy(retry) if retry is not None else self._retry
        clone._timeout = _timeout(timeout) if timeout is not None else self._timeout
        clone._owns_provider = clone._owns_transport = clone._owns_sockets = False
        clone._executor = AsyncExecutor(self._provider, self._transport, **clone._executor_options())
        return clone

    async def aclose(self) -> None:
        background = self.__dict__.get("maintenance")
        if isinstance(background, AsyncMaintenance):
            await background.stop()  # before the transport it uses goes
        if self._transport is not None and self._owns_transport:
            await self._transport.aclose()
        if self._sockets is not None and self._owns_sockets:
            await self._sockets.aclose()
        if self._owns_provider:
            self._provider.close()

    async def __aenter__(self) -> Self:
        if self._background_maintenance is not None:
            self._start_maintenance(self._background_maintenance, at_once=True)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
