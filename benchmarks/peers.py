"""imbridge against a peer SDK (gowk, Go) and raw aiohttp, on a live WuKongIM, in one run.

    .venv/bin/python -m benchmarks.peers [--env-file FILE] [--gowk PATH] [--messages 2000] [--rounds 3]
                                         [--concurrency 64] [--server-pid PID] [--jsonrpc-url WS_URL]
                                         [--pause-collector]

Optional: it needs a WuKongIM v2 server (``IMBRIDGE_WUKONG_BASE_URL`` and ``IMBRIDGE_WUKONG_MANAGER_TOKEN``,
from the environment or ``--env-file``, a file of ``export NAME=value`` lines) and, for the gowk rows, a
bench program built from gowk's public source outside this repository (``--gowk PATH`` or
``IMBRIDGE_GOWK_BENCH``; its interface: ``PATH -url URL -token TOKEN -n N -c C [-lookup]``, printing one
line with ``msg/s=``, ``failed=``, ``lookups=`` and ``lookup_misses=``). Without a server it prints why and
exits 0; without the gowk program it runs the other clients.

Every client sends the same messages: ``--messages`` one-to-one texts (``bench <n>``) from a fresh sender to
a fresh recipient (a new pair per client and round, so no client writes to a channel another has filled),
``--concurrency`` at once (Go: goroutines; Python: one task per message under a semaphore). The clients:

* gowk, no storage check: ``POST /message/send`` only;
* gowk with the per-message lookups imbridge makes to confirm a send (``GET /message/byclientmsgno`` until
  the message is found; the program must treat WuKongIM's HTTP 200 ``{"status":404}`` as not found);
* imbridge ``AsyncIMClient`` with confirmation on (the default) and off;
* raw aiohttp written the ordinary way (``session.post(url, json=body)``, ``await reply.json()``);
* with ``--jsonrpc-url`` (the node's WebSocket listener, e.g. ``ws://127.0.0.1:5200``), two more:
  imbridge ``AsyncIMClient`` with ``jsonrpc_url`` set, and raw aiohttp over WuKongIM's JSON-RPC, one connection for
  the sender on the ``SYSTEM`` device flag (99). The node answers each ``send`` there only after storing it, with
  its seq (the binary protocol's SENDACK), so every send these two count is confirmed by the node itself, with no
  reads. The run prints imbridge's confirmed rate there against its unconfirmed rate over HTTP (the async-speed
  issue's first goal) and against the raw client.

Each round runs every client once, the order rotating from round to round, so that the machine's swings
(the server shares the cores with the client) fall on every client alike; the medians over ``--rounds``
are reported, with the ratios the async-speed issue asks for and the machine's load average.

It also prints what each client's sends cost in CPU: per send, the share of one core the client was busy, and
(Python clients) the part spent collecting garbage. A Python client is one thread: where it is busy near 100%,
its own CPU per send sets its rate, and confirmation's extra CPU shows one for one in the ratio. Before each
Python turn the garbage of the turns before it is collected, untimed. A turn of 2,000 sends lasts about 0.4 s,
and one full collection takes 45-50 ms of it, so whether a turn meets one moves its rate by 10-15%; longer turns
(``--messages 10000``) average that out. The collections of each generation are counted too. When one shared read
woke all the sends it confirmed at once, the confirmed sends on a channel moved in step. The process then
allocated in bursts and freed in bursts, and the collector, which counts allocations net of frees, ran more
often. Reads now wake their sends a few at a time (imbridge/_coalesce.py), and the counts show whether they still
move in step.

``--server-pid PID`` (Linux; the server on this machine) adds what each turn cost the server in CPU, per send,
read from ``/proc/PID/stat`` before and after the turn. The turn's two registrations and any work the server
finishes meanwhile are in it, and the kernel counts in ticks of 10 ms: about 5 us per send over 2,000 sends.
Where the client and the server share the machine's cores, the client's and the server's CPU per send together
bound the rate; the run prints that bound for both imbridge modes and their ratio, the most confirm on could
reach against confirm off on this machine.

``--pause-collector`` is a diagnostic: no automatic collection during the Python turns, so the ratios show what
confirmation costs in CPU and waits alone. It prints no verdict: applications run with the collector on.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks._server import load_average, machine
from benchmarks.http_clients import _drive
from imbridge import AsyncIMClient, Conversation, IMBridgeError
from imbridge.providers.wukong.wire import fake_channel_id

CONFIRM_GOAL = 0.9  # imbridge confirm-on / imbridge confirm-off
JSONRPC = "raw JSON-RPC, node-confirmed"
IMBRIDGE_JSONRPC = "imbridge-async over JSON-RPC"  # jsonrpc_url set: every send confirmed by the node's answer
JSONRPC_TURN_SECONDS = 60  # plus 10 ms per send: far above any turn measured (2,000 sends took under 0.4 s)
PEER_GOAL = 1.2  # imbridge confirm-on / gowk with the same lookups


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` pairs of a shell env file (``export`` lines; quotes stripped)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        if match:
            found[match.group(1)] = match.group(2).strip().strip("'\"")
    return found


async def reachable(base_url: str, token: str) -> str | None:
    """The server's version from ``/varz``, or None when nothing usable answers."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(f"{base_url}/varz", headers={"token": token}) as reply,
        ):
            if reply.status != 200:
                return None
            varz = await reply.json(content_type=None)
            return str(varz.get("version", "unknown version"))
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):  # noqa: UP041 - aiohttp raises the asyncio one
        return None


def live_server(env_file: Path | None) -> tuple[str, str, str] | None:
    """(base URL, manager token, version) of the WuKongIM the environment (and ``env_file``) names; None, after
    printing why, when nothing usable answers there (the live benchmarks then skip, exit 0)."""
    settings = dict(os.environ)
    if env_file is not None:
        settings.update(read_env_file(env_file))
    base_url = settings.get("IMBRIDGE_WUKONG_BASE_URL", "").rstrip("/")
    token = settings.get("IMBRIDGE_WUKONG_MANAGER_TOKEN", "")
    version = asyncio.run(reachable(base_url, token)) if base_url else None
    if version is None:
        print(f"skipped: no WuKongIM answers at {base_url or '(IMBRIDGE_WUKONG_BASE_URL unset)'} with the token given")
        return None
    return base_url, token, version


class Pair:
    """A fresh sender and recipient for one client's turn."""

    counter = 0

    def __init__(self, stamp: str) -> None:
        Pair.counter += 1
        self.sender = f"{stamp}s{Pair.counter}"
        self.recipient = f"{stamp}r{Pair.counter}"
        self.channel = fake_channel_id(self.sender, self.recipient)  # where WuKongIM stores their messages


class ServerClock:
    """CPU seconds (user + system, every thread) a process on this machine has used: the server's, from
    ``/proc/PID/stat`` (Linux)."""

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}/stat")
        self.ticks_per_second = os.sysconf("SC_CLK_TCK")
        self.seconds()  # fails now, not in the middle of a run, when there is no such process

    def seconds(self) -> float:
        # Fields 14 and 15 (utime, stime), counted after the ")" that ends the command name, which may hold spaces.
        fields = self.path.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks_per_second


class _GCClock:
    """Seconds this process spent collecting garbage while installed (gc.callbacks), and how many collections of
    each generation ran (2: a full collection, which walks every object the process holds)."""

    def __init__(self) -> None:
        self.spent, self._started = 0.0, 0.0
        self.collections = [0, 0, 0]

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self.collections[info["generation"]] += 1
        else:
            self.spent += time.perf_counter() - self._started


async def _timed_turn(
    send: Callable[[int], Awaitable[None]], total: int, concurrency: int, *, pause_collector: bool = False
) -> tuple[float, dict[str, Any]]:
    """One client's turn (http_clients' driver: ``total`` sends, one task each, at most ``concurrency`` in flight);
    return messages per second and what the sends cost this process: CPU per send, the share of one core it was
    busy (near 1: the client's own CPU is what bounds the rate, not the server), the part of that CPU spent
    collecting garbage, and the collections by generation. ``pause_collector``: no automatic collection during
    the turn (a diagnostic: what the sends cost without the collector's work)."""
    gc.collect()  # untimed: no turn pays for the garbage of the turns before it (as in http_clients.py)
    collector = _GCClock()
    gc.callbacks.append(collector)
    paused_here = pause_collector and gc.isenabled()  # a caller running with collection off keeps it off
    if paused_here:
        gc.disable()
    try:
        wall, cpu = await _drive(send, total, concurrency)
    finally:
        if paused_here:
            gc.enable()
        gc.callbacks.remove(collector)
    return total / wall, {
        "cpu_us_per_send": round(cpu / total * 1e6, 1),
        "cpu_share": round(cpu / wall, 3),
        "gc_us_per_send": round(collector.spent / total * 1e6, 1),
        "gc_collections": collector.collections,
    }


async def run_imbridge(
    base_url: str, token: str, pair: Pair, total: int, concurrency: int, *, confirm: bool,
    pause_collector: bool = False, jsonrpc_url: str | None = None,
) -> tuple[float, dict[str, Any]]:  # fmt: skip
    """imbridge sends (``jsonrpc_url``: over the node's JSON-RPC WebSocket, each confirmed by its answer); returns
    msg/s and what happened (results confirmed, errors by type, requests by path, JSON-RPC calls)."""
    async with AsyncIMClient(
        "wukong", base_url=base_url, manager_token=token, store="", confirm_sends=confirm, enforce_policy=False,
        jsonrpc_url=jsonrpc_url,
    ) as im:  # fmt: skip
        await im.users.register([pair.sender, pair.recipient])
        requests: Counter[str] = Counter()
        transport = im._executor.transport  # counted, to report the requests each send took
        assert transport is not None
        original = transport.send

        async def counted(request: Any, timeout: float) -> Any:
            requests[request.url.split("?")[0].removeprefix(base_url)] += 1
            return await original(request, timeout)

        transport.send = counted  # type: ignore[method-assign]
        sockets = im._sockets
        if jsonrpc_url is not None and sockets is not None:
            call_original = sockets.call

            async def counted_call(call: Any, timeout: float, setup: Any = None) -> Any:
                requests[f"jsonrpc {call.method}"] += 1
                return await call_original(call, timeout, setup)

            sockets.call = counted_call  # type: ignore[method-assign]
        to = Conversation.user(pair.recipient)
        outcome: Counter[str] = Counter()

        async def send(number: int) -> None:
            try:
                sent = await im.messages.send(pair.sender, to, f"bench {number}")
            except IMBridgeError as error:
                outcome[f"error {type(error).__name__}"] += 1
            else:
                outcome["confirmed" if sent.confirmed else "unconfirmed"] += 1

        rate, cost = await _timed_turn(send, total, concurrency, pause_collector=pause_collector)
        return rate, {"outcome": dict(outcome), "requests": dict(requests), "channel": pair.channel, **cost}


async def run_aiohttp(
    base_url: str, token: str, pair: Pair, total: int, concurrency: int, *, pause_collector: bool = False
) -> tuple[float, dict[str, Any]]:
    """The ordinary raw client: one POST per message, its answer parsed."""
    outcome: Counter[str] = Counter()
    async with aiohttp.ClientSession(headers={"token": token}) as session:
        for uid in (pair.sender, pair.recipient):
            async with session.post(f"{base_url}/user/token", json={"uid": uid, "token": uid + "t"}) as reply:
                reply.raise_for_status()
        url = f"{base_url}/message/send"

        async def send(number: int) -> None:
            payload = base64.b64encode(json.dumps({"type": 1, "content": f"bench {number}"}).encode()).decode()
            body = {
                "header": {"red_dot": 1}, "from_uid": pair.sender, "channel_id": pair.recipient, "channel_type": 1,
                "client_msg_no": f"{pair.sender}-{number}", "payload": payload,
            }  # fmt: skip
            async with session.post(url, json=body) as reply:
                answer = await reply.json(content_type=None)
            ok = reply.status == 200 and isinstance(answer, dict) and answer.get("status", 200) == 200
            outcome["accepted" if ok else f"HTTP {reply.status}"] += 1

        rate, cost = await _timed_turn(send, total, concurrency, pause_collector=pause_collector)
        return rate, {"outcome": dict(outcome), "channel": pair.channel, **cost}


async def run_jsonrpc(
    base_url: str, token: str, ws_url: str, pair: Pair, total: int, concurrency: int, *, pause_collector: bool = False
) -> tuple[float, dict[str, Any]]:
    """Raw aiohttp over WuKongIM's JSON-RPC WebSocket: one connection for the sender, every send answered once
    stored. A send counts as ``stored`` only when its answer has reason code 1 (success, as in the binary protocol)
    and a seq; any other answer is counted by its reason code."""
    outcome: Counter[str] = Counter()
    async with aiohttp.ClientSession(headers={"token": token}) as session:
        # Its own token on the SYSTEM flag: a node that checks tokens lets the connection in, and the tokens the
        # user's apps hold on the other flags stay as they are.
        body = {"uid": pair.sender, "token": pair.sender + "t", "device_flag": 99}
        async with session.post(f"{base_url}/user/token", json=body) as reply:
            reply.raise_for_status()
        try:
            socket = await session.ws_connect(ws_url)
        except (aiohttp.ClientError, OSError) as error:
            raise SystemExit(f"--jsonrpc-url {ws_url}: no WebSocket there ({error})") from None
        async with socket:
            connect = {"uid": pair.sender, "token": pair.sender + "t", "deviceFlag": 99,
                       "deviceId": f"{pair.sender}-bench"}  # fmt: skip
            await socket.send_str(json.dumps({"method": "connect", "params": connect, "id": "connect"}))
            try:
                frame = await asyncio.wait_for(socket.receive(), 5)  # the node closes a connection not in within 2 s
            except TimeoutError:
                raise SystemExit(f"{ws_url}: no answer to the JSON-RPC connect within 5 s") from None
            answer = json.loads(frame.data) if frame.type is aiohttp.WSMsgType.TEXT else {}
            if (answer.get("result") or {}).get("reasonCode") != 1:
                raise SystemExit(f"{ws_url}: the JSON-RPC connect was refused: {str(frame.data)[:200]}")
            loop = asyncio.get_running_loop()
            waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

            async def read_answers() -> None:
                async for frame in socket:
                    if frame.type is not aiohttp.WSMsgType.TEXT:
                        continue
                    message = json.loads(frame.data)  # a "recv" notification has no id, and is skipped
                    future = waiting.pop(message.get("id"), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                for future in waiting.values():  # the connection closed with sends unanswered
                    if not future.done():
                        future.set_exception(ConnectionError(f"{ws_url} closed the connection"))

            async def send(number: int) -> None:
                payload = base64.b64encode(json.dumps({"type": 1, "content": f"bench {number}"}).encode()).decode()
                params = {"clientMsgNo": f"{pair.sender}-{number}", "channelId": pair.recipient, "channelType": 1,
                          "payload": payload, "header": {"redDot": True}}  # fmt: skip
                request_id = f"send-{number}"
                waiting[request_id] = future = loop.create_future()
                try:
                    await socket.send_str(json.dumps({"method": "send", "params": params, "id": request_id}))
                    result = (await future).get("result") or {}
                except (ConnectionError, aiohttp.ClientError):  # the connection went: counted, like a refusal
                    outcome["error connection lost"] += 1
                    return
                stored = result.get("reasonCode") == 1 and result.get("messageSeq", 0) > 0
                outcome["stored" if stored else f"error reason {result.get('reasonCode')}"] += 1

            reader = asyncio.create_task(read_answers())
            # One deadline for the whole turn, not a timer per send (that would be timed as the client's CPU): a
            # send the node never answers on an open connection would otherwise hold the turn for good.
            deadline = JSONRPC_TURN_SECONDS + total / 100
            try:
                rate, cost = await asyncio.wait_for(
                    _timed_turn(send, total, concurrency, pause_collector=pause_collector), deadline
                )
            except TimeoutError:
                raise SystemExit(f"{ws_url}: {len(waiting)} sends unanswered after {deadline:.0f} s") from None
            finally:
                reader.cancel()
    return rate, {"outcome": dict(outcome), "channel": pair.channel, **cost}


def run_gowk(
    program: str, base_url: str, token: str, total: int, concurrency: int, *, lookup: bool
) -> tuple[float, dict[str, Any]]:
    """The gowk bench program's msg/s and counts (it registers a fresh pair of its own)."""
    command = [program, "-url", base_url, "-token", token, "-n", str(total), "-c", str(concurrency), "-v"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command + (["-lookup"] if lookup else []), capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    fields = dict(re.findall(r"(\S+?)=(\S+)", done.stdout))
    if "msg/s" not in fields:
        raise SystemExit(f"the gowk program printed no msg/s (exit {done.returncode}): {done.stderr.strip()[:300]}")
    details: dict[str, Any] = {key: int(fields[key]) for key in ("failed", "lookups", "lookup_misses") if key in fields}
    # The whole program's CPU (its registration too, all its threads), so a little above what its sends cost.
    spent = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    details["cpu_us_per_send"] = round(spent / total * 1e6, 1)
    channel = re.search(r"fake_channel=(\S+)", done.stderr)  # -v: the pair it registered, on stderr
    if channel:
        details["channel"] = channel.group(1)
    return float(fields["msg/s"]), details


def client_cost(details: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per client, the medians over its turns of what its sends cost in CPU (see _timed_turn; gowk: the whole
    program)."""
    found: dict[str, dict[str, float]] = {}
    for name, turns in details.items():
        keys = [key for key in ("cpu_us_per_send", "cpu_share", "gc_us_per_send", "server_cpu_us_per_send")
                if all(key in turn for turn in turns)]  # fmt: skip
        figures = {key: statistics.median(turn[key] for turn in turns) for key in keys} if turns else {}
        if turns and all("gc_collections" in turn for turn in turns):
            figures["youngest_collections"] = statistics.median(turn["gc_collections"][0] for turn in turns)
            figures["full_collections"] = statistics.median(turn["gc_collections"][2] for turn in turns)
        if figures:
            found[name] = figures
    return found


def print_machine_bound(on_cost: dict[str, float], off_cost: dict[str, float]) -> None:
    """Client + server CPU per send for both imbridge modes, and the rate the machine's cores allow each when the
    two share them: the ratio of those bounds is the most confirm on can reach against confirm off here."""
    cores = os.cpu_count() or 1
    bounds: dict[str, float] = {}
    for label, figure in (("confirm on", on_cost), ("confirm off", off_cost)):
        both = figure["cpu_us_per_send"] + figure["server_cpu_us_per_send"]
        bounds[label] = cores * 1e6 / both
        print(f"  {label:<12} client {figure['cpu_us_per_send']:,.0f} + server {figure['server_cpu_us_per_send']:,.0f}"
              f" = {both:,.0f} us per send: at most {bounds[label]:,.0f} msg/s on {cores} shared cores")  # fmt: skip
    print(f"  bound of confirm on / confirm off on this machine: {bounds['confirm on'] / bounds['confirm off']:.2f}")


def _ratio(over: list[float], under: list[float]) -> float:
    return statistics.median(over) / statistics.median(under)


def _per_round(over: list[float], under: list[float]) -> list[float]:
    """The ratio within each round (the clients of one round met the same moment of the machine)."""
    return [a / b for a, b in zip(over, under, strict=True)]


async def bench(
    args: argparse.Namespace, base_url: str, token: str, gowk: str | None, server: ServerClock | None
) -> dict[str, Any]:
    stamp = f"pb{int(time.time()) & 0xFFFFFF:x}"
    total, concurrency, paused = args.messages, args.concurrency, args.pause_collector
    clients: dict[str, Callable[[], Awaitable[tuple[float, dict[str, Any]]]]] = {
        "imbridge-async confirm on": lambda: run_imbridge(
            base_url, token, Pair(stamp), total, concurrency, confirm=True, pause_collector=paused
        ),
        "imbridge-async confirm off": lambda: run_imbridge(
            base_url, token, Pair(stamp), total, concurrency, confirm=False, pause_collector=paused
        ),
        "raw aiohttp": lambda: run_aiohttp(base_url, token, Pair(stamp), total, concurrency, pause_collector=paused),
    }
    if args.jsonrpc_url:
        ws_url = args.jsonrpc_url
        clients[IMBRIDGE_JSONRPC] = lambda: run_imbridge(
            base_url, token, Pair(stamp), total, concurrency, confirm=True, pause_collector=paused, jsonrpc_url=ws_url
        )
        clients[JSONRPC] = lambda: run_jsonrpc(
            base_url, token, ws_url, Pair(stamp), total, concurrency, pause_collector=paused
        )
    if gowk is not None:
        program = gowk
        clients["gowk"] = lambda: asyncio.to_thread(
            run_gowk, program, base_url, token, total, concurrency, lookup=False
        )
        clients["gowk + lookups"] = lambda: asyncio.to_thread(
            run_gowk, program, base_url, token, total, concurrency, lookup=True
        )
    names = list(clients)
    rates: dict[str, list[float]] = {name: [] for name in names}
    details: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    loads: list[float] = []
    for round_number in range(args.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            loads.append(load_average())
            server_before = server.seconds() if server else 0.0
            rate, detail = await clients[name]()
            if server:
                detail["server_cpu_us_per_send"] = round((server.seconds() - server_before) / total * 1e6, 1)
            rates[name].append(rate)
            details[name].append(detail)
            print(f"round {round_number + 1}: {name:<28}{rate:>10,.0f} msg/s  {json.dumps(detail)}", flush=True)
    await count_stored(base_url, token, details, total)
    return {"rates": rates, "details": details, "loads": loads}


async def count_stored(base_url: str, token: str, details: dict[str, list[dict[str, Any]]], sent: int) -> None:
    """Untimed, after the rounds: how many messages each turn's channel holds (its max seq: a fresh channel numbers
    its messages 1, 2, ...), and so how many sends a client reported done that WuKongIM never stored."""
    await asyncio.sleep(3)  # what is still being stored
    async with aiohttp.ClientSession(headers={"token": token}) as session:
        for turns in details.values():
            for turn in turns:
                if "channel" not in turn:
                    continue
                params = {"channel_id": turn["channel"], "channel_type": "1"}
                async with session.get(f"{base_url}/channel/max_message_seq", params=params) as reply:
                    answer = await reply.json(content_type=None)
                stored = int(answer.get("message_seq", 0)) if isinstance(answer, dict) else 0
                failed = sum(v for k, v in turn.get("outcome", {}).items() if k.startswith(("error", "HTTP")))
                turn["stored"] = stored
                turn["reported_sent_not_stored"] = max(0, sent - failed - turn.get("failed", 0) - stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--env-file", type=Path, help="a file of export NAME=value lines (the server's URL and token)")
    parser.add_argument("--gowk", default=os.environ.get("IMBRIDGE_GOWK_BENCH"), help="the gowk bench program")
    parser.add_argument("--messages", type=int, default=2000, help="messages per client per round")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument(
        "--pause-collector", action="store_true",
        help="diagnostic: no automatic garbage collection during the Python turns (what the sends cost without the "
        "collector's work); no verdict is printed for such a run",
    )  # fmt: skip
    parser.add_argument(
        "--jsonrpc-url", default=os.environ.get("IMBRIDGE_WUKONG_JSONRPC_URL"),
        help="the node's WebSocket listener (ws://...): adds raw sends over its JSON-RPC, each answered once stored",
    )  # fmt: skip
    parser.add_argument(
        "--server-pid", type=int,
        help="the WuKongIM process, when it runs on this machine (Linux): its CPU per send is reported too",
    )  # fmt: skip
    args = parser.parse_args()
    try:
        server_clock = ServerClock(args.server_pid) if args.server_pid is not None else None
    except OSError as error:
        parser.error(f"--server-pid {args.server_pid}: no readable /proc entry ({error.strerror})")
    server = live_server(args.env_file)
    if server is None:
        return
    base_url, token, version = server
    gowk = args.gowk if args.gowk and shutil.which(args.gowk) else None
    if gowk is None:
        print(f"gowk rows skipped: no bench program ({args.gowk or 'set --gowk or IMBRIDGE_GOWK_BENCH'})")
    paused = "; DIAGNOSTIC: garbage collector paused during the Python turns" if args.pause_collector else ""
    print(f"WuKongIM {version} at {base_url}; {args.messages} one-to-one texts per client per round, "
          f"concurrency {args.concurrency}, {args.rounds} rounds; {os.cpu_count()} CPUs{paused}")  # fmt: skip
    figures = asyncio.run(bench(args, base_url, token, gowk, server_clock))
    rates = figures["rates"]
    print(f"{'client':<30}{'msg/s (median)':>16}   per round")
    for name, values in rates.items():
        print(f"{name:<30}{statistics.median(values):>16,.0f}   {', '.join(f'{v:,.0f}' for v in values)}")
    cost = client_cost(figures["details"])
    serving = any("server_cpu_us_per_send" in figure for figure in cost.values())
    print(f"{'client CPU (medians)':<30}{'us/send':>16}{'busy':>8}{'of it GC':>10}{'collections: youngest, full':>30}"
          + (f"{'server us/send':>16}" if serving else ""))  # fmt: skip
    for name, figure in cost.items():
        busy = f"{figure['cpu_share']:.0%}" if "cpu_share" in figure else "-"
        collected = f"{figure['gc_us_per_send'] / figure['cpu_us_per_send']:.0%}" if "gc_us_per_send" in figure else "-"
        counts = (f"{figure['youngest_collections']:.0f}, {figure['full_collections']:.0f}"
                  if "full_collections" in figure else "-")  # fmt: skip
        served = f"{figure['server_cpu_us_per_send']:>16,.0f}" if "server_cpu_us_per_send" in figure else ""
        print(f"{name:<30}{figure['cpu_us_per_send']:>16,.0f}{busy:>8}{collected:>10}{counts:>30}{served}")
    if {"imbridge-async confirm on", "imbridge-async confirm off"} <= cost.keys():
        on_cost, off_cost = cost["imbridge-async confirm on"], cost["imbridge-async confirm off"]
        extra = on_cost["cpu_us_per_send"] - off_cost["cpu_us_per_send"]
        print(f"confirmation's own CPU: {extra:+.0f} us per send (imbridge is one thread: where it is busy near 100%, "
              f"every microsecond of it is throughput)")  # fmt: skip
        if "server_cpu_us_per_send" in on_cost and "server_cpu_us_per_send" in off_cost:
            print_machine_bound(on_cost, off_cost)
    on, off = rates["imbridge-async confirm on"], rates["imbridge-async confirm off"]
    ratios = {
        "imbridge confirm-on / confirm-off": (_ratio(on, off), f">= {CONFIRM_GOAL}", _ratio(on, off) >= CONFIRM_GOAL),
        "imbridge confirm-off / raw aiohttp": (_ratio(off, rates["raw aiohttp"]), "", None),
        "imbridge confirm-on / raw aiohttp": (_ratio(on, rates["raw aiohttp"]), "", None),
    }
    per_round = {"imbridge confirm-on / confirm-off": _per_round(on, off)}
    if IMBRIDGE_JSONRPC in rates:
        # Confirmed sends (by the node's own answer) against unconfirmed ones over HTTP: the async-speed issue's
        # first goal, reached by the transport that confirms without reads.
        rpc = rates[IMBRIDGE_JSONRPC]
        label = "imbridge over JSON-RPC (confirmed) / HTTP confirm-off"
        ratios[label] = (_ratio(rpc, off), f">= {CONFIRM_GOAL}", _ratio(rpc, off) >= CONFIRM_GOAL)
        per_round[label] = _per_round(rpc, off)
        label = f"imbridge over JSON-RPC / {JSONRPC}"
        ratios[label] = (_ratio(rpc, rates[JSONRPC]), "", None)
        per_round[label] = _per_round(rpc, rates[JSONRPC])
    if JSONRPC in rates:
        # What confirming by the node's own answer can reach, against what imbridge reaches without confirming.
        label = f"{JSONRPC} / imbridge confirm-off"
        ratios[label] = (_ratio(rates[JSONRPC], off), "", None)
        per_round[label] = _per_round(rates[JSONRPC], off)
    if "gowk" in rates:
        peer = _ratio(on, rates["gowk + lookups"])
        ratios["imbridge confirm-on / gowk + lookups"] = (peer, f">= {PEER_GOAL}", peer >= PEER_GOAL)
        ratios["imbridge confirm-off / gowk"] = (_ratio(off, rates["gowk"]), "", None)
        # The ceiling of any client on the same aiohttp driver: no check at all, against gowk checking each send.
        ratios["raw aiohttp (no check) / gowk + lookups"] = (_ratio(rates["raw aiohttp"], rates["gowk + lookups"]),
                                                             "", None)  # fmt: skip
        per_round["imbridge confirm-on / gowk + lookups"] = _per_round(on, rates["gowk + lookups"])
        if IMBRIDGE_JSONRPC in rates:
            rpc_peer = _ratio(rates[IMBRIDGE_JSONRPC], rates["gowk + lookups"])
            label = "imbridge over JSON-RPC / gowk + lookups"
            ratios[label] = (rpc_peer, f">= {PEER_GOAL}", rpc_peer >= PEER_GOAL)
            per_round[label] = _per_round(rates[IMBRIDGE_JSONRPC], rates["gowk + lookups"])
    width = max(40, *(len(label) + 2 for label in ratios))
    for label, (value, goal, met) in ratios.items():
        verdict = "" if met is None else f" (goal {goal}: {'met' if met else 'NOT met'})"
        if met is not None and args.pause_collector:
            verdict = " (diagnostic run, collector paused: no verdict)"
        spread = f"; per round {min(per_round[label]):.2f}-{max(per_round[label]):.2f}" if label in per_round else ""
        print(f"{label:<{width}}{value:.2f}x{verdict}{spread}")
    print("reported sent but not stored (summed over the rounds; an imbridge send that was not stored raises instead):")
    for name, turns in figures["details"].items():
        lost = [turn["reported_sent_not_stored"] for turn in turns if "reported_sent_not_stored" in turn]
        print(f"  {name:<30}{sum(lost):>8}" + ("" if lost else "   (not counted)"))
    loads = figures["loads"]
    print(f"load average (1 min) over the run: {min(loads):.2f}-{max(loads):.2f}")
    record = {
        "benchmark": "peers",
        "machine": machine(),
        "server": f"WuKongIM {version}",
        "messages": args.messages,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "collector_paused": args.pause_collector,
        "msg_per_s": {name: [round(v) for v in values] for name, values in rates.items()},
        "ratios": {label: round(value, 3) for label, (value, _, _) in ratios.items()},
        "ratios_per_round": {label: [round(v, 3) for v in values] for label, values in per_round.items()},
        "client_cpu": cost,
        "details": figures["details"],
        "load_average_1min": [round(min(loads), 2), round(max(loads), 2)],
    }
    print(json.dumps(record))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
