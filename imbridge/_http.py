"""The only module that imports HTTP client libraries.

Sync requests go through ``httpx.Client``. Async requests go through an aiohttp ``ClientSession`` by
default (plain ``httpx.AsyncClient`` measures many times slower at high concurrency), or through an
``httpx.AsyncClient`` the user injects. Every transport maps its library's failures to imbridge's
TransportError/TimeoutError, saying whether the request may have reached the server.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Protocol

import aiohttp
import httpx
from aiohttp.payload import BytesPayload

from imbridge._flow import HTTPRequest, Response
from imbridge._kept import Kept
from imbridge.errors import TimeoutError, TransportError

DEFAULT_TIMEOUT = 10.0
"""Seconds. Tencent's own backend timeout is 3 s, so anything shorter than that cuts answers off."""

#: Query parameters that carry credentials (Tencent's admin UserSig travels in every request's URL).
_SECRET_QUERY = re.compile(r"(?i)([?&](?:usersig|token|secret_key|manager_token)=)[^&\s\"']+")


class _RedactSecrets(logging.Filter):
    """httpx logs every request's full URL at INFO ("HTTP Request: POST https://…?usersig=…"): redact the
    credentials in it, whoever's httpx client made the request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("=" in str(arg) for arg in record.args):
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1<redacted>", str(arg)) if isinstance(arg, httpx.URL | str) else arg
                for arg in record.args
            )
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(existing, _RedactSecrets) for existing in _httpx_logger.filters):
    _httpx_logger.addFilter(_RedactSecrets())


class SyncTransport(Protocol):
    def send(self, request: HTTPRequest, timeout: float) -> Response: ...

    def close(self) -> None: ...


class AsyncTransport(Protocol):
    async def send(self, request: HTTPRequest, timeout: float) -> Response: ...

    async def aclose(self) -> None: ...


def _httpx_error(exc: httpx.TransportError) -> TransportError:
    # A connect failure happened before any byte of the request left: it cannot have landed.
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(f"timed out: {type(exc).__name__}", may_have_landed=not never_sent)
    return TransportError(f"transport failure: {type(exc).__name__}: {exc}", may_have_landed=not never_sent)


class _HttpxParts:
    """Parsed URLs and headers, kept for reuse. httpx parses a URL string on every request (about 7 us, a
    third of building a request) and normalises a header dict (2 us more), while a client sends to a few
    URLs with one or two header sets. Bounded: paths that carry ids (WuKongIM's channel routes) vary."""

    LIMIT = 512

    def __init__(self) -> None:
        self._urls: Kept[str, httpx.URL] = Kept(self.LIMIT)
        self._headers: Kept[tuple[tuple[str, str], ...], httpx.Headers] = Kept(self.LIMIT)

    def url(self, text: str) -> httpx.URL:
        return self._urls.kept(text, httpx.URL, text)

    def headers(self, headers: Mapping[str, str]) -> httpx.Headers:
        # httpx copies these into each request's own Headers: the shared object is never changed.
        return self._headers.kept(tuple(headers.items()), httpx.Headers, headers)


class HttpxSyncTransport:
    """Sync transport over ``httpx.Client``; closes the client only if it created it."""

    def __init__(self, client: httpx.Client | None = None) -> None:
        self._owned = client is None
        self._client = client if client is not None else httpx.Client(http2=False)
        self._parts = _HttpxParts()

    def send(self, request: HTTPRequest, timeout: float) -> Response:
        try:
            reply = self._client.request(
                request.method,
                self._parts.url(request.url),
                params=request.params or None,
                headers=self._parts.headers(request.headers),
                content=request.content,
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            raise _httpx_error(exc) from None
        return Response(reply.status_code, reply.headers, reply.content)

    def close(self) -> None:
        if self._owned:
            self._client.close()


class HttpxAsyncTransport:
    """Async transport over an injected ``httpx.AsyncClient`` (never closed here: the caller owns it)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self._parts = _HttpxParts()

    async def send(self, request: HTTPRequest, timeout: float) -> Response:
        try:
            reply = await self._client.request(
                request.method,
                self._parts.url(request.url),
                params=request.params or None,
                headers=self._parts.headers(request.headers),
                content=request.content,
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            raise _httpx_error(exc) from None
        return Response(reply.status_code, reply.headers, reply.content)

    async def aclose(self) -> None:
        return None


class AiohttpTransport:
    """The default async transport. The session is created on first use, inside the running loop."""

    def __init__(self, session: aiohttp.ClientSession | None = None, *, max_connections: int = 100) -> None:
        self._session = session
        #: The session this transport made and has not closed yet. It is used without asking aiohttp whether it
        #: is closed (two property calls per request); a session the caller gave is asked every time, since its
        #: owner may close it.
        self._made: aiohttp.ClientSession | None = None
        self._max_connections = max_connections
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = self._made = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        # One ClientTimeout per distinct value: building it per request shows up at high concurrency.
        cached = self._timeouts.get(seconds)
        if cached is None:
            cached = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return cached

    async def send(self, request: HTTPRequest, timeout: float) -> Response:
        session = self._made or self._get_session()
        content, headers = request.content, request.headers
        data: bytes | BytesPayload | None = content
        sent_headers: Mapping[str, str] | None = headers
        if content is not None and (content_type := headers.get("Content-Type")) is not None:
            # The body carries its own type, as aiohttp's json= does: when that is the only header (every Tencent
            # request, a WuKongIM server without a token), aiohttp has no request headers to merge and no payload
            # type to look up. At 64 sends in flight both showed in the profile (issue 19).
            data = BytesPayload(content, content_type=content_type)
            if len(headers) == 1:
                sent_headers = None
        try:
            # Awaited, then released, rather than `async with`: the same steps without the four coroutines that
            # aiohttp's context managers add to every request (read() has released the connection already).
            reply = await session.request(
                request.method,
                request.url,
                params=request.params or None,
                headers=sent_headers,
                data=data,
                timeout=self._timeouts.get(timeout) or self._timeout(timeout),  # made once per value
            )
            try:
                answer = await reply.read()
            finally:
                reply.release()
            return Response(reply.status, reply.headers, answer)
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):  # noqa: UP041 - the builtin is shadowed here
            raise TimeoutError("timed out waiting for the server", may_have_landed=True) from None
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(f"cannot connect: {exc.os_error}", may_have_landed=False) from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"transport failure: {type(exc).__name__}: {exc}", may_have_landed=True) from None

    async def aclose(self) -> None:
        made, self._made = self._made, None  # only what this transport made: a caller's session is the caller's
        if made is not None and not made.closed:
            await made.close()
