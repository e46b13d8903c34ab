"""A fault-injecting HTTP proxy on 127.0.0.1, between a client and an emulator or a real server.

    plan = FaultPlan({Fault.RESET_AFTER: 0.2}, seed=7)
    with FaultProxy("http://127.0.0.1:5001", plan) as proxy:
        im = IMClient("wukong", base_url=proxy.url, ...)
        ...
    proxy.counts[Fault.RESET_AFTER]     # how many requests got that fault

Each request the proxy reads is given at most one fault, drawn from a seeded RNG, so a sequential client
meets the same faults in the same places on every run. Faults that say "after" forward the request first:
the server processes it and only the answer is lost or spoiled, which is what makes a retry dangerous.

The proxy speaks just enough HTTP/1.1 for that (Content-Length and chunked bodies, keep-alive); it runs an
asyncio loop in a daemon thread, so it serves sync and async clients alike. Importable without pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

__all__ = ["TENCENT_FREQUENCY_BODY", "Fault", "FaultPlan", "FaultProxy", "ProxyEvent"]


class Fault(StrEnum):
    """What can go wrong with one request. Each says whether the server saw the request."""

    RESET_BEFORE = "reset_before"
    """The connection is reset before the request is forwarded: the server never sees it."""
    RESET_AFTER = "reset_after"
    """The request is forwarded and processed; the client's connection is reset instead of answered."""
    STATUS_5XX = "status_5xx"
    """Answered with ``plan.status`` (503 by default) without forwarding."""
    GATEWAY_5XX = "gateway_5xx"
    """Forwarded and processed, then the answer is replaced by a 502 (a gateway losing the upstream)."""
    RATE_LIMIT = "rate_limit"
    """HTTP 429 without Retry-After, not forwarded."""
    RATE_LIMIT_RETRY_AFTER = "rate_limit_retry_after"
    """HTTP 429 with ``Retry-After: plan.retry_after``, not forwarded."""
    FREQUENCY_BODY = "frequency_body"
    """HTTP 200 carrying ``plan.frequency_body`` (Tencent's body-coded frequency control), not forwarded."""
    READ_TIMEOUT = "read_timeout"
    """Forwarded and processed; the answer is held for ``plan.hold`` seconds (past the client's timeout)."""
    TRUNCATED = "truncated"
    """Forwarded and processed; half the body is sent under the full Content-Length, then the connection closes."""
    MALFORMED = "malformed"
    """Forwarded and processed; the body is replaced by one that is not what the API answers (status kept)."""
    SLOW = "slow"
    """Forwarded; the answer is delayed by ``plan.slow`` seconds (within the client's timeout)."""
    HOLD_BEFORE = "hold_before"
    """The request is held ``plan.hold_before`` seconds, then forwarded and processed whatever the client did
    meanwhile (a congested link, a paused proxy): a client that gave up and sent again finds its first request
    landing late. :meth:`FaultProxy.settle` waits until every held request was forwarded."""


#: What Tencent IM answers when a command exceeds its frequency limit (HTTP 200, code in the body).
TENCENT_FREQUENCY_BODY = b'{"ActionStatus":"FAIL","ErrorInfo":"REST call frequency limit exceeded","ErrorCode":60007}'

#: Bodies a broken gateway or server might send instead of the API's answer.
MALFORMED_BODIES = (
    b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    b'{"ActionStatus":"OK","ErrorCode":0,"data":{"message_id":',
    b"\x00\xff\xfe garbage \x80",
    b"null",
    b"[]",
    b'{"unexpected":true}',
)


@dataclass(frozen=True)
class FaultPlan:
    """Which faults, how often (a probability per request), and their parameters."""

    faults: Mapping[Fault, float]
    seed: int = 0
    paths: tuple[str, ...] = ()
    """Only requests whose path starts with one of these may get a fault (all requests when empty)."""
    status: int = 503
    retry_after: str = "1"
    hold: float = 5.0
    slow: float = 0.05
    hold_before: float = 2.0
    frequency_body: bytes = TENCENT_FREQUENCY_BODY

    def __post_init__(self) -> None:
        if sum(self.faults.values()) > 1.0 or any(rate < 0 for rate in self.faults.values()):
            raise ValueError("fault rates must be >= 0 and sum to at most 1")


@dataclass
class ProxyEvent:
    """One request the proxy read. ``waited`` is, for a held answer, how long the client kept waiting."""

    index: int
    method: str
    path: str
    fault: Fault | None
    received: float
    waited: float | None = None
    forwarded: float | None = None
    """For a request held before forwarding: when it was forwarded (None while held, or if it never was)."""


@dataclass
class _Message:
    head: str  # request line or status line
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name), None)

    def encode(self, body: bytes | None = None, *, length: int | None = None) -> bytes:
        """Re-serialized with a Content-Length (chunked bodies arrive decoded)."""
        body = self.body if body is None else body
        lines = [self.head]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in ("content-length", "transfer-encoding")]
        lines.append(f"Content-Length: {len(body) if length is None else length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_message(reader: asyncio.StreamReader, *, response_to: str | None = None) -> _Message | None:
    """One HTTP/1.1 message, or None at a clean end of stream."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise ConnectionError("incomplete HTTP head") from None
        return None
    lines = raw.decode("latin-1").split("\r\n")
    message = _Message(lines[0])
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            message.headers.append((name.strip(), value.strip()))
    status = int(lines[0].split()[1]) if response_to is not None else 0
    if response_to == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return message
    if (message.header("transfer-encoding") or "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        message.body = b"".join(chunks)
    elif message.header("content-length") is not None:
        message.body = await reader.readexactly(int(message.header("content-length") or 0))
    elif response_to is not None:
        message.body = await reader.read()  # delimited by the end of the connection
    return message


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), as a crashed peer or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """A loopback HTTP proxy to ``upstream_url`` that injects the faults of ``plan``.

    Use it as a context manager; ``url`` is where clients connect. ``events`` lists every request read
    (in arrival order), ``counts`` how many got each fault.
    """

    def __init__(self, upstream_url: str, plan: FaultPlan, *, port: int = 0) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("the upstream must be an http:// URL")
        self.upstream = (parts.hostname, parts.port or 80)
        self.plan = plan
        self.events: list[ProxyEvent] = []
        self.counts: Counter[Fault] = Counter()
        self._rng = random.Random(plan.seed)
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._held = 0  # requests held before forwarding, not forwarded yet
        self._released = threading.Condition(self._lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def requests(self) -> int:
        """How many requests the proxy has read so far."""
        return len(self.events)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="imbridge-fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def settle(self, timeout: float = 60.0) -> int:
        """Wait until every request held before forwarding (HOLD_BEFORE) has been forwarded and answered
        upstream, so the server's state includes them; returns how many are still held (0 unless timed out)."""
        deadline = time.monotonic() + timeout
        with self._released:
            while self._held and (left := deadline - time.monotonic()) > 0:
                self._released.wait(left)
            return self._held

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self._port))
        self._port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    # -- one connection -------------------------------------------------------------------------

    def _decide(self, method: str, path: str) -> ProxyEvent:
        with self._lock:
            fault = None
            if not self.plan.paths or path.startswith(self.plan.paths):
                draw, total = self._rng.random(), 0.0
                for kind, rate in self.plan.faults.items():
                    total += rate
                    if draw < total:
                        fault = kind
                        self.counts[kind] += 1
                        break
            event = ProxyEvent(len(self.events), method, path, fault, time.monotonic())
            self.events.append(event)
            return event

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                method, target = request.head.split()[:2]
                event = self._decide(method, urlsplit(target).path)
                fault = event.fault
                if fault is Fault.RESET_BEFORE:
                    _reset(writer)
                    return
                canned = self._canned(fault)
                if canned is not None:
                    writer.write(canned)
                    await writer.drain()
                    continue
                if fault is Fault.HOLD_BEFORE:
                    late = await self._hold_then_forward(request, method, event)
                    if late is None:
                        _reset(writer)
                        return
                    writer.write(late.encode())  # to a client still waiting; one that gave up is gone
                    await writer.drain()
                    continue
                if upstream is None:
                    upstream = await asyncio.open_connection(*self.upstream)
                upstream[1].write(request.encode())
                await upstream[1].drain()
                answer = await _read_message(upstream[0], response_to=method)
                if answer is None:
                    raise ConnectionError("the upstream closed the connection")
                if (answer.header("connection") or "").lower() == "close":
                    upstream[1].close()
                    upstream = None
                if not await self._answer(fault, answer, event, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            _reset(writer)
        except asyncio.CancelledError:
            return  # the proxy is stopping; a re-raise would only be logged by asyncio's stream callback
        finally:
            if upstream is not None:
                upstream[1].close()
            writer.close()

    async def _hold_then_forward(self, request: _Message, method: str, event: ProxyEvent) -> _Message | None:
        """Hold ``request``, then forward it on a connection of its own: the server processes it whatever the
        client did meanwhile. The upstream's answer (None if there was none)."""
        with self._lock:
            self._held += 1
        try:
            await asyncio.sleep(self.plan.hold_before)
            reader, writer = await asyncio.open_connection(*self.upstream)
            try:
                writer.write(request.encode())
                await writer.drain()
                event.forwarded = time.monotonic()
                return await _read_message(reader, response_to=method)
            finally:
                writer.close()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            return None  # the upstream went away (event.forwarded says whether the request was written)
        finally:
            with self._released:
                self._held -= 1
                self._released.notify_all()

    def _canned(self, fault: Fault | None) -> bytes | None:
        """The answer to a request that is not forwarded, or None to forward it."""
        plan = self.plan
        if fault is Fault.STATUS_5XX:
            return _Message(f"HTTP/1.1 {plan.status} Service Unavailable", [("Content-Type", "text/plain")]).encode(
                b"upstream unavailable"
            )
        if fault is Fault.RATE_LIMIT:
            return _Message("HTTP/1.1 429 Too Many Requests", [("Content-Type", "text/plain")]).encode(b"slow down")
        if fault is Fault.RATE_LIMIT_RETRY_AFTER:
            headers = [("Content-Type", "text/plain"), ("Retry-After", plan.retry_after)]
            return _Message("HTTP/1.1 429 Too Many Requests", headers).encode(b"slow down")
        if fault is Fault.FREQUENCY_BODY:
            return _Message("HTTP/1.1 200 OK", [("Content-Type", "application/json")]).encode(plan.frequency_body)
        return None

    async def _answer(
        self,
        fault: Fault | None,
        answer: _Message,
        event: ProxyEvent,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Send (or spoil) the upstream's answer; False when the client connection is finished."""
        if fault is Fault.RESET_AFTER:
            _reset(writer)
            return False
        if fault is Fault.GATEWAY_5XX:
            writer.write(_Message("HTTP/1.1 502 Bad Gateway", [("Content-Type", "text/plain")]).encode(b"bad gateway"))
        elif fault is Fault.TRUNCATED:
            writer.write(answer.encode(answer.body[: len(answer.body) // 2], length=len(answer.body)))
            await writer.drain()
            return False
        elif fault is Fault.MALFORMED:
            with self._lock:
                body = self._rng.choice(MALFORMED_BODIES)
            writer.write(answer.encode(body))
        elif fault is Fault.READ_TIMEOUT:
            # Hold the answer; a client that gives up closes the connection, which ends the wait early.
            started = time.monotonic()
            try:
                closed = await asyncio.wait_for(reader.read(1), self.plan.hold)
            except TimeoutError:
                closed = b"still open"
            event.waited = time.monotonic() - started
            if not closed:
                return False
            writer.write(answer.encode())
        elif fault is Fault.SLOW:
            await asyncio.sleep(self.plan.slow)
            writer.write(answer.encode())
        else:
            writer.write(answer.encode())
        await writer.drain()
        return True
