"""What both emulators share: the request/reply types, an in-process httpx transport, a loopback server.

An emulator is an object with ``handle(EmulatorRequest) -> EmulatorReply``. The same object serves an
``IMClient`` in-process (``http_client=httpx.Client(transport=emulator.transport())``, or
``httpx.AsyncClient(transport=emulator.transport())``) and real HTTP clients on 127.0.0.1
(:func:`serve`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

if TYPE_CHECKING:
    from imbridge.events.base import InboundRequest


@dataclass(frozen=True, slots=True)
class EmulatorRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(frozen=True, slots=True)
class EmulatorReply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=lambda: {"content-type": "application/json"})

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> EmulatorReply:
        return cls(status, json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())

    @classmethod
    def text(cls, text: str, status: int) -> EmulatorReply:
        return cls(status, text.encode(), {"content-type": "text/plain; charset=utf-8"})


class Emulator(Protocol):
    def handle(self, request: EmulatorRequest) -> EmulatorReply: ...


class EmulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport (sync and async) that answers from an emulator, in process."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._lock = threading.Lock()

    def _answer(self, request: httpx.Request, body: bytes) -> httpx.Response:
        incoming = EmulatorRequest(
            method=request.method,
            path=request.url.path,
            query=dict(parse_qsl(request.url.query.decode(), keep_blank_values=True)),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        with self._lock:  # emulators are single-threaded state machines
            reply = self.emulator.handle(incoming)
        return httpx.Response(reply.status, headers=dict(reply.headers), content=reply.body)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, request.read())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request, await request.aread())


def _handler_class(emulator: Emulator, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the vendors' servers do
        # Headers and body go out in separate writes: with Nagle on, the body waits for the client's
        # delayed ACK (40 ms on Linux) on every keep-alive request.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            request = EmulatorRequest(
                method=self.command,
                path=url.path,
                query=dict(parse_qsl(url.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            with lock:
                reply = emulator.handle(request)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            return  # request bodies are user data; say nothing by default

    return Handler


class _Server(ThreadingHTTPServer):
    # The stdlib's listen backlog is 5: 64 clients connecting at once would be reset by the kernel.
    request_queue_size = 1024


class LoopbackServer:
    """An emulator served over real HTTP on 127.0.0.1."""

    def __init__(self, emulator: Emulator, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _handler_class(emulator, threading.Lock()))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="imbridge-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until it is interrupted (Ctrl-C); then :meth:`stop` closes the socket."""
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:  # served by start(): end that loop and wait for it
            self._server.shutdown()
            self._thread.join()
        # Otherwise the loop ran in the caller's thread and has ended (or never began: a Ctrl-C before it
        # started). shutdown() would then wait forever for a loop that is not running.
        self._server.server_close()


@contextmanager
def serve(emulator: Emulator, port: int = 0) -> Iterator[LoopbackServer]:
    """Serve ``emulator`` on 127.0.0.1 (a free port by default) for the duration of the block."""
    server = LoopbackServer(emulator, port).start()
    try:
        yield server
    finally:
        server.stop()


# -- callbacks (webhooks) an emulator sends ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Callback:
    """One webhook request an emulator sends: query and body, to the configured target."""

    query: Mapping[str, str]
    body: bytes
    attempts: int = 1
    """How many times to try before giving up (the vendor's retry rule for this event)."""
    retry_delay: float = 1.0


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    status: int
    body: bytes


CallbackTarget = Callable[["InboundRequest"], Any]
"""An in-process receiver (``EventReceiver.deliver``): takes the request, returns something with ``status``
and ``body``."""


class CallbackDispatcher:
    """Sends an emulator's webhooks to a URL (POST over HTTP) or to an in-process receiver.

    ``send_now`` delivers synchronously (Tencent's before-send callbacks, which decide the send);
    ``enqueue`` hands a callback to a background thread that delivers in order (the "after" events,
    sent once the API call has been answered, as the vendors do). ``drain`` waits until everything
    queued so far was delivered or given up.
    """

    def __init__(self, target: str | CallbackTarget, *, timeout: float = 2.0) -> None:
        self._target = target
        self._timeout = timeout
        self._client: httpx.Client | None = httpx.Client(timeout=timeout) if isinstance(target, str) else None
        self._queue: list[Callable[[], None]] = []
        self._condition = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.delivered: list[tuple[Callback, CallbackAnswer | None]] = []
        """Every attempt made and its answer (None: no answer), for tests and demos."""

    def send_now(self, callback: Callback) -> CallbackAnswer | None:
        """One attempt now; None when the target could not be reached or did not answer in time."""
        answer: CallbackAnswer | None
        try:
            if self._client is not None:
                assert isinstance(self._target, str)
                separator = "&" if "?" in self._target else "?"
                url = self._target + separator + urlencode(dict(callback.query))
                response = self._client.post(url, content=callback.body, headers={"content-type": "application/json"})
                answer = CallbackAnswer(response.status_code, response.content)
            else:
                from imbridge.events.base import InboundRequest

                path = "/"
                request = InboundRequest("POST", path, {"content-type": "application/json"}, dict(callback.query),
                                         callback.body, "127.0.0.1")  # fmt: skip
                reply = self._target(request)  # type: ignore[operator]
                answer = CallbackAnswer(int(reply.status), bytes(reply.body))
        except httpx.HTTPError:
            answer = None
        self.delivered.append((callback, answer))
        return answer

    def deliver(self, callback: Callback) -> bool:
        """Up to ``callback.attempts`` tries, ``retry_delay`` apart; True once answered 200."""
        for attempt in range(callback.attempts):
            answer = self.send_now(callback)
            if answer is not None and answer.status == 200:
                return True
            if attempt + 1 < callback.attempts:
                time.sleep(callback.retry_delay)
        return False

    def deliverer(self, callback: Callback) -> Callable[[], None]:
        """A job that delivers ``callback`` (with its retries), for :meth:`enqueue`."""

        def job() -> None:
            self.deliver(callback)

        return job

    def enqueue(self, job: Callable[[], None]) -> None:
        """Run ``job`` (which sends callbacks) on the delivery thread, after the jobs queued before it."""
        with self._condition:
            if self._closed:
                return
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="imbridge-emulator-callbacks", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._closed:
                    self._condition.wait()
                if not self._queue:
                    return
                job = self._queue.pop(0)
                self._busy = True
            try:
                job()
            except Exception:  # a failed delivery must not stop the ones after it
                pass
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued job has run; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._client is not None:
            self._client.close()


# -- a JSON-RPC WebSocket an emulator serves (WuKongIM's wsAddr) --------------------------------------------------


class JsonRpcEndpoint(Protocol):
    """One connection's state on an emulated JSON-RPC WebSocket (:class:`imbridge.emulators.wukong.JsonRpcSession`)."""

    def receive(self, text: str | bytes) -> tuple[list[dict[str, Any]], bool]: ...

    def close(self) -> None: ...


class JsonRpcServer:
    """An emulator's JSON-RPC WebSocket on 127.0.0.1 (the ``websockets`` library's threaded server).

    ``fault``, when set, is asked about every frame a client sends and may answer how the network fails it:
    ``"drop"`` (the connection dies before the frame reaches the emulator: never processed), ``"lose answer"``
    (processed, then the connection dies before the answer leaves), ``"hold"`` (processed, answered after
    ``hold_seconds``: a congested link on the way back) or ``"hold before"`` (reaches the emulator after
    ``hold_seconds``: a congested link on the way there, the frames behind it waiting too). A connection dies as a
    network failure does: its socket shut, with no WebSocket close frame (as the real node drops a connection,
    recording.json scenarios 09 and 14)."""

    def __init__(self, open_session: Callable[[Callable[[dict[str, Any]], None]], JsonRpcEndpoint],
                 port: int = 0) -> None:  # fmt: skip
        from websockets.sync.server import serve as serve_websocket

        self._open_session = open_session
        self._server = serve_websocket(self._handle, "127.0.0.1", port, compression=None, max_size=2**24)
        self.fault: Callable[[dict[str, Any]], str | None] | None = None
        self.hold_seconds = 0.0
        self.connections_opened = 0
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"

    def start(self) -> JsonRpcServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="imbridge-jsonrpc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()

    def _handle(self, connection: Any) -> None:
        import socket

        from websockets.exceptions import ConnectionClosed

        writing = threading.Lock()  # pushes come from the threads of other connections

        def send(frame: dict[str, Any]) -> None:
            with writing, suppress(ConnectionClosed):
                connection.send(json.dumps(frame, ensure_ascii=False, separators=(",", ":")))

        def die() -> None:
            with suppress(OSError):
                connection.socket.shutdown(socket.SHUT_RDWR)

        self.connections_opened += 1
        session = self._open_session(send)
        try:
            for text in connection:
                fault = None
                if self.fault is not None:
                    try:
                        parsed = json.loads(text)
                    except ValueError:
                        parsed = None
                    fault = self.fault(parsed) if isinstance(parsed, dict) else None
                if fault == "drop":
                    die()
                    break
                if fault == "hold before":
                    time.sleep(self.hold_seconds)
                answers, close = session.receive(text)
                if close or fault == "lose answer":
                    die()
                    break
                if fault == "hold":
                    time.sleep(self.hold_seconds)
                for answer in answers:
                    send(answer)
        except ConnectionClosed:
            pass
        finally:
            session.close()


@contextmanager
def serve_jsonrpc(
    open_session: Callable[[Callable[[dict[str, Any]], None]], JsonRpcEndpoint], port: int = 0
) -> Iterator[JsonRpcServer]:
    """Serve an emulator's JSON-RPC WebSocket on 127.0.0.1 for the duration of the block:
    ``serve_jsonrpc(emulator.jsonrpc)`` for a :class:`~imbridge.emulators.wukong.WukongEmulator`."""
    server = JsonRpcServer(open_session, port).start()
    try:
        yield server
    finally:
        server.stop()
