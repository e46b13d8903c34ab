"""Bulk operations fan out with bounded concurrency on the async client and report every item."""

from __future__ import annotations

import asyncio
import json

import httpx

from imbridge import AsyncIMClient, IMClient, RetryPolicy, ServiceUnavailableError
from imbridge.testing import FakeClock

TENCENT = {"sdk_app_id": 1400000000, "secret_key": "k" * 64, "rate_limits": {"batchsendmsg": 1e9}}
RECIPIENTS = [f"user{i}" for i in range(5000)]  # 10 chunks of 500


class BatchServer:
    """Answers batchsendmsg; the chunk holding ``failing`` answers 503 every time."""

    def __init__(self, failing: str | None = None) -> None:
        self.failing = failing
        self.in_flight = 0
        self.most_in_flight = 0
        self.chunks: list[list[str]] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        to = json.loads(request.content)["To_Account"]
        self.chunks.append(to)
        if self.failing in to:
            return httpx.Response(503)
        return httpx.Response(
            200, json={"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "MsgKey": "1_2_3", "ErrorList": []}
        )

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.001)  # let other requests of the window start
        self.in_flight -= 1
        return self.answer(request)


def test_async_batch_fans_out_with_bounded_concurrency() -> None:
    server = BatchServer()

    async def scenario() -> int:
        http = httpx.AsyncClient(transport=httpx.MockTransport(server))
        async with AsyncIMClient("tencent", http_client=http, bulk_concurrency=3, clock=FakeClock(), **TENCENT) as im:
            result = await im.messages.send_batch("system", RECIPIENTS, "notice")
        return len(result.succeeded)

    assert asyncio.run(scenario()) == 5000
    assert len(server.chunks) == 10 and sorted(uid for chunk in server.chunks for uid in chunk) == sorted(RECIPIENTS)
    assert 1 < server.most_in_flight <= 3


def test_failed_chunk_is_reported_per_recipient_and_the_rest_delivered() -> None:
    server = BatchServer(failing="user1234")  # in the third chunk
    retry = RetryPolicy(max_attempts=2, initial_backoff=0)
    http = httpx.Client(transport=httpx.MockTransport(server.answer))
    with IMClient("tencent", http_client=http, retry=retry, clock=FakeClock(), **TENCENT) as im:
        result = im.messages.send_batch("system", RECIPIENTS, "notice")
    failed = result.failed
    assert [item.target for item in failed] == RECIPIENTS[1000:1500]
    assert all(isinstance(item.error, ServiceUnavailableError) for item in failed)
    assert len(result.succeeded) == 4500
