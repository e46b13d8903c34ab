"""Webhook deliveries into the event receiver's ASGI app, against a bare ASGI app that only parses JSON.

    .venv/bin/python -m benchmarks.webhooks [--deliveries 10000] [--duplicates 0.1] [--rounds 5] [--block 500]

Both apps are served by uvicorn (one worker, loopback, access log off), each in a process of its own, pinned
to the last core; the client (raw asyncio streams over keep-alive connections, cheap enough that the servers set
the pace) runs on core 0. Each delivery is a WuKongIM ``msg.notify``
POST of one message, shaped as the real v2.2.5 server sends it (tests/fixtures/wukong/webhooks/); a share of
the deliveries are re-deliveries of earlier ones (the same body again, as WuKongIM's retry sends it). The
receiver verifies the path secret, parses, deduplicates and hands each event to a handler that counts it; the
bare app reads the body and ``orjson.loads`` it. Within each round the apps take turns in short blocks
(``--block`` deliveries, starting with each in turn), so that this shared VM's speed swings, which last
seconds, fall on both alike; a round's ratio is its receiver rate over its bare rate, and the median of the
rounds is reported with their range. Each round uses new message ids; after every round the receiver's counts
are fetched and every event must have been handed to the app exactly once (re-deliveries included in the
deliveries, not in the events). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
import orjson

from benchmarks._server import machine, pin_client_and_server, wait_for_port

_CONTENT_LENGTH = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)

SECRET = "benchmark-webhook-path-secret-0123456789"
PATH = f"/wukong/webhook/{SECRET}"


# -- the servers -------------------------------------------------------------------------------------------


def _receiver_app() -> Any:
    from imbridge.events import EventReceiver, MessageCreated

    receiver = EventReceiver("wukong", path_secret=SECRET)
    counts: Counter[str] = Counter()

    @receiver.on(MessageCreated)
    def count(event: MessageCreated) -> None:
        counts[event.ref.key] += 1

    inner = receiver.asgi

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/counts":
            body = orjson.dumps(counts)
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    return app


def _bare_app() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        orjson.loads(b"".join(chunks))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    return app


def serve(kind: str, port: int) -> None:
    import uvicorn

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) >= 2:
        os.sched_setaffinity(0, {cores[-1]})
    app = _receiver_app() if kind == "receiver" else _bare_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


# -- the deliveries ----------------------------------------------------------------------------------------


def deliveries(count: int, duplicates: float, first_id: int, rng: random.Random) -> list[bytes]:
    """``count`` msg.notify bodies: ``count * (1 - duplicates)`` messages, then re-deliveries of some of them,
    each placed after its original."""
    unique = count - int(count * duplicates)
    bodies = []
    for index in range(unique):
        message_id = first_id + index
        payload = base64.b64encode(json.dumps({"type": 1, "content": f"benchmark message {index}"}).encode())
        bodies.append(orjson.dumps([{
            "header": {"no_persist": 0, "red_dot": 1, "sync_once": 0}, "setting": 0, "message_id": message_id,
            "message_idstr": str(message_id), "client_msg_no": f"bench{message_id}", "message_seq": index + 1,
            "from_uid": "alice", "channel_id": "bob", "channel_type": 1, "expire": 0, "timestamp": 1796190882,
            "payload": payload.decode(),
        }]))  # fmt: skip
    for _ in range(count - unique):
        original = rng.randrange(unique)
        bodies.insert(rng.randrange(original + 1, len(bodies) + 1), bodies[original])
    return bodies


def request_bytes(body: bytes) -> bytes:
    """One keep-alive HTTP/1.1 POST, as WuKongIM's client sends it (Content-Type JSON, Content-Length)."""
    head = (f"POST {PATH}?event=msg.notify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def deliver(port: int, requests: list[bytes], concurrency: int) -> float:
    """Send every request over ``concurrency`` keep-alive connections; the seconds it took. Every answer must
    be 200. The client is raw asyncio streams with prebuilt requests: it costs a fraction of the servers' work,
    so that the servers, not the client, set the pace (an aiohttp client was the bottleneck)."""
    queue = iter(requests)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if head[9:12] != b"200":
                    raise SystemExit(f"delivery answered {head[9:12].decode()}")
                length = _CONTENT_LENGTH.search(head)
                if length and int(length.group(1)):
                    await reader.readexactly(int(length.group(1)))
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def interleaved(ports: dict[str, int], requests: dict[str, list[bytes]], block: int, concurrency: int,
                      first: str) -> dict[str, float]:  # fmt: skip
    """Deliver both apps' requests in alternating blocks; the seconds each app took in all."""
    spent = dict.fromkeys(ports, 0.0)
    order = [first, *(kind for kind in ports if kind != first)]
    for start in range(0, max(len(r) for r in requests.values()), block):
        for kind in order:
            chunk = requests[kind][start : start + block]
            if chunk:
                spent[kind] += await deliver(ports[kind], chunk, concurrency)
        order.reverse()
    return spent


async def counts(port: int) -> Counter[str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/counts") as response:
        return Counter(json.loads(await response.read()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--duplicates", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--block", type=int, default=500, help="deliveries per turn")
    parser.add_argument("--serve", choices=["receiver", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    pinning = pin_client_and_server()
    ports = {"receiver": 18790, "bare": 18791}
    servers = {
        kind: subprocess.Popen([sys.executable, "-m", "benchmarks.webhooks", "--serve", kind, "--port", str(port)])
        for kind, port in ports.items()
    }
    try:
        for kind, process in servers.items():
            if not wait_for_port(ports[kind], process, seconds=30):
                raise SystemExit(f"the {kind} server did not start")
        rng = random.Random(18)
        rates: dict[str, list[float]] = {"receiver": [], "bare": []}
        expected: Counter[str] = Counter()
        next_id = 2128000000000000000
        unique = args.deliveries - int(args.deliveries * args.duplicates)
        # A warm-up round (not counted), then the rounds; every round checks exactly-once.
        for round_index in range(args.rounds + 1):
            bodies = {kind: [request_bytes(b) for b in deliveries(args.deliveries, args.duplicates,
                                                                   next_id + i * unique, rng)]
                      for i, kind in enumerate(("receiver", "bare"))}  # fmt: skip
            first = "receiver" if round_index % 2 == 0 else "bare"
            spent = asyncio.run(interleaved(ports, bodies, args.block, args.concurrency, first))
            expected.update(str(next_id + i) for i in range(unique))
            got = asyncio.run(counts(ports["receiver"]))
            wrong = {key: n for key, n in got.items() if n != 1}
            missing = set(expected) - set(got)
            if wrong or missing or len(got) != len(expected):
                raise SystemExit(f"not exactly once: {len(wrong)} events handed on more than once, "
                                 f"{len(missing)} never")  # fmt: skip
            next_id += 2 * unique
            if round_index > 0:
                for kind in rates:
                    rates[kind].append(args.deliveries / spent[kind])
        ratios = [r / b for r, b in zip(rates["receiver"], rates["bare"], strict=True)]
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(timeout=10)
    receiver, bare = statistics.median(rates["receiver"]), statistics.median(rates["bare"])
    print(f"{args.deliveries} deliveries per app per round ({args.duplicates:.0%} re-deliveries), {args.rounds} "
          f"rounds in blocks of {args.block}, concurrency {args.concurrency}; {pinning}")  # fmt: skip
    print(f"  bare ASGI app (parse JSON only)   {bare:9,.0f} deliveries/s (median)")
    print(f"  imbridge EventReceiver.asgi       {receiver:9,.0f} deliveries/s (median)")
    print(f"  ratio receiver / bare             {statistics.median(ratios):9.2f} (median; rounds: "
          + ", ".join(f"{r:.2f}" for r in ratios) + ")")
    print(f"  every event handed to the app exactly once: yes ({len(expected)} events in {args.rounds + 1} rounds "
          f"incl. warm-up, {args.rounds + 1} x {args.deliveries - unique} re-deliveries not handed on)")
    print(json.dumps({
        "benchmark": "webhooks", "deliveries": args.deliveries, "duplicates": args.duplicates, "rounds": args.rounds,
        "concurrency": args.concurrency, "block": args.block, "receiver_per_s": round(receiver),
        "bare_per_s": round(bare),
        "ratio": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios],
        "exactly_once": True, "machine": machine(),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
