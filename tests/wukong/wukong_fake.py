"""A small in-memory stand-in for the WuKongIM v2.2.5 routes the provider uses, for httpx.MockTransport.

It mimics the behaviour verified on a real server (FACTS.md): envelopes, flag overwrite on
/channel/info, silent drops on ban/disband, no client_msg_no dedupe, the fake person-channel id for
byclientmsgno, and messagesync's pull_mode windows. Every request is recorded for assertions.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from imbridge.providers.wukong.wire import fake_channel_id

TOKEN = "test-manager-token"  # an obviously fake manager token, made up for these tests


@dataclass
class Channel:
    flags: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("large", "ban", "disband", "send_ban", "allow_stranger"), 0))  # fmt: skip
    subscribers: list[str] = field(default_factory=list)
    denylist: list[str] = field(default_factory=list)
    exists: bool = True


class FakeWukong:
    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}  # stored channel id -> messages
        self.requests: list[httpx.Request] = []
        self.tokens: dict[tuple[str, int], str] = {}
        self.next_id = 2125027596830674944
        #: Called before a route is served; may raise (e.g. httpx.ReadTimeout) or return a Response.
        self.intercept: Callable[[httpx.Request], httpx.Response | None] | None = None

    # -- helpers ------------------------------------------------------------------------------

    def paths(self, method: str | None = None) -> list[str]:
        return [r.url.path for r in self.requests if method is None or r.method == method]

    def bodies(self, path: str) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path and r.content]

    def channel(self, channel_id: str) -> Channel:
        return self.channels.setdefault(channel_id, Channel())

    def store_message(self, body: dict[str, Any], message_id: int) -> None:
        channel_type = body.get("channel_type")
        from_uid = body.get("from_uid") or "____system"
        stored_id = body["channel_id"] if channel_type == 2 else fake_channel_id(from_uid, body["channel_id"])
        if channel_type == 2:
            ch = self.channels.get(stored_id)
            if ch is not None and (ch.flags["ban"] or ch.flags["disband"]):
                return  # silently dropped, as WuKongIM does
        stored = self.messages.setdefault(stored_id, [])
        stored.append({
            "header": {"no_persist": 0, "red_dot": 0, "sync_once": 0}, "setting": 0, "message_id": message_id,
            "message_idstr": str(message_id), "client_msg_no": body.get("client_msg_no", ""),
            "message_seq": len(stored) + 1, "from_uid": body.get("from_uid", ""), "channel_id": body["channel_id"],
            "channel_type": channel_type, "expire": 0, "timestamp": 1795481067, "payload": body["payload"],
        })  # fmt: skip

    # -- the transport handler ----------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("token") != TOKEN:
            return httpx.Response(401)
        if self.intercept is not None:
            answer = self.intercept(request)
            if answer is not None:
                return answer
        body = json.loads(request.content) if request.content else None
        path = unquote(request.url.path)
        q = request.url.params
        ok = httpx.Response(200, json={"status": 200})
        if request.method == "POST" and path == "/user/token":
            self.tokens[(body["uid"], body.get("device_flag", 0))] = body["token"]
            return ok
        if request.method == "GET" and path == "/cluster/users":
            # Verified on v2.2.5: a known uid comes back in `data`; an unknown one is HTTP 500, empty body.
            if not any(uid == q.get("uid") for uid, _ in self.tokens):
                return httpx.Response(500)
            return httpx.Response(200, json={"total": 0, "more": 0, "data": [{"uid": q["uid"], "device_count": 0}]})
        if request.method == "POST" and path in ("/channel", "/channel/info"):
            ch = self.channel(body["channel_id"])
            ch.exists = True
            ch.flags = {name: int(body.get(name, 0)) for name in ch.flags}  # full overwrite
            if path == "/channel":
                if body.get("reset"):
                    ch.subscribers = []
                ch.subscribers += [u for u in body.get("subscribers", []) if u not in ch.subscribers]
            return ok
        if request.method == "POST" and path == "/channel/delete":
            self.channel(body["channel_id"]).flags["disband"] = 1
            return ok
        if request.method == "POST" and path.startswith("/channel/subscriber_"):
            ch = self.channel(body["channel_id"])
            if path.endswith("add"):
                ch.subscribers += [u for u in body["subscribers"] if u not in ch.subscribers]
            else:
                ch.subscribers = [u for u in ch.subscribers if u not in body["subscribers"]]
            return ok
        if request.method == "POST" and path.startswith("/channel/blacklist_"):
            ch = self.channel(body["channel_id"])
            if path.endswith("remove_all"):
                ch.denylist = []
            elif path.endswith("add"):
                ch.denylist += [u for u in body["uids"] if u not in ch.denylist]
            else:
                ch.denylist = [u for u in ch.denylist if u not in body["uids"]]
            return ok
        if request.method == "GET" and path == "/cluster/channels":
            ch = self.channels.get(q["channel_id"])
            if ch is None:
                element = {"channel_id": "", "channel_type": 0, "ban": 0, "disband": 0}
            else:
                element = {"channel_id": q["channel_id"], "channel_type": 2, "ban": ch.flags["ban"],
                           "disband": ch.flags["disband"], "created_at": 1795480990930317756}  # fmt: skip
            return httpx.Response(200, json={"total": 0, "more": 0, "data": [element]})
        if request.method == "GET" and path.startswith("/cluster/channels/"):
            _, _, _, channel_id, _, which = path.split("/")
            ch = self.channels.get(channel_id)
            values = [] if ch is None else (ch.subscribers if which == "subscribers" else ch.denylist)
            return httpx.Response(200, json=list(values))
        if request.method == "POST" and path == "/message/send":
            self.next_id += 1
            self.store_message(body, self.next_id)
            data = {"message_id": self.next_id, "client_msg_no": body.get("client_msg_no") or "generated0"}
            return httpx.Response(200, json={"status": 200, "data": data})
        if request.method == "GET" and path == "/message/byclientmsgno":
            for message in self.messages.get(q["channel_id"], []):
                if message["client_msg_no"] == q["client_msg_no"]:
                    return httpx.Response(200, json=message)  # the FIRST match
            return httpx.Response(200, json={"status": 404})
        if request.method == "POST" and path == "/messages":  # client_msg_nos: the LAST match of each (FACTS §9)
            if body["channel_type"] == 2:
                rows = self.messages.get(body["channel_id"], [])
            else:
                rows = self.messages.get(fake_channel_id(body.get("login_uid", ""), body["channel_id"]), [])
            found = [[m for m in rows if m["client_msg_no"] == no][-1:] for no in body.get("client_msg_nos", [])]
            return httpx.Response(200, json={"start_message_seq": 0, "end_message_seq": 0, "more": 0,
                                             "messages": [m for hit in found for m in hit]})  # fmt: skip
        if request.method == "POST" and path == "/message":  # global lookup by id (FACTS §9)
            for rows in self.messages.values():
                for message in rows:
                    if message["message_id"] == body["message_id"]:
                        return httpx.Response(200, json=message)
            return httpx.Response(200, json={"status": 404})
        if request.method == "POST" and path == "/message/sendbatch":
            if not body["subscribers"]:
                return httpx.Response(400, json={"msg": "subscribers不能为空\uff01", "status": 400})
            failed = [uid for uid in body["subscribers"] if any(ch in uid for ch in "@#&")]
            for uid in body["subscribers"]:
                if uid and uid not in failed:
                    self.next_id += 1
                    self.store_message({**body, "channel_id": uid, "channel_type": 1}, self.next_id)
            return httpx.Response(200, json={"fail_uids": failed, "reason": ["频道ID不合法\uff01"] * len(failed)})
        if request.method == "POST" and path == "/channel/messagesync":
            stored_id = (
                body["channel_id"]
                if body["channel_type"] == 2
                else fake_channel_id(body["login_uid"], body["channel_id"])
            )
            rows = self.messages.get(stored_id, [])
            start, end, limit = body.get("start_message_seq", 0), body.get("end_message_seq", 0), body.get("limit", 0)
            last = len(rows)
            if start == 0 and end == 0:
                chosen = rows[max(0, last - limit) :] if limit else []
            elif body.get("pull_mode") == 1:
                chosen = [m for m in rows if m["message_seq"] >= start and (end == 0 or m["message_seq"] < end)]
                chosen = chosen[:limit] if limit else chosen
            else:
                low = max(end + 1, start - limit + 1, 1)
                chosen = [m for m in rows if low <= m["message_seq"] <= min(start, last)] if limit else []
            reply = {"start_message_seq": start, "end_message_seq": end, "more": int(len(chosen) == limit),
                     "messages": chosen}  # fmt: skip
            return httpx.Response(200, json=reply)
        return httpx.Response(404, text="404 page not found")


def payload_of(body: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(body["payload"]))
    return decoded
