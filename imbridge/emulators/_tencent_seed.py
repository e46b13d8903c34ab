"""Seed data for the Tencent emulator: users, profiles, groups, mutes and history, from one RNG.

Everything is drawn from the ``random.Random`` given, and every time is relative to ``now``, so the same
seed and the same ``now`` give the same data. The data is built in memory and written by the caller in
a few transactions, which keeps the demo size (20,000 messages) well under a second.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from typing import Any

from imbridge.providers.local.store import NewMessage, conversation_key


@dataclass(frozen=True, slots=True)
class SeedSize:
    users: int
    groups: int
    messages: int
    days: int
    members: tuple[int, int]
    contacts: int
    group_share: float = 0.6
    revoked_share: float = 0.02


SIZES: dict[str, SeedSize] = {
    "small": SeedSize(users=20, groups=3, messages=300, days=2, members=(4, 10), contacts=3),
    "demo": SeedSize(users=240, groups=20, messages=20_000, days=5, members=(8, 40), contacts=5),
}


@dataclass
class SeedGroup:
    id: str
    name: str
    owner: str
    introduction: str
    created_at: float
    members: list[tuple[str, str]]
    mutes: dict[str, float] = field(default_factory=dict)
    mute_all: bool = False


@dataclass
class SeedData:
    users: list[str]
    profiles: dict[str, dict[str, str]]
    groups: list[SeedGroup]
    messages: list[NewMessage]


_FIRST = ["Ava", "Bo", "Chen", "Dara", "Eli", "Fei", "Gus", "Hana", "Ivan", "Jia", "Kai", "Lina", "Mo", "Nia",
          "Omar", "Ping", "Quin", "Rui", "Sara", "Tao", "Uma", "Vic", "Wen", "Xia", "Yuki", "Zed"]  # fmt: skip
_LAST = ["Li", "Wang", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Hu"]
_PHRASES = (
    "the build is green again lunch at noon shipping the release today can you review my patch meeting moved to "
    "three please check the dashboard thanks great job see you tomorrow the client called about the invoice "
    "好的 收到 明天见 辛苦了 没问题"
)
_WORDS = _PHRASES.split(" ")
_TEAMS = ["design", "backend", "mobile", "ops", "sales", "support", "infra", "data", "qa", "growth"]
_SIGNATURES = ["Busy building things", "On call this week", "Coffee first", "Ask me about Kubernetes", ""]


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 12)))


def _body(rng: random.Random, n: int) -> list[dict[str, Any]]:
    roll = rng.random()
    if roll < 0.85:
        return [{"MsgType": "TIMTextElem", "MsgContent": {"Text": _text(rng)}}]
    if roll < 0.90:
        return [{"MsgType": "TIMFaceElem", "MsgContent": {"Index": rng.randint(1, 60), "Data": "face"}}]
    if roll < 0.95:
        data = json.dumps({"kind": "order", "id": n, "amount": rng.randint(1, 999)})
        return [{"MsgType": "TIMCustomElem", "MsgContent": {"Data": data, "Desc": "order update", "Ext": "",
                                                            "Sound": ""}}]  # fmt: skip
    if roll < 0.98:
        url = f"https://example.com/img/{n}.jpg"
        return [{"MsgType": "TIMImageElem", "MsgContent": {
            "UUID": f"seed-{n}", "ImageFormat": 1,
            "ImageInfoArray": [{"Type": 1, "Size": rng.randint(10_000, 900_000), "Width": 1280, "Height": 960,
                                "URL": url}],
        }}]  # fmt: skip
    return [{"MsgType": "TIMLocationElem", "MsgContent": {
        "Desc": "office", "Latitude": round(rng.uniform(-60, 60), 4), "Longitude": round(rng.uniform(-170, 170), 4),
    }}]  # fmt: skip


def generate(size: SeedSize, rng: random.Random, *, now: float) -> SeedData:
    users = [f"{_FIRST[i % len(_FIRST)].lower()}{i:03d}" for i in range(size.users)]
    profiles = {}
    for i, uid in enumerate(users):
        profiles[uid] = {
            "Tag_Profile_IM_Nick": f"{_FIRST[i % len(_FIRST)]} {rng.choice(_LAST)}",
            "Tag_Profile_IM_Gender": rng.choice(["Gender_Type_Female", "Gender_Type_Male", "Gender_Type_Unknown"]),
            "Tag_Profile_IM_Image": f"https://example.com/avatar/{uid}.png",
            "Tag_Profile_IM_AllowType": "AllowType_Type_NeedConfirm",
            "Tag_Profile_Custom_Level": str(rng.randint(1, 9)),
        }
        signature = rng.choice(_SIGNATURES)
        if signature:
            profiles[uid]["Tag_Profile_IM_SelfSignature"] = signature

    day = 86_400.0
    groups: list[SeedGroup] = []
    for g in range(size.groups):
        team = _TEAMS[g % len(_TEAMS)]
        if g % 2 == 0:
            group_id = f"team-{team}-{g:02d}"
        else:
            group_id = "@TGS#" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(10))
        count = min(rng.randint(*size.members), len(users))
        chosen = rng.sample(users, count)
        owner, admins, plain = chosen[0], chosen[1 : 1 + rng.randint(1, 3)], chosen[4:]
        members = [(owner, "owner"), *((a, "admin") for a in admins), *((m, "member") for m in plain)]
        group = SeedGroup(
            id=group_id, name=f"{team.title()} {g:02d}", owner=owner, introduction=f"The {team} team",
            created_at=now - (size.days + 1) * day - rng.uniform(0, day), members=members,
        )  # fmt: skip
        if g % 4 == 1 and plain:
            for uid in rng.sample(plain, min(len(plain), rng.randint(1, 3))):
                group.mutes[uid] = now + rng.randint(1, 72) * 3600.0
            if g == 1:  # one mute with the documented "permanent" duration
                group.mutes[plain[0]] = now + 4_294_967_295
        group.mute_all = g == 2
        groups.append(group)

    pairs: list[tuple[str, str]] = []
    for i, uid in enumerate(users):
        for other in rng.sample(users[:i] + users[i + 1 :], min(size.contacts, len(users) - 1)):
            if (other, uid) not in pairs and (uid, other) not in pairs:
                pairs.append((uid, other))

    start = now - size.days * day
    times = sorted(rng.uniform(start, now - 120.0) for _ in range(size.messages))
    next_c2c_seq: dict[str, int] = {}
    messages: list[NewMessage] = []
    for n, moment in enumerate(times):
        body = _body(rng, n)
        revoked = rng.random() < size.revoked_share
        if groups and rng.random() < size.group_share:
            group = rng.choice(groups)
            sender = rng.choice(group.members)[0]
            conv = conversation_key("group", group.id)
            meta: dict[str, Any] = {"Random": rng.getrandbits(32), "MsgPriority": "Normal"}
            messages.append(NewMessage(conv, f"{conv}#seed{n}", sender, body, moment, meta, revoked=revoked))
            continue
        a, b = rng.choice(pairs)
        sender, recipient = (a, b) if rng.random() < 0.5 else (b, a)
        conv = conversation_key("user", sender, recipient)
        # Like an SDK, each conversation's MsgSeq counts up from a random start.
        seq = next_c2c_seq.get(conv) or rng.randint(1, 1_000_000)
        next_c2c_seq[conv] = seq + 1
        msg_random = rng.getrandbits(32)
        msg_key = f"{seq}_{msg_random}_{int(moment)}"
        meta = {"From_Account": sender, "To_Account": recipient, "MsgSeq": seq, "MsgRandom": msg_random,
                "MsgKey": msg_key, "SyncOtherMachine": 1}  # fmt: skip
        messages.append(NewMessage(conv, f"{conv}#{msg_key}", sender, body, moment, meta, revoked=revoked))
    return SeedData(users=users, profiles=profiles, groups=groups, messages=messages)
