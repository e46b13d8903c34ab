"""Record what a real WuKongIM v2.2.5 server POSTs to a webhook, for tests/fixtures/wukong/webhooks/.

Needs a WuKongIM server on loopback whose ``webhook.httpAddr`` is ``http://127.0.0.1:<port>/hook/<secret>``
(see /work/wk/README.md: ``WK_WEBHOOK_URL=... hook.sh start``), its manager token, ``node``, and a directory
with the official JS SDK installed (``--jssdk``: npm ``wukongimjssdk@1.0.4`` and ``ws@8`` in its node_modules;
the default is the live tests' npm cache, which ``pytest tests/live`` fills, or
``npm install --prefix ~/.cache/imbridge/jssdk wukongimjssdk@1.0.4 ws@8``). The client scripts are this
repository's ``tests/live/jssdk/`` harness (``recv.mjs``, ``send.mjs`` and what they import), copied into that
directory on every run. It drives, in order:

1. imbridge: a one-to-one send, a group with a send, and revokes of the one-to-one message and of a second
   group message (type-1006 notices, which imbridge stores in the command twins ``<channel>____cmd`` with
   ``sync_once``);
2. an app's own REST sends of WuKongIM's group-notice convention (types 1002 and 1003);
3. the JS SDK: carol connects (user.onlinestatus), bob sends to carol and to the group over WebSocket,
   carol disconnects;
4. a delivery the receiver fails once (answer 500), so the server retries it.

Every request the server sends is saved, in arrival order, with the path secret replaced by a placeholder;
what imbridge's sends returned (their refs) and what the JS SDK's SENDACKs said are saved beside them, so the
tests compare the webhook's events with them. Nothing secret is written (tokens stay in memory).

    IMBRIDGE_WUKONG_MANAGER_TOKEN=... python tools/wukong_webhook_fixtures/record.py \\
        --base-url http://127.0.0.1:5011 --ws ws://127.0.0.1:5210 --port 18766 --secret <secret> \\
        --out tests/fixtures/wukong/webhooks/recording.json
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from imbridge import Conversation, IMClient
from imbridge.events import EventReceiver, MessageCreated
from imbridge.events.devserver import DevServer

PLACEHOLDER = "<WEBHOOK_SECRET>"
#: The JS SDK harness (recv.mjs, send.mjs, sdk.mjs, hooks.mjs), shared with the live tests.
HARNESS = Path(__file__).resolve().parents[2] / "tests" / "live" / "jssdk"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default="http://127.0.0.1:5011")
    parser.add_argument("--ws", default="ws://127.0.0.1:5210")
    parser.add_argument("--port", type=int, default=18766)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--jssdk", default=str(Path.home() / ".cache" / "imbridge" / "jssdk"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    token = os.environ["IMBRIDGE_WUKONG_MANAGER_TOKEN"]
    if not (Path(args.jssdk) / "node_modules" / "wukongimjssdk" / "package.json").exists():
        parser.error(f"--jssdk {args.jssdk} has no node_modules/wukongimjssdk (npm install wukongimjssdk@1.0.4 ws@8)")
    for script in HARNESS.glob("*.mjs"):
        shutil.copy(script, Path(args.jssdk) / script.name)

    receiver = EventReceiver("wukong", path_secret=args.secret)
    failed_once: set[str] = set()

    @receiver.on(MessageCreated)
    def fail_once(event: MessageCreated) -> None:
        first = event.message.elements[0] if event.message.elements else None
        if getattr(first, "text", "") == "fail me once" and event.event_id not in failed_once:
            failed_once.add(event.event_id)
            raise RuntimeError("the receiver fails this delivery once, so that WuKongIM retries it")

    raw = Path(tempfile.mkdtemp()) / "raw.jsonl"
    server = DevServer(receiver, port=args.port, record=str(raw)).start()
    prefix = "wh" + secrets.token_hex(3)
    sent: dict[str, Any] = {}
    store = Path(tempfile.mkdtemp()) / "store.db"
    im = IMClient("wukong", base_url=args.base_url, manager_token=token, store=str(store), device_flag=1)
    api = httpx.Client(base_url=args.base_url, headers={"token": token})
    alice, bob, carol, dave = (f"{prefix}-{name}" for name in ("alice", "bob", "carol", "dave"))
    group = f"{prefix}-g"
    try:
        im.users.register([alice, bob, carol, dave])
        # 1. through imbridge
        one = im.messages.send(alice, Conversation.user(bob), "hello from imbridge")
        sent["imbridge_c2c"] = str(one.ref)
        im.groups.create("Webhook group", owner=alice, members=[bob, carol], group_id=group)
        in_group = im.messages.send(bob, Conversation.group(group), "hello group, from imbridge")
        sent["imbridge_group"] = str(in_group.ref)
        im.messages.revoke(one.ref)
        sent["imbridge_revoked"] = str(one.ref)
        doomed = im.messages.send(bob, Conversation.group(group), "a group message to revoke")
        im.messages.revoke(doomed.ref)
        sent["imbridge_group_revoked"] = str(doomed.ref)
        # 2. an app's server following WuKongIM's payload convention (docs/design/protocol.md) for group notices
        for kind, content, who in ((1002, "{0}邀请{1}加入群聊", dave), (1003, "{0}将{1}移除群聊", dave)):
            payload = {"type": kind, "content": content, "extra": [{"uid": alice, "name": "alice"},
                                                                    {"uid": who, "name": "dave"}]}  # fmt: skip
            reply = api.post("/message/send", json={
                "header": {"no_persist": 0, "red_dot": 0, "sync_once": 0}, "from_uid": alice, "channel_id": group,
                "channel_type": 2, "payload": base64.b64encode(json.dumps(payload).encode()).decode(),
            })  # fmt: skip
            reply.raise_for_status()
            sent[f"notice_{kind}"] = reply.json()["data"]["message_id"]
        # 3. the official JS SDK over WebSocket, not through imbridge
        bob_token = im.users.login_credentials(bob).token.get_secret_value()
        carol_token = im.users.login_credentials(carol).token.get_secret_value()
        listener = subprocess.Popen(
            ["node", "recv.mjs", "--uid", carol, "--token", carol_token, "--addr", args.ws, "--timeout", "8"],
            cwd=args.jssdk, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(2.5)
        js_sends = ((carol, 1, "hi carol, from the js sdk"), (group, 2, "hi group, from the js sdk"))
        for target, channel_type, text in js_sends:
            out = subprocess.run(
                ["node", "send.mjs", "--uid", bob, "--token", bob_token, "--to", target, "--type", str(channel_type),
                 "--text", text, "--addr", args.ws],
                cwd=args.jssdk, capture_output=True, text=True, timeout=30, check=True,
            ).stdout  # fmt: skip
            ack = next(json.loads(line) for line in out.splitlines() if '"sendack"' in line)
            sent[f"jssdk_{'c2c' if channel_type == 1 else 'group'}"] = {
                "message_id": ack["message_id"], "message_seq": ack["message_seq"],
                "client_msg_no": ack["client_msg_no"], "from": bob, "to": target, "text": text,
            }  # fmt: skip
        listener.wait(timeout=30)
        # 4. a delivery the receiver fails once
        sent["retried"] = str(im.messages.send(alice, Conversation.user(carol), "fail me once").ref)
        time.sleep(6)  # the retry (1 s later), and user.onlinestatus (its loop sleeps 2 s when idle)
    finally:
        server.close()
        im.close()
        api.close()
    requests = []
    for line in raw.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        entry["path"] = entry["path"].replace(args.secret, PLACEHOLDER)
        requests.append(entry)
    version = httpx.get(f"{args.base_url}/varz", headers={"token": token}).json()
    document = {
        "recorded": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "server": {"version": version.get("version"), "commit": version.get("commit")},
        "prefix": prefix,
        "users": {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "group": group},
        "sent": sent,
        "requests": requests,
    }
    Path(args.out).write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(requests)} requests recorded to {args.out}")


if __name__ == "__main__":
    main()
