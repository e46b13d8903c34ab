"""Requests per second of raw HTTP clients and of imbridge doing ``messages.send``, in one run.

    .venv/bin/python -m benchmarks.http_clients [--requests 3000] [--rounds 7] [--blocks 6] [--concurrency 64]

The server is nginx on 127.0.0.1 answering every POST with WuKongIM's send reply (80 bytes), so the
client is what is measured. Every client sends the same messages (text ``m<n>``, a different one per
send) as WuKongIM send bodies to the same server in the same run.

The raw clients are written the ordinary way: the body built per message as a hand-written client does
(the content encoded per WuKongIM's payload convention), ``session.post(url, json=body)`` then
``await reply.json()`` (aiohttp), ``client.post(url, json=body).json()`` (httpx). imbridge sends with
``confirm=False`` so that it makes exactly the one request the raw clients make (by default it would also
look the message up to confirm it was stored), in both of the ways callers write a send: a plain string
(``content=f"m{n}"``) and the README's idiom, a fresh element per send (``content=[Text(f"m{n}")]``).
Every async client is driven alike: one task per send, at most ``concurrency`` of them in flight under a
semaphore.

Each round, every client makes ``--requests`` requests per concurrency, in ``--blocks`` turns taken in
rotating order, so that the machine's swings in speed (a shared 2-core VM) fall on every client alike;
a full garbage collection (untimed) before each turn keeps one client's garbage from being collected in
the next one's turn (httpx async leaves the most, and its successor paid for it).
The ratios are computed per round, from the clients' figures in that round, and their median reported:
imbridge-async/aiohttp throughput at concurrency 64 (goal >= 0.9 for both forms) and imbridge-sync/httpx
time per send (goal <= 1.05). The async clients' CPU time per send (this process's, ``time.process_time``)
is reported too, with aiohttp's over imbridge's: on a busy machine it moves less than the throughput.
Prints a table, the ratios with their range over the rounds, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx

from benchmarks._server import fixed_reply_server, load_average, machine, pin_client_and_server, server_version
from imbridge import AsyncIMClient, Conversation, IMClient, Text

BOB = Conversation.user("bob")
ASYNC_GOAL = 0.9
SYNC_GOAL = 1.05
FORMS = ("str", "elements")


def wukong_body(number: int) -> dict[str, Any]:
    """The send body a hand-written client builds for message ``number``: its content encoded per
    WuKongIM's payload convention (JSON, then base64)."""
    payload = base64.b64encode(json.dumps({"type": 1, "content": f"m{number}"}).encode()).decode()
    return {
        "header": {"red_dot": 1},
        "from_uid": "alice",
        "channel_id": "bob",
        "channel_type": 1,
        "client_msg_no": f"bench-{number}",
        "payload": payload,
    }


async def _drive(send: Callable[[int], Awaitable[object]], total: int, concurrency: int) -> tuple[float, float]:
    """``total`` sends, one task each, at most ``concurrency`` in flight; return the seconds they took, and
    the CPU seconds this process used meanwhile."""
    limit = asyncio.Semaphore(concurrency)

    async def one(number: int) -> None:
        async with limit:
            await send(number)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(number) for number in range(total)))
    return time.perf_counter() - started, time.process_time() - cpu


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
    base_url: str, total: int, warmup: int, rounds: int, blocks: int, concurrencies: list[int]
) -> tuple[dict[str, dict[int, float]], dict[str, list[float]], dict[str, list[float]], dict[str, float]]:
    """Sends/s per client and concurrency (the median over ``rounds``); in each round, per content form,
    imbridge/aiohttp at the highest concurrency, by throughput and by CPU time per send (aiohttp's over
    imbridge's: the share of the machine each leaves to the rest); the median CPU microseconds per send.

    Within a round the clients take turns in ``blocks`` short blocks: this shared 2-core VM changes speed
    by up to 30% from one second to the next, and short turns make every client meet the same changes.
    """
    url = f"{base_url}/message/send"
    results: dict[str, dict[int, float]] = {}
    ratios: dict[str, list[float]] = {form: [] for form in FORMS}
    cpu_ratios: dict[str, list[float]] = {form: [] for form in FORMS}
    cpu_top: dict[str, list[float]] = {}
    top = max(concurrencies)
    for concurrency in concurrencies:
        async with (
            aiohttp.ClientSession() as session,
            httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as client,
            AsyncIMClient("wukong", **_imbridge_settings(base_url)) as im,
        ):

            async def raw_aiohttp(number: int) -> object:
                async with session.post(url, json=wukong_body(number)) as reply:
                    return await reply.json()

            async def raw_httpx(number: int) -> object:
                return (await client.post(url, json=wukong_body(number))).json()

            async def imbridge_str(number: int) -> object:
                return await im.messages.send("alice", BOB, f"m{number}")

            async def imbridge_elements(number: int) -> object:
                return await im.messages.send("alice", BOB, content=[Text(f"m{number}")])

            senders = {
                "aiohttp": raw_aiohttp,
                "httpx-async": raw_httpx,
                "imbridge-async str": imbridge_str,
                "imbridge-async elements": imbridge_elements,
            }
            rates: dict[str, list[float]] = {name: [] for name in senders}
            for send in senders.values():
                await _drive(send, warmup, concurrency)
            for _ in range(rounds):
                elapsed = dict.fromkeys(senders, 0.0)
                cpu = dict.fromkeys(senders, 0.0)
                done = dict.fromkeys(senders, 0)
                for name in _turns(list(senders), blocks):
                    # httpx async is an order of magnitude slower: fewer requests keep the run short.
                    count = max(total // blocks // (5 if name == "httpx-async" else 1), concurrency)
                    gc.collect()  # untimed: no client pays for the garbage of the one before it
                    seconds, cpu_seconds = await _drive(senders[name], count, concurrency)
                    elapsed[name] += seconds
                    cpu[name] += cpu_seconds
                    done[name] += count
                for name in senders:
                    rates[name].append(done[name] / elapsed[name])
                if concurrency == top:
                    for name in senders:
                        cpu_top.setdefault(name, []).append(cpu[name] / done[name] * 1e6)
                    for form in FORMS:
                        ratios[form].append(rates[f"imbridge-async {form}"][-1] / rates["aiohttp"][-1])
                        cpu_ratios[form].append(cpu_top["aiohttp"][-1] / cpu_top[f"imbridge-async {form}"][-1])
            for name, figures in rates.items():
                results.setdefault(name, {})[concurrency] = statistics.median(figures)
    return results, ratios, cpu_ratios, {name: statistics.median(values) for name, values in cpu_top.items()}


def bench_sync(
    base_url: str, total: int, warmup: int, rounds: int, blocks: int
) -> tuple[dict[str, dict[str, float]], dict[str, list[float]], dict[str, list[float]]]:
    """Sends/s, median and p99 latency over every call; per round and form, imbridge/httpx time per send
    and median latency. The clients take turns in short blocks as in :func:`bench_async`."""
    url = f"{base_url}/message/send"
    with httpx.Client() as client, IMClient("wukong", **_imbridge_settings(base_url)) as im:

        def raw(number: int) -> object:
            return client.post(url, json=wukong_body(number)).json()

        def send_str(number: int) -> object:
            return im.messages.send("alice", BOB, f"m{number}")

        def send_elements(number: int) -> object:
            return im.messages.send("alice", BOB, content=[Text(f"m{number}")])

        senders = {"httpx-sync": raw, "imbridge-sync str": send_str, "imbridge-sync elements": send_elements}
        latencies: dict[str, list[float]] = {name: [] for name in senders}
        elapsed: dict[str, float] = dict.fromkeys(senders, 0.0)
        time_ratios: dict[str, list[float]] = {form: [] for form in FORMS}
        median_ratios: dict[str, list[float]] = {form: [] for form in FORMS}
        for sender in senders.values():
            _drive_sync(sender, warmup)
        for _ in range(rounds):
            this_round: dict[str, list[float]] = {name: [] for name in senders}
            spent = dict.fromkeys(senders, 0.0)
            for name in _turns(list(senders), blocks):
                count = max(total // blocks, 1)
                gc.collect()
                rate, measured = _drive_sync(senders[name], count)
                this_round[name] += measured
                spent[name] += count / rate
            for name in senders:
                latencies[name] += this_round[name]
                elapsed[name] += spent[name]
            for form in FORMS:
                name = f"imbridge-sync {form}"
                # The same number of sends each: the ratio of total times is the ratio of time per send.
                time_ratios[form].append(spent[name] / spent["httpx-sync"])
                median_ratios[form].append(
                    statistics.median(this_round[name]) / statistics.median(this_round["httpx-sync"])
                )
        summaries = {name: _summary(len(latencies[name]) / elapsed[name], latencies[name]) for name in senders}
        return summaries, time_ratios, median_ratios


def _summary(rate: float, latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "rps": rate,
        "median_us": statistics.median(ordered) * 1e6,
        "p99_us": ordered[int(len(ordered) * 0.99) - 1] * 1e6,
    }


def _verdict(ratio: float, goal: float, *, at_least: bool) -> str:
    met = ratio >= goal if at_least else ratio <= goal
    return "met" if met else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000, help="requests per client per round")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7, help="rounds; medians are reported")
    parser.add_argument("--blocks", type=int, default=6, help="turns per client within a round")
    parser.add_argument("--concurrency", default="64", help="comma-separated; the ratio is taken at the highest")
    parser.add_argument("--no-sync", action="store_true", help="skip the sync clients")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once everything is imported: full collections then skip the ~90,000 objects of the "
        "imported modules (what an app can do at startup; a full collection of them is half of every client's "
        "CPU time at c=64 on the project's machine)",
    )
    args = parser.parse_args()
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    concurrencies = sorted({int(c) for c in args.concurrency.split(",")})
    load_before = load_average()
    with fixed_reply_server() as base_url:
        pinning = pin_client_and_server()
        asynchronous, async_ratios, cpu_ratios, cpu_per_send = asyncio.run(
            bench_async(base_url, args.requests, args.warmup, args.rounds, args.blocks, concurrencies)
        )
        synchronous: dict[str, dict[str, float]] = {}
        time_ratios: dict[str, list[float]] = {}
        median_ratios: dict[str, list[float]] = {}
        if not args.no_sync:
            synchronous, time_ratios, median_ratios = bench_sync(
                base_url, args.requests, args.warmup, args.rounds, args.blocks
            )
    load_after = load_average()

    top = max(concurrencies)
    print(f"server: {server_version()} on 127.0.0.1; cores: {pinning}; {os.cpu_count()} CPUs")
    if args.gc_freeze:
        print(f"gc.freeze(): {gc.get_freeze_count():,} objects left out of collections")
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")
    print(
        f"{'client':<26}" + "".join(f"{'c=' + str(c):>12}" for c in concurrencies)
        + f"   (sends/s)   CPU us/send at c={max(concurrencies)}"
    )  # fmt: skip
    for name, figures in asynchronous.items():
        print(f"{name:<26}" + "".join(f"{figures[c]:>12,.0f}" for c in concurrencies) + f"{cpu_per_send[name]:>17.1f}")
    for name, summary in synchronous.items():
        latency = f"median {summary['median_us']:.0f} us, p99 {summary['p99_us']:.0f} us"
        print(f"{name:<26}{summary['rps']:>12,.0f}   {latency}")
    record: dict[str, Any] = {
        "benchmark": "http_clients",
        "machine": machine(),
        "server": server_version(),
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        "requests": args.requests,
        "rounds": args.rounds,
        "blocks": args.blocks,
        "pinning": pinning,
        "gc_freeze": args.gc_freeze,
        "async_rps": {name: {str(c): round(v) for c, v in figures.items()} for name, figures in asynchronous.items()},
        "async_cpu_us_per_send": {name: round(v, 1) for name, v in cpu_per_send.items()},
        "sync": {name: {k: round(v, 1) for k, v in summary.items()} for name, summary in synchronous.items()},
    }
    for form in FORMS:
        ratio = statistics.median(async_ratios[form])
        spread = async_ratios[form]
        print(
            f"imbridge-async {form:<8} / aiohttp at c={top}: {ratio:.3f}x throughput "
            f"(goal >= {ASYNC_GOAL}: {_verdict(ratio, ASYNC_GOAL, at_least=True)}); "
            f"per round {min(spread):.2f}-{max(spread):.2f}"
        )
        cpu_ratio = statistics.median(cpu_ratios[form])
        print(
            f"    by CPU time per send (aiohttp's / imbridge's): {cpu_ratio:.3f}x; "
            f"per round {min(cpu_ratios[form]):.2f}-{max(cpu_ratios[form]):.2f}"
        )
        record[f"ratio_async_{form}_over_aiohttp"] = round(ratio, 3)
        record[f"ratio_async_{form}_over_aiohttp_per_round"] = [round(r, 3) for r in spread]
        record[f"ratio_async_{form}_over_aiohttp_cpu"] = round(cpu_ratio, 3)
        record[f"ratio_async_{form}_over_aiohttp_cpu_per_round"] = [round(r, 3) for r in cpu_ratios[form]]
    for form in FORMS if synchronous else ():
        ratio = statistics.median(time_ratios[form])
        latency_ratio = statistics.median(median_ratios[form])
        print(
            f"imbridge-sync  {form:<8} / httpx time per send: {ratio:.2f}x "
            f"(goal <= {SYNC_GOAL}: {_verdict(ratio, SYNC_GOAL, at_least=False)}); per round "
            f"{min(time_ratios[form]):.2f}-{max(time_ratios[form]):.2f}; median latency {latency_ratio:.2f}x"
        )
        record[f"ratio_sync_{form}_over_httpx_time"] = round(ratio, 3)
        record[f"ratio_sync_{form}_over_httpx_time_per_round"] = [round(r, 3) for r in time_ratios[form]]
        record[f"ratio_sync_{form}_over_httpx_median_latency"] = round(latency_ratio, 3)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
