"""What both emulators share: the request/reply types, an in-process httpx transport, a loopback server.

An emulator is an object with ``handle(EmulatorRequest) -> EmulatorReply``. The same object serves an
``IMClient`` in-process (``http_client=httpx.Client(transport=emulator.transport())``, or
``httpx.AsyncClient(transport=emulator.transport())``) and real HTTP clients on 127.0.0.1
(:func:`serve`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import httpx


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
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serve(emulator: Emulator, port: int = 0) -> Iterator[LoopbackServer]:
    """Serve ``emulator`` on 127.0.0.1 (a free port by default) for the duration of the block."""
    server = LoopbackServer(emulator, port).start()
    try:
        yield server
    finally:
        server.stop()
