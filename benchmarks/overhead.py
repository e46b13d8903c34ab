"""imbridge's ``messages.send`` against the same request made with plain httpx, on the same server, in one run.

    IMBRIDGE_WUKONG_MANAGER_TOKEN=... .venv/bin/python -m benchmarks.overhead [--requests 1000] [--rounds 5]

The server is a real WuKongIM when one answers at ``IMBRIDGE_WUKONG_BASE_URL`` (default
http://127.0.0.1:5001), else the WuKongIM emulator on 127.0.0.1 in a process of its own. Both clients send the same
WuKongIM ``/message/send`` body. imbridge sends with ``confirm=False`` for the like-for-like figures (one
request each); its default, ``confirm=True`` (a lookup that proves the message was stored), is measured
too and labelled as such.

Figures: sequential median and p99 latency (sync clients), and async throughput at concurrency 64
(plain ``httpx.AsyncClient`` against ``AsyncIMClient`` on its default aiohttp driver and on an injected
``httpx.AsyncClient``). Rounds are interleaved and medians reported, as in ``benchmarks/http_clients.py``.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import os
import secrets
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx

from benchmarks._server import free_port, machine, wait_for_port
from benchmarks.http_clients import _drive, _drive_sync, _summary
from imbridge import AsyncIMClient, Conversation, IMClient

CONCURRENCY = 64
PAYLOAD = base64.b64encode(json.dumps({"type": 1, "content": "hello"}).encode()).decode()


@contextlib.contextmanager
def wukong_server() -> Iterator[tuple[str, str, str]]:
    """(base URL, manager token, what it is): the real WuKongIM if it answers, else the emulator on loopback."""
    url = os.environ.get("IMBRIDGE_WUKONG_BASE_URL", "http://127.0.0.1:5001")
    token = os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN", "")
    try:
        if token and httpx.get(f"{url}/health", headers={"token": token}, timeout=2).status_code == 200:
            yield url, token, f"real WuKongIM at {url}"
            return
    except httpx.HTTPError:
        pass
    # The emulator in a process of its own: in this one it would share the GIL with the clients it measures.
    token, port = secrets.token_hex(8), free_port()
    command = [sys.executable, "-m", "imbridge.cli", "emulate", "wukong", "--port", str(port)]
    process = subprocess.Popen(command, env={**os.environ, "IMBRIDGE_WUKONG_MANAGER_TOKEN": token},
                               stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        if not wait_for_port(port, process, seconds=20):
            raise SystemExit("the WuKongIM emulator did not start")
        yield f"http://127.0.0.1:{port}", token, "WuKongIM emulator (imbridge emulate wukong, its own process)"
    finally:
        process.terminate()
        process.wait(timeout=10)


class Bodies:
    """The body imbridge sends, built the same way for plain httpx: unique client_msg_no per message."""

    def __init__(self, sender: str, recipient: str) -> None:
        self.sender, self.recipient = sender, recipient
        self.prefix = secrets.token_hex(6)

    def __call__(self, number: int) -> dict[str, Any]:
        return {"header": {"red_dot": 1}, "client_msg_no": f"{self.prefix}{number}", "from_uid": self.sender,
                "channel_id": self.recipient, "channel_type": 1, "payload": PAYLOAD}  # fmt: skip


def _settings(url: str, token: str) -> dict[str, Any]:
    return {"base_url": url, "manager_token": token, "store": "", "enforce_policy": False}


def bench_sync(url: str, token: str, total: int, warmup: int, rounds: int) -> dict[str, dict[str, float]]:
    sender, recipient = f"ovs{secrets.token_hex(3)}", f"ovr{secrets.token_hex(3)}"
    to = Conversation.user(recipient)
    body = Bodies(sender, recipient)
    headers = {"token": token}
    with httpx.Client() as client, IMClient("wukong", **_settings(url, token)) as im:

        def raw(number: int) -> object:
            reply = client.post(f"{url}/message/send", json=body(number), headers=headers)
            reply.raise_for_status()
            return reply.json()

        senders: dict[str, Callable[[int], object]] = {
            "httpx-sync": raw,
            "imbridge-sync": lambda _n: im.messages.send(sender, to, "hello", confirm=False),
            "imbridge-sync-confirm": lambda _n: im.messages.send(sender, to, "hello"),
        }
        latencies: dict[str, list[float]] = {name: [] for name in senders}
        elapsed = dict.fromkeys(senders, 0.0)
        for send in senders.values():
            _drive_sync(send, warmup)
        for round_number in range(rounds):
            names = list(senders)
            names = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in names:
                rate, measured = _drive_sync(senders[name], total)
                latencies[name] += measured
                elapsed[name] += total / rate
    return {name: _summary(len(latencies[name]) / elapsed[name], latencies[name]) for name in senders}


async def bench_async(url: str, token: str, total: int, warmup: int, rounds: int) -> dict[str, float]:
    sender, recipient = f"ova{secrets.token_hex(3)}", f"ovb{secrets.token_hex(3)}"
    to = Conversation.user(recipient)
    body = Bodies(sender, recipient)
    headers = {"token": token}
    limits = httpx.Limits(max_connections=100)
    async with (
        httpx.AsyncClient(limits=limits) as client,
        httpx.AsyncClient(limits=limits) as injected,
        AsyncIMClient("wukong", **_settings(url, token)) as im,
        AsyncIMClient("wukong", http_client=injected, **_settings(url, token)) as im_httpx,
    ):

        async def raw(number: int) -> object:
            reply = await client.post(f"{url}/message/send", json=body(number), headers=headers)
            reply.raise_for_status()
            return reply.json()

        senders: dict[str, Callable[[int], Awaitable[object]]] = {
            "httpx-async": raw,
            "imbridge-async (aiohttp)": lambda _n: im.messages.send(sender, to, "hello", confirm=False),
            "imbridge-async (httpx)": lambda _n: im_httpx.messages.send(sender, to, "hello", confirm=False),
        }
        samples: dict[str, list[float]] = {name: [] for name in senders}
        for send in senders.values():
            await _drive(send, warmup, CONCURRENCY)
        for round_number in range(rounds):
            names = list(senders)
            names = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in names:
                samples[name].append(await _drive(senders[name], total, CONCURRENCY))
    return {name: statistics.median(rates) for name, rates in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="requests per client per round")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians are reported")
    args = parser.parse_args()
    with wukong_server() as (url, token, server):
        synchronous = bench_sync(url, token, args.requests, args.warmup, args.rounds)
        asynchronous = asyncio.run(bench_async(url, token, args.requests, args.warmup, args.rounds))

    base = synchronous["httpx-sync"]
    print(f"server: {server}")
    print(f"{'sequential (sync)':<28}{'median us':>12}{'p99 us':>12}{'x httpx median':>16}")
    for name, figures in synchronous.items():
        ratio = figures["median_us"] / base["median_us"]
        print(f"{name:<28}{figures['median_us']:>12.0f}{figures['p99_us']:>12.0f}{ratio:>16.2f}")
    print(f"{'async, concurrency 64':<28}{'req/s':>12}{'x httpx':>12}")
    for name, rate in asynchronous.items():
        print(f"{name:<28}{rate:>12,.0f}{rate / asynchronous['httpx-async']:>12.2f}")
    sync_ratio = synchronous["imbridge-sync"]["median_us"] / base["median_us"]
    async_ratio = asynchronous["imbridge-async (aiohttp)"] / asynchronous["httpx-async"]
    async_like = asynchronous["imbridge-async (httpx)"] / asynchronous["httpx-async"]
    print(f"imbridge-sync (confirm=False) / httpx-sync median latency: {sync_ratio:.2f}x (target <= 1.10)")
    print(f"imbridge-async (default aiohttp driver) / httpx-async throughput: {async_ratio:.2f}x (target >= 0.90)")
    print(f"imbridge-async over the same httpx.AsyncClient / httpx-async throughput: {async_like:.2f}x")
    record = {
        "benchmark": "overhead",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "server": server,
        "requests": args.requests,
        "rounds": args.rounds,
        "sync": {name: {k: round(v, 1) for k, v in figures.items()} for name, figures in synchronous.items()},
        "async_rps_c64": {name: round(rate) for name, rate in asynchronous.items()},
        "ratio_sync_median": round(sync_ratio, 3),
        "ratio_async_default": round(async_ratio, 3),
        "ratio_async_same_httpx": round(async_like, 3),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
