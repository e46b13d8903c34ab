"""What the Tencent admin UserSig costs per request, amortized.

    .venv/bin/python -m benchmarks.usersig [--requests 2000] [--rounds 5]

Three figures: generating one UserSig (HMAC-SHA256 + zlib + base64, done once per validity period), a
cache hit (what every request pays), and the whole per-request difference through the Tencent provider:
``messages.send`` against a loopback nginx answering Tencent's OK envelope, with the provider's real sig
cache against the same client whose cache is replaced by a fixed precomputed sig. Rounds are interleaved,
medians reported. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import secrets
import statistics
import timeit
from typing import Any

from benchmarks._server import fixed_reply_server, machine
from benchmarks.http_clients import _drive_sync
from imbridge import Conversation, IMClient
from imbridge.providers.tencent.usersig import UserSigCache, generate_usersig

APP_ID = 1400000000
TENCENT_OK = {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, "MsgTime": 1700000000, "MsgKey": "1_2_3"}
TTL = 7 * 86400


def per_call(statement: Any, number: int) -> float:
    """Median seconds per call over 7 repeats of ``number`` calls."""
    return statistics.median(timeit.repeat(statement, number=number, repeat=7)) / number


class FixedSig:
    """Stands in for the provider's UserSigCache: one sig computed in advance, nothing else."""

    def __init__(self, sig: str) -> None:
        self.sig = sig

    def get(self) -> str:
        return self.sig

    def invalidate(self) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="sends per client per round")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    key = secrets.token_hex(32)

    generate = per_call(lambda: generate_usersig(APP_ID, key, "administrator", TTL), 2000)
    cache = UserSigCache(APP_ID, lambda: key, "administrator", TTL)
    cache.get()
    hit = per_call(cache.get, 200_000)

    settings = {"sdk_app_id": APP_ID, "secret_key": key, "rate_limits": {"sendmsg": 1e9}}  # no pacing here
    to = Conversation.user("bob")
    with (
        fixed_reply_server(TENCENT_OK) as url,
        IMClient("tencent", base_url=url, **settings) as cached,
        IMClient("tencent", base_url=url, **settings) as fixed,
    ):
        # The one seam: the provider's sig cache, swapped for a constant (benchmark only).
        fixed._provider._sigs = FixedSig(generate_usersig(APP_ID, key, "administrator", TTL))  # type: ignore[attr-defined]
        clients = {"sig cache (imbridge)": cached, "fixed precomputed sig": fixed}
        latencies: dict[str, list[float]] = {name: [] for name in clients}

        def sender(client: IMClient) -> Any:
            return lambda _number: client.messages.send("alice", to, "hi")

        for client in clients.values():
            _drive_sync(sender(client), args.warmup)
        for round_number in range(args.rounds):
            for name in list(clients)[:: 1 if round_number % 2 == 0 else -1]:
                _, measured = _drive_sync(sender(clients[name]), args.requests)
                latencies[name] += measured
    medians = {name: statistics.median(values) for name, values in latencies.items()}
    overhead = medians["sig cache (imbridge)"] - medians["fixed precomputed sig"]
    # One sig per validity period (renewed at 90% of TTL): at even 1 request/s its cost spreads over 544,320.
    amortized = generate / (TTL * 0.9)

    print(f"{'':<44}{'microseconds':>14}")
    print(f"{'generate one UserSig':<44}{generate * 1e6:>14.2f}")
    print(f"{'cache hit (every request)':<44}{hit * 1e6:>14.3f}")
    print(f"{'generation amortized, at 1 request/s':<44}{amortized * 1e6:>14.6f}")
    for name, value in medians.items():
        print(f"{'send median, ' + name:<44}{value * 1e6:>14.1f}")
    print(f"{'per-request difference (cache - fixed)':<44}{overhead * 1e6:>14.1f}")
    record = {
        "benchmark": "usersig",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "server": "nginx on 127.0.0.1 answering Tencent's OK envelope",
        "generate_us": round(generate * 1e6, 2),
        "cache_hit_us": round(hit * 1e6, 3),
        "generation_amortized_us_at_1rps": round(amortized * 1e6, 6),
        "send_median_us": {name: round(value * 1e6, 1) for name, value in medians.items()},
        "per_request_difference_us": round(overhead * 1e6, 1),
        "requests": args.requests,
        "rounds": args.rounds,
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
