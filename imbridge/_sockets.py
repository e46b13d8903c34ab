"""The only module that opens WebSockets: the JSON-RPC 2.0 connections the drivers keep open for :class:`Call`.

WuKongIM's node answers a send on its JSON-RPC WebSocket only once the message is stored (issue 19), so a send made
there needs no reads to be confirmed. Connections are kept per ``(url, identity)`` (a WuKongIM uid), opened with
the Call's login, and closed after ``idle_seconds`` unused.

- Async (aiohttp, already the async HTTP client): one connection per identity carries any number of requests at
  once, matched to their answers by id by one reader task, which also hands pushed notifications to the Call's
  ``on_notice`` and writes back what it returns.
- Sync (the ``websockets`` library's sync client: httpx has no WebSocket): a connection carries one request at a
  time, so each identity has a stack of idle connections and a thread takes one for each request.

Either way a failure says whether the request may have reached the server: ``may_have_landed=False`` only when it
was never written. A connection that answers with an ``error`` object is closed after that answer: WuKongIM keeps
the bytes it could not decode and answers every later frame on that connection with the same error, processing none
of them (internal/server/proto.go:60-64, 90, 163-165; tests/fixtures/wukong/jsonrpc, scenarios 11 and 12c).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from imbridge import errors
from imbridge._flow import Call, decode_json, encode_json

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

DEFAULT_IDLE_SECONDS = 60.0
"""A connection unused this long is closed: well inside WuKongIM's own ``connIdleTime`` (3 minutes,
internal/options/options.go:406), so the node never closes one while a request is being written to it."""
MAX_FRAME_BYTES = 16 * 2**20
"""The largest frame read: a pushed message carries its payload, whatever its size."""
_LOGIN_ID = "login"


def _frame(request: Mapping[str, Any], request_id: str | None) -> str:
    """A JSON-RPC 2.0 text frame; ids are strings (WuKongIM decodes ``id`` into a Go string: pkg/jsonrpc/types.go)."""
    body = {"jsonrpc": "2.0", **request}
    if request_id is not None:
        body["id"] = request_id
    return encode_json(body).decode()


def _read_frame(text: str | bytes) -> dict[str, Any] | None:
    """A frame as a JSON object, or None for anything else (nothing in it can be matched to a request)."""
    try:
        frame = decode_json(text)
    except ValueError:
        return None
    return frame if type(frame) is dict else None


def _failure(call: Call, why: str, *, landed: bool, timed_out: bool = False) -> errors.TransportError:
    """The error of a call that failed: ``landed`` once its request was written (the server may have it)."""
    kind = errors.TimeoutError if timed_out else errors.TransportError
    return kind(f"{call.api or call.method} over {call.url}: {why}", may_have_landed=landed)


def _never_sent(call: Call, why: str) -> errors.TransportError:
    return _failure(call, why, landed=False)


def _set_up_failed(call: Call, error: errors.IMBridgeError) -> errors.TransportError:
    """The call fails as never written when what its connection needs could not be made (the error is its cause)."""
    what = call.setup.label() if call.setup is not None else "its setup"
    return _never_sent(call, f"{what}, which a new connection needs first, failed: {type(error).__name__}: {error}")


# ---------------------------------------------------------------------------------------------
# Async
# ---------------------------------------------------------------------------------------------


class _AsyncLink:
    """One open connection and the requests waiting for their answers on it."""

    __slots__ = ("closed", "count", "idle_timer", "last_used", "reader", "socket", "waiting")

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, now: float) -> None:
        self.socket = socket
        self.waiting: dict[str, asyncio.Future[Any]] = {}
        self.count = 0
        self.last_used = now
        self.closed = False
        self.reader: asyncio.Task[None] | None = None
        self.idle_timer: asyncio.TimerHandle | None = None


def _expire(answer: asyncio.Future[Any], call: Call, timeout: float) -> None:
    if not answer.done():
        answer.set_exception(_failure(call, f"no answer within {timeout:g} s", landed=True, timed_out=True))


class AsyncSockets:
    """The async client's JSON-RPC connections (one per identity, shared by every request of that identity)."""

    def __init__(self, *, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self._idle_seconds = idle_seconds
        self._session: aiohttp.ClientSession | None = None
        self._links: dict[tuple[str, str], _AsyncLink] = {}
        self._opening: dict[tuple[str, str], asyncio.Future[_AsyncLink]] = {}
        self._closing: set[asyncio.Task[Any]] = set()  # closes of idle connections, kept until done

    async def call(self, call: Call, timeout: float, setup: Callable[[], Awaitable[Any]] | None = None) -> Any:
        """The answer to one request (the whole JSON-RPC answer object). ``setup`` makes ``call.setup`` before a new
        connection is opened."""
        key = (call.url, call.identity)
        link = self._links.get(key)
        if link is None or link.closed:
            link = await self._link(call, key, timeout, setup)
        loop = asyncio.get_running_loop()
        link.count += 1
        request_id = str(link.count)
        answer: asyncio.Future[Any] = loop.create_future()
        link.waiting[request_id] = answer
        link.last_used = loop.time()
        try:
            # aiohttp raises here only before writing (a closing transport): such a request never left.
            await link.socket.send_str(_frame({"method": call.method, "params": call.params}, request_id))
        except (ConnectionError, aiohttp.ClientError) as exc:
            link.waiting.pop(request_id, None)
            raise _never_sent(call, f"the connection closed before the request was written ({exc})") from None
        timer = loop.call_later(timeout, _expire, answer, call, timeout)
        try:
            return await answer
        finally:
            timer.cancel()
            link.waiting.pop(request_id, None)

    async def _link(
        self, call: Call, key: tuple[str, str], timeout: float, setup: Callable[[], Awaitable[Any]] | None
    ) -> _AsyncLink:
        """The identity's connection, opened once however many requests ask for it meanwhile."""
        opening = self._opening.get(key)
        if opening is None:
            opening = self._opening[key] = asyncio.ensure_future(self._open(call, key, timeout, setup))
            opening.add_done_callback(lambda done: self._opened(key, done))
        return await asyncio.shield(opening)

    def _opened(self, key: tuple[str, str], done: asyncio.Future[_AsyncLink]) -> None:
        if self._opening.get(key) is done:
            del self._opening[key]
        if not done.cancelled():
            done.exception()  # retrieved here: every waiter may have gone (cancelled) before it ended

    async def _open(
        self, call: Call, key: tuple[str, str], timeout: float, setup: Callable[[], Awaitable[Any]] | None
    ) -> _AsyncLink:
        if setup is not None:
            try:
                await setup()
            except errors.IMBridgeError as error:
                raise _set_up_failed(call, error) from error
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            socket = await asyncio.wait_for(
                self._session.ws_connect(call.url, max_msg_size=MAX_FRAME_BYTES, autoping=True), timeout
            )
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:  # noqa: UP041 - builtin is shadowed
            raise _never_sent(call, f"cannot open the WebSocket ({type(exc).__name__}: {exc})") from None
        try:
            await socket.send_str(_frame(call.login(), _LOGIN_ID))
            try:
                message = await asyncio.wait_for(socket.receive(), timeout)
            except (ConnectionError, aiohttp.ClientError, asyncio.TimeoutError):  # noqa: UP041
                answer = None  # WuKongIM answers nothing to a refused token (see check_login)
            else:
                answer = _read_frame(message.data) if message.type is aiohttp.WSMsgType.TEXT else None
            call.check_login(answer)
            if answer is None:
                raise _never_sent(call, "the login was not answered")
        except BaseException:
            await socket.close()
            raise
        loop = asyncio.get_running_loop()
        link = self._links[key] = _AsyncLink(socket, loop.time())
        link.reader = loop.create_task(self._read(link, key, call))
        link.idle_timer = loop.call_later(self._idle_seconds, self._idle_check, link, key)
        return link

    async def _read(self, link: _AsyncLink, key: tuple[str, str], call: Call) -> None:
        """Hand each answer to its request and each notification to ``on_notice``, until the connection ends; then
        fail the requests still waiting (they were written: they may have landed)."""
        socket, waiting, on_notice = link.socket, link.waiting, call.on_notice
        try:
            async for message in socket:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    if message.type is aiohttp.WSMsgType.ERROR:
                        break
                    continue
                frame = _read_frame(message.data)
                if frame is None:
                    continue
                request_id = frame.get("id")
                if request_id is not None or "error" in frame:
                    answer = waiting.get(request_id) if request_id is not None else None
                    if answer is not None and not answer.done():
                        answer.set_result(frame)
                    if "error" in frame:
                        break  # the connection is stuck (see the module's notes): the others are failed below
                    continue
                reply = on_notice(frame)
                if reply is not None:
                    await socket.send_str(_frame(reply, None))
        except (ConnectionError, aiohttp.ClientError):
            pass
        finally:
            self._forget(link, key)
            for request_id, answer in list(waiting.items()):
                if not answer.done():
                    answer.set_exception(_failure(
                        call, f"the connection was lost before request {request_id} was answered", landed=True))
            if not socket.closed:
                await socket.close()

    def _forget(self, link: _AsyncLink, key: tuple[str, str]) -> None:
        link.closed = True
        if self._links.get(key) is link:
            del self._links[key]
        if link.idle_timer is not None:
            link.idle_timer.cancel()

    def _idle_check(self, link: _AsyncLink, key: tuple[str, str]) -> None:
        loop = asyncio.get_running_loop()
        idle_for = loop.time() - link.last_used
        if link.closed:
            return
        if idle_for < self._idle_seconds or link.waiting:
            link.idle_timer = loop.call_later(max(self._idle_seconds - idle_for, 0.05), self._idle_check, link, key)
            return
        self._forget(link, key)
        closing = loop.create_task(link.socket.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close every connection (requests still waiting fail as lost) and the session."""
        links = list(self._links.items())
        for key, link in links:
            self._forget(link, key)
            await link.socket.close()
        readers = [link.reader for _key, link in links if link.reader is not None]
        if readers:
            await asyncio.gather(*readers, return_exceptions=True)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


# ---------------------------------------------------------------------------------------------
# Sync
# ---------------------------------------------------------------------------------------------


class _SyncLink:
    __slots__ = ("count", "last_used", "socket")

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.count = 0
        self.last_used = time.monotonic()


class SyncSockets:
    """The sync client's JSON-RPC connections: per identity, a stack of idle ones; a thread takes one per request."""

    def __init__(self, *, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> None:
        self._idle_seconds = idle_seconds
        self._idle: dict[tuple[str, str], list[_SyncLink]] = {}
        self._lock = threading.Lock()

    def call(self, call: Call, timeout: float, setup: Callable[[], Any] | None = None) -> Any:
        """The answer to one request (the whole JSON-RPC answer object). ``setup`` makes ``call.setup`` before a new
        connection is opened."""
        from websockets.exceptions import ConnectionClosed
        from websockets.protocol import State

        key = (call.url, call.identity)
        link = self._take(key)
        while link is not None and link.socket.protocol.state is not State.OPEN:
            link.socket.close()  # closed by the server meanwhile: nothing was written to it
            link = self._take(key)
        if link is None:
            link = self._open(call, timeout, setup)
        link.count += 1
        request_id = str(link.count)
        kept = False
        try:
            try:
                link.socket.send(_frame({"method": call.method, "params": call.params}, request_id))
            except (ConnectionClosed, OSError) as exc:  # part of it may have gone: the server may have it
                raise _failure(call, f"the connection failed while the request was written ({exc})",
                               landed=True) from None
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                try:
                    if left <= 0:
                        raise TimeoutError
                    text = link.socket.recv(timeout=left)
                except TimeoutError:
                    raise _failure(call, f"no answer within {timeout:g} s", landed=True, timed_out=True) from None
                except (ConnectionClosed, OSError):
                    raise _failure(call, "the connection was lost before the request was answered",
                                   landed=True) from None
                frame = _read_frame(text)
                if frame is None:
                    continue
                if frame.get("id") == request_id:
                    kept = "error" not in frame  # an error leaves the connection stuck (see the module's notes)
                    return frame
                if "error" in frame:
                    raise _failure(call, f"the connection failed before the request was answered "
                                         f"({str(frame)[:200]})", landed=True)  # fmt: skip
                if "id" not in frame:
                    reply = call.on_notice(frame)
                    if reply is not None:
                        link.socket.send(_frame(reply, None))
        finally:
            if kept:
                link.last_used = time.monotonic()
                with self._lock:
                    self._idle.setdefault(key, []).append(link)
            else:
                link.socket.close()

    def _take(self, key: tuple[str, str]) -> _SyncLink | None:
        """An idle connection of this identity (the most recently used), closing those idle too long."""
        stale: list[_SyncLink] = []
        with self._lock:
            links = self._idle.get(key)
            link = links.pop() if links else None
            horizon = time.monotonic() - self._idle_seconds
            for other_key, others in list(self._idle.items()):
                while others and others[0].last_used < horizon:
                    stale.append(others.pop(0))
                if not others:
                    del self._idle[other_key]
        for old in stale:
            old.socket.close()
        if link is not None and link.last_used < horizon:
            link.socket.close()
            return None
        return link

    def _open(self, call: Call, timeout: float, setup: Callable[[], Any] | None) -> _SyncLink:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        if setup is not None:
            try:
                setup()
            except errors.IMBridgeError as error:
                raise _set_up_failed(call, error) from error
        try:
            # No keepalive pings (requests come often or the connection is closed as idle), no compression.
            socket = connect(call.url, open_timeout=timeout, close_timeout=1, ping_interval=None, compression=None,
                             max_size=MAX_FRAME_BYTES)  # fmt: skip
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise _never_sent(call, f"cannot open the WebSocket ({type(exc).__name__}: {exc})") from None
        try:
            try:
                socket.send(_frame(call.login(), _LOGIN_ID))
                answer = _read_frame(socket.recv(timeout=timeout))
            except (ConnectionClosed, TimeoutError, OSError):
                answer = None  # WuKongIM answers nothing to a refused token (see check_login)
            call.check_login(answer)
            if answer is None:
                raise _never_sent(call, "the login was not answered")
        except BaseException:
            socket.close()
            raise
        return _SyncLink(socket)

    def close(self) -> None:
        """Close every idle connection (one in use is closed by its thread when its request ends)."""
        with self._lock:
            links = [link for stack in self._idle.values() for link in stack]
            self._idle.clear()
        for link in links:
            link.socket.close()
