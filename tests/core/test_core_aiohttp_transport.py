"""The default async transport puts on the wire exactly the headers and body a provider asked for.

It hands aiohttp a JSON body together with its Content-Type (and no header mapping when that is the only
header): a real aiohttp server on 127.0.0.1 checks what arrives, duplicates included.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from imbridge._flow import HTTPRequest
from imbridge._http import AiohttpTransport

BODY = b'{"from_uid":"alice","payload":"eyJ0eXBlIjoxfQ=="}'
Seen = tuple[str, list[str], list[str], bytes]  # method, Content-Type values, token values, body


async def _exchange(requests: list[HTTPRequest]) -> list[Seen]:
    seen: list[Seen] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.method, request.headers.getall("Content-Type", []), request.headers.getall("token", []),
                     await request.read()))  # fmt: skip
        return web.json_response({"status": 200})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    transport = AiohttpTransport()
    try:
        for request in requests:
            wire = HTTPRequest(request.method, f"http://127.0.0.1:{port}{request.url}", request.params,
                               request.headers, request.content)  # fmt: skip
            reply = await transport.send(wire, 5.0)
            assert reply.status_code == 200 and reply.json() == {"status": 200}
    finally:
        await transport.aclose()
        await runner.cleanup()
    return seen


@pytest.mark.parametrize(
    ("headers", "content", "expected"),
    [
        # Tencent's every request, WuKongIM without a manager token: the type travels with the body.
        ({"Content-Type": "application/json"}, BODY, ("POST", ["application/json"], [], BODY)),
        # WuKongIM with a token: both headers, the type once.
        ({"token": "t0k", "Content-Type": "application/json"}, BODY, ("POST", ["application/json"], ["t0k"], BODY)),
        # A body without a declared type goes as aiohttp's bytes do.
        ({"token": "t0k"}, BODY, ("POST", ["application/octet-stream"], ["t0k"], BODY)),
        # No body: no type, whatever the headers say.
        ({"token": "t0k"}, None, ("GET", [], ["t0k"], b"")),
        ({}, None, ("GET", [], [], b"")),
    ],
)
def test_headers_and_body_arrive_as_given(headers: dict[str, str], content: bytes | None, expected: Seen) -> None:
    method = "GET" if content is None else "POST"
    [seen] = asyncio.run(_exchange([HTTPRequest(method, "/message/send", {}, headers, content)]))
    assert seen == expected


def test_one_request_does_not_leak_its_headers_into_the_next() -> None:
    json_only = {"Content-Type": "application/json"}
    with_token = {"token": "t0k", "Content-Type": "application/json"}
    seen = asyncio.run(_exchange([
        HTTPRequest("POST", "/a", {}, with_token, BODY),
        HTTPRequest("POST", "/b", {}, json_only, b"{}"),
        HTTPRequest("POST", "/c", {}, with_token, BODY),
    ]))  # fmt: skip
    assert [(types, tokens, body) for _, types, tokens, body in seen] == [
        (["application/json"], ["t0k"], BODY),
        (["application/json"], [], b"{}"),
        (["application/json"], ["t0k"], BODY),
    ]
    assert json_only == {"Content-Type": "application/json"}  # the provider's shared mapping is left alone


def test_the_transport_closes_the_session_it_made_and_never_a_callers() -> None:
    async def scenario() -> tuple[bool, bool, bool, bool]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", _ok)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/health"
        request = HTTPRequest("GET", url, {}, {}, None)
        try:
            own = AiohttpTransport()
            await own.send(request, 5.0)
            made = own._session
            await own.aclose()
            closed_own = made is not None and made.closed
            await own.send(request, 5.0)  # used again after aclose: a new session, closed by the next aclose
            remade = own._session is not made and own._session is not None and not own._session.closed
            await own.aclose()
            async with aiohttp.ClientSession() as callers:
                lent = AiohttpTransport(callers)
                await lent.send(request, 5.0)
                await lent.aclose()
                callers_open = not callers.closed
                await callers.close()
                await lent.send(request, 5.0)  # its owner closed it: the transport makes one of its own
                replaced = lent._session is not callers and await _closes(lent)
        finally:
            await runner.cleanup()
        return closed_own, remade, callers_open, replaced

    assert asyncio.run(scenario()) == (True, True, True, True)


async def _ok(_request: web.Request) -> web.Response:
    return web.json_response({"status": 200})


async def _closes(transport: AiohttpTransport) -> bool:
    session = transport._session
    await transport.aclose()
    return session is not None and session.closed
