"""One raw request sequence for WuKongIM v2.2.5, run against the real server or the emulator, normalized.

The same steps (sends, messagesync with many start/end/limit/pull_mode combinations, lookups, flag
writes, validation errors) go to either target; every response is normalized (ids, timestamps and
generated client_msg_nos masked, unordered uid lists sorted) so the two can be compared exactly.

Record the real server's answers (the fixture the CI test compares the emulator with)::

    IMBRIDGE_WUKONG_MANAGER_TOKEN=... python tests/emulators/wukong_differential.py record http://127.0.0.1:5001

Compare the real server and the emulator right now::

    IMBRIDGE_WUKONG_MANAGER_TOKEN=... python tests/emulators/wukong_differential.py compare http://127.0.0.1:5001

``--sequence conversations`` runs the conversation routes' sequence instead (``differential_conversations.json``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from imbridge.emulators.wukong import WukongEmulator
from imbridge.providers.wukong.wire import fake_channel_id

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "wukong" / "differential.json"
#: The conversation routes' sequence (issue 16), recorded apart so either can be re-recorded alone.
CONVERSATION_FIXTURE = FIXTURE.with_name("differential_conversations.json")
TEST_TOKEN = "differential-test-token"  # what the emulator is given in the CI comparison; not a real secret

_MASKED_KEYS = {
    "message_id",
    "message_idstr",
    "timestamp",
    "created_at",
    "updated_at",
    "created_at_format",
    "updated_at_format",
    "last_msg_time",
    "last_msg_time_format",
    "version",  # /conversation/sync: the last message's timestamp in nanoseconds
}
_GENERATED_CMN = re.compile(r"^[0-9a-f]{32}0$")
_UNORDERED = re.compile(r"^/cluster/channels/[^/]+/[^/]+/(subscribers|denylist|allowlist)$")


def payload(text: str) -> str:
    return base64.b64encode(json.dumps({"type": 1, "content": text}, separators=(",", ":")).encode()).decode()


@dataclass
class Step:
    name: str
    method: str
    path: str
    body: Any = None
    params: dict[str, str] | None = None
    raw: str | None = None  # a body sent verbatim (malformed JSON)
    auth: bool = True
    until: Callable[[int, Any], bool] | None = None  # repeat until true (the server stores asynchronously)
    pause: float = 0.0  # wait before the request (real server only; lets an asynchronous drop happen)
    #: Mask the header flags of the messages in the answer: the real server's read-back of them is irregular
    #: (seq 1 and byclientmsgno read 0, later messages sometimes as sent), the emulator renders 0.
    mask_header: bool = False


def _seq_is(n: int) -> Callable[[int, Any], bool]:
    return lambda status, body: status == 200 and isinstance(body, dict) and body.get("message_seq") == n


def steps() -> list[Step]:
    """The sequence. ``{p}`` is the run prefix, ``{fake:a,b}`` the fake id of users {p}a/{p}b,
    ``"{id:step}"`` the message_id an earlier send step answered."""
    g, sys_send = "{p}g", {"channel_id": "{p}g", "channel_type": 2}
    out: list[Step] = [
        Step("health", "GET", "/health"),
        Step("health without token", "GET", "/health", auth=False),
        Step("unknown route", "GET", "/{p}/no/such/route"),
        Step("wrong method", "POST", "/health", body={}),
        Step("wrong method on send", "GET", "/message/send"),
        Step(
            "token alice",
            "POST",
            "/user/token",
            {"uid": "{p}alice", "token": "t1", "device_flag": 1, "device_level": 1},
        ),
        Step("token empty uid", "POST", "/user/token", {"uid": "", "token": "x"}),
        Step("token empty token", "POST", "/user/token", {"uid": "{p}x", "token": ""}),
        Step("token special uid", "POST", "/user/token", {"uid": "a@{p}", "token": "x"}),
        Step("token system uid", "POST", "/user/token", {"uid": "____system", "token": "x"}),
        Step("token device_flag string", "POST", "/user/token", {"uid": "{p}x", "token": "t", "device_flag": "1"}),
        Step("token device_flag negative", "POST", "/user/token", {"uid": "{p}x", "token": "t", "device_flag": -1}),
        Step("token malformed json", "POST", "/user/token", raw="{not json"),
        Step("cluster user known", "GET", "/cluster/users", params={"uid": "{p}alice"}),
        Step("cluster user unknown", "GET", "/cluster/users", params={"uid": "{p}nobody"}),
        # -- groups, flags -----------------------------------------------------------------------------
        Step("create group", "POST", "/channel", {**sys_send, "subscribers": ["{p}alice", "{p}bob"]}),
        Step("subscribers", "GET", f"/cluster/channels/{g}/2/subscribers"),
        Step("group info", "GET", "/cluster/channels", params={"channel_id": g, "channel_type": "2"}),
        Step("ban", "POST", "/channel/info", {**sys_send, "ban": 1}),
        Step("group info banned", "GET", "/cluster/channels", params={"channel_id": g, "channel_type": "2"}),
        Step("info without ban", "POST", "/channel/info", {**sys_send, "send_ban": 1}),
        Step("group info unbanned", "GET", "/cluster/channels", params={"channel_id": g, "channel_type": "2"}),
        Step("create again adds carol", "POST", "/channel", {**sys_send, "subscribers": ["{p}carol"]}),
        Step("subscribers after re-create", "GET", f"/cluster/channels/{g}/2/subscribers"),
        Step("unknown group info", "GET", "/cluster/channels", params={"channel_id": "{p}none", "channel_type": "2"}),
        Step(
            "ban filter panics", "GET", "/cluster/channels", params={"channel_id": g, "channel_type": "2", "ban": "1"}
        ),
        Step("create bad id", "POST", "/channel", {"channel_id": "g@{p}", "channel_type": 2}),
        Step("create empty id", "POST", "/channel", {"channel_id": "", "channel_type": 2}),
        Step("create type 0", "POST", "/channel", {"channel_id": "{p}gx", "channel_type": 0}),
        Step("create type string", "POST", "/channel", {"channel_id": "{p}gx", "channel_type": "2"}),
        Step("create type 300", "POST", "/channel", {"channel_id": "{p}gx", "channel_type": 300}),
        Step(
            "create person with subscribers",
            "POST",
            "/channel",
            {"channel_id": "{p}alice", "channel_type": 1, "subscribers": ["{p}bob"]},
        ),
        Step("create truncated json", "POST", "/channel", raw='{"channel_id":"x"'),
        Step("info with @ accepted", "POST", "/channel/info", {"channel_id": "g@{p}", "channel_type": 2}),
        # -- subscribers ----------------------------------------------------------------------------------
        Step(
            "subscriber_add implicit",
            "POST",
            "/channel/subscriber_add",
            {"channel_id": "{p}gi", "channel_type": 2, "subscribers": ["{p}a", "{p}b"]},
        ),
        Step("implicit channel exact", "GET", "/cluster/channels", params={"channel_id": "{p}gi", "channel_type": "2"}),
        Step("implicit channel scan", "GET", "/cluster/channels", params={"channel_id": "{p}gi"}),
        Step("created channel scan", "GET", "/cluster/channels", params={"channel_id": g}),
        Step(
            "subscriber_add no type",
            "POST",
            "/channel/subscriber_add",
            {"channel_id": "{p}gi", "subscribers": ["{p}c"]},
        ),
        Step("subscriber_add empty", "POST", "/channel/subscriber_add", {**sys_send, "subscribers": []}),
        Step("subscriber_add blank", "POST", "/channel/subscriber_add", {**sys_send, "subscribers": [""]}),
        Step(
            "subscriber_add temp",
            "POST",
            "/channel/subscriber_add",
            {**sys_send, "subscribers": ["{p}d"], "temp_subscriber": 1},
        ),
        Step(
            "subscriber_add person",
            "POST",
            "/channel/subscriber_add",
            {"channel_id": "{p}alice", "channel_type": 1, "subscribers": ["{p}d"]},
        ),
        Step(
            "subscriber_add bad type",
            "POST",
            "/channel/subscriber_add",
            {**sys_send, "channel_type": -1, "subscribers": ["{p}d"]},
        ),
        Step("subscriber_add subscribers string", "POST", "/channel/subscriber_add", {**sys_send, "subscribers": "x"}),
        Step(
            "subscriber_remove non-member",
            "POST",
            "/channel/subscriber_remove",
            {**sys_send, "subscribers": ["{p}zed"]},
        ),
        Step(
            "subscriber_remove carol", "POST", "/channel/subscriber_remove", {**sys_send, "subscribers": ["{p}carol"]}
        ),
        Step("subscribers after remove", "GET", f"/cluster/channels/{g}/2/subscribers"),
        Step("unknown subscribers", "GET", "/cluster/channels/{p}none/2/subscribers"),
        # -- never-used channels ---------------------------------------------------------------------
        Step(
            "max seq never used", "GET", "/channel/max_message_seq", params={"channel_id": "{p}nu", "channel_type": "2"}
        ),
        Step("last never used", "GET", "/channel/last_message", params={"channel_id": "{p}nu", "channel_type": "2"}),
        Step("info only", "POST", "/channel/info", {"channel_id": "{p}io", "channel_type": 2}),
        Step(
            "max seq info only", "GET", "/channel/max_message_seq", params={"channel_id": "{p}io", "channel_type": "2"}
        ),
        Step(
            "bycmn never used",
            "GET",
            "/message/byclientmsgno",
            params={"channel_id": "{p}nu", "channel_type": "2", "client_msg_no": "x"},
        ),
        Step(
            "sync never used",
            "POST",
            "/channel/messagesync",
            {"login_uid": "{p}a", "channel_id": "{p}nu", "channel_type": 2, "limit": 5},
        ),
        Step(
            "max seq after sync", "GET", "/channel/max_message_seq", params={"channel_id": "{p}nu", "channel_type": "2"}
        ),
        Step("last after sync", "GET", "/channel/last_message", params={"channel_id": "{p}nu", "channel_type": "2"}),
        Step(
            "max seq group with subscribers",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": g, "channel_type": "2"},
        ),
        Step("max seq no type", "GET", "/channel/max_message_seq", params={"channel_id": g}),
        Step("max seq no id", "GET", "/channel/max_message_seq", params={"channel_type": "2"}),
    ]
    # -- ten messages in the group -------------------------------------------------------------------
    for n in range(1, 11):
        out.append(
            Step(
                f"send {n}",
                "POST",
                "/message/send",
                {"from_uid": "{p}alice", **sys_send, "client_msg_no": f"{{p}}m{n}", "payload": payload(f"m{n}")},
            )
        )
    out.append(
        Step(
            "wait for 10",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": g, "channel_type": "2"},
            until=_seq_is(10),
        )
    )
    table = [  # (start, end, limit, pull_mode) — FACTS §8 and more
        (0, 0, 3, 0),
        (0, 0, 3, 1),
        (0, 0, 0, 0),
        (0, 0, 20, 0),
        (0, 0, 10, 0),
        (5, 0, 3, 1),
        (5, 0, 10, 1),
        (5, 8, 10, 1),
        (5, 8, 2, 1),
        (5, 8, 3, 1),
        (1, 0, 0, 1),
        (5, 0, 0, 1),
        (11, 0, 5, 1),
        (0, 5, 10, 1),
        (8, 5, 10, 1),
        (5, 5, 10, 1),
        (5, 0, 3, 0),
        (5, 0, 10, 0),
        (8, 5, 10, 0),
        (8, 5, 2, 0),
        (8, 5, 3, 0),
        (5, 8, 10, 0),
        (5, 5, 10, 0),
        (11, 0, 3, 0),
        (20, 0, 3, 0),
        (0, 5, 10, 0),
        (8, 0, 0, 0),
        (10, 0, 10, 0),
        (10, 0, 9, 0),
        (0, 0, 20000, 0),
        (0, 0, 1, 2),
        (5, 0, 3, 2),
        (9, 0, 4, 0),
        (3, 1, 5, 0),
        (2, 0, 1, 1),
    ]
    for start, end, limit, mode in table:
        out.append(
            Step(
                f"sync start={start} end={end} limit={limit} pull_mode={mode}",
                "POST",
                "/channel/messagesync",
                {
                    "login_uid": "{p}nobody",
                    **sys_send,
                    "start_message_seq": start,
                    "end_message_seq": end,
                    "limit": limit,
                    "pull_mode": mode,
                },
            )
        )
    out += [
        Step(
            "sync pull_mode omitted",
            "POST",
            "/channel/messagesync",
            {"login_uid": "{p}a", **sys_send, "start_message_seq": 5, "limit": 3},
        ),
        Step("sync no login_uid", "POST", "/channel/messagesync", {**sys_send, "limit": 3}),
        Step("sync no channel_id", "POST", "/channel/messagesync", {"login_uid": "{p}a", "limit": 3}),
        Step("sync limit string", "POST", "/channel/messagesync", {"login_uid": "{p}a", **sys_send, "limit": "3"}),
        Step("max seq 10", "GET", "/channel/max_message_seq", params={"channel_id": g, "channel_type": "2"}),
        Step("last message", "GET", "/channel/last_message", params={"channel_id": g, "channel_type": "2"}),
        # -- duplicates and lookups -----------------------------------------------------------------
        Step(
            "send dup A",
            "POST",
            "/message/send",
            {"from_uid": "{p}alice", **sys_send, "client_msg_no": "{p}dup", "payload": payload("dup A")},
        ),
        Step(
            "send dup B",
            "POST",
            "/message/send",
            {"from_uid": "{p}alice", **sys_send, "client_msg_no": "{p}dup", "payload": payload("dup B")},
        ),
        Step(
            "wait for 12",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": g, "channel_type": "2"},
            until=_seq_is(12),
        ),
        Step(
            "bycmn dup is first",
            "GET",
            "/message/byclientmsgno",
            params={"channel_id": g, "channel_type": "2", "client_msg_no": "{p}dup"},
        ),
        Step(
            "messages dup is last", "POST", "/messages", {"login_uid": "{p}a", **sys_send, "client_msg_nos": ["{p}dup"]}
        ),
        Step(
            "bycmn miss",
            "GET",
            "/message/byclientmsgno",
            params={"channel_id": g, "channel_type": "2", "client_msg_no": "{p}nope"},
        ),
        Step("bycmn type 0", "GET", "/message/byclientmsgno", params={"channel_id": g, "client_msg_no": "{p}m1"}),
        Step("bycmn no id", "GET", "/message/byclientmsgno", params={"channel_type": "2", "client_msg_no": "{p}m1"}),
        Step("bycmn no cmn", "GET", "/message/byclientmsgno", params={"channel_id": g, "channel_type": "2"}),
        Step("messages seqs", "POST", "/messages", {"login_uid": "{p}a", **sys_send, "message_seqs": [2, 1, 99]}),
        Step(
            "messages mixed",
            "POST",
            "/messages",
            {
                "login_uid": "{p}a",
                **sys_send,
                "message_seqs": [2],
                "message_ids": ["{id:send 1}"],
                "client_msg_nos": ["{p}m1", "{p}nope"],
            },
        ),
        Step("messages ids as strings", "POST", "/messages", {**sys_send, "message_ids": ["12"]}),
        Step("messages no selectors", "POST", "/messages", {**sys_send}),
        Step("message by cmn misses", "POST", "/message", {**sys_send, "client_msg_no": "{p}m3"}),
        Step("message by id", "POST", "/message", {**sys_send, "message_id": "{id:send 3}"}),
        Step("message by unknown id", "POST", "/message", {**sys_send, "message_id": 123}),
        Step("message type 0", "POST", "/message", {"channel_id": g, "message_id": 1}),
        # -- REST sends bypass the denylist and membership ------------------------------------------------
        Step("denylist bob", "POST", "/channel/blacklist_add", {**sys_send, "uids": ["{p}bob"]}),
        Step("denylist bob and dave", "POST", "/channel/blacklist_add", {**sys_send, "uids": ["{p}bob", "{p}dave"]}),
        Step("denylist", "GET", f"/cluster/channels/{g}/2/denylist"),
        Step("denylist count over-counts", "GET", "/cluster/channels", params={"channel_id": g}),
        Step("denylist remove", "POST", "/channel/blacklist_remove", {**sys_send, "uids": ["{p}dave", "{p}nobody"]}),
        Step("denylist after remove", "GET", f"/cluster/channels/{g}/2/denylist"),
        Step("denylist type 0", "POST", "/channel/blacklist_add", {"channel_id": g, "uids": ["{p}x"]}),
        Step("denylist empty uids", "POST", "/channel/blacklist_add", {**sys_send, "uids": []}),
        Step(
            "denylist @ accepted",
            "POST",
            "/channel/blacklist_add",
            {"channel_id": "g@{p}", "channel_type": 2, "uids": ["{p}x"]},
        ),
        Step(
            "send from denylisted",
            "POST",
            "/message/send",
            {"from_uid": "{p}bob", **sys_send, "client_msg_no": "{p}deny", "payload": payload("deny")},
        ),
        Step(
            "send from stranger",
            "POST",
            "/message/send",
            {"from_uid": "{p}stranger", **sys_send, "client_msg_no": "{p}stranger", "payload": payload("s")},
        ),
        Step(
            "send from system",
            "POST",
            "/message/send",
            {**sys_send, "client_msg_no": "{p}system", "payload": payload("sys")},
        ),
        Step(
            "wait for 15",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": g, "channel_type": "2"},
            until=_seq_is(15),
        ),
        Step(
            "sync bypassed",
            "POST",
            "/channel/messagesync",
            {"login_uid": "{p}a", **sys_send, "start_message_seq": 13, "limit": 5, "pull_mode": 1},
        ),
        # -- ban and disband drop silently ------------------------------------------------------------
        Step("ban for drop", "POST", "/channel/info", {**sys_send, "ban": 1}),
        Step(
            "send banned",
            "POST",
            "/message/send",
            {"from_uid": "{p}alice", **sys_send, "client_msg_no": "{p}banned", "payload": payload("banned")},
        ),
        Step(
            "send banned system",
            "POST",
            "/message/send",
            {**sys_send, "client_msg_no": "{p}banned-sys", "payload": payload("banned")},
        ),
        Step(
            "max seq after banned sends",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": g, "channel_type": "2"},
            pause=0.3,
        ),
        Step(
            "bycmn banned",
            "GET",
            "/message/byclientmsgno",
            params={"channel_id": g, "channel_type": "2", "client_msg_no": "{p}banned"},
        ),
        Step("lift ban", "POST", "/channel/info", {**sys_send}),
        Step(
            "send after ban",
            "POST",
            "/message/send",
            {"from_uid": "{p}alice", **sys_send, "client_msg_no": "{p}after-ban", "payload": payload("ok")},
        ),
        Step(
            "wait for 16",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": g, "channel_type": "2"},
            until=_seq_is(16),
        ),
        Step("dismiss", "POST", "/channel/delete", {**sys_send}),
        Step("group info dismissed", "GET", "/cluster/channels", params={"channel_id": g, "channel_type": "2"}),
        Step(
            "send dismissed",
            "POST",
            "/message/send",
            {"from_uid": "{p}alice", **sys_send, "client_msg_no": "{p}disband", "payload": payload("gone")},
        ),
        Step(
            "max seq after dismissed send",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": g, "channel_type": "2"},
            pause=0.3,
        ),
        Step("subscribers kept", "GET", f"/cluster/channels/{g}/2/subscribers"),
        Step("denylist kept", "GET", f"/cluster/channels/{g}/2/denylist"),
        Step("add to dismissed", "POST", "/channel/subscriber_add", {**sys_send, "subscribers": ["{p}late"]}),
        Step("revive", "POST", "/channel/info", {**sys_send, "disband": 0}),
        Step(
            "send revived",
            "POST",
            "/message/send",
            {"from_uid": "{p}alice", **sys_send, "client_msg_no": "{p}revived", "payload": payload("back")},
        ),
        Step(
            "wait for 17",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": g, "channel_type": "2"},
            until=_seq_is(17),
        ),
        Step("delete unknown", "POST", "/channel/delete", {"channel_id": "{p}never", "channel_type": 2}),
        Step("delete empty id", "POST", "/channel/delete", {"channel_id": "", "channel_type": 2}),
        Step("delete person", "POST", "/channel/delete", {"channel_id": "{p}alice", "channel_type": 1}),
        Step(
            "send to ghost",
            "POST",
            "/message/send",
            {
                "from_uid": "{p}alice",
                "channel_id": "{p}ghost",
                "channel_type": 2,
                "client_msg_no": "{p}ghost",
                "payload": payload("boo"),
            },
        ),
        Step(
            "wait ghost",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": "{p}ghost", "channel_type": "2"},
            until=_seq_is(1),
        ),
        Step("ghost info", "GET", "/cluster/channels", params={"channel_id": "{p}ghost", "channel_type": "2"}),
        # -- person chats --------------------------------------------------------------------------------
        Step(
            "person pa to pb",
            "POST",
            "/message/send",
            {
                "from_uid": "{p}pa",
                "channel_id": "{p}pb",
                "channel_type": 1,
                "client_msg_no": "{p}p1",
                "payload": payload("p1"),
            },
        ),
        Step(
            "person pb to pa",
            "POST",
            "/message/send",
            {
                "from_uid": "{p}pb",
                "channel_id": "{p}pa",
                "channel_type": 1,
                "client_msg_no": "{p}p2",
                "payload": payload("p2"),
            },
        ),
        Step(
            "person system to pa",
            "POST",
            "/message/send",
            {"channel_id": "{p}pa", "channel_type": 1, "client_msg_no": "{p}psys", "payload": payload("psys")},
        ),
        Step(
            "wait person",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": "{fake:pa,pb}", "channel_type": "1"},
            until=_seq_is(2),
        ),
        Step(
            "wait system person",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": "{p}pa", "channel_type": "1", "login_uid": "____system"},
            until=_seq_is(1),
        ),
        Step(
            "person sync as pa",
            "POST",
            "/channel/messagesync",
            {"login_uid": "{p}pa", "channel_id": "{p}pb", "channel_type": 1, "limit": 10},
        ),
        Step(
            "person sync as pb",
            "POST",
            "/channel/messagesync",
            {"login_uid": "{p}pb", "channel_id": "{p}pa", "channel_type": 1, "limit": 10},
        ),
        Step(
            "person sync with fake id",
            "POST",
            "/channel/messagesync",
            {"login_uid": "{p}pa", "channel_id": "{fake:pa,pb}", "channel_type": 1, "limit": 10},
        ),
        Step(
            "system chat as pa",
            "POST",
            "/channel/messagesync",
            {"login_uid": "{p}pa", "channel_id": "____system", "channel_type": 1, "limit": 10},
        ),
        Step(
            "bycmn fake id",
            "GET",
            "/message/byclientmsgno",
            params={"channel_id": "{fake:pa,pb}", "channel_type": "1", "client_msg_no": "{p}p1"},
        ),
        Step(
            "bycmn reversed fake id",
            "GET",
            "/message/byclientmsgno",
            params={"channel_id": "{rfake:pa,pb}", "channel_type": "1", "client_msg_no": "{p}p1"},
        ),
        Step(
            "bycmn peer id",
            "GET",
            "/message/byclientmsgno",
            params={"channel_id": "{p}pb", "channel_type": "1", "client_msg_no": "{p}p1", "login_uid": "{p}pa"},
        ),
        Step(
            "messages person",
            "POST",
            "/messages",
            {
                "login_uid": "{p}pa",
                "channel_id": "{p}pb",
                "channel_type": 1,
                "client_msg_nos": ["{p}p2", "{p}p1", "{p}nope"],
            },
        ),
        Step(
            "messages person no login",
            "POST",
            "/messages",
            {"channel_id": "{p}pb", "channel_type": 1, "client_msg_nos": ["{p}p1"]},
        ),
        Step(
            "message person no login",
            "POST",
            "/message",
            {"channel_id": "{p}pb", "channel_type": 1, "message_id": "{id:person pa to pb}"},
        ),
        Step("message by id ignores channel", "POST", "/message", {**sys_send, "message_id": "{id:person pa to pb}"}),
        Step(
            "max seq person",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": "{p}pb", "channel_type": "1", "login_uid": "{p}pa"},
        ),
        Step(
            "max seq person no login",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": "{p}pb", "channel_type": "1"},
        ),
        Step(
            "last person",
            "GET",
            "/channel/last_message",
            params={"channel_id": "{p}pa", "channel_type": "1", "login_uid": "{p}pb"},
        ),
        Step(
            "last person fake id",
            "GET",
            "/channel/last_message",
            params={"channel_id": "{fake:pa,pb}", "channel_type": "1"},
        ),
        Step(
            "max seq person never chatted",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": "{p}pz", "channel_type": "1", "login_uid": "{p}pa"},
        ),
        Step("person ban", "POST", "/channel/info", {"channel_id": "{p}banned", "channel_type": 1, "ban": 1}),
        Step("token banned user", "POST", "/user/token", {"uid": "{p}banned", "token": "t", "device_flag": 0}),
        Step("person disband", "POST", "/channel/info", {"channel_id": "{p}gone", "channel_type": 1, "disband": 1}),
        Step("token disbanded user", "POST", "/user/token", {"uid": "{p}gone", "token": "t", "device_flag": 0}),
        # -- batch and send validation ---------------------------------------------------------------------
        Step(
            "sendbatch",
            "POST",
            "/message/sendbatch",
            {
                "from_uid": "{p}pa",
                "client_msg_no": "{p}batch",
                "subscribers": ["{p}pb", "{p}pc", "we@ird", "", "x#y"],
                "payload": payload("batch"),
            },
        ),
        Step(
            "wait batch",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": "{fake:pa,pb}", "channel_type": "1"},
            until=_seq_is(3),
        ),
        Step(
            "batch landed",
            "POST",
            "/channel/messagesync",
            {
                "login_uid": "{p}pb",
                "channel_id": "{p}pa",
                "channel_type": 1,
                "start_message_seq": 3,
                "limit": 5,
                "pull_mode": 1,
            },
        ),
        Step(
            "sendbatch empty",
            "POST",
            "/message/sendbatch",
            {"from_uid": "{p}pa", "subscribers": [], "payload": payload("x")},
        ),
        Step("sendbatch no from", "POST", "/message/sendbatch", {"subscribers": ["{p}pb"], "payload": payload("x")}),
        Step("sendbatch no payload", "POST", "/message/sendbatch", {"from_uid": "{p}pa", "subscribers": ["{p}pb"]}),
        Step("send no payload", "POST", "/message/send", {"from_uid": "{p}alice", **sys_send}),
        Step("send empty payload", "POST", "/message/send", {"from_uid": "{p}alice", **sys_send, "payload": ""}),
        Step("send no channel", "POST", "/message/send", {"from_uid": "{p}alice", "payload": payload("x")}),
        Step(
            "send bad channel",
            "POST",
            "/message/send",
            {"from_uid": "{p}alice", "channel_id": "g@{p}", "channel_type": 2, "payload": payload("x")},
        ),
        Step("send not base64", "POST", "/message/send", {**sys_send, "payload": "not base64!"}),
        Step("send unpadded", "POST", "/message/send", {**sys_send, "payload": "eyJ0eXBlIjoxfQ"}),
        Step("send payload object", "POST", "/message/send", {**sys_send, "payload": {"type": 1}}),
        Step("send bad padding", "POST", "/message/send", {**sys_send, "payload": "ab=c"}),
        Step("send too much padding", "POST", "/message/send", {**sys_send, "payload": "a==="}),
        Step(
            "send base64 with newline",
            "POST",
            "/message/send",
            {"from_uid": "{p}alice", "channel_id": "{p}nl", "channel_type": 2, "payload": "YWJj\nZA=="},
        ),
        Step("send trailing json data", "POST", "/message/send", raw='{"channel_id":"x"} garbage'),
        Step(
            "send case-insensitive keys",
            "POST",
            "/message/send",
            raw='{"Channel_ID":"{p}ci","CHANNEL_TYPE":2,"Payload":"eA=="}',
        ),
        Step(
            "wait case-insensitive",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": "{p}ci", "channel_type": "2"},
            until=_seq_is(1),
        ),
        Step(
            "send channel and subscribers",
            "POST",
            "/message/send",
            {**sys_send, "subscribers": ["{p}a"], "payload": payload("x")},
        ),
        Step(
            "send subscribers without sync_once",
            "POST",
            "/message/send",
            {"from_uid": "{p}alice", "subscribers": ["{p}bob"], "payload": payload("x")},
        ),
        Step(
            "send command to subscribers",
            "POST",
            "/message/send",
            {"header": {"sync_once": 1}, "from_uid": "{p}alice", "subscribers": ["{p}bob"], "payload": payload("x")},
        ),
        Step("send empty body", "POST", "/message/send", raw=""),
        Step("send form body", "POST", "/message/send", raw="channel_id=x"),
        Step(
            "send generated client_msg_no",
            "POST",
            "/message/send",
            {"from_uid": "{p}alice", "channel_id": "{p}gen", "channel_type": 2, "payload": payload("gen")},
        ),
        Step(
            "send no_persist",
            "POST",
            "/message/send",
            {
                "header": {"no_persist": 1},
                "from_uid": "{p}alice",
                "channel_id": "{p}np",
                "channel_type": 2,
                "payload": payload("np"),
            },
        ),
        Step(
            "max seq no_persist",
            "GET",
            "/channel/max_message_seq",
            params={"channel_id": "{p}np", "channel_type": "2"},
            pause=0.2,
        ),
    ]
    return out + admin_steps()


def admin_steps() -> list[Step]:
    """Presence, kicks and the delivery header flags (issue 17). Nothing here connects a client (the live
    JS SDK test does that), so every uid is offline."""
    g, send = "{p}ag", {"channel_id": "{p}ag", "channel_type": 2}
    # fmt: off
    admin = [
        Step("onlinestatus empty", "POST", "/user/onlinestatus", []),
        Step("onlinestatus null", "POST", "/user/onlinestatus", raw="null"),
        Step("onlinestatus offline", "POST", "/user/onlinestatus", ["{p}alice", "{p}nobody"]),
        Step("onlinestatus object", "POST", "/user/onlinestatus", {"uids": ["{p}alice"]}),
        Step("onlinestatus number", "POST", "/user/onlinestatus", ["{p}alice", 7]),
        Step("onlinestatus malformed", "POST", "/user/onlinestatus", raw="[\"x\""),
        Step("token for kick", "POST", "/user/token",
             {"uid": "{p}kick", "token": "kt", "device_flag": 1, "device_level": 1}),
        Step("token for kick app", "POST", "/user/token",
             {"uid": "{p}kick", "token": "ka", "device_flag": 0, "device_level": 1}),
        Step("devices before quit", "GET", "/cluster/devices", params={"uid": "{p}kick"}),
        Step("device_quit web", "POST", "/user/device_quit", {"uid": "{p}kick", "device_flag": 1}),
        Step("devices after quit web", "GET", "/cluster/devices", params={"uid": "{p}kick"}),
        Step("device_quit all", "POST", "/user/device_quit", {"uid": "{p}kick", "device_flag": -1}),
        Step("devices after quit all", "GET", "/cluster/devices", params={"uid": "{p}kick"}),
        Step("device_quit unknown uid", "POST", "/user/device_quit", {"uid": "{p}nobody", "device_flag": 1}),
        Step("device_quit no flag", "POST", "/user/device_quit", {"uid": "{p}nobody"}),
        Step("device_quit empty uid", "POST", "/user/device_quit", {"uid": "", "device_flag": 1}),
        Step("device_quit flag string", "POST", "/user/device_quit", {"uid": "{p}kick", "device_flag": "1"}),
        Step("create admin group", "POST", "/channel", {**send, "subscribers": ["{p}alice", "{p}bob"]}),
        Step("send red_dot 0", "POST", "/message/send",
             {"header": {"red_dot": 0}, "from_uid": "{p}alice", **send, "client_msg_no": "{p}rd0",
              "payload": payload("rd0")}),
        Step("send no_persist to group", "POST", "/message/send",
             {"header": {"no_persist": 1, "red_dot": 0}, "from_uid": "{p}alice", **send, "client_msg_no": "{p}np",
              "payload": payload("np")}),
        Step("send sync_once to group", "POST", "/message/send",
             {"header": {"sync_once": 1, "red_dot": 0}, "from_uid": "{p}alice", **send, "client_msg_no": "{p}so",
              "payload": payload("so")}),
        Step("send sync_once from system", "POST", "/message/send",
             {"header": {"sync_once": 1, "red_dot": 0}, **send, "client_msg_no": "{p}sosys",
              "payload": payload("sosys")}),
        Step("wait sync_once", "GET", "/message/byclientmsgno",
             params={"channel_id": g + "____cmd", "channel_type": "2", "client_msg_no": "{p}sosys"},
             until=lambda status, body: isinstance(body, dict) and body.get("message_seq") == 2),
        Step("wait red_dot 0", "GET", "/channel/max_message_seq", params={"channel_id": g, "channel_type": "2"},
             until=_seq_is(1)),
        Step("bycmn no_persist", "GET", "/message/byclientmsgno",
             params={"channel_id": g, "channel_type": "2", "client_msg_no": "{p}np"}),
        Step("bycmn sync_once in channel", "GET", "/message/byclientmsgno",
             params={"channel_id": g, "channel_type": "2", "client_msg_no": "{p}so"}),
        Step("bycmn sync_once in twin", "GET", "/message/byclientmsgno",
             params={"channel_id": g + "____cmd", "channel_type": "2", "client_msg_no": "{p}so"}),
        Step("sync channel without commands", "POST", "/channel/messagesync",
             {"login_uid": "{p}alice", **send, "limit": 10}),
        Step("sync command twin", "POST", "/channel/messagesync",
             {"login_uid": "{p}alice", "channel_id": g + "____cmd", "channel_type": 2, "limit": 10}),
        Step("send command to two members", "POST", "/message/send",
             {"header": {"sync_once": 1, "red_dot": 0}, "subscribers": ["{p}alice", "{p}bob"],
              "client_msg_no": "{p}sub", "payload": payload("sub")}),
        Step("send red_dot 1 second", "POST", "/message/send",
             {"header": {"red_dot": 1}, "from_uid": "{p}alice", **send, "client_msg_no": "{p}rd1",
              "payload": payload("rd1")}),
        Step("wait red_dot 1", "GET", "/channel/max_message_seq", params={"channel_id": g, "channel_type": "2"},
             until=_seq_is(2)),
        Step("header by sync", "POST", "/channel/messagesync",
             {"login_uid": "{p}alice", **send, "start_message_seq": 2, "limit": 1, "pull_mode": 1}),
        Step("header by client_msg_no", "GET", "/message/byclientmsgno",
             params={"channel_id": g, "channel_type": "2", "client_msg_no": "{p}rd1"}),
        Step("header by messages", "POST", "/messages", {"login_uid": "{p}alice", **send, "message_seqs": [2]}),
        Step("header by message id", "POST", "/message",
             {"login_uid": "{p}alice", **send, "message_id": "{id:send red_dot 1 second}"}),
        Step("header of last message", "GET", "/channel/last_message",
             params={"channel_id": g, "channel_type": "2", "login_uid": "{p}alice"}),
        Step("send online command to two members", "POST", "/message/send",
             {"header": {"no_persist": 1, "sync_once": 1, "red_dot": 0}, "subscribers": ["{p}alice", "{p}bob"],
              "client_msg_no": "{p}osub", "payload": payload("osub")}),
        Step("denylist forever", "POST", "/channel/blacklist_add", {**send, "uids": ["{p}bob"]}),
        Step("denylist read", "GET", f"/cluster/channels/{g}/2/denylist"),
        Step("denylist later", "GET", f"/cluster/channels/{g}/2/denylist", pause=1.0),
        Step("flags keep created_at", "POST", "/channel/info", {**send, "send_ban": 0}),
        Step("person sync_once", "POST", "/message/send",
             {"header": {"sync_once": 1}, "from_uid": "{p}pa", "channel_id": "{p}pb", "channel_type": 1,
              "client_msg_no": "{p}pso", "payload": payload("pso")}),
        Step("wait person sync_once", "GET", "/message/byclientmsgno",
             params={"channel_id": "{fake:pa,pb}____cmd", "channel_type": "1", "client_msg_no": "{p}pso"},
             until=lambda status, body: isinstance(body, dict) and body.get("message_seq") == 1),
    ]
    # fmt: on
    for step in admin:  # these read messages back: their header flags are masked (see Step.mask_header)
        step.mask_header = step.path in ("/message/byclientmsgno", "/channel/messagesync", "/messages", "/message",
                                         "/channel/last_message")  # fmt: skip
    return admin


def _stored(channel: str, seq: int, channel_type: str = "1") -> Step:
    """Wait until ``channel`` (a fake id for person chats) holds ``seq`` messages."""
    return Step(f"wait {channel} seq {seq}", "GET", "/channel/max_message_seq",
                params={"channel_id": channel, "channel_type": channel_type}, until=_seq_is(seq))  # fmt: skip


def _send(name: str, sender: str, to: str, channel_type: int, text: str, **header: int) -> Step:
    return Step(name, "POST", "/message/send", {"header": {"red_dot": 1, **header}, "from_uid": sender,
                "channel_id": to, "channel_type": channel_type, "client_msg_no": f"{{p}}{name.replace(' ', '-')}",
                "payload": payload(text)})  # fmt: skip


def conversation_steps() -> list[Step]:
    """The conversation routes (internal/api/conversation.go): sync with its options, syncByChannels, clearUnread,
    setUnread and delete, with the write cache and deletion point they depend on, and how message headers read
    back (``{p}a`` writes to ``{p}b`` and to group ``{p}cg`` with ``{p}c``)."""
    a, b, c, g = "{p}a", "{p}b", "{p}c", "{p}cg"
    ab, grp = "{fake:a,b}", {"channel_id": g, "channel_type": 2}

    def sync(name: str, uid: str = b, **options: Any) -> Step:
        return Step(name, "POST", "/conversation/sync", {"uid": uid, **options})

    def conv(name: str, route: str, body: dict[str, Any]) -> Step:
        return Step(name, "POST", route, body)

    return [
        Step("create group", "POST", "/channel", {**grp, "subscribers": [a, b, c]}),
        sync("sync before any message", msg_count=1),
        sync("sync msg_count 0"),
        _send("p1", a, b, 1, "p1"), _stored(ab, 1),
        _send("p2", a, b, 1, "p2"), _stored(ab, 2),
        _send("g1", a, g, 2, "g1"), _stored(g, 1, "2"),
        _send("g2", c, g, 2, "g2"), _stored(g, 2, "2"),
        sync("sync b", msg_count=1),
        sync("sync b three recents", msg_count=3),
        sync("sync a", uid=a, msg_count=1),
        sync("sync c", uid=c, msg_count=2),
        sync("sync only_unread", msg_count=1, only_unread=1),
        sync("sync version", msg_count=1, version=1),
        sync("sync last_msg_seqs", msg_count=1, last_msg_seqs="{p}a:1:2|{p}cg:2:1"),
        sync("sync last_msg_seqs malformed", msg_count=1, last_msg_seqs="x|{p}a:1|{p}cg:2:zz"),
        sync("sync page 1", msg_count=1, page=1, page_size=1),
        sync("sync page 2", msg_count=1, page=2, page_size=1),
        sync("sync page 3", msg_count=1, page=3, page_size=1),
        sync("sync exclude groups", msg_count=1, exclude_channel_types=[2]),
        sync("sync exclude groups known", msg_count=1, exclude_channel_types=[2], last_msg_seqs="{p}cg:2:1"),
        sync("sync unknown user", uid="{p}nobody", msg_count=1),
        Step("sync malformed", "POST", "/conversation/sync", raw="{nope"),
        Step("sync uid number", "POST", "/conversation/sync", {"uid": 5, "msg_count": 1}),
        conv("by channels", "/conversation/syncByChannels", {"uid": b, "msg_count": 2, "channels": [
            {"channel_id": a, "channel_type": 1}, grp, {"channel_id": "{p}none", "channel_type": 2}]}),
        conv("by channels default count", "/conversation/syncByChannels", {"uid": b, "channels": [grp]}),
        conv("by channels empty", "/conversation/syncByChannels", {"uid": b, "channels": []}),
        conv("by channels no uid", "/conversation/syncByChannels", {"channels": [grp]}),
        # The person chat is still in the write cache: delete changes nothing, clearUnread writes the row.
        conv("delete cached", "/conversations/delete", {"uid": b, "channel_id": a, "channel_type": 1}),
        sync("sync after cached delete", msg_count=1),
        conv("clear person", "/conversations/clearUnread", {"uid": b, "channel_id": a, "channel_type": 1}),
        sync("sync after clear", msg_count=1),
        conv("delete person", "/conversations/delete", {"uid": b, "channel_id": a, "channel_type": 1}),
        sync("sync after delete", msg_count=1),
        conv("delete again", "/conversations/delete", {"uid": b, "channel_id": a, "channel_type": 1}),
        _send("p3", a, b, 1, "p3"), _stored(ab, 3),
        sync("sync after next message", msg_count=3),
        conv("by channels after delete", "/conversation/syncByChannels", {"uid": b, "msg_count": 1, "channels": [
            {"channel_id": a, "channel_type": 1}]}),
        conv("set group unread 1", "/conversations/setUnread", {"uid": b, **grp, "unread": 1}),
        sync("sync after set 1", msg_count=1),
        conv("set group unread 2 (raise)", "/conversations/setUnread", {"uid": b, **grp, "unread": 2}),
        sync("sync after raise", msg_count=1),
        conv("set person unread 10", "/conversations/setUnread", {"uid": b, "channel_id": a, "channel_type": 1,
                                                                  "unread": 10}),
        sync("sync after set 10", msg_count=1),
        conv("set group unread 0", "/conversations/setUnread", {"uid": b, **grp, "unread": 0}),
        sync("sync after set 0", msg_count=1),
        conv("set unread on a new channel", "/conversations/setUnread", {"uid": c, "channel_id": "{p}empty",
                                                                         "channel_type": 2, "unread": 3}),
        conv("by channels new channel", "/conversation/syncByChannels", {"uid": c, "msg_count": 1, "channels": [
            {"channel_id": "{p}empty", "channel_type": 2}]}),
        conv("set unread no uid", "/conversations/setUnread", {**grp, "unread": 1}),
        conv("set unread type 0", "/conversations/setUnread", {"uid": b, "channel_id": g, "unread": 1}),
        conv("clear no uid", "/conversations/clearUnread", grp),
        conv("clear no channel", "/conversations/clearUnread", {"uid": b, "channel_type": 2}),
        conv("clear with message_seq", "/conversations/clearUnread", {"uid": a, **grp, "message_seq": 1}),
        sync("sync a after clear", uid=a, msg_count=1),
        conv("delete no uid", "/conversations/delete", grp),
        conv("delete no type", "/conversations/delete", {"uid": b, "channel_id": g}),
        # A command (sync_once) goes to the chat's cmd channel: no conversation, no unread.
        _send("cmd", a, b, 1, "cmd", red_dot=0, sync_once=1), _stored(ab + "____cmd", 1),
        sync("sync after command", msg_count=1),
        # A member added later reads nothing before joining; re-adding one reads everything (the row is rewritten).
        _send("g3", a, g, 2, "g3"), _stored(g, 3, "2"),
        Step("add d", "POST", "/channel/subscriber_add", {**grp, "subscribers": ["{p}d"]}),
        sync("sync d after joining", uid="{p}d", msg_count=1),
        Step("re-add b", "POST", "/channel/subscriber_add", {**grp, "subscribers": [b]}),
        sync("sync b after re-add", msg_count=1),
        # Headers: only the first message of a read loses its flags.
        Step("group messagesync", "POST", "/channel/messagesync",
             {"login_uid": a, **grp, "start_message_seq": 1, "end_message_seq": 0, "limit": 10, "pull_mode": 1}),
        Step("group messages by seq", "POST", "/messages", {"login_uid": a, **grp, "message_seqs": [1, 2]}),
        Step("group messages by client_msg_no", "POST", "/messages",
             {"login_uid": a, **grp, "client_msg_nos": ["{p}g2"]}),
        Step("group message by client_msg_no", "GET", "/message/byclientmsgno",
             params={"channel_id": g, "channel_type": "2", "client_msg_no": "{p}g2"}),
    ]  # fmt: skip


SEQUENCES: dict[str, tuple[Callable[[], list[Step]], Path]] = {
    "messages": (steps, FIXTURE),
    "conversations": (conversation_steps, CONVERSATION_FIXTURE),
}


# -- running ------------------------------------------------------------------------------------------


@dataclass
class Target:
    """Where the steps go: a base URL with the manager token, over an httpx client."""

    client: httpx.Client
    token: str
    real: bool
    sent_ids: dict[str, int] = field(default_factory=dict)


def _expand(text: str, prefix: str) -> str:
    def fake(match: re.Match[str]) -> str:
        a, b = (prefix + part for part in match.group(2).split(","))
        forward = fake_channel_id(a, b)
        if match.group(1) == "rfake":
            left, right = forward.split("@")
            return f"{right}@{left}"
        return forward

    return re.sub(r"\{(r?fake):([^}]+)\}", fake, text).replace("{p}", prefix)


def _render_body(body: Any, prefix: str, ids: dict[str, int]) -> str:
    text = json.dumps(body, ensure_ascii=False)
    text = re.sub(r'"\{id:([^}]+)\}"', lambda m: str(ids[m.group(1)]), text)
    return _expand(text, prefix)


def run(target: Target, prefix: str, sequence: Callable[[], list[Step]] = steps) -> list[dict[str, Any]]:
    """Every step's normalized answer, in order."""
    results = []
    for step in sequence():
        if step.pause and target.real:
            time.sleep(step.pause)
        headers = {"token": target.token} if step.auth else {}
        content: str | None = None
        if step.raw is not None:
            content = _expand(step.raw, prefix)
        elif step.body is not None:
            content = _render_body(step.body, prefix, target.sent_ids)
        if content is not None:
            headers["Content-Type"] = "application/json"
        params = {k: _expand(v, prefix) for k, v in (step.params or {}).items()}
        path = _expand(step.path, prefix)
        for _attempt in range(400):
            response = target.client.request(step.method, path, params=params, headers=headers, content=content)
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            if step.until is None or step.until(response.status_code, body):
                break
            if target.real:
                time.sleep(0.005)
        else:
            raise AssertionError(f"step {step.name!r} never satisfied its condition (last: {body!r})")
        if isinstance(body, dict) and isinstance(body.get("data"), dict) and "message_id" in body["data"]:
            target.sent_ids[step.name] = int(body["data"]["message_id"])
        results.append({
            "step": step.name, "status": response.status_code,
            "content_type": response.headers.get("content-type"),
            "body": normalize(path, body, prefix, mask_header=step.mask_header),
        })  # fmt: skip
    return results


def normalize(path: str, body: Any, prefix: str, *, mask_header: bool = False) -> Any:
    """Mask what differs on every run (ids, times, generated client_msg_nos); sort unordered uid lists."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                masked_header = key == "header" and mask_header and isinstance(item, dict)
                if masked_header or (key in _MASKED_KEYS and item not in (0, "", None)):
                    out[key] = "<masked>"
                elif key == "client_msg_no" and isinstance(item, str) and _GENERATED_CMN.match(item):
                    out[key] = "<generated>"
                elif key == "id" and isinstance(item, int) and path in ("/cluster/users", "/cluster/devices"):
                    out[key] = "<masked>"
                else:
                    out[key] = walk(item)
            return out
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str):
            return value.replace(prefix, "{p}")
        return value

    normalized = walk(body)
    if _UNORDERED.match(path) and isinstance(normalized, list):
        normalized = sorted(normalized)
    return normalized


def run_real(
    base_url: str, token: str, prefix: str, sequence: Callable[[], list[Step]] = steps
) -> list[dict[str, Any]]:
    with httpx.Client(base_url=base_url, timeout=15) as client:
        return run(Target(client, token, real=True), prefix, sequence)


def run_emulator(
    prefix: str, token: str = TEST_TOKEN, sequence: Callable[[], list[Step]] = steps, **options: Any
) -> list[dict[str, Any]]:
    emulator = WukongEmulator(manager_token=token, **options)
    try:
        with httpx.Client(transport=emulator.transport(), base_url="http://wukong.emulator") as client:
            return run(Target(client, token, real=False), prefix, sequence)
    finally:
        emulator.close()


def differences(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    found = []
    for want, got in zip(expected, actual, strict=True):
        if want != got:
            found.append(
                f"{want['step']}:\n  real:     {json.dumps(want, ensure_ascii=False)}\n"
                f"  emulator: {json.dumps(got, ensure_ascii=False)}"
            )
    return found


def main(argv: list[str]) -> int:
    args = list(argv[1:])
    name = "messages"
    if "--sequence" in args:
        at = args.index("--sequence")
        name = args[at + 1] if at + 1 < len(args) else ""
        del args[at : at + 2]
    if len(args) != 2 or args[0] not in ("record", "compare") or name not in SEQUENCES:
        print(__doc__)
        return 2
    action, base_url = args
    sequence, fixture = SEQUENCES[name]
    token = os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN", "")
    prefix = "d" + secrets.token_hex(3)
    real = run_real(base_url, token, prefix, sequence)
    emulated = run_emulator(prefix, sequence=sequence, store_delay_requests=1)
    diffs = differences(real, emulated)
    print(f"{len(real)} steps, {len(diffs)} differences (prefix {prefix})")
    for diff in diffs:
        print(diff)
    if action == "record":
        version = httpx.get(base_url + "/varz", headers={"token": token}).json()
        fixture.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "provenance": {
                "recorded_from": "a real WuKongIM server on loopback (127.0.0.1), not the emulator",
                "server_version": version.get("version"),
                "server_commit": version.get("commit"),
                "recorded_at": datetime.now(UTC).strftime("%Y-%m-%d"),
                "recorded_with": "python tests/emulators/wukong_differential.py record "
                + ("" if name == "messages" else f"--sequence {name} ")
                + "<base_url>",
                "normalization": "ids, timestamps, conversation versions and generated client_msg_nos masked; "
                "the run prefix is {p}; subscriber/denylist/allowlist lists sorted",
                "manager_token": "not recorded (requests are regenerated from the steps in the script)",
            },
            "prefix": prefix,
            "results": real,
        }
        fixture.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {fixture}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
