"""How long after WuKongIM answers a send the message is listed, and the ceiling that sets for confirmed sends.

    .venv/bin/python -m benchmarks.listing_delay [--env-file FILE] [--lone 200] [--convoys 40] [--concurrency 64]

WuKongIM v2.2.5 answers ``POST /message/send`` before it stores the message: the reply carries ``message_id``
and ``client_msg_no`` and no ``message_seq`` (``internal/api/message.go``, ``send``). A client that reports a send
only once it is stored (imbridge's confirmation, issue 19) must read it back. This benchmark measures that wait
with raw aiohttp alone, so no imbridge code is timed or trusted:

* **lone sends**, one at a time: from the answer to the first ``POST /channel/messagesync`` that lists the message
  (reads back to back, one in flight), how many reads that took, and how often the first read, made at once,
  already listed it;
* **convoys**: ``--concurrency`` sends at once, which is what that many confirmed sends in flight on one channel
  become when the read that confirms them wakes them all at once (they are sent again together, answered
  together and wait together: benchmarks/RESULTS.md, "Issue 19, sixth round"). It prints the time from the last
  answer to the read that lists them all, and the **ceiling**: the time the convoy took to be answered over the
  time it took to be listed. Sends that wait for the listing all at once leave the client idle for the
  difference, however little CPU its confirmation costs: its confirmed rate is then at most that share of its
  unconfirmed rate. imbridge wakes a read's sends a few at a time so that they do not move as one convoy
  (imbridge/_coalesce.py; "Issue 19, seventh round"). The reads here follow each other at once, the quickest a
  reader can learn of the listing.

The lone sends share one fresh one-to-one channel and the convoys another, each warmed by one untimed send first
(WuKongIM sets a channel up on its first message, which is not what a busy channel's sends wait for); every read
starts above the highest seq listed before, and a message counts as listed only by its own id.

Optional: it needs a WuKongIM v2 server (``IMBRIDGE_WUKONG_BASE_URL`` and ``IMBRIDGE_WUKONG_MANAGER_TOKEN``, from the
environment or ``--env-file``); without one it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks._server import load_average, machine
from benchmarks.peers import live_server

PAYLOAD = base64.b64encode(json.dumps({"type": 1, "content": "listing probe"}).encode()).decode()
#: How long a message may stay unlisted before the probe gives up on it (and says so).
GIVE_UP_SECONDS = 5.0


class ProbeError(RuntimeError):
    """The server answered a send or a read in a way the probe cannot measure."""


@dataclass
class Channel:
    """One fresh one-to-one channel: ``sender`` writes to ``recipient``; ``high`` is the highest seq listed so far."""

    sender: str
    recipient: str
    high: int = 0
    keys: int = 0

    @classmethod
    def fresh(cls, tag: str, number: int) -> Channel:
        return cls(f"ld{tag}s{number}", f"ld{tag}r{number}")


class Probe:
    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http, self.base_url = http, base_url

    async def send(self, channel: Channel) -> tuple[int, float]:
        """The message id WuKongIM gave, and when its answer was read."""
        channel.keys += 1
        body = {"header": {"red_dot": 1}, "from_uid": channel.sender, "channel_id": channel.recipient,
                "channel_type": 1, "client_msg_no": f"{channel.sender}-{channel.keys}", "payload": PAYLOAD}  # fmt: skip
        async with self.http.post(f"{self.base_url}/message/send", json=body) as reply:
            answer = await reply.json(content_type=None)
        try:
            return int(answer["data"]["message_id"]), time.perf_counter()
        except (KeyError, TypeError, ValueError):
            raise ProbeError(f"/message/send answered HTTP {reply.status}: {str(answer)[:200]}") from None

    async def listed(self, channel: Channel, limit: int) -> dict[int, int]:
        """Message id -> seq of what the channel lists above ``channel.high``."""
        body = {"login_uid": channel.sender, "channel_id": channel.recipient, "channel_type": 1, "limit": limit,
                "start_message_seq": channel.high + 1, "end_message_seq": 0, "pull_mode": 1}  # fmt: skip
        async with self.http.post(f"{self.base_url}/channel/messagesync", json=body) as reply:
            answer = await reply.json(content_type=None)
        if reply.status != 200 or not isinstance(answer, dict):
            raise ProbeError(f"/channel/messagesync answered HTTP {reply.status}: {str(answer)[:200]}")
        try:
            return {int(row["message_id"]): int(row["message_seq"]) for row in answer.get("messages") or []}
        except (KeyError, TypeError, ValueError):
            raise ProbeError(f"/channel/messagesync answered rows without ids or seqs: {str(answer)[:200]}") from None

    async def warmed(self, channel: Channel) -> Channel:
        """``channel`` after one untimed send that is listed (WuKongIM sets the channel up on its first message)."""
        message_id, _ = await self.send(channel)
        if not (await self.until_listed(channel, {message_id}, limit=8))[2]:
            raise ProbeError(f"the warm-up send was not listed within {GIVE_UP_SECONDS:.0f} s")
        return channel

    async def until_listed(self, channel: Channel, wanted: set[int], limit: int) -> tuple[int, int, bool]:
        """Reads back to back until every id in ``wanted`` is listed: (reads made, how many the first read listed,
        whether all were listed before GIVE_UP_SECONDS)."""
        reads, first, given_up_at = 0, 0, time.perf_counter() + GIVE_UP_SECONDS
        while True:
            shown = await self.listed(channel, limit)
            reads += 1
            found = wanted & shown.keys()
            if reads == 1:
                first = len(found)
            if found == wanted:
                channel.high = max(shown.values())
                return reads, first, True
            if time.perf_counter() > given_up_at:
                return reads, first, False


def _summary(values: list[float]) -> dict[str, float]:
    """p50, p95, min and max; empty when nothing was measured (every message given up on)."""
    if not values:
        return {}
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
            "max": ordered[-1], "min": ordered[0]}  # fmt: skip


async def measure(base_url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    tag = secrets.token_hex(3)
    connector = aiohttp.TCPConnector(limit=args.concurrency + 8)
    async with aiohttp.ClientSession(headers={"token": token}, connector=connector) as http:
        probe = Probe(http, base_url)
        lone_ms: list[float] = []
        lone_reads: list[float] = []
        first_hits = unlisted = 0
        channel = await probe.warmed(Channel.fresh(tag, 0))
        for _ in range(args.lone):
            message_id, answered = await probe.send(channel)
            reads, first, listed = await probe.until_listed(channel, {message_id}, limit=8)
            if not listed:
                unlisted += 1
                continue
            lone_ms.append((time.perf_counter() - answered) * 1e3)
            lone_reads.append(reads)
            first_hits += first
        wait_ms: list[float] = []
        spread_ms: list[float] = []
        ceilings: list[float] = []
        first_listed: list[float] = []
        channel = await probe.warmed(Channel.fresh(tag, 1))
        for _ in range(args.convoys):
            started = time.perf_counter()
            answers = await asyncio.gather(*(probe.send(channel) for _ in range(args.concurrency)))
            last = max(at for _, at in answers)
            _, first, listed = await probe.until_listed(channel, {message_id for message_id, _ in answers},
                                                        limit=2 * args.concurrency)  # fmt: skip
            if not listed:
                unlisted += args.concurrency
                continue
            done = time.perf_counter()
            wait_ms.append((done - last) * 1e3)
            spread_ms.append((last - min(at for _, at in answers)) * 1e3)
            ceilings.append((last - started) / (done - started))
            first_listed.append(first)
    return {
        "lone": {"answer_to_listed_ms": _summary(lone_ms), "reads": _summary(lone_reads),
                 "listed_by_first_read": first_hits, "measured": len(lone_ms)},
        "convoys": {"size": args.concurrency, "measured": len(ceilings), "answers_spread_ms": _summary(spread_ms),
                    "last_answer_to_all_listed_ms": _summary(wait_ms),
                    "listed_by_first_read_after_last_answer": _summary(first_listed),
                    "ceiling": _summary(ceilings)},
        "not_listed_within_s": {"seconds": GIVE_UP_SECONDS, "messages": unlisted},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--env-file", type=Path, help="a file of export NAME=value lines (the server's URL and token)")
    parser.add_argument("--lone", type=int, default=200, help="sends made one at a time")
    parser.add_argument("--convoys", type=int, default=40, help="convoys of --concurrency sends")
    parser.add_argument("--concurrency", type=int, default=64, help="sends per convoy")
    args = parser.parse_args()
    if args.lone < 1 or args.convoys < 1 or args.concurrency < 1:
        parser.error("--lone, --convoys and --concurrency must be at least 1")
    server = live_server(args.env_file)
    if server is None:
        return
    base_url, token, version = server
    print(f"WuKongIM {version} at {base_url}; {args.lone} lone sends, {args.convoys} convoys of {args.concurrency}; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    load_before = load_average()
    try:
        figures = asyncio.run(measure(base_url, token, args))
    except (ProbeError, aiohttp.ClientError, asyncio.TimeoutError) as error:  # noqa: UP041 - aiohttp raises the asyncio one
        raise SystemExit(f"listing_delay: {type(error).__name__}: {error}") from None
    lone, convoys = figures["lone"], figures["convoys"]
    if lone["measured"]:
        wait, reads = lone["answer_to_listed_ms"], lone["reads"]
        print(f"lone send, answer to listed:        p50 {wait['p50']:.2f} ms, p95 {wait['p95']:.2f} ms, "
              f"max {wait['max']:.2f} ms; reads p50 {reads['p50']:.0f} (max {reads['max']:.0f}); listed by the first "
              f"read, made at once: {lone['listed_by_first_read']} of {lone['measured']}")  # fmt: skip
    if convoys["measured"]:
        size, wait = convoys["size"], convoys["last_answer_to_all_listed_ms"]
        first, ceiling = convoys["listed_by_first_read_after_last_answer"], convoys["ceiling"]
        print(f"convoy of {size}, answers spread over:  p50 {convoys['answers_spread_ms']['p50']:.2f} ms")
        print(f"convoy of {size}, last answer to all listed: p50 {wait['p50']:.2f} ms, p95 {wait['p95']:.2f} ms; "
              f"the first read after the last answer listed p50 {first['p50']:.0f} of {size} "
              f"(min {first['min']:.0f}, max {first['max']:.0f})")  # fmt: skip
        print(f"ceiling of confirmed / unconfirmed for a convoy of {size}: p50 {ceiling['p50']:.3f} "
              f"(min {ceiling['min']:.3f}, p95 {ceiling['p95']:.3f}) over {convoys['measured']} convoys")  # fmt: skip
    lost = figures["not_listed_within_s"]["messages"]
    if lost:
        print(f"NOT LISTED within {GIVE_UP_SECONDS:.0f} s: {lost} messages (left out of the figures above)")
    load = [round(load_before, 2), round(load_average(), 2)]
    print(f"load average (1 min) over the run: {min(load):.2f}-{max(load):.2f}")
    print(json.dumps({"benchmark": "listing_delay", "machine": machine(), "server": f"WuKongIM {version}", **figures,
                      "load_average_1min": load}))  # fmt: skip


if __name__ == "__main__":
    main()
