"""A small threaded HTTP server for a receiver (``imbridge listen``): development and recordings, no framework.

For production, mount :attr:`EventReceiver.asgi` in an ASGI server (uvicorn, hypercorn) or a framework. The
body is read only when its declared length is within the receiver's limit.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from imbridge.events.receiver import EventReceiver

__all__ = ["DevServer"]


class DevServer:
    """Serves ``receiver`` on ``host:port``; with ``record``, appends every request to a JSON-lines file
    (method, path, query, content type, body, arrival time). Keep recordings away from production secrets:
    the path (a WuKongIM secret) and the query (a Tencent Sign) are written as received."""

    def __init__(self, receiver: EventReceiver, *, host: str = "127.0.0.1", port: int = 0,
                 record: str | None = None) -> None:  # fmt: skip
        lock = threading.Lock()
        limit = receiver.max_body_bytes

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                declared = self.headers.get("content-length") or "0"
                if not declared.isdigit() or int(declared) > limit:
                    self._answer(413, b"request body too large", {"content-type": "text/plain"})
                    self.close_connection = True
                    return
                body = self.rfile.read(int(declared)) if int(declared) else b""
                url = urlsplit(self.path)
                query = dict(parse_qsl(url.query, keep_blank_values=True))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if record is not None:
                    entry = {"received_at": round(time.time(), 3), "method": self.command, "path": url.path,
                             "query": query, "content_type": headers.get("content-type", ""),
                             "body": body.decode("utf-8", "surrogateescape")}  # fmt: skip
                    with lock, open(record, "a", encoding="utf-8") as sink:
                        sink.write(json.dumps(entry, ensure_ascii=False) + "\n")
                reply = receiver.handle(self.command, url.path, headers, query, body, client=self.client_address[0])
                self._answer(reply.status, reply.body, reply.headers)

            def _answer(self, status: int, body: bytes, headers: Any) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
                return  # bodies are user data: nothing is logged

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> DevServer:
        threading.Thread(target=self._server.serve_forever, name="imbridge-listen", daemon=True).start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
