"""What imbridge's own layers cost per async ``messages.send``, with no network at all.

    .venv/bin/python -m benchmarks.send_path [--sends 20000] [--rounds 7]

The async client sends over a null transport: it hands every request to a stub that answers at once
with the provider's success reply, so what is timed is imbridge alone (validation, the operation's flow,
the executor, encoding the body and decoding the answer, building the typed result). The baseline, timed
in the same run, is the least a hand-written client must do per send without I/O: build the body (the
payload encoded per the provider's convention), encode it, and parse the reply. imbridge sends a string
(``f"m{n}"``) and, in the README's idiom, a fresh element (``[Text(f"m{n}")]``). Sends run one after
another on one core; the median over interleaved rounds is reported.

This is the figure the async-speed work (issue 9) drove down. It is a floor, not what a send costs in a real
loop: there, between two sends, the event loop, the HTTP client and the kernel run, and imbridge's calls meet
their code and data cold again; measured against nginx they cost two to three times this (issue 19, see
benchmarks/RESULTS.md), so fewer calls count for more than faster ones. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from benchmarks._server import machine, pin_client_and_server
from benchmarks.http_clients import wukong_body
from imbridge import AsyncIMClient, Conversation, Text
from imbridge._flow import HTTPRequest, Response

BOB = Conversation.user("bob")
SIG = "x" * 200  # a UserSig's length; its value does not change the encoding's cost
JSON_HEADERS = {"Content-Type": "application/json"}
WUKONG_REPLY = orjson.dumps({"status": 200, "data": {"message_id": 1851234567890123456, "client_msg_no": "b"}})
TENCENT_REPLY = orjson.dumps(
    {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, "MsgTime": 1669872112, "MsgKey": "89541_2_1669872112"}
)


class NullTransport:
    """An async transport that answers every request at once with ``reply``."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply

    async def send(self, request: HTTPRequest, timeout: float) -> Response:
        return Response(200, JSON_HEADERS, self.reply)

    async def aclose(self) -> None:
        return None


def tencent_body(number: int) -> dict[str, Any]:
    # Besides the body, a hand-written Tencent client builds each request's query (a fresh random; the admin
    # UserSig computed once and reused, as the official SDKs do). Like imbridge's, it is a mapping handed to
    # the HTTP client, which encodes it: that encoding is the transport's and is left out on both sides.
    _query = {"sdkappid": "1400000000", "identifier": "administrator", "usersig": SIG, "random": str(number),
             "contenttype": "json"}  # fmt: skip
    return {
        "SyncOtherMachine": 1, "From_Account": "alice", "To_Account": "bob", "MsgRandom": number,
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": f"m{number}"}}],
    }  # fmt: skip


async def _per_call(call: Callable[[int], Awaitable[object]], sends: int) -> float:
    started = time.perf_counter()
    for number in range(sends):
        await call(number)
    return (time.perf_counter() - started) / sends


async def bench(provider: str, settings: dict[str, Any], reply: bytes, body: Callable[[int], Any], sends: int,
                rounds: int) -> dict[str, float]:  # fmt: skip
    async with AsyncIMClient(provider, **settings) as im:
        im._executor.transport = NullTransport(reply)  # the benchmark's stub: no socket is opened

        async def imbridge_send(number: int) -> object:
            return await im.messages.send("alice", BOB, f"m{number}")

        async def imbridge_elements(number: int) -> object:
            return await im.messages.send("alice", BOB, content=[Text(f"m{number}")])

        async def hand_written(number: int) -> object:
            orjson.dumps(body(number))
            return orjson.loads(reply)

        calls = {"hand-written": hand_written, "imbridge": imbridge_send, "imbridge [Text]": imbridge_elements}
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for call in calls.values():
            await _per_call(call, sends // 10)
        for round_number in range(rounds):
            for name in list(calls)[:: 1 if round_number % 2 == 0 else -1]:
                samples[name].append(await _per_call(calls[name], sends))
        return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sends", type=int, default=20000, help="sends per client per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    pinning = pin_client_and_server()
    wukong = {"base_url": "http://null.invalid", "store": "", "confirm_sends": False, "enforce_policy": False}
    tencent = {
        "sdk_app_id": 1400000000, "secret_key": "0" * 64, "base_url": "http://null.invalid",
        "rate_limits": {"sendmsg": 1e9},  # the documented 200/s would pace this loop, not measure it
    }  # fmt: skip
    results = {
        "wukong": asyncio.run(bench("wukong", wukong, WUKONG_REPLY, wukong_body, args.sends, args.rounds)),
        "tencent": asyncio.run(bench("tencent", tencent, TENCENT_REPLY, tencent_body, args.sends, args.rounds)),
    }
    print(f"cores: {pinning}")
    print(
        f"{'provider':<10}{'hand-written':>14}{'imbridge':>12}{'imbridge adds':>16}{'ratio':>8}"
        f"{'[Text(...)]':>14}{'adds':>8}   (us per send, no I/O)"
    )
    for provider, figures in results.items():
        extra = figures["imbridge"] - figures["hand-written"]
        ratio = figures["imbridge"] / figures["hand-written"]
        elements = figures["imbridge [Text]"]
        print(
            f"{provider:<10}{figures['hand-written']:>14.2f}{figures['imbridge']:>12.2f}{extra:>16.2f}{ratio:>7.1f}x"
            f"{elements:>14.2f}{elements - figures['hand-written']:>8.2f}"
        )
    record = {
        "benchmark": "send_path",
        "machine": machine(),
        "sends": args.sends,
        "rounds": args.rounds,
        "us_per_send": {p: {k: round(v, 2) for k, v in f.items()} for p, f in results.items()},
        "ratio_imbridge_over_hand_written": {
            p: round(f["imbridge"] / f["hand-written"], 2) for p, f in results.items()
        },
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
