"""Which WuKongIM request confirms many sends at once, measured on a real server (issue 19).

    IMBRIDGE_WUKONG_BASE_URL=... IMBRIDGE_WUKONG_MANAGER_TOKEN=... .venv/bin/python -m benchmarks.confirm_lookups

Fills one-to-one channels to several sizes, then confirms the newest ``--keys`` client_msg_nos of each,
three ways, interleaved, ``--rounds`` times: (a) one ``POST /messages`` with ``client_msg_nos``, (b) one
``POST /channel/messagesync`` of the newest ``2 x keys`` messages, (c) ``keys`` concurrent
``GET /message/byclientmsgno`` (today's per-send lookup). Prints the median time of each and how many keys
each found, and the ratios to (c). Needs a running WuKongIM; prints a note and exits 0 without one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import time
from typing import Any

import aiohttp

from imbridge import AsyncIMClient, Conversation
from imbridge.providers.wukong.wire import PERSON, fake_channel_id


async def _fill(im: AsyncIMClient, sender: str, recipient: str, count: int, tag: str) -> list[str]:
    keys = [f"{tag}-{i}" for i in range(count)]
    limit = asyncio.Semaphore(64)

    async def one(key: str) -> None:
        async with limit:
            await im.messages.send(sender, Conversation.user(recipient), key, idempotency_key=key, confirm=False)

    await asyncio.gather(*(one(key) for key in keys))
    return keys


async def _timed(call: Any) -> tuple[float, int]:
    started = time.perf_counter()
    found = await call()
    return time.perf_counter() - started, found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,3000", help="channel sizes (messages), comma-separated")
    parser.add_argument("--keys", type=int, default=64, help="client_msg_nos confirmed per request")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    url = os.environ.get("IMBRIDGE_WUKONG_BASE_URL")
    token = os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN")
    if not url or not token:
        print("set IMBRIDGE_WUKONG_BASE_URL and IMBRIDGE_WUKONG_MANAGER_TOKEN (a real WuKongIM) to run this")
        return
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"server {url}; {args.keys} keys per confirmation; {args.rounds} interleaved rounds; load: {load}")
    headers = {"token": token}
    async with AsyncIMClient("wukong", base_url=url, manager_token=token, store="") as im, aiohttp.ClientSession(
        headers=headers
    ) as http:
        for size in (int(s) for s in args.sizes.split(",")):
            tag = f"cl{secrets.token_hex(3)}"
            sender, recipient = f"{tag}a", f"{tag}b"
            await im.users.register([sender, recipient])
            keys = await _fill(im, sender, recipient, size, tag)
            await asyncio.sleep(1.0)  # every message stored before the lookups
            await _compare(http, url, sender, recipient, set(keys[-args.keys :]), size, args.rounds)


async def _compare(
    http: aiohttp.ClientSession, url: str, sender: str, recipient: str, wanted: set[str], size: int, rounds: int
) -> None:
    channel = fake_channel_id(sender, recipient)
    count = len(wanted)

    async def by_messages() -> int:
        body = {"login_uid": sender, "channel_id": recipient, "channel_type": PERSON, "client_msg_nos": sorted(wanted)}
        async with http.post(f"{url}/messages", json=body) as reply:
            data = await reply.json()
        return len({m["client_msg_no"] for m in data.get("messages") or []} & wanted)

    async def by_sync() -> int:
        body = {"login_uid": sender, "channel_id": recipient, "channel_type": PERSON, "start_message_seq": 0,
                "end_message_seq": 0, "limit": 2 * count, "pull_mode": 0}  # fmt: skip
        async with http.post(f"{url}/channel/messagesync", json=body) as reply:
            data = await reply.json()
        return len({m["client_msg_no"] for m in data.get("messages") or []} & wanted)

    async def by_key() -> int:
        async def one(key: str) -> int:
            params = {"channel_id": channel, "channel_type": str(PERSON), "client_msg_no": key}
            async with http.get(f"{url}/message/byclientmsgno", params=params) as reply:
                data = await reply.json()
            return int(reply.status == 200 and data.get("client_msg_no") == key)

        return sum(await asyncio.gather(*(one(key) for key in wanted)))

    ways = {"POST /messages (client_msg_nos)": by_messages, "POST /channel/messagesync (newest 2k)": by_sync,
            "GET /message/byclientmsgno x k": by_key}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in ways}
    found: dict[str, set[int]] = {name: set() for name in ways}
    for round_ in range(rounds):
        order = list(ways)[round_ % 3 :] + list(ways)[: round_ % 3]
        for name in order:
            seconds, hits = await _timed(ways[name])
            times[name].append(seconds)
            found[name].add(hits)
    baseline = statistics.median(times["GET /message/byclientmsgno x k"])
    print(f"\nchannel of {size} messages, newest {count} confirmed:")
    for name in ways:
        median = statistics.median(times[name])
        print(f"  {name:40s} median {median * 1000:8.2f} ms  found {sorted(found[name])} of {count}"
              f"  time vs per-key lookups: {median / baseline:.2f}x")  # fmt: skip

if __name__ == "__main__":
    asyncio.run(main())
