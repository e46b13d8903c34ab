"""Save what a WuKongIM cluster answers about one message and its channel's replicas, right now.

::

    IMBRIDGE_WUKONG_MANAGER_TOKEN=... python tools/wukong_cluster/snapshot.py --nodes URL,URL,URL \\
        --channel GROUP_ID --client-msg-no KEY --note "why" --out cassettes/wukong/cluster/<name>.json

Read-only (GET only): the message's lookup, the channel's replicas and cluster config through every node, and
every node's own copy of the message (``/cluster/messages?node_id=``). For recording states that cannot be
produced on demand, such as a follower left behind after a failover. Saved without request headers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import httpx


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", required=True)
    parser.add_argument("--channel", required=True, help="a group id")
    parser.add_argument("--client-msg-no", required=True)
    parser.add_argument("--note", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    nodes = [url.rstrip("/") for url in args.nodes.split(",")]
    http = httpx.Client(headers={"token": os.environ["IMBRIDGE_WUKONG_MANAGER_TOKEN"]}, timeout=10)
    answers: list[dict[str, Any]] = []

    def get(node: str, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        reply = http.get(node + path, params=params)
        answers.append({"note": args.note, "node": node, "method": "GET", "path": path, "params": params,
                        "body": None, "status": reply.status_code, "response": reply.text,
                        "seconds_after_kill": None})  # fmt: skip
        return reply

    channel = args.channel
    found = get(nodes[0], "/message/byclientmsgno",
                {"channel_id": channel, "channel_type": "2", "client_msg_no": args.client_msg_no}).json()
    replicas = get(nodes[0], f"/cluster/channels/{channel}/2/replicas").json()
    for node in nodes:
        get(node, f"/cluster/channels/{channel}/2/config")
    for replica in sorted(r["replica_id"] for r in replicas):
        get(nodes[0], "/cluster/messages", {"node_id": str(replica), "message_id": str(found["message_id"])})
    record = {"prefix": channel, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nodes": nodes,
              "channel": channel, "client_msg_no": args.client_msg_no, "answers": answers}  # fmt: skip
    with open(args.out, "w") as out:
        out.write(json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(answers)} answers saved to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
