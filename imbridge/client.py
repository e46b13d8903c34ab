"""IMClient and AsyncIMClient: one provider-neutral interface, switched by configuration.

Both facades are thin: validation, capability gating and the provider flows live in
``_operations.py`` and the providers; the facades only hand each flow to their executor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

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
from imbridge._operations import Call, ContentInput, Operations
from imbridge._pacing import Pacer
from imbridge.capabilities import CapabilityMap
from imbridge.config import Selection
from imbridge.errors import ConfigurationError
from imbridge.models import (
    BatchResult,
    Conversation,
    Gender,
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
from imbridge.providers import load_provider_class
from imbridge.providers.base import Direction, Provider, ProviderSettings
from imbridge.retry import RetryPolicy

T = TypeVar("T")
E = TypeVar("E", SyncExecutor, AsyncExecutor)

DEFAULT_LOGIN_TTL = timedelta(days=1)


def _settings_error(provider: str, error: pydantic.ValidationError) -> ConfigurationError:
    # Only the field names and messages: pydantic's own text would echo input values, secrets included.
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}" for item in error.errors()
    )
    return ConfigurationError(f"invalid {provider} settings: {problems}", provider=provider)


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
    return provider_class(config, clock=clock)


class _ClientBase(Generic[E]):
    _executor: E

    def __init__(
        self,
        provider: str | Provider,
        *,
        retry: RetryPolicy | None,
        timeout: float | None,
        clock: Clock | None,
        settings: Mapping[str, Any],
        bulk_concurrency: int = 8,
    ) -> None:
        if bulk_concurrency < 1:
            raise ConfigurationError("bulk_concurrency must be at least 1")
        self._bulk_concurrency = bulk_concurrency
        self._clock: Clock = clock or SystemClock()
        if isinstance(provider, Provider):
            if settings:
                raise ConfigurationError("pass settings either to the provider or to the client, not both")
            self._provider, self._owns_provider = provider, False
        else:
            self._provider, self._owns_provider = build_provider(provider, settings, clock=self._clock), True
        self._retry = retry or RetryPolicy()
        self._timeout = float(timeout) if timeout is not None else DEFAULT_TIMEOUT
        if self._timeout <= 0:
            raise ConfigurationError("timeout must be positive")
        self._pacer = Pacer(self._clock.monotonic)
        self._ops = Operations(self._provider)

    def _executor_options(self) -> dict[str, Any]:
        return {
            "retry": self._retry, "timeout": self._timeout, "clock": self._clock, "pacer": self._pacer,
            "bulk_concurrency": self._bulk_concurrency,
        }  # fmt: skip

    @property
    def provider_name(self) -> str:
        return self._provider.name

    @property
    def capabilities(self) -> CapabilityMap:
        """Operation -> Capability (NATIVE, EMULATED, PARTIAL or UNSUPPORTED, with notes)."""
        return self._ops.capabilities

    def describe(self) -> dict[str, Any]:
        """Settings in effect, secrets masked; what ``imbridge doctor`` prints."""
        return {**self._provider.describe(), "timeout": self._timeout, "retry": self._retry.model_dump()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self._provider.name!r}, timeout={self._timeout})"


# ---------------------------------------------------------------------------------------------
# Sync
# ---------------------------------------------------------------------------------------------


class _SyncResource:
    def __init__(self, client: IMClient) -> None:
        self._ops = client._ops
        self._executor = client._executor

    def _run(self, call: Call[T]) -> T:
        return self._executor.run(*call)


class Users(_SyncResource):
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

    def login_credentials(self, user_id: str, ttl: timedelta | int = DEFAULT_LOGIN_TTL) -> LoginCredentials:
        """What a client SDK logs in with (a UserSig on Tencent, a token on WuKongIM and local)."""
        return self._run(self._ops.login_credentials(user_id, ttl))


class Messages(_SyncResource):
    def send(
        self, sender: str, to: Conversation, content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None = None, metadata: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None, confirm: bool | None = None,
    ) -> SentMessage:  # fmt: skip
        """Send ``content`` (elements, or a plain string for text) from ``sender`` to a user or a group.

        The same ``idempotency_key`` (generated when omitted) is used on every retry, so a retried send
        is stored once. ``options`` passes provider-specific fields through (Tencent ``OfflinePushInfo``,
        ``CloudCustomData``...). ``confirm`` (WuKongIM) waits until the message is stored.
        """
        return self._run(
            self._ops.send(
                sender,
                to,
                content,
                idempotency_key=idempotency_key,
                metadata=metadata,
                options=options,
                confirm=confirm,
            )
        )

    def send_batch(
        self, sender: str, recipients: Sequence[str], content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None = None, metadata: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> BatchResult:  # fmt: skip
        """Send one message to many users one-to-one; the result has an item per recipient."""
        return self._run(
            self._ops.send_batch(
                sender, recipients, content, idempotency_key=idempotency_key, metadata=metadata, options=options
            )
        )

    def history(
        self, conversation: Conversation, viewer: str, *, limit: int = 50, cursor: str | None = None,
        direction: Direction | str = Direction.BACKWARD,
    ) -> Page[Message]:  # fmt: skip
        """One page of history as ``viewer`` sees it: newest first (``backward``) or oldest first."""
        return self._run(self._ops.history(conversation, viewer, limit=limit, cursor=cursor, direction=direction))

    def iter_history(
        self,
        conversation: Conversation,
        viewer: str,
        *,
        page_size: int = 50,
        direction: Direction | str = Direction.BACKWARD,
    ) -> Iterator[Message]:
        """Every message, page after page, in the order of ``direction``."""
        cursor: str | None = None
        while True:
            page = self.history(conversation, viewer, limit=page_size, cursor=cursor, direction=direction)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def revoke(self, ref: MessageRef | str) -> None:
        """Revoke (recall) a sent message; history then shows it revoked, its content gone."""
        self._run(self._ops.revoke(ref))


class Groups(_SyncResource):
    def create(
        self, name: str, owner: str, members: Sequence[str] = (), *, admins: Sequence[str] = (),
        group_id: str | None = None, introduction: str = "", notification: str = "", face_url: str = "",
    ) -> Group:  # fmt: skip
        """Create a group owned by ``owner`` with initial ``members`` (and ``admins``)."""
        return self._run(
            self._ops.create_group(
                name=name,
                owner=owner,
                members=members,
                admins=admins,
                group_id=group_id,
                introduction=introduction,
                notification=notification,
                face_url=face_url,
            )
        )

    def get(self, group_id: str) -> Group:
        return self._run(self._ops.get_group(group_id))

    def update(
        self, group_id: str, *, name: str | None = None, introduction: str | None = None,
        notification: str | None = None, face_url: str | None = None,
    ) -> Group:  # fmt: skip
        """Change the given fields and return the group as it now is."""
        return self._run(
            self._ops.update_group(
                group_id, name=name, introduction=introduction, notification=notification, face_url=face_url
            )
        )

    def dismiss(self, group_id: str) -> None:
        self._run(self._ops.dismiss_group(group_id))

    def add_members(self, group_id: str, user_ids: Sequence[str], *, role: Role | str = Role.MEMBER) -> BatchResult:
        """Add users; one item per user (already a member counts as success, with a detail)."""
        return self._run(self._ops.add_members(group_id, user_ids, role))

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> BatchResult:
        """Remove users; a user who was not a member gets a failed item with NotFoundError."""
        return self._run(self._ops.remove_members(group_id, user_ids))

    def members(self, group_id: str) -> list[Member]:
        return self._run(self._ops.members(group_id))

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | int) -> None:
        """Stop members from sending for ``duration`` (a timedelta or seconds); it lifts by itself."""
        self._run(self._ops.mute(group_id, user_ids, duration))

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> None:
        self._run(self._ops.unmute(group_id, user_ids))

    def mute_all(self, group_id: str, enabled: bool = True) -> None:
        """While on, only the owner and admins may send."""
        self._run(self._ops.mute_all(group_id, enabled))

    def muted(self, group_id: str) -> list[Member]:
        """Members muted right now, with ``muted_until``."""
        return self._run(self._ops.muted(group_id))


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
        **settings: Any,
    ) -> None:
        super().__init__(provider, retry=retry, timeout=timeout, clock=clock, settings=settings)
        self._transport: SyncTransport | None = None
        self._owns_transport = False
        if self._provider.uses_http:
            self._transport = HttpxSyncTransport(http_client)
            self._owns_transport = True
        self._executor = SyncExecutor(self._provider, self._transport, **self._executor_options())
        self.users = Users(self)
        self.messages = Messages(self)
        self.groups = Groups(self)

    @classmethod
    def from_env(cls, **options: Any) -> IMClient:
        """Build from ``IMBRIDGE_PROVIDER`` and that provider's ``IMBRIDGE_<PROVIDER>_*`` (``.env`` honoured)."""
        clock = options.get("clock")
        provider = build_provider(Selection().provider, from_env=True, clock=clock)
        client = cls(provider, **options)
        client._owns_provider = True
        return client

    def health(self) -> str:
        """Check that the provider is reachable with these settings; raises the mapped error if not."""
        return self._executor.run("provider.health", self._provider.health())

    @property
    def provider(self) -> BoundProvider:
        return BoundProvider(self._provider, self._executor)

    def with_options(self, *, retry: RetryPolicy | None = None, timeout: float | None = None) -> IMClient:
        """A client sharing this one's provider and connection pool with other retry/timeout settings."""
        clone = object.__new__(IMClient)
        clone.__dict__.update(self.__dict__)
        clone._retry = retry or self._retry
        clone._timeout = float(timeout) if timeout is not None else self._timeout
        clone._owns_provider = clone._owns_transport = False
        clone._executor = SyncExecutor(self._provider, self._transport, **clone._executor_options())
        clone.users, clone.messages, clone.groups = Users(clone), Messages(clone), Groups(clone)
        return clone

    def close(self) -> None:
        if self._transport is not None and self._owns_transport:
            self._transport.close()
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


class _AsyncResource:
    def __init__(self, client: AsyncIMClient) -> None:
        self._ops = client._ops
        self._executor = client._executor

    def _run(self, call: Call[T]) -> Coroutine[Any, Any, T]:
        # Hands back the executor's coroutine rather than wrapping it in one more: a frame less per call.
        return self._executor.run(*call)


class AsyncUsers(_AsyncResource):
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

    async def login_credentials(self, user_id: str, ttl: timedelta | int = DEFAULT_LOGIN_TTL) -> LoginCredentials:
        """What a client SDK logs in with (a UserSig on Tencent, a token on WuKongIM and local)."""
        return await self._run(self._ops.login_credentials(user_id, ttl))


class AsyncMessages(_AsyncResource):
    async def send(
        self, sender: str, to: Conversation, content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None = None, metadata: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None, confirm: bool | None = None,
    ) -> SentMessage:  # fmt: skip
        """Send ``content`` from ``sender`` to a user or a group; see :meth:`Messages.send`."""
        return await self._run(
            self._ops.send(
                sender,
                to,
                content,
                idempotency_key=idempotency_key,
                metadata=metadata,
                options=options,
                confirm=confirm,
            )
        )

    async def send_batch(
        self, sender: str, recipients: Sequence[str], content: ContentInput | Sequence[ContentInput], *,
        idempotency_key: str | None = None, metadata: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> BatchResult:  # fmt: skip
        """Send one message to many users one-to-one; the result has an item per recipient."""
        return await self._run(
            self._ops.send_batch(
                sender, recipients, content, idempotency_key=idempotency_key, metadata=metadata, options=options
            )
        )

    async def history(
        self, conversation: Conversation, viewer: str, *, limit: int = 50, cursor: str | None = None,
        direction: Direction | str = Direction.BACKWARD,
    ) -> Page[Message]:  # fmt: skip
        """One page of history as ``viewer`` sees it: newest first (``backward``) or oldest first."""
        return await self._run(self._ops.history(conversation, viewer, limit=limit, cursor=cursor, direction=direction))

    async def iter_history(
        self,
        conversation: Conversation,
        viewer: str,
        *,
        page_size: int = 50,
        direction: Direction | str = Direction.BACKWARD,
    ) -> AsyncIterator[Message]:
        """Every message, page after page, in the order of ``direction``."""
        cursor: str | None = None
        while True:
            page = await self.history(conversation, viewer, limit=page_size, cursor=cursor, direction=direction)
            for message in page.items:
                yield message
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def revoke(self, ref: MessageRef | str) -> None:
        """Revoke (recall) a sent message; history then shows it revoked, its content gone."""
        await self._run(self._ops.revoke(ref))


class AsyncGroups(_AsyncResource):
    async def create(
        self, name: str, owner: str, members: Sequence[str] = (), *, admins: Sequence[str] = (),
        group_id: str | None = None, introduction: str = "", notification: str = "", face_url: str = "",
    ) -> Group:  # fmt: skip
        """Create a group owned by ``owner`` with initial ``members`` (and ``admins``)."""
        return await self._run(
            self._ops.create_group(
                name=name,
                owner=owner,
                members=members,
                admins=admins,
                group_id=group_id,
                introduction=introduction,
                notification=notification,
                face_url=face_url,
            )
        )

    async def get(self, group_id: str) -> Group:
        return await self._run(self._ops.get_group(group_id))

    async def update(
        self, group_id: str, *, name: str | None = None, introduction: str | None = None,
        notification: str | None = None, face_url: str | None = None,
    ) -> Group:  # fmt: skip
        """Change the given fields and return the group as it now is."""
        return await self._run(
            self._ops.update_group(
                group_id, name=name, introduction=introduction, notification=notification, face_url=face_url
            )
        )

    async def dismiss(self, group_id: str) -> None:
        await self._run(self._ops.dismiss_group(group_id))

    async def add_members(
        self, group_id: str, user_ids: Sequence[str], *, role: Role | str = Role.MEMBER
    ) -> BatchResult:
        """Add users; one item per user (already a member counts as success, with a detail)."""
        return await self._run(self._ops.add_members(group_id, user_ids, role))

    async def remove_members(self, group_id: str, user_ids: Sequence[str]) -> BatchResult:
        """Remove users; a user who was not a member gets a failed item with NotFoundError."""
        return await self._run(self._ops.remove_members(group_id, user_ids))

    async def members(self, group_id: str) -> list[Member]:
        return await self._run(self._ops.members(group_id))

    async def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta | int) -> None:
        """Stop members from sending for ``duration`` (a timedelta or seconds); it lifts by itself."""
        await self._run(self._ops.mute(group_id, user_ids, duration))

    async def unmute(self, group_id: str, user_ids: Sequence[str]) -> None:
        await self._run(self._ops.unmute(group_id, user_ids))

    async def mute_all(self, group_id: str, enabled: bool = True) -> None:
        """While on, only the owner and admins may send."""
        await self._run(self._ops.mute_all(group_id, enabled))

    async def muted(self, group_id: str) -> list[Member]:
        """Members muted right now, with ``muted_until``."""
        return await self._run(self._ops.muted(group_id))


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
        **settings: Any,
    ) -> None:
        super().__init__(
            provider, retry=retry, timeout=timeout, clock=clock, settings=settings, bulk_concurrency=bulk_concurrency
        )
        self._transport: AsyncTransport | None = None
        self._owns_transport = False
        if self._provider.uses_http:
            if http_client is not None:
                self._transport = HttpxAsyncTransport(http_client)
            else:
                self._transport = AiohttpTransport(max_connections=max_connections)
                self._owns_transport = True
        self._executor = AsyncExecutor(self._provider, self._transport, **self._executor_options())
        self.users = AsyncUsers(self)
        self.messages = AsyncMessages(self)
        self.groups = AsyncGroups(self)

    @classmethod
    def from_env(cls, **options: Any) -> AsyncIMClient:
        """Build from ``IMBRIDGE_PROVIDER`` and that provider's ``IMBRIDGE_<PROVIDER>_*`` (``.env`` honoured)."""
        provider = build_provider(Selection().provider, from_env=True, clock=options.get("clock"))
        client = cls(provider, **options)
        client._owns_provider = True
        return client

    async def health(self) -> str:
        """Check that the provider is reachable with these settings; raises the mapped error if not."""
        return await self._executor.run("provider.health", self._provider.health())

    @property
    def provider(self) -> AsyncBoundProvider:
        return AsyncBoundProvider(self._provider, self._executor)

    def with_options(self, *, retry: RetryPolicy | None = None, timeout: float | None = None) -> AsyncIMClient:
        """A client sharing this one's provider and connection pool with other retry/timeout settings."""
        clone = object.__new__(AsyncIMClient)
        clone.__dict__.update(self.__dict__)
        clone._retry = retry or self._retry
        clone._timeout = float(timeout) if timeout is not None else self._timeout
        clone._owns_provider = clone._owns_transport = False
        clone._executor = AsyncExecutor(self._provider, self._transport, **clone._executor_options())
        clone.users, clone.messages, clone.groups = AsyncUsers(clone), AsyncMessages(clone), AsyncGroups(clone)
        return clone

    async def aclose(self) -> None:
        if self._transport is not None and self._owns_transport:
            await self._transport.aclose()
        if self._owns_provider:
            self._provider.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
