"""Tencent pacing: the rate imbridge achieves against the configured limit, and the frequency-control errors
the server answered, for a 10,000-recipient ``send_batch`` and a 5,000-message burst of ``messages.send``.

    .venv/bin/python -m benchmarks.pacing [--rate 500] [--batch-rate 2000]

The server is the Tencent IM emulator on 127.0.0.1, with its server-side limits set equal to the client's
(``sendmsg`` at ``--rate`` calls/s with one second's burst; ``batchsendmsg`` at ``--batch-rate``
recipients/s over a one-second window, or one request's 500 recipients if that is more, plus 0.1 s of
jitter), so a client that overshoots is answered with a frequency-control code (60007) the way Tencent
answers. The server counts those answers itself: the client retries them silently, so only the server can
say how many there were. Lower limits than Tencent's keep the run short; the pacing code is the same.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import secrets
import threading
import time
from typing import Any

from benchmarks._server import machine
from imbridge import AsyncIMClient, Conversation, IMClient
from imbridge.emulators import EmulatorReply, EmulatorRequest, serve
from imbridge.emulators.tencent import TencentEmulator
from imbridge.errors import RateLimitError
from imbridge.providers.tencent import mapping

APP_ID = 1400000000
CHUNK = 500  # recipients per batchsendmsg request


class Counting:
    """The emulator, counting the frequency-control answers it gives (by Tencent's own error table)."""

    def __init__(self, emulator: TencentEmulator) -> None:
        self.emulator = emulator
        self.refused: dict[str, int] = {}
        self._lock = threading.Lock()

    def handle(self, request: EmulatorRequest) -> EmulatorReply:
        reply = self.emulator.handle(request)
        code = json.loads(reply.body).get("ErrorCode", 0)
        rule = mapping.rule_for(code) if code else None
        if rule is not None and rule.kind is RateLimitError:
            with self._lock:
                command = request.path.rsplit("/", 1)[-1]
                self.refused[command] = self.refused.get(command, 0) + 1
        return reply


def run(rate: float, batch_rate: float, recipients: int, burst: int) -> dict[str, Any]:
    key = secrets.token_hex(16)
    emulator = TencentEmulator(
        sdk_app_id=APP_ID, secret_key=key, rate_limits={"*": 100_000.0, "sendmsg": rate},
        # One second's worth, or one full request's worth if that is more (else no request could ever pass),
        # plus 0.1 s: requests paced exactly at the limit arrive a few ms closer together than they were sent.
        batch_recipients_per_second=batch_rate, batch_window_seconds=max(1.0, CHUNK / batch_rate) + 0.1,
    )  # fmt: skip
    users = [f"u{number}" for number in range(recipients)]
    emulator.store.add_users(["sender", *users], time.time())
    counting = Counting(emulator)
    settings = {"sdk_app_id": APP_ID, "secret_key": key, "rate_limits": {"sendmsg": rate, "batchsendmsg": batch_rate}}
    with serve(counting) as server:
        with IMClient("tencent", base_url=server.url, **settings) as im:
            started = time.perf_counter()
            result = im.messages.send_batch("sender", users, "notice")
            batch_seconds = time.perf_counter() - started
        if not result.ok:
            raise SystemExit(f"send_batch failed for {sum(not item.ok for item in result.items)} recipients")

        async def burst_run() -> tuple[float, int]:
            async with AsyncIMClient("tencent", base_url=server.url, **settings) as client:
                to = Conversation.user("u0")
                begin = time.perf_counter()
                outcomes = await asyncio.gather(
                    *(client.messages.send("sender", to, f"m{n}") for n in range(burst)), return_exceptions=True
                )
                return time.perf_counter() - begin, sum(isinstance(o, BaseException) for o in outcomes)

        burst_seconds, burst_failures = asyncio.run(burst_run())
    emulator.close()
    return {
        "batch": {"recipients": recipients, "configured_per_s": batch_rate, "seconds": round(batch_seconds, 3),
                  "achieved_per_s": round(recipients / batch_seconds, 1),
                  "ratio": round(recipients / batch_seconds / batch_rate, 3),
                  # The pacer lets the first request (a 500-recipient chunk) go at once; the rest is paced.
                  "sustained_ratio": round((recipients - CHUNK) / batch_seconds / batch_rate, 3),
                  "frequency_errors": counting.refused.get("batchsendmsg", 0)},
        "burst": {"messages": burst, "configured_per_s": rate, "seconds": round(burst_seconds, 3),
                  "achieved_per_s": round(burst / burst_seconds, 1), "ratio": round(burst / burst_seconds / rate, 3),
                  "frequency_errors": counting.refused.get("sendmsg", 0), "failed_sends": burst_failures},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=500.0, help="sendmsg calls per second (Tencent: 200)")
    parser.add_argument("--batch-rate", type=float, default=2000.0, help="batchsendmsg recipients per second")
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=5_000)
    args = parser.parse_args()
    figures = run(args.rate, args.batch_rate, args.recipients, args.burst)
    print(f"{'':<34}{'configured/s':>14}{'achieved/s':>12}{'ratio':>8}{'freq errors':>13}")
    for name, label in (("batch", f"send_batch, {args.recipients:,} recipients"),
                        ("burst", f"messages.send burst of {args.burst:,}")):  # fmt: skip
        row = figures[name]
        print(f"{label:<34}{row['configured_per_s']:>14,.0f}{row['achieved_per_s']:>12,.1f}{row['ratio']:>8.3f}"
              f"{row['frequency_errors']:>13}")  # fmt: skip
    sustained = figures["batch"]["sustained_ratio"]
    print(f"send_batch without its first chunk (sent at once, by design): ratio {sustained:.3f}")
    print("target: ratio >= 0.95 with zero frequency-control errors")
    record = {
        "benchmark": "pacing",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "server": "Tencent IM emulator on 127.0.0.1, server-side limits equal to the client's",
        **figures,
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
