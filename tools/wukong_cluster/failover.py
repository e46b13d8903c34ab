"""Confirmed sends through a WuKongIM cluster while nodes are killed and restarted; then count what was lost.

::

    IMBRIDGE_WUKONG_MANAGER_TOKEN=... python tools/wukong_cluster/failover.py \\
        --nodes http://127.0.0.1:5021,http://127.0.0.1:5022,http://127.0.0.1:5023 \\
        --kill "<command that SIGKILLs node {index}>" --restart "<command that starts node {index} again>" \\
        --sends 3000 --out failover.json

Sends ``--sends`` group messages through imbridge's AsyncIMClient configured with every node (so requests
are spread over them and a dead node is skipped), one sequential sender per channel over ``--channels``
groups. Two node failures, each a SIGKILL and a restart ``--down`` seconds later:

1. at 20 % of the sends, the node that leads the first channel (a node the client talks to, and a leader);
2. at 60 %, another node, the leader of some other channel.

Each send ends confirmed (imbridge read it back on a majority of the channel's replicas), returned
unconfirmed, or raised. After the run, once every channel's replicas report the same last seq (the followers
caught up), every node's own store is read (``GET /cluster/messages?node_id=``) and the tool checks: each
confirmed message is on every node, at its seq; no client_msg_no is stored twice; every error is a typed,
retryable imbridge error, and none is InvalidRequestError. No timing is asserted; durations are printed.
Exit 0 when all checks hold, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from imbridge import AsyncIMClient, Conversation, IMBridgeError, RetryPolicy, Text
from imbridge.errors import InvalidRequestError, TransportError


@dataclass
class Outcome:
    index: int
    channel: str
    key: str
    result: str  # "confirmed", "unconfirmed", or the error's class name
    message_id: str | None = None
    seq: int | None = None
    retryable: bool | None = None
    error: str | None = None
    at: float = 0.0  # seconds since the run started


@dataclass
class Event:
    what: str
    node: int
    at: float
    led: list[str] = field(default_factory=list)


class Cluster:
    """Plain HTTP to the nodes, for what imbridge is not asked: leaders, replicas, each node's own store."""

    def __init__(self, nodes: list[str], token: str) -> None:
        self.nodes = nodes
        self.http = httpx.Client(headers={"token": token}, timeout=10)

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        last: Exception | None = None
        for _ in range(3):
            for node in self.nodes:
                try:
                    reply = self.http.get(node + path, params=params)
                except httpx.TransportError as exc:
                    last = exc
                    continue
                if reply.status_code == 200:
                    return reply.json()
                last = RuntimeError(f"{path}: HTTP {reply.status_code} {reply.text[:200]}")
            time.sleep(1)
        raise RuntimeError(f"no node answered {path}: {last}")

    def replicas(self, channel: str) -> list[dict[str, Any]]:
        return list(self.get(f"/cluster/channels/{channel}/2/replicas"))

    def leader(self, channel: str) -> int:
        return int(self.replicas(channel)[0]["leader_id"])

    def node_ids(self) -> list[int]:
        return sorted(int(node["id"]) for node in self.get("/cluster/nodes")["data"])

    def stored(self, node_id: int, channel: str) -> list[dict[str, Any]]:
        data = self.get("/cluster/messages", {"node_id": str(node_id), "channel_id": channel, "channel_type": "2",
                                              "limit": "100000"})  # fmt: skip
        return list(data.get("data") or [])


def _kind(message: str) -> str:
    """A short name for what an error says (the send flow's and the cluster confirmation's wordings)."""
    for phrase, kind in (("a majority needs", "stored, not yet on a majority of replicas"),
                         ("could not be confirmed", "accepted, confirming reads failed (failover)"),
                         ("did not store it", "accepted, not stored within the confirm window"),
                         ("replicas could not be read", "stored, replicas unreadable"),
                         ("could not reach the node", "failover answer before sending")):  # fmt: skip
        if phrase in message:
            return kind
    return message[:80]


def _run(command: str, index: int) -> None:
    subprocess.run(shlex.split(command.format(index=index)), check=True)


async def _sends(args: argparse.Namespace, cluster: Cluster, groups: list[str], sender: str,
                 events: list[Event], started: float) -> list[Outcome]:  # fmt: skip
    ids = cluster.node_ids()
    leaders = {group: cluster.leader(group) for group in groups}
    first = leaders[groups[0]]
    second = next((leader for leader in leaders.values() if leader != first), ids[(ids.index(first) + 1) % len(ids)])
    plan = {int(args.sends * 0.2): first, int(args.sends * 0.6): second}
    outcomes: list[Outcome] = []
    done = 0
    failures: list[asyncio.Task[None]] = []

    async def fail(node_id: int) -> None:
        index = ids.index(node_id) + 1
        led = [group for group, leader in leaders.items() if leader == node_id]
        events.append(Event("kill", index, round(time.monotonic() - started, 2), led))
        await asyncio.to_thread(_run, args.kill, index)
        await asyncio.sleep(args.down)
        await asyncio.to_thread(_run, args.restart, index)
        events.append(Event("restart", index, round(time.monotonic() - started, 2)))

    retry = RetryPolicy(max_attempts=6, max_total_wait=30, initial_backoff=0.2, max_backoff=2)
    async with AsyncIMClient("wukong", base_url=args.nodes, manager_token=os.environ["IMBRIDGE_WUKONG_MANAGER_TOKEN"],
                             store=args.store, retry=retry, timeout=5, confirm_replicated=True) as im:  # fmt: skip
        per_channel = args.sends // len(groups)

        async def channel_sender(group: str) -> None:
            nonlocal done
            for number in range(per_channel):
                done += 1
                if done in plan:
                    failures.append(asyncio.create_task(fail(plan[done])))
                key = f"{group}-{number}"
                outcome = Outcome(index=number, channel=group, key=key, result="",
                                  at=round(time.monotonic() - started, 2))  # fmt: skip
                try:
                    sent = await im.messages.send(sender=sender, to=Conversation.group(group),
                                                  content=[Text(f"failover {key}")], idempotency_key=key)  # fmt: skip
                except IMBridgeError as error:
                    outcome.result = type(error).__name__
                    outcome.retryable = error.retryable
                    outcome.error = str(error)[:400]
                else:
                    outcome.result = "confirmed" if sent.confirmed else "unconfirmed"
                    outcome.message_id = sent.ref.key
                    outcome.seq = sent.seq
                outcomes.append(outcome)

        await asyncio.gather(*(channel_sender(group) for group in groups))
        await asyncio.gather(*failures)
    return outcomes


def _caught_up(cluster: Cluster, groups: list[str], timeout: float) -> tuple[bool, float, dict[str, Any]]:
    """Wait until every channel's replicas (all nodes online) report the same last seq twice in a row."""
    started = time.monotonic()
    previous: dict[str, Any] = {}
    ids = cluster.node_ids()
    while time.monotonic() - started < timeout:
        try:
            now = {group: sorted((r["replica_id"], r["last_msg_seq"]) for r in cluster.replicas(group))
                   for group in groups}  # fmt: skip
        except RuntimeError:
            time.sleep(2)
            continue
        settled = all(len(rows) == len(ids) and len({seq for _id, seq in rows}) == 1 for rows in now.values())
        if settled and now == previous:
            return True, time.monotonic() - started, now
        previous = now
        time.sleep(2)
    return False, time.monotonic() - started, previous


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", required=True, help="comma-separated node URLs, node 1 first")
    parser.add_argument("--kill", required=True, help="shell command; {index} is the 1-based node index")
    parser.add_argument("--restart", required=True, help="shell command; {index} is the 1-based node index")
    parser.add_argument("--sends", type=int, default=3000)
    parser.add_argument("--channels", type=int, default=6)
    parser.add_argument("--down", type=float, default=15.0, help="seconds a killed node stays down")
    parser.add_argument("--catchup-timeout", type=float, default=900.0)
    parser.add_argument("--store", default=f"/tmp/imbridge-failover-{os.getpid()}.db")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    nodes = [url.rstrip("/") for url in args.nodes.split(",")]
    cluster = Cluster(nodes, os.environ["IMBRIDGE_WUKONG_MANAGER_TOKEN"])
    prefix = "fo" + secrets.token_hex(3)
    sender, member = prefix + "s", prefix + "m"

    async def setup() -> list[str]:
        async with AsyncIMClient("wukong", base_url=args.nodes, store=args.store,
                                 manager_token=os.environ["IMBRIDGE_WUKONG_MANAGER_TOKEN"]) as im:  # fmt: skip
            await im.users.register([sender, member])
            groups = [(await im.groups.create(name=f"g{n}", owner=sender, members=[member],
                                              group_id=f"{prefix}g{n}")).id for n in range(args.channels)]  # fmt: skip
            for group in groups:  # a channel has a leader once it has a message
                await im.messages.send(sender=sender, to=Conversation.group(group), content=[Text("start")],
                                       idempotency_key=f"{group}-start")  # fmt: skip
            return groups

    groups = asyncio.run(setup())
    events: list[Event] = []
    started = time.monotonic()
    outcomes = asyncio.run(_sends(args, cluster, groups, sender, events, started))
    sending = time.monotonic() - started
    caught_up, waited, last_seqs = _caught_up(cluster, groups, args.catchup_timeout)

    # Every node's own store, per channel: client_msg_no -> [(message_id, seq)].
    stores: dict[int, dict[str, list[tuple[str, int]]]] = {}
    for node_id in cluster.node_ids():
        rows: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for group in groups:
            for message in cluster.stored(node_id, group):
                rows[message["client_msg_no"]].append((str(message["message_id"]), int(message["message_seq"])))
        stores[node_id] = rows
    confirmed = [o for o in outcomes if o.result == "confirmed"]
    majority = len(stores) // 2 + 1

    def holders(o: Outcome) -> list[int]:
        return [n for n, rows in stores.items() if (o.message_id, o.seq) in rows.get(o.key, [])]

    # Lost: on fewer nodes than a majority (gone, or at the mercy of one node). Lagging: on a majority but not
    # yet on every node (a follower behind).
    lost = [asdict(o) | {"on_nodes": holders(o)} for o in confirmed if len(holders(o)) < majority]
    lagging = [asdict(o) | {"on_nodes": holders(o)} for o in confirmed if majority <= len(holders(o)) < len(stores)]
    duplicated = sorted({key for rows in stores.values() for key, found in rows.items() if len(found) > 1})
    errors = [o for o in outcomes if o.result not in ("confirmed", "unconfirmed")]
    invalid = [asdict(o) for o in errors if o.result == InvalidRequestError.__name__]
    not_retryable = [asdict(o) for o in errors if not o.retryable]
    unconfirmed = [o for o in outcomes if o.result == "unconfirmed"]
    stored_keys = {key for rows in stores.values() for key in rows}
    report = {
        "prefix": prefix, "nodes": nodes, "sends": len(outcomes), "channels": groups,
        "events": [asdict(e) for e in events], "results": dict(Counter(o.result for o in outcomes)),
        "confirmed": len(confirmed), "confirmed_lost": len(lost), "confirmed_not_on_every_node": len(lagging),
        "duplicated_client_msg_nos": len(duplicated),
        "errors": len(errors), "errors_invalid_request": len(invalid), "errors_not_retryable": len(not_retryable),
        "errors_whose_message_is_stored": sum(o.key in stored_keys for o in errors),
        "error_kinds": dict(Counter(_kind(o.error or "") for o in errors)),
        "unconfirmed_returned": len(unconfirmed), "unconfirmed_stored": sum(o.key in stored_keys for o in unconfirmed),
        "transport_errors": sum(o.result in (TransportError.__name__, "TimeoutError") for o in outcomes),
        "followers_caught_up": caught_up, "catch_up_wait_s": round(waited, 1), "sending_s": round(sending, 1),
        "last_seqs": last_seqs,
        "stored_per_node": {n: sum(len(v) for v in rows.values()) for n, rows in stores.items()},
        "lost": lost[:50], "lagging": lagging[:20], "duplicated": duplicated[:50], "invalid_request": invalid[:20],
        "not_retryable": not_retryable[:20], "error_samples": [asdict(o) for o in errors[:30]],
    }  # fmt: skip
    Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    summary = {k: report[k] for k in ("sends", "results", "confirmed", "confirmed_lost", "confirmed_not_on_every_node",
                                      "duplicated_client_msg_nos",
                                      "errors", "errors_invalid_request", "errors_not_retryable",
                                      "errors_whose_message_is_stored", "error_kinds", "unconfirmed_returned",
                                      "unconfirmed_stored",
                                      "followers_caught_up", "catch_up_wait_s", "sending_s", "stored_per_node",
                                      "events")}  # fmt: skip
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    # Every confirmed message on every node needs the followers to have caught up: reported apart, as
    # WuKongIM's own replication (a restarted follower can stay behind for minutes), not imbridge's guarantee.
    ok = not lost and not duplicated and not invalid and not not_retryable and not unconfirmed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
