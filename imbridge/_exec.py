"""The one place that performs I/O: drives provider flows with a sync or an async transport.

Each request goes through the same steps on both drivers: pace, prepare (base URL + credentials), pick a
cluster node when the provider has several (``_nodes.py``: a node that does not answer is skipped for a while),
send, decode (the provider maps the answer into the error hierarchy), and retry by the RetryPolicy,
compiled to tenacity. Decisions live in :class:`_Core`; the two drivers only differ in ``await``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, TypeVar

import pydantic
from tenacity import AsyncRetrying, RetryCallState, Retrying, stop_after_attempt

from imbridge._clock import Clock
from imbridge._coalesce import Coalescer
from imbridge._flow import NOT_JOINED, Call, Flow, HTTPRequest, Instruction, Join, Request, Response, Sleep
from imbridge._http import AsyncTransport, SyncTransport
from imbridge._masking import mask_url
from imbridge._pacing import Pacer, Rate
from imbridge._sockets import AsyncSockets, SyncSockets
from imbridge.errors import (
    AuthenticationError,
    IMBridgeError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
    TransportError,
)
from imbridge.providers.base import Provider
from imbridge.retry import RetryPolicy

logger = logging.getLogger("imbridge")

T = TypeVar("T")

#: What a flow may raise while reading a reply whose shape is not what the provider documents.
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, pydantic.ValidationError)
_NO_RATE = Rate(1.0)  # a sentinel: "not asked yet" (None means "no pacing")


def outcome_unknown(error: IMBridgeError) -> IMBridgeError | None:
    """``error`` if the server may have processed the request that failed with it, else None: a transport
    failure after the request was written, or a server-side failure (a 5xx, an answer garbled on the way)."""
    if isinstance(error, TransportError):
        return error if error.may_have_landed else None
    return error if isinstance(error, ServiceUnavailableError) else None


class _WaitBudget:
    """What is left of ``RetryPolicy.max_total_wait`` for one call: the time it may still spend waiting
    between attempts (a server's Retry-After, backoff). Shared by the call's requests."""

    __slots__ = ("left",)

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def take(self, wait: float) -> float | None:
        """``wait`` if it fits in what is left (which it then uses up), else None: do not retry."""
        if wait > self.left:
            return None
        self.left -= wait
        return wait


class _Core:
    """The decisions shared by both drivers."""

    def __init__(
        self, provider: Provider, *, retry: RetryPolicy, timeout: float, clock: Clock, pacer: Pacer,
        bulk_concurrency: int = 8, sockets: Any = None,
    ) -> None:  # fmt: skip
        self.bulk_concurrency = bulk_concurrency
        self.sockets = sockets  # the client's JSON-RPC connections (Call), made by the client on first use
        self._rates: dict[str, Rate | None] = {}
        self.provider = provider
        self.retry = retry
        self.timeout = timeout
        self.clock = clock
        self.pacer = pacer

    # -- retry decisions ----------------------------------------------------------------------

    def should_retry(self, error: BaseException, request: Request) -> bool:
        if not isinstance(error, IMBridgeError) or not error.retryable:
            return False
        if request.replay_safe or isinstance(error, RateLimitError):
            return True
        # An unsafe request (no server-side dedupe) is re-sent only when it cannot have landed;
        # otherwise the flow decides, typically after looking the effect up.
        return isinstance(error, TransportError) and not error.may_have_landed

    def retry_wait(self, retry_number: int, error: BaseException | None) -> float:
        """Seconds before retry ``retry_number``: the provider's retry_after (capped), else backoff."""
        retry_after = error.retry_after if isinstance(error, RateLimitError | ServiceUnavailableError) else None
        return self.retry.backoff(retry_number, retry_after)

    def first_failure(self, error: IMBridgeError, request: Request, budget: _WaitBudget) -> float | None:
        """After a failed first attempt: the wait before retrying, or None if it must not be retried."""
        if self.retry.max_attempts < 2 or not self.should_retry(error, request):
            return None
        return budget.take(self.retry_wait(1, error))

    def retrying_kwargs(self, request: Request, budget: _WaitBudget) -> dict[str, Any]:
        """Tenacity settings for attempts 2..max_attempts. The first attempt runs outside tenacity:
        wrapping every call would cost more than the rest of the client's overhead together.

        The retry decision also settles the wait (it must fit in the call's budget, else the last error is
        raised now); tenacity then sleeps exactly that."""
        decided: list[float] = [0.0]

        def retry(state: RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            if error is None or not self.should_retry(error, request):
                return False
            wait = budget.take(self.retry_wait(state.attempt_number + 1, error))
            if wait is None:
                return False
            decided[0] = wait
            return True

        return {
            "stop": stop_after_attempt(self.retry.max_attempts - 1),
            "wait": lambda _state: decided[0],
            "retry": retry,
            "reraise": True,
        }

    def budget(self) -> _WaitBudget:
        return _WaitBudget(self.retry.max_total_wait)

    def call_retry_wait(self, error: IMBridgeError, attempt: int, budget: _WaitBudget) -> float | None:
        """After attempt ``attempt`` of a :class:`Call` failed: the wait before the next, or None to give up. Only a
        request that was never written is made again (``may_have_landed=False``): the flow looks up any other."""
        if not isinstance(error, TransportError) or error.may_have_landed or attempt >= self.retry.max_attempts:
            return None
        return budget.take(self.retry_wait(attempt, error))

    def call_failed(self, error: IMBridgeError, call: Call, operation: str, attempt: int) -> IMBridgeError:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s over %s failed (attempt %d): %s", operation, call.method, call.url, attempt, error)
        return self.annotate(error, operation, attempt)

    # -- one attempt, before and after the wire -------------------------------------------------

    def pacing_delay(self, request: Request) -> float:
        api = request.api or request.path
        rate = self._rates.get(api, _NO_RATE)
        if rate is _NO_RATE:  # a provider's pace depends on the API only: ask once per API
            rate = self._rates[api] = self.provider.rate_for(request)
        return self.pacer.reserve(api, rate, request.cost) if rate is not None else 0.0

    def encode(self, request: Request, operation: str, attempt: int) -> HTTPRequest:
        """The request as it goes on the wire. A body JSON cannot hold (reachable only through the escape hatch:
        the neutral operations check their input first) is an invalid request, refused before sending."""
        try:
            return self.provider.to_http(request)
        except (TypeError, ValueError) as exc:  # orjson's JSONEncodeError is a TypeError; UnicodeEncodeError
            error = InvalidRequestError(f"the request to {request.label()} cannot be encoded: {exc}")
            raise self.annotate(error, operation, attempt) from None

    def route(self, request: Request, wire: HTTPRequest) -> str | None:
        """The cluster node ``wire`` goes to (rewritten for it), or None for a provider with one server."""
        nodes = self.provider.nodes
        return None if nodes is None else nodes.route(wire, self.clock.monotonic(), request.node)

    def reroute(self, request: Request, wire: HTTPRequest, node: str | None, error: TransportError) -> str | None:
        """After ``node`` did not answer: take it out of rotation, and return the node ``wire`` now goes to when
        the request can move at once (a refused connection: nothing was sent), else None (the attempt fails;
        the retry rules and the flow's lookups decide, and their requests go to another node)."""
        nodes = self.provider.nodes
        if nodes is None or node is None:
            return None
        now = self.clock.monotonic()
        moved = None if error.may_have_landed or request.node is not None else nodes.move(wire, node, now)
        if moved is None:
            nodes.failed(node, now)
            error.message = f"{error.message} (node {mask_url(node)})"
        return moved

    def answered(self, node: str) -> None:
        """``node`` answered (whatever it said): it is in rotation."""
        if self.provider.nodes is not None:
            self.provider.nodes.succeeded(node)

    def annotate(self, error: IMBridgeError, operation: str, attempt: int) -> IMBridgeError:
        error.provider = error.provider or self.provider.name
        error.operation = error.operation or operation
        error.attempts = attempt
        return error

    def decode(self, request: Request, response: Response, operation: str, attempt: int, started: float) -> Any:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s %s -> HTTP %d in %.1f ms (attempt %d)",
                operation,
                request.method,
                request.label(),
                response.status_code,
                (time.perf_counter() - started) * 1000,
                attempt,
            )
        try:
            return self.provider.decode(request, response)
        except IMBridgeError as error:
            raise self.annotate(error, operation, attempt) from None
        except _SHAPE_ERRORS as exc:
            raise self.annotate(
                ProviderError(
                    f"malformed response from {request.label()}: {type(exc).__name__}", http_status=response.status_code
                ),
                operation,
                attempt,
            ) from exc

    def failed(self, error: IMBridgeError, request: Request, operation: str, attempt: int) -> IMBridgeError:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s %s failed (attempt %d): %s", operation, request.method, request.label(), attempt, error)
        return self.annotate(error, operation, attempt)

    @staticmethod
    def disclose(error: IMBridgeError, request: Request, unknown: IMBridgeError | None) -> None:
        """Say so in the final error of a request with effects when one of its attempts may have been processed:
        otherwise a retry that ends in, say, a 429 would hide that an earlier attempt may have landed.
        (Requests that are not replay-safe are left to their flows, which look the effect up.)"""
        if unknown is None or not request.replay_safe or request.method == "GET":
            return
        if isinstance(error, TransportError):
            if error.may_have_landed:
                return  # already says so
            error.may_have_landed = True
        what = "it" if unknown is error else f"attempt failing with {unknown.message!r}"
        error.message = f"{error.message}; the request MAY HAVE LANDED ({what} may have been processed)"

    @staticmethod
    def shape_error(exc: Exception, operation: str, provider: str) -> ProviderError:
        return ProviderError(
            f"unexpected response shape: {type(exc).__name__}: {exc}", provider=provider, operation=operation
        )


class SyncExecutor(_Core):
    """Runs flows with a blocking transport."""

    sockets: SyncSockets | None

    def __init__(self, provider: Provider, transport: SyncTransport | None, **options: Any) -> None:
        super().__init__(provider, **options)
        self.transport = transport

    def run(self, operation: str, flow: Flow[T]) -> T:
        budget: _WaitBudget | None = None  # made when first needed: most calls never wait
        try:
            instruction: Instruction = next(flow)
            while True:
                if not isinstance(instruction, Request):  # the rare instructions; a request is the hot path
                    if isinstance(instruction, Call):
                        try:
                            answer = self._call(instruction, operation)
                        except IMBridgeError as error:
                            instruction = flow.throw(error)
                            continue
                        try:
                            instruction = flow.send(answer)
                        except _SHAPE_ERRORS as exc:
                            raise self.shape_error(exc, operation, self.provider.name) from exc
                    elif isinstance(instruction, Sleep):
                        self.clock.sleep(instruction.seconds)
                        instruction = flow.send(None)
                    elif isinstance(instruction, Join):  # nothing runs concurrently here to share with
                        instruction = flow.send(NOT_JOINED)
                    else:
                        budget = budget or self.budget()
                        outcomes = [self._outcome(request, operation, budget) for request in instruction.requests]
                        try:
                            instruction = flow.send(outcomes)
                        except _SHAPE_ERRORS as exc:  # a fanned-out reply read like any other
                            raise self.shape_error(exc, operation, self.provider.name) from exc
                    continue
                # request(), with its first attempt made here: one call less on the path of nearly every request.
                failure: IMBridgeError | None = None
                try:
                    reply = self._attempt(instruction, operation, 1)
                except IMBridgeError as error:
                    failure = error
                if failure is not None:
                    budget = budget or self.budget()
                    try:
                        reply = self._recover(instruction, operation, budget, failure)
                    except IMBridgeError as error:
                        instruction = flow.throw(error)
                        continue
                try:
                    instruction = flow.send(reply)
                except StopIteration as ended:  # caught here first: most flows end after their one request
                    finished: T = ended.value
                    return finished
                except _SHAPE_ERRORS as exc:
                    raise self.shape_error(exc, operation, self.provider.name) from exc
                reply = None  # the flow has it
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            flow.close()

    def _call(self, call: Call, operation: str) -> Any:
        """One :class:`Call`, made again only while it was never written (as the RetryPolicy allows)."""
        if self.sockets is None:
            raise RuntimeError(f"{self.provider.name} yielded a JSON-RPC call but the client has no sockets")
        budget: _WaitBudget | None = None
        attempt = 1
        needed = call.setup  # what a new connection needs first: made as any request
        setup = None if needed is None else lambda: self.request(needed, operation)
        while True:
            try:
                return self.sockets.call(call, self.timeout, setup)
            except IMBridgeError as error:
                budget = budget or self.budget()
                wait = self.call_retry_wait(error, attempt, budget)
                if wait is None:
                    raise self.call_failed(error, call, operation, attempt) from None
            self.clock.sleep(wait)
            attempt += 1

    def _outcome(self, request: Request, operation: str, budget: _WaitBudget) -> Any:
        try:
            return self.request(request, operation, budget)
        except IMBridgeError as error:
            return error

    def request(self, request: Request, operation: str, budget: _WaitBudget | None = None) -> Any:
        """One request with pacing, retries (within ``budget``) and a single credential renewal."""
        try:
            return self._attempt(request, operation, 1)
        except IMBridgeError as error:
            failure = error  # recovered from outside this handler, so that later errors do not chain to it
        return self._recover(request, operation, budget or self.budget(), failure)

    def _recover(self, request: Request, operation: str, budget: _WaitBudget, failure: IMBridgeError | None) -> Any:
        """The rest of :meth:`request` once its first attempt failed with ``failure``: the retries, and one
        renewal of expired credentials (after which the attempts start again from the first)."""
        unknown: IMBridgeError | None = None  # the first failure after which the server may have acted
        for renewal in (False, True):
            try:
                if failure is None:  # after a renewal
                    try:
                        return self._attempt(request, operation, 1)
                    except IMBridgeError as error:
                        failure = error
                unknown = unknown or outcome_unknown(failure)
                wait = self.first_failure(failure, request, budget)
                if wait is None:
                    raise failure
                self.clock.sleep(wait)
                for attempt in Retrying(sleep=self.clock.sleep, **self.retrying_kwargs(request, budget)):
                    with attempt:
                        try:
                            return self._attempt(request, operation, attempt.retry_state.attempt_number + 1)
                        except IMBridgeError as error:
                            unknown = unknown or outcome_unknown(error)
                            raise
            except AuthenticationError as error:
                if renewal or not error.credentials_expired:
                    raise
                self.provider.renew_credentials()
                failure = None
            except IMBridgeError as error:
                self.disclose(error, request, unknown)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, request: Request, operation: str, attempt: int) -> Any:
        self.clock.sleep(self.pacing_delay(request))
        if self.transport is None:
            raise RuntimeError(f"{self.provider.name} yielded an HTTP request but has no transport")
        wire = self.encode(request, operation, attempt)
        node = self.route(request, wire)
        started = time.perf_counter()
        while True:
            try:
                response = self.transport.send(wire, self.timeout)
                break
            except TransportError as error:
                node = self.reroute(request, wire, node, error)
                if node is None:
                    raise self.failed(error, request, operation, attempt) from None
        if node is not None:
            self.answered(node)
        return self.decode(request, response, operation, attempt, started)


class AsyncExecutor(_Core):
    """Runs flows on asyncio with an async transport (aiohttp by default)."""

    sockets: AsyncSockets | None

    def __init__(self, provider: Provider, transport: AsyncTransport | None, **options: Any) -> None:
        super().__init__(provider, **options)
        self.transport = transport
        self._coalescer = Coalescer(self.request, self.clock)  # requests concurrent flows share (Join)

    async def run(self, operation: str, flow: Flow[T]) -> T:
        budget: _WaitBudget | None = None  # made when first needed: most calls never wait
        try:
            instruction: Instruction = next(flow)
            while True:
                if not isinstance(instruction, Request):  # the rare instructions; a request is the hot path
                    if isinstance(instruction, Call):  # a send on a JSON-RPC transport: its answer confirms it
                        try:
                            answer = await self._call(instruction, operation)
                        except IMBridgeError as error:
                            instruction = flow.throw(error)
                            continue
                        try:
                            instruction = flow.send(answer)
                        except _SHAPE_ERRORS as exc:
                            raise self.shape_error(exc, operation, self.provider.name) from exc
                    elif isinstance(instruction, Sleep):
                        await self.clock.asleep(instruction.seconds)
                        instruction = flow.send(None)
                    elif isinstance(instruction, Join):
                        answer = self._coalescer.join(instruction, operation)
                        del instruction  # the coalescer keeps what it needs; a waiting flow holds less
                        try:
                            shared = await answer
                        except IMBridgeError as error:
                            instruction = flow.throw(error)
                            continue
                        instruction = flow.send(shared)
                    else:
                        budget = budget or self.budget()
                        outcomes = await self._gather(instruction.requests, operation, budget)
                        try:
                            instruction = flow.send(outcomes)
                        except _SHAPE_ERRORS as exc:  # a fanned-out reply read like any other
                            raise self.shape_error(exc, operation, self.provider.name) from exc
                    continue
                # request(), with its first attempt (_attempt's steps) made here: two coroutines less on the path
                # of nearly every request, each a frame that every resumption of the task goes through and an
                # object alive across the I/O (under load, the garbage collector's work grows with those).
                failure: IMBridgeError | None = None
                try:
                    delay = self.pacing_delay(instruction)
                    if delay > 0:
                        await self.clock.asleep(delay)
                    if self.transport is None:
                        raise RuntimeError(f"{self.provider.name} yielded an HTTP request but has no transport")
                    if self.provider.nodes is None:
                        started = time.perf_counter()
                        try:
                            # The encoded request and the raw answer are not kept in this frame: what stays alive
                            # while the flow waits on later steps is what the garbage collector keeps scanning.
                            response = await self.transport.send(self.encode(instruction, operation, 1), self.timeout)
                        except TransportError as error:
                            raise self.failed(error, instruction, operation, 1) from None
                        reply = self.decode(instruction, response, operation, 1, started)
                        del response
                    else:  # several nodes: routed like every attempt
                        reply = await self._exchange(instruction, self.encode(instruction, operation, 1), operation, 1)
                except IMBridgeError as error:
                    failure = error
                if failure is not None:
                    budget = budget or self.budget()
                    try:
                        reply = await self._recover(instruction, operation, budget, failure)
                    except IMBridgeError as error:
                        instruction = flow.throw(error)
                        continue
                try:
                    instruction = flow.send(reply)
                except StopIteration as ended:  # caught here first: most flows end after their one request
                    finished: T = ended.value
                    return finished
                except _SHAPE_ERRORS as exc:
                    raise self.shape_error(exc, operation, self.provider.name) from exc
                reply = None  # the flow has it
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            flow.close()

    async def _call(self, call: Call, operation: str) -> Any:
        """One :class:`Call`, made again only while it was never written (as the RetryPolicy allows)."""
        if self.sockets is None:
            raise RuntimeError(f"{self.provider.name} yielded a JSON-RPC call but the client has no sockets")
        budget: _WaitBudget | None = None
        attempt = 1
        needed = call.setup  # what a new connection needs first: made as any request
        setup = None if needed is None else lambda: self.request(needed, operation)
        while True:
            try:
                return await self.sockets.call(call, self.timeout, setup)
            except IMBridgeError as error:
                budget = budget or self.budget()
                wait = self.call_retry_wait(error, attempt, budget)
                if wait is None:
                    raise self.call_failed(error, call, operation, attempt) from None
            await self.clock.asleep(wait)
            attempt += 1

    async def _gather(self, requests: list[Request], operation: str, budget: _WaitBudget) -> list[Any]:
        limit = asyncio.Semaphore(self.bulk_concurrency)

        async def outcome(request: Request) -> Any:
            async with limit:
                try:
                    return await self.request(request, operation, budget)
                except IMBridgeError as error:
                    return error

        return list(await asyncio.gather(*(outcome(request) for request in requests)))

    async def request(self, request: Request, operation: str, budget: _WaitBudget | None = None) -> Any:
        """One request with pacing, retries (within ``budget``) and a single credential renewal."""
        try:
            return await self._attempt(request, operation, 1)
        except IMBridgeError as error:
            failure = error  # recovered from outside this handler, so that later errors do not chain to it
        return await self._recover(request, operation, budget or self.budget(), failure)

    async def _recover(
        self, request: Request, operation: str, budget: _WaitBudget, failure: IMBridgeError | None
    ) -> Any:
        """The rest of :meth:`request` once its first attempt failed with ``failure``: the retries, and one
        renewal of expired credentials (after which the attempts start again from the first)."""
        unknown: IMBridgeError | None = None  # the first failure after which the server may have acted
        for renewal in (False, True):
            try:
                if failure is None:  # after a renewal
                    try:
                        return await self._attempt(request, operation, 1)
                    except IMBridgeError as error:
                        failure = error
                unknown = unknown or outcome_unknown(failure)
                wait = self.first_failure(failure, request, budget)
                if wait is None:
                    raise failure
                await self.clock.asleep(wait)
                async for attempt in AsyncRetrying(sleep=self.clock.asleep, **self.retrying_kwargs(request, budget)):
                    with attempt:
                        try:
                            return await self._attempt(request, operation, attempt.retry_state.attempt_number + 1)
                        except IMBridgeError as error:
                            unknown = unknown or outcome_unknown(error)
                            raise
            except AuthenticationError as error:
                if renewal or not error.credentials_expired:
                    raise
                self.provider.renew_credentials()
                failure = None
            except IMBridgeError as error:
                self.disclose(error, request, unknown)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, request: Request, operation: str, attempt: int) -> Any:
        """One attempt: pace, encode, send, decode (run() makes the first attempt of its requests itself)."""
        delay = self.pacing_delay(request)
        if delay > 0:
            await self.clock.asleep(delay)
        if self.transport is None:
            raise RuntimeError(f"{self.provider.name} yielded an HTTP request but has no transport")
        return await self._exchange(request, self.encode(request, operation, attempt), operation, attempt)

    async def _exchange(self, request: Request, wire: HTTPRequest, operation: str, attempt: int) -> Any:
        """Send an encoded attempt to its node (moving on from a node that refused it) and decode the answer."""
        assert self.transport is not None
        node = self.route(request, wire)
        started = time.perf_counter()
        while True:
            try:
                response = await self.transport.send(wire, self.timeout)
                break
            except TransportError as error:
                node = self.reroute(request, wire, node, error)
                if node is None:
                    raise self.failed(error, request, operation, attempt) from None
        if node is not None:
            self.answered(node)
        return self.decode(request, response, operation, attempt, started)
