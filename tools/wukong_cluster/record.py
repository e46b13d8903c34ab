"""Record a real WuKongIM cluster's answers during a node failure, and its token-forwarding defect.

Run against three (or more) v2.2.5 nodes on loopback that share a managerToken::

    IMBRIDGE_WUKONG_MANAGER_TOKEN=... python tools/wukong_cluster/record.py \\
        --nodes http://127.0.0.1:5021,http://127.0.0.1:5022,http://127.0.0.1:5023 \\
        --kill "<command that SIGKILLs node {index}>" --restart "<command that starts node {index} again>" \\
        --out cassettes/wukong/cluster/answers.json

What it does, with plain HTTP (no imbridge code, so the recording does not depend on what it tests):

1. registers two users and a group, sends a message to it, and reads the group's replicas to find the node
   that leads the channel (``GET /cluster/channels/{id}/2/replicas``);
2. asks the token-forwarding routes (``/user/onlinestatus``, ``/conversation/sync`` with ``msg_count`` 1,
   ``/user/systemuids_add``, a persisted ``/message/send`` with ``subscribers``) through every node;
3. kills the channel's leader, then for up to ``--window`` seconds asks a surviving node, every 50 ms, to look
   the message up, to read the channel, to send to it and to list its replicas, and keeps the first answer of
   each distinct (route, status, body shape) with the time since the kill;
4. restarts the node.

The manager token is never written: requests are saved without headers. Ids carry a per-run prefix.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

_NUMBERS = re.compile(r"\d+")


def _saved(body: Any) -> Any:
    """A request body as saved: the token a user is registered with replaced by a placeholder."""
    if isinstance(body, dict) and "token" in body:
        return {**body, "token": "<ISSUED_TOKEN>"}
    return body


def _payload(text: str) -> str:
    return base64.b64encode(json.dumps({"type": 1, "content": text}).encode()).decode()


class Recorder:
    def __init__(self, nodes: list[str], token: str) -> None:
        self.nodes = nodes
        self.http = httpx.Client(headers={"token": token}, timeout=5)
        self.answers: list[dict[str, Any]] = []
        self._shapes: set[tuple[str, int, str]] = set()
        #: route -> [failures, successes, first failure, last failure, first success after a failure] (seconds
        #: after the kill), for the answers asked after the kill.
        self.timeline: dict[str, list[Any]] = {}

    def _track(self, path: str, ok: bool, since: float | None) -> None:
        if since is None:
            return
        moment = round(time.monotonic() - since, 3)
        line = self.timeline.setdefault(path, [0, 0, None, None, None])
        if ok:
            line[1] += 1
            if line[3] is not None and (line[4] is None or line[4] < line[3]):
                line[4] = moment
        else:
            line[0] += 1
            line[2] = moment if line[2] is None else line[2]
            line[3] = moment

    def call(self, node: str, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
             note: str = "", since: float | None = None, dedupe: bool = False) -> httpx.Response | None:  # fmt: skip
        try:
            reply = self.http.request(method, node + path, json=body, params=params)
        except httpx.TransportError as exc:
            self._track(path, False, since)
            entry_error = f"{type(exc).__name__}: {exc}"
            after = None if since is None else round(time.monotonic() - since, 3)
            key = (path, -1, type(exc).__name__)
            if not dedupe or key not in self._shapes:
                self._shapes.add(key)
                self.answers.append({"note": note, "node": node, "method": method, "path": path, "params": params,
                                     "body": _saved(body), "transport_error": entry_error,
                                     "seconds_after_kill": after})  # fmt: skip
            return None
        self._track(path, reply.status_code == 200, since)
        shape = _NUMBERS.sub("N", reply.text[:200]) if reply.status_code != 200 else "ok"
        key = (path, reply.status_code, shape)
        if not dedupe or key not in self._shapes:
            self._shapes.add(key)
            self.answers.append({
                "note": note, "node": node, "method": method, "path": path, "params": params, "body": _saved(body),
                "status": reply.status_code, "response": reply.text,
                "seconds_after_kill": None if since is None else round(time.monotonic() - since, 3),
            })  # fmt: skip
        return reply


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", required=True, help="comma-separated node URLs, in cluster order (node 1 first)")
    parser.add_argument("--kill", required=True, help="shell command; {index} is the 1-based node index")
    parser.add_argument("--restart", required=True, help="shell command; {index} is the 1-based node index")
    parser.add_argument("--window", type=float, default=15.0, help="seconds to watch after the kill")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    nodes = [url.rstrip("/") for url in args.nodes.split(",")]
    recorder = Recorder(nodes, os.environ["IMBRIDGE_WUKONG_MANAGER_TOKEN"])
    prefix = "cl" + secrets.token_hex(3)
    alice, bob, group = prefix + "a", prefix + "b", prefix + "g"
    for uid in (alice, bob):
        registration = {"uid": uid, "token": secrets.token_hex(8), "device_flag": 0}
        recorder.call(nodes[0], "POST", "/user/token", body=registration)
    members = {"channel_id": group, "channel_type": 2, "subscribers": [alice, bob]}
    recorder.call(nodes[1], "POST", "/channel", body=members)
    send = {"header": {"red_dot": 1}, "client_msg_no": prefix + "-k0", "from_uid": alice, "channel_id": group,
            "channel_type": 2, "payload": _payload("before the kill")}  # fmt: skip
    sent = recorder.call(nodes[2], "POST", "/message/send", body=send, note="a send on a healthy cluster")
    assert sent is not None and sent.status_code == 200, sent
    time.sleep(0.5)
    lookup = {"channel_id": group, "channel_type": "2", "client_msg_no": prefix + "-k0"}
    recorder.call(nodes[0], "GET", "/message/byclientmsgno", params=lookup, note="lookup on a healthy cluster")
    replicas = recorder.call(nodes[0], "GET", f"/cluster/channels/{group}/2/replicas", note="replicas, healthy")
    assert replicas is not None and replicas.status_code == 200, replicas
    leader_id = next(r["leader_id"] for r in replicas.json())
    ids = sorted(r["replica_id"] for r in replicas.json())
    leader_index = ids.index(leader_id)  # node ids are assigned in the order of the node list (1001, 1002, ...)
    for index, node in enumerate(nodes):
        recorder.call(node, "GET", f"/cluster/channels/{group}/2/config", note=f"config through node {index + 1}")
    message_id = str(sent.json()["data"]["message_id"])
    for replica in ids:
        recorder.call(nodes[0], "GET", "/cluster/messages", params={"node_id": str(replica), "message_id": message_id},
                      note=f"node {replica}'s own store")  # fmt: skip
    for uid in (alice, bob):
        recorder.call(nodes[0], "GET", "/cluster/users", params={"uid": uid}, note="a known user")
        for index, node in enumerate(nodes):
            recorder.call(node, "POST", "/user/onlinestatus", body=[uid], note=f"one uid through node {index + 1}")

    # More conversations for bob, in channels that other nodes likely lead: /conversation/sync fails only when a
    # conversation's channel is led by another node than the one that keeps bob's conversations.
    for extra in ("x", "y", "z"):
        recorder.call(nodes[0], "POST", "/channel", body={**members, "channel_id": group + extra})
        recorder.call(nodes[0], "POST", "/message/send", note="another conversation",
                      body={**send, "channel_id": group + extra, "client_msg_no": f"{prefix}-{extra}"})  # fmt: skip
    time.sleep(0.5)

    # Each node's own info (its cluster id), and a flag write followed at once by reads of the channel's info:
    # through every node (GET /cluster/channels keeps the first node's answer) and from the slot leader's own
    # copy (node_id = the slot leader).
    node_ids = {}
    for node in nodes:
        info = recorder.call(node, "GET", "/varz", note="the node's own info")
        node_ids[node] = str(info.json()["server_id"]) if info is not None and info.status_code == 200 else ""
    configs = [a for a in recorder.answers if a["path"].endswith("/config") and a.get("status") == 200]
    slot_leader = configs[0]["node"] if configs else nodes[0]
    recorder.call(nodes[1], "POST", "/channel/info", note="ban on (a flag write)",
                  body={"channel_id": group, "channel_type": 2, "ban": 1})  # fmt: skip
    for node in nodes:
        recorder.call(node, "GET", "/cluster/channels", params={"channel_id": group, "channel_type": "2"},
                      note="right after the write, through this node")  # fmt: skip
    recorder.call(slot_leader, "GET", "/cluster/channels", note="right after the write, the slot leader's own copy",
                  params={"channel_id": group, "channel_type": "2", "node_id": node_ids[slot_leader]})  # fmt: skip
    recorder.call(nodes[1], "POST", "/channel/info", note="ban off again",
                  body={"channel_id": group, "channel_type": 2, "ban": 0})  # fmt: skip

    # The token-forwarding defect, through every node.
    for index, node in enumerate(nodes):
        where = f"through node {index + 1}"
        recorder.call(node, "POST", "/user/onlinestatus", body=[alice, bob], note=f"token defect {where}")
        sync = {"uid": bob, "msg_count": 1}
        recorder.call(node, "POST", "/conversation/sync", body=sync, note=f"token defect {where}")
    recorder.call(nodes[0], "POST", "/user/systemuids_add", body={"uids": [prefix + "sys"]}, note="token defect")
    recorder.call(nodes[0], "POST", "/user/systemuids_remove", body={"uids": [prefix + "sys"]}, note="token defect")
    recorder.call(nodes[0], "POST", "/message/send", note="token defect: persisted send with subscribers",
                  body={"header": {"sync_once": 1}, "from_uid": alice, "subscribers": [alice, bob],
                        "payload": _payload("to subscribers")})  # fmt: skip

    # The failover.
    survivor = nodes[(leader_index + 1) % len(nodes)]
    subprocess.run(shlex.split(args.kill.format(index=leader_index + 1)), check=True)
    killed = time.monotonic()
    number = 0
    while time.monotonic() - killed < args.window:
        number += 1
        note = f"node {leader_index + 1} (the channel's leader) killed; asked through {survivor}"
        recorder.call(survivor, "GET", "/message/byclientmsgno", params=lookup, note=note, since=killed, dedupe=True)
        recorder.call(survivor, "POST", "/channel/messagesync", note=note, since=killed, dedupe=True,
                      body={"login_uid": alice, "channel_id": group, "channel_type": 2, "start_message_seq": 0,
                            "end_message_seq": 0, "limit": 5, "pull_mode": 0})  # fmt: skip
        recorder.call(survivor, "POST", "/message/send", note=note, since=killed, dedupe=True,
                      body={**send, "client_msg_no": f"{prefix}-f{number}", "payload": _payload(f"failover {number}")})
        recorder.call(survivor, "GET", f"/cluster/channels/{group}/2/replicas", note=note, since=killed, dedupe=True)
        recorder.call(survivor, "GET", "/cluster/channels", params={"channel_id": group, "channel_type": "2"},
                      note=note, since=killed, dedupe=True)  # fmt: skip
        time.sleep(0.05)
    subprocess.run(shlex.split(args.restart.format(index=leader_index + 1)), check=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"prefix": prefix, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "nodes": nodes, "killed_node": leader_index + 1,
              "timeline": {path: dict(zip(("failures", "successes", "first_failure_s", "last_failure_s",
                                           "recovered_s"), line, strict=True))
                           for path, line in recorder.timeline.items()},
              "answers": recorder.answers}  # fmt: skip
    out.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(recorder.answers)} answers recorded to {out}; killed node {leader_index + 1}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
