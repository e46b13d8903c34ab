"""The receiver as an ASGI application (no framework needed; mounts in FastAPI/Starlette as a sub-app).

    app.mount("/webhooks/wukong", receiver.asgi)        # Starlette / FastAPI
    uvicorn.run(receiver.asgi, host="127.0.0.1", port=8099)

The body is read up to the receiver's size limit and no further: a larger request is answered 413 at
once, so a client cannot make the receiver buffer more than the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from imbridge.events.base import InboundRequest

if TYPE_CHECKING:
    from imbridge.events.receiver import EventReceiver

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_QUERY_FIELDS = 64


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _query(raw: bytes) -> dict[str, str]:
    """The query string's parameters (the first of repeated ones, as most frameworks keep)."""
    text = raw.decode("latin-1")
    if "%" not in text and "+" not in text and text.count("&") < MAX_QUERY_FIELDS:
        # Nothing to unquote (the vendors' own parameters): split it, at a tenth of parse_qsl's cost.
        query: dict[str, str] = {}
        for part in text.split("&"):
            if part:
                name, _, value = part.partition("=")
                query.setdefault(name, value)
        return query
    pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    query = {}
    for name, value in pairs:
        query.setdefault(name, value)
    return query


class ReceiverApp:
    """``receiver.asgi``: serves every path it receives (the receiver checks what it must)."""

    def __init__(self, receiver: EventReceiver) -> None:
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind != "http":
            return
        limit = self.receiver.max_body_bytes
        headers: dict[str, str] = {}
        declared: bytes | None = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                declared = value
            headers[name.decode("latin-1")] = value.decode("latin-1")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _answer(send, 413, b"request body too large", [(b"content-type", b"text/plain")])
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, b"request body too large", [(b"content-type", b"text/plain")])
                return
            if chunk:
                chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            query = _query(scope.get("query_string", b""))
        except ValueError:
            await _answer(send, 400, b"too many query parameters", [(b"content-type", b"text/plain")])
            return
        client = scope.get("client")
        request = InboundRequest(
            method=scope.get("method", "POST"), path=scope.get("path", "/"), headers=headers, query=query,
            body=b"".join(chunks), client=client[0] if client else None,
        )  # fmt: skip
        reply = await self.receiver.deliver_async(request)
        out = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()]
        await _answer(send, reply.status, reply.body, out)
