"""Requests per second of raw HTTP clients and of imbridge doing ``messages.send``, in one run.

    .venv/bin/python -m benchmarks.http_clients [--requests 3000] [--rounds 7] [--blocks 6]

The server is nginx on 127.0.0.1 answering every POST with WuKongIM's send reply (80 bytes), so the
client is what is measured. Every client sends the same WuKongIM-shaped body to the same server in the
same run. The raw clients build each body as a hand-written client would (the content encoded per
WuKongIM's payload convention for every message). imbridge sends with ``confirm=False`` so that it makes
exactly the one request the raw clients make (by default it would also look the message up to confirm it
was stored).

Each round, every client makes ``--requests`` requests per concurrency, in ``--blocks`` turns taken in
rotating order, so that the machine's swings in speed (a shared 2-core VM) fall on every client alike.
The ratios are computed per round, from the clients' figures in that round, and their median reported:
imbridge-async/aiohttp throughput at concurrency 64 and imbridge-sync/httpx-sync median latency. Prints a
table, the ratios with their range over the rounds, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx

from benchmarks._server import fixed_reply_server, machine, pin_client_and_server
from imbridge import AsyncIMClient, Conversation, IMClient

CONCURRENCY = (1, 8, 64)
BOB = Conversation.user("bob")


def wukong_body(number: int, text: str = "hello") -> dict[str, Any]:
    """The send body a hand-written client builds for one message: its content encoded per WuKongIM's
    payload convention (JSON, then base64), as every real message's content differs."""
    payload = base64.b64encode(json.dumps({"type": 1, "content": text}).encode()).decode()
    return {
        "header": {"red_dot": 1},
        "from_uid": "alice",
        "channel_id": "bob",
        "channel_type": 1,
        "client_msg_no": f"bench-{number}",
        "payload": payload,
    }


async def _drive(send: Callable[[int], Awaitable[object]], total: int, concurrency: int) -> float:
    """Run ``total`` sends with ``concurrency`` workers; return requests per second."""
    counter = iter(range(total))

    async def worker() -> None:
        for number in counter:
            await send(number)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


def _drive_sync(send: Callable[[int], object], total: int) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for number in range(total):
        begin = time.perf_counter()
        send(number)
        latencies.append(time.perf_counter() - begin)
    return total / (time.perf_counter() - started), latencies


def _imbridge_settings(base_url: str) -> dict[str, Any]:
    return {"base_url": base_url, "store": "", "confirm_sends": False, "enforce_policy": False}


def _turns(names: list[str], blocks: int) -> list[str]:
    """Which client runs each block of a round: every client once per cycle, the order rotating, so
    each client runs first, middle and last equally often."""
    order: list[str] = []
    for block in range(blocks):
        shift = block % len(names)
        order += names[shift:] + names[:shift]
    return order


async def bench_async(
    base_url: str, total: int, warmup: int, rounds: int, blocks: int
) -> tuple[dict[str, dict[int, float]], list[float]]:
    """Requests/s per client and concurrency (the median over ``rounds``), and imbridge/aiohttp at c=64
    in each round.

    Within a round the clients take turns in ``blocks`` short blocks: this shared 2-core VM changes speed
    by up to 30% from one second to the next, and short turns make every client meet the same changes.
    """
    url = f"{base_url}/message/send"
    results: dict[str, dict[int, float]] = {"aiohttp": {}, "httpx-async": {}, "imbridge-async": {}}
    ratios_c64: list[float] = []
    for concurrency in CONCURRENCY:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session,
            httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as client,
            AsyncIMClient("wukong", **_imbridge_settings(base_url)) as im,
        ):

            async def raw_aiohttp(number: int) -> object:
                async with session.post(url, json=wukong_body(number)) as reply:
                    return await reply.json()

            async def raw_httpx(number: int) -> object:
                return (await client.post(url, json=wukong_body(number))).json()

            async def imbridge_send(number: int) -> object:
                return await im.messages.send("alice", BOB, "hello")

            senders = {"aiohttp": raw_aiohttp, "httpx-async": raw_httpx, "imbridge-async": imbridge_send}
            rates: dict[str, list[float]] = {name: [] for name in senders}
            for send in senders.values():
                await _drive(send, warmup, concurrency)
            for _ in range(rounds):
                elapsed = dict.fromkeys(senders, 0.0)
                done = dict.fromkeys(senders, 0)
                for name in _turns(list(senders), blocks):
                    # httpx async is an order of magnitude slower: fewer requests keep the run short.
                    count = max(total // blocks // (5 if name == "httpx-async" else 1), concurrency)
                    elapsed[name] += count / await _drive(senders[name], count, concurrency)
                    done[name] += count
                for name in senders:
                    rates[name].append(done[name] / elapsed[name])
                if concurrency == 64:
                    ratios_c64.append(rates["imbridge-async"][-1] / rates["aiohttp"][-1])
            for name, figures in rates.items():
                results[name][concurrency] = statistics.median(figures)
    return results, ratios_c64


def bench_sync(
    base_url: str, total: int, warmup: int, rounds: int, blocks: int
) -> tuple[dict[str, dict[str, float]], list[float]]:
    """Median and p99 latency over every call, and imbridge/httpx median latency in each round; the
    clients take turns in short blocks as in :func:`bench_async`."""
    url = f"{base_url}/message/send"
    with httpx.Client() as client, IMClient("wukong", **_imbridge_settings(base_url)) as im:

        def raw(number: int) -> object:
            return client.post(url, json=wukong_body(number)).json()

        def send(number: int) -> object:
            return im.messages.send("alice", BOB, "hello")

        senders = {"httpx-sync": raw, "imbridge-sync": send}
        latencies: dict[str, list[float]] = {name: [] for name in senders}
        elapsed: dict[str, float] = dict.fromkeys(senders, 0.0)
        ratios: list[float] = []
        for sender in senders.values():
            _drive_sync(sender, warmup)
        for _ in range(rounds):
            this_round: dict[str, list[float]] = {name: [] for name in senders}
            for name in _turns(list(senders), blocks):
                count = max(total // blocks, 1)
                rate, measured = _drive_sync(senders[name], count)
                this_round[name] += measured
                elapsed[name] += count / rate
            for name in senders:
                latencies[name] += this_round[name]
            ratios.append(statistics.median(this_round["imbridge-sync"]) / statistics.median(this_round["httpx-sync"]))
        summaries = {name: _summary(len(latencies[name]) / elapsed[name], latencies[name]) for name in senders}
        return summaries, ratios


def _summary(rate: float, latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "rps": rate,
        "median_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[int(len(ordered) * 0.99) - 1] * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000, help="requests per client per round")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7, help="rounds; medians are reported")
    parser.add_argument("--blocks", type=int, default=6, help="turns per client within a round")
    args = parser.parse_args()
    with fixed_reply_server() as base_url:
        pinning = pin_client_and_server()
        asynchronous, async_ratios = asyncio.run(
            bench_async(base_url, args.requests, args.warmup, args.rounds, args.blocks)
        )
        synchronous, sync_ratios = bench_sync(base_url, args.requests, args.warmup, args.rounds, args.blocks)

    print(f"cores: {pinning}")
    print(f"{'client':<16}" + "".join(f"{'c=' + str(c):>12}" for c in CONCURRENCY) + "   (requests/s)")
    for name, figures in asynchronous.items():
        print(f"{name:<16}" + "".join(f"{figures[c]:>12,.0f}" for c in CONCURRENCY))
    for name, summary in synchronous.items():
        latency = f"median {summary['median_us']:.0f} us, p99 {summary['p99_us']:.0f} us"
        print(f"{name:<16}{summary['rps']:>12,.0f}   {latency}")
    async_ratio = statistics.median(async_ratios)
    sync_ratio = statistics.median(sync_ratios)
    print(
        f"imbridge-async / aiohttp at c=64: {async_ratio:.2f}x throughput (target >= 0.80); "
        f"per round {min(async_ratios):.2f}-{max(async_ratios):.2f}"
    )
    print(
        f"imbridge-sync / httpx-sync median latency: {sync_ratio:.2f}x (target <= 1.10); "
        f"per round {min(sync_ratios):.2f}-{max(sync_ratios):.2f}"
    )
    record = {
        "benchmark": "http_clients",
        "machine": machine(),
        "requests": args.requests,
        "rounds": args.rounds,
        "blocks": args.blocks,
        "pinning": pinning,
        "async_rps": {name: {str(c): round(v) for c, v in figures.items()} for name, figures in asynchronous.items()},
        "sync": {name: {k: round(v, 1) for k, v in summary.items()} for name, summary in synchronous.items()},
        "ratio_imbridge_async_over_aiohttp_c64": round(async_ratio, 3),
        "ratio_imbridge_async_over_aiohttp_c64_per_round": [round(r, 3) for r in async_ratios],
        "ratio_imbridge_sync_over_httpx_sync_median": round(sync_ratio, 3),
        "ratio_imbridge_sync_over_httpx_sync_median_per_round": [round(r, 3) for r in sync_ratios],
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
