"""Helpers for the Tencent provider tests: a recording MockTransport and the official doc fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from imbridge import IMClient
from imbridge.retry import RetryPolicy
from imbridge.testing import FakeClock

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tencent"
OFFICIAL = FIXTURES / "official"
# An obviously fake key made for tests (not a real app's secret).
TEST_KEY = "imbridge-test-key-not-a-secret"
TEST_APP = 1400000001


def official(command: str) -> dict[str, Any]:
    return json.loads((OFFICIAL / f"{command}.json").read_text(encoding="utf-8"))


def ok(**fields: Any) -> dict[str, Any]:
    return {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, **fields}


def fail(code: int, info: str = "error") -> dict[str, Any]:
    return {"ActionStatus": "FAIL", "ErrorInfo": info, "ErrorCode": code}


@dataclass
class Sent:
    path: str
    params: dict[str, str]
    body: Any
    at: float

    @property
    def command(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Server:
    """Answers each request with ``respond(sent)`` (a dict -> HTTP 200 JSON, or an httpx.Response)."""

    respond: Callable[[Sent], Any]
    clock: FakeClock
    sent: list[Sent] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = urlsplit(str(request.url))
        sent = Sent(
            path=url.path,
            params=dict(parse_qsl(url.query, keep_blank_values=True)),
            body=json.loads(request.content) if request.content else None,
            at=self.clock.monotonic(),
        )
        self.sent.append(sent)
        answer = self.respond(sent)
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    def commands(self) -> list[str]:
        return [s.command for s in self.sent]


def make_client(
    respond: Callable[[Sent], Any],
    *,
    clock: FakeClock | None = None,
    retry: RetryPolicy | None = None,
    **settings: Any,
) -> tuple[IMClient, Server]:
    clock = clock or FakeClock()
    server = Server(respond, clock)
    options: dict[str, Any] = {"sdk_app_id": TEST_APP, "secret_key": TEST_KEY, "admin": "administrator"}
    options.update(settings)
    client = IMClient(
        "tencent",
        http_client=httpx.Client(transport=httpx.MockTransport(server.handler)),
        retry=retry or RetryPolicy(initial_backoff=0, max_attempts=3),
        clock=clock,
        **options,
    )
    return client, server
