"""Confirmed async sends against unconfirmed ones, on a real WuKongIM (issue 19).

    IMBRIDGE_WUKONG_BASE_URL=... IMBRIDGE_WUKONG_MANAGER_TOKEN=... .venv/bin/python -m benchmarks.confirm

``AsyncIMClient.messages.send`` of ``--sends`` one-to-one texts with ``--concurrency`` in flight, confirm on
(the default: each send waits until WuKongIM has stored it; concurrent sends share their confirming reads) and
confirm off (``confirm=False``: the send's answer only). The two take turns within each of ``--rounds`` rounds
(the order alternates), each on a fresh pair of users; the figure per round is messages per second over the
whole batch, and the ratio is taken per round. Prints the medians, the per-round ratios and the machine's load
(``uptime``) before and after. Needs a running WuKongIM; prints a note and exits 0 without one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import time
from collections import Counter

from imbridge import AsyncIMClient, Conversation


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


async def _batch(im: AsyncIMClient, sends: int, concurrency: int, confirm: bool) -> tuple[float, int, Counter[str]]:
    """(messages per second, how many came back confirmed, the errors by type) for one batch on a fresh pair of
    users. A send that fails is counted, not retried (a MessageMayHaveLandedError is WuKongIM not storing an
    accepted message within the confirmation's second: the figure includes its wait)."""
    tag = f"bc{secrets.token_hex(3)}"
    sender, recipient = f"{tag}a", f"{tag}b"
    await im.users.register([sender, recipient])
    to = Conversation.user(recipient)
    limit = asyncio.Semaphore(concurrency)

    async def one(number: int) -> bool:
        async with limit:
            sent = await im.messages.send(sender, to, f"m{number}", confirm=confirm)
            return sent.confirmed

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(n) for n in range(sends)), return_exceptions=True)
    rate = sends / (time.perf_counter() - started)
    errors = Counter(type(o).__name__ for o in outcomes if isinstance(o, BaseException))
    return rate, sum(1 for o in outcomes if o is True), errors


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    url = os.environ.get("IMBRIDGE_WUKONG_BASE_URL")
    token = os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN")
    if not url or not token:
        print("set IMBRIDGE_WUKONG_BASE_URL and IMBRIDGE_WUKONG_MANAGER_TOKEN (a real WuKongIM) to run this")
        return
    print(f"server {url}; {args.sends} sends, concurrency {args.concurrency}, {args.rounds} interleaved rounds")
    print(f"load before: {_load()}")
    rates: dict[bool, list[float]] = {True: [], False: []}
    ratios = []
    async with AsyncIMClient("wukong", base_url=url, manager_token=token, store="") as im:
        await _batch(im, 200, args.concurrency, True)  # warm-up: connections, caches
        for round_ in range(args.rounds):
            figures = {}
            for confirm in (True, False) if round_ % 2 == 0 else (False, True):
                rate, confirmed, errors = await _batch(im, args.sends, args.concurrency, confirm)
                if errors or (confirm and confirmed != args.sends):
                    print(f"  round {round_ + 1} (confirm {'on' if confirm else 'off'}): {confirmed} of {args.sends}"
                          f" confirmed; failed: {dict(errors) or 'none'}")  # fmt: skip
                figures[confirm] = rate
                rates[confirm].append(rate)
            ratios.append(figures[True] / figures[False])
            print(f"  round {round_ + 1}: confirm on {figures[True]:7.0f} msg/s, off {figures[False]:7.0f} msg/s,"
                  f" on/off {ratios[-1]:.2f}x")  # fmt: skip
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"median: confirm on {on:.0f} msg/s, confirm off {off:.0f} msg/s")
    print(f"confirm on / confirm off: median of per-round ratios {statistics.median(ratios):.2f}x "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}); ratio of medians {on / off:.2f}x")  # fmt: skip
    print(f"load after: {_load()}")


if __name__ == "__main__":
    asyncio.run(main())
