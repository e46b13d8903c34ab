"""Inbound events under test: one receiver per contract test, fed however the provider under test delivers.

* ``local``: the provider's in-process, signed deliveries (``EventReceiver("local").attach``);
* an emulator: the emulator's callbacks, in process;
* live or record (WuKongIM): the real server POSTs to a loopback HTTP server this module runs on
  ``IMBRIDGE_CONTRACT_WEBHOOK_PORT`` (point ``webhook.httpAddr`` at ``http://127.0.0.1:<port>/hook/<secret>``,
  the secret in ``IMBRIDGE_WUKONG_WEBHOOK_SECRET``); in record mode every request is saved next to the
  test's HTTP cassette (``<test>.events.json``), its secrets replaced by placeholders;
* replay: those saved requests, handed to the receiver when the test waits for events.

Every request reaches the receiver's public entry point, :meth:`EventReceiver.deliver`, so what is tested
is what an app mounts: verification, parsing, deduplication.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from imbridge.events import BaseEvent, EventReceiver, InboundRequest, Reply

__all__ = ["TENCENT_TEST_TOKEN", "EventChannel", "WebhookServer"]

E = TypeVar("E", bound=BaseEvent)

#: The callback token of emulator runs and recordings: public (it only signs test traffic).
TENCENT_TEST_TOKEN = "imbridge-contract-callback-token"
SECRET_PLACEHOLDER = "<WEBHOOK_SECRET>"
SIGN_PLACEHOLDER = "<SIGN>"
_SETTLE = 0.4
"""Seconds without a new delivery after which a live run considers the vendor done sending."""


class EventChannel:
    """What a contract test sees of inbound events: the receiver, what reached it, and ways to resend."""

    def __init__(self, receiver: EventReceiver, *, provider: str, secret: str, clock: Callable[[], float],
                 recording: Path | None = None, replaying: Path | None = None,
                 drain: Callable[[], object] | None = None, live: bool = False) -> None:  # fmt: skip
        self.receiver = receiver
        self.provider = provider
        self.secret = secret
        self.clock = clock
        self.received: list[BaseEvent] = []
        self.exchanges: list[tuple[InboundRequest, Reply]] = []
        """Every genuine request that reached the receiver, with its reply, in the order they were answered."""
        self._lock = threading.Lock()
        self._recording = recording
        self._pending_replay = self._load(replaying) if replaying is not None else []
        self._drain = drain
        self.live = live
        """Deliveries come from a real server, asynchronously: waiting means waiting for them."""
        self._last_arrival = time.monotonic()
        receiver.on()(self._collect)

    def _collect(self, event: BaseEvent) -> None:
        with self._lock:
            self.received.append(event)

    # -- arrivals -------------------------------------------------------------------------------

    def deliver(self, request: InboundRequest) -> Reply:
        """The sink every genuine delivery goes through (emulator, provider, loopback server)."""
        with self._lock:
            self._last_arrival = time.monotonic()
        reply = self.receiver.deliver(request)
        with self._lock:
            self.exchanges.append((request, reply))
            self._last_arrival = time.monotonic()
        return reply

    @property
    def deliveries(self) -> list[InboundRequest]:
        with self._lock:
            return [request for request, _ in self.exchanges]

    def _settle(self, deadline: float) -> None:
        """Let what is on its way arrive: the emulator's queue, a recording's requests, or (live) the
        server's, until none came for a moment."""
        if self._drain is not None:
            self._drain()
        if self._pending_replay:
            pending, self._pending_replay = self._pending_replay, []
            for request in pending:
                self.deliver(request)
        while self.live and time.monotonic() < deadline and time.monotonic() - self._last_arrival < _SETTLE:
            time.sleep(0.05)

    def settle(self, timeout: float = 5.0) -> None:
        self._settle(time.monotonic() + timeout)

    def drain_with(self, drain: Callable[[], object]) -> None:
        """Wait for ``drain()`` (the emulator's queue) before looking at what arrived."""
        self._drain = drain

    def wait_for(self, kind: type[E], predicate: Callable[[E], bool] = lambda _e: True, *,
                 timeout: float = 10.0) -> list[E]:  # fmt: skip
        """Events of ``kind`` matching ``predicate`` (empty when none came within ``timeout``), looked at once
        the deliveries have settled, so that a duplicate would be among them."""
        deadline = time.monotonic() + timeout
        while True:
            self._settle(deadline)
            with self._lock:
                found = [e for e in self.received if isinstance(e, kind) and predicate(e)]
            if found or not self.live or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)

    def delivery_of(self, event: BaseEvent) -> InboundRequest:
        """The genuine request whose handling handed ``event`` on."""
        with self._lock:
            for request, reply in self.exchanges:
                if any(handled.event_id == event.event_id for handled in reply.handled):
                    return request
        raise AssertionError(f"no delivery handed on {event.event_id}")

    def resend(self, request: InboundRequest) -> Reply:
        """Deliver ``request`` again, as a vendor retry (or a replay) would."""
        return self.receiver.deliver(request)

    # -- recording ------------------------------------------------------------------------------

    def save(self) -> None:
        if self._recording is None:
            return
        items = []
        for request in self.deliveries:
            query = dict(request.query)
            if "Sign" in query:
                query["Sign"] = SIGN_PLACEHOLDER  # derived from the token; recomputed on replay
            items.append({
                "method": request.method, "path": request.path.replace(self.secret, SECRET_PLACEHOLDER),
                "query": query, "content_type": request.header("content-type") or "",
                "body": request.body.decode("utf-8", "surrogateescape"),
            })  # fmt: skip
        self._recording.parent.mkdir(parents=True, exist_ok=True)
        self._recording.write_text(json.dumps(items, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    def _load(self, path: Path) -> list[InboundRequest]:
        if not path.exists():
            return []
        requests = []
        for item in json.loads(path.read_text(encoding="utf-8")):
            query = dict(item["query"])
            if query.get("Sign") == SIGN_PLACEHOLDER:
                query["Sign"] = hashlib.sha256(f"{TENCENT_TEST_TOKEN}{query['RequestTime']}".encode()).hexdigest()
            requests.append(InboundRequest(
                method=item["method"], path=item["path"].replace(SECRET_PLACEHOLDER, self.secret),
                headers={"content-type": item["content_type"]}, query=query,
                body=item["body"].encode("utf-8", "surrogateescape"), client="127.0.0.1",
            ))  # fmt: skip
        return requests


class WebhookServer:
    """A loopback HTTP server that hands every request to the current test's channel (live runs)."""

    def __init__(self, port: int) -> None:
        self.channel: EventChannel | None = None
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                request = InboundRequest(
                    method="POST", path=url.path, headers={k.lower(): v for k, v in self.headers.items()},
                    query=dict(parse_qsl(url.query, keep_blank_values=True)), body=body,
                    client=self.client_address[0],
                )  # fmt: skip
                channel = owner.channel
                reply = channel.deliver(request) if channel is not None else Reply(200, b"")
                self.send_response(reply.status)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="imbridge-webhooks", daemon=True)
        self._thread.start()

    @contextmanager
    def serving(self, channel: EventChannel) -> Iterator[None]:
        self.channel = channel
        try:
            yield
        finally:
            self.channel = None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def with_path(path: str, sink: Callable[[InboundRequest], Reply]) -> Callable[[InboundRequest], Reply]:
    """An in-process target that gives each request ``path`` (where a URL target would have put it)."""
    return lambda request: sink(replace(request, path=path))
