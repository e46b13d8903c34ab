"""The httpx transports reuse parsed URLs and headers; reuse must never leak one request's parts into
another's, and the memory it keeps is bounded."""

from __future__ import annotations

import httpx

from imbridge._flow import HTTPRequest
from imbridge._http import HttpxSyncTransport, _HttpxParts


def test_requests_to_one_url_keep_their_own_params_and_headers() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    transport = HttpxSyncTransport(httpx.Client(transport=httpx.MockTransport(answer)))
    url = "http://im.test/v4/openim/sendmsg"
    transport.send(HTTPRequest("POST", url, {"random": "1"}, {"Content-Type": "application/json"}, b"{}"), 5.0)
    transport.send(HTTPRequest("POST", url, {"random": "2"}, {"token": "t2"}, b"{}"), 5.0)
    transport.send(HTTPRequest("GET", url, {}, {}, None), 5.0)
    assert [str(r.url) for r in seen] == [url + "?random=1", url + "?random=2", url]
    assert seen[0].headers["content-type"] == "application/json" and "token" not in seen[0].headers
    assert seen[1].headers["token"] == "t2" and seen[1].headers.get("content-type") is None
    assert "token" not in seen[2].headers


def test_reuse_is_bounded() -> None:
    parts = _HttpxParts()
    for number in range(3 * _HttpxParts.LIMIT):
        assert str(parts.url(f"http://im.test/channel/{number}")) == f"http://im.test/channel/{number}"
        assert parts.headers({"token": str(number)})["token"] == str(number)
    assert len(parts._urls) <= _HttpxParts.LIMIT and len(parts._headers) <= _HttpxParts.LIMIT
    assert parts.url("http://im.test/a") is parts.url("http://im.test/a")
