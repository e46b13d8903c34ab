"""What every local resource module shares: the store, running a computation as a flow, and the
checks used by more than one resource."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from imbridge._clock import Clock
from imbridge._flow import Flow, immediate
from imbridge.config import LocalSettings
from imbridge.errors import IMBridgeError, NotFoundError
from imbridge.models.health import Health
from imbridge.providers import _login_tokens as login_tokens
from imbridge.providers.base import Provider, ProviderSettings
from imbridge.providers.local.events import EventPublisher
from imbridge.providers.local.store import GroupRow, Store

T = TypeVar("T")

NAME = "local"


def _ts(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


class LocalCore(Provider):
    name = NAME
    settings_class = LocalSettings
    uses_http = False

    def __init__(self, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        super().__init__(settings, clock=clock)
        assert isinstance(settings, LocalSettings)
        self.store = Store(settings.database)
        self._token_key = login_tokens.signing_key(settings.token_secret, self.store, "token_secret")
        self.events = EventPublisher(self._now)
        """Where this provider's events go: attach a receiver with ``EventReceiver("local").attach(client)``."""

    def close(self) -> None:
        self.store.close()

    def health(self) -> Flow[Health]:
        """Reachable when its database answers a read; nothing to authenticate (always True)."""

        def compute() -> Health:
            checked_at, started = self.clock.now(), self.clock.monotonic()
            where = {"database": self.store.shown, "backend": self.store.backend}
            try:
                schema = self.store.meta("schema_version")
            except IMBridgeError as error:  # the store turns every driver error into one
                return Health(
                    provider=NAME, reachable=False, authenticated=None, checked_at=checked_at, details=where,
                    message=f"{self.store.backend} store {self.store.shown!r} does not answer: {error}",
                )  # fmt: skip
            return Health(
                provider=NAME, reachable=True, authenticated=True, checked_at=checked_at,
                latency_ms=(self.clock.monotonic() - started) * 1000,
                details={**where, "schema_version": schema},
                message=f"{self.store.backend} store {self.store.shown!r} open (schema {schema}); no credentials",
            )  # fmt: skip

        return self._run(compute)

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _run(self, compute: Callable[[], T]) -> Flow[T]:
        return immediate(compute)

    def _publish(self, build: Callable[[dict[str, Any]], list[Any]]) -> None:
        """Hand the events of a committed write to the attached receivers (built only when one is attached)."""
        if self.events.active:
            now = self.clock.now()
            self.events.publish(build({"provider": NAME, "received_at": now, "occurred_at": now}))

    # -- checks -------------------------------------------------------------------------------

    def _require_users(self, user_ids: Sequence[str], operation: str) -> None:
        missing = sorted(set(user_ids) - self.store.existing_users(user_ids))
        if missing:
            raise NotFoundError(f"unknown users: {', '.join(missing)}", provider=NAME, operation=operation)

    def _require_group(self, group_id: str, operation: str) -> GroupRow:
        group = self.store.group(group_id)
        if group is None:
            raise NotFoundError(f"unknown group {group_id!r}", provider=NAME, operation=operation)
        return group
