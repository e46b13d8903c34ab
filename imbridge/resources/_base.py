"""What every resource shares: the capability gate, the ``Call`` a validated operation becomes, the sync and
async bases that hand it to the client's executor, and the helpers several resources use.

A resource module (``users.py``, ``messages.py``...) holds one ``Operations`` subclass (validation and flow
construction, written once) and its sync and async classes side by side, which only run those calls.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, Generic, TypeVar

from imbridge._exec import AsyncExecutor, SyncExecutor
from imbridge._flow import Flow
from imbridge.capabilities import Operation, Support
from imbridge.errors import InvalidRequestError, UnsupportedOperationError
from imbridge.models._validation import MAX_DURATION, check_duration, utf8_size
from imbridge.providers.base import Provider

T = TypeVar("T")
Call = tuple[str, Flow[T]]

_NAMES = {operation: operation.value for operation in Operation}


class _KeySource:
    """Fresh idempotency keys: 96 random bits drawn once per process, then a counter.

    Unique within the process by the counter and across processes by the random part (drawn again in
    a forked child). Drawing random bytes for every send was a system call each time: 5% of the async
    send path's time in a profile.
    """

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(12).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"


_new_key = _KeySource()


def _seconds(value: timedelta | int | float, what: str, *, maximum: timedelta = MAX_DURATION) -> timedelta:
    return check_duration(value, what, maximum=maximum)


def _text(value: str | None, what: str, *, max_bytes: int = 4096) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be a string, not {type(value).__name__}")
    if utf8_size(value, what) > max_bytes:
        raise InvalidRequestError(f"{what} is longer than {max_bytes} bytes")
    return value


class Gate:
    """One provider's capability map, checked before any I/O. Built once per client; its resources share it."""

    def __init__(self, provider: Provider, before_send: Any = None) -> None:
        self.provider = provider
        self.capabilities = provider.capabilities
        # The client's before-send policy, for providers whose server does not ask the app itself.
        self.before_send = None if provider.asks_app_before_send else before_send
        self._unsupported = {op for op, cap in self.capabilities.items() if cap.support is Support.UNSUPPORTED}

    def check(self, operation: Operation) -> str:
        """The operation's name; UnsupportedOperationError if the provider declares it UNSUPPORTED."""
        if operation in self._unsupported:
            capability = self.capabilities[operation]
            why = f": {capability.notes}" if capability.notes else ""
            raise UnsupportedOperationError(
                f"{operation.value} is not supported by {self.provider.name}{why}",
                provider=self.provider.name,
                operation=operation.value,
            )
        return _NAMES[operation]  # an Enum's .value is a descriptor call: measurable once per send


class Operations:
    """The neutral operations of one resource, validated and gated; shared by its sync and async classes.

    Each method checks the capability map (an UNSUPPORTED operation raises before any I/O), validates the
    input that cannot be valid on any provider, and returns ``(operation name, flow)`` for an executor.
    """

    def __init__(self, gate: Gate) -> None:
        self.provider = gate.provider
        self._gate = gate.check
        self._before_send = gate.before_send


OpsT = TypeVar("OpsT", bound=Operations)


class SyncResource(Generic[OpsT]):
    """Base of a sync resource: its ``Operations`` (set as ``_operations``) run by the client's executor."""

    _operations: type[OpsT]

    def __init__(self, gate: Gate, executor: SyncExecutor) -> None:
        self._ops = self._operations(gate)
        self._executor = executor

    def _run(self, call: Call[T]) -> T:
        return self._executor.run(*call)


class AsyncResource(Generic[OpsT]):
    """Base of an async resource: the same ``Operations`` as its sync twin, awaited."""

    _operations: type[OpsT]

    def __init__(self, gate: Gate, executor: AsyncExecutor) -> None:
        self._ops = self._operations(gate)
        self._executor = executor

    def _run(self, call: Call[T]) -> Coroutine[Any, Any, T]:
        # Hands back the executor's coroutine rather than wrapping it in one more: a frame less per call.
        return self._executor.run(*call)
