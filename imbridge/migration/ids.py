"""Identifiers on the target, and the idempotency key of each migrated message.

Both are pure functions of the source identity, so a re-run (or the MirrorClient during the cut-over) derives
exactly the same ones: the same target ids, and the same WuKongIM ``client_msg_no`` for the same source
message, which is what lets a lookup tell whether that message is already in the target.
"""

from __future__ import annotations

import hashlib
import json
import re

#: WuKongIM refuses ``@ # &`` in ids; imbridge refuses whitespace; ``/`` breaks its cluster routes.
_UNSAFE = re.compile(r"[@#&/\s]")

#: The key under which a migrated message's metadata records where it came from.
ORIGIN_KEY = "imbridge_migration"


def target_id(source_id: str, prefix: str = "") -> str:
    """The target's id for a source user or group: unchanged when it is safe there, else its unsafe
    characters replaced and a short hash of the original appended (so two ids never collide)."""
    clean = _UNSAFE.sub("_", source_id)
    if clean != source_id:
        clean = f"{clean}_{hashlib.sha256(source_id.encode()).hexdigest()[:6]}"
    return prefix + clean


def group_message_key(app_id: int | str, group_id: str, seq: int) -> str:
    """``client_msg_no`` of a migrated group message: the source app, group and MsgSeq name it."""
    digest = hashlib.sha256(f"tim|{app_id}|g|{group_id}|{seq}".encode()).hexdigest()
    return "m" + digest[:39]


def c2c_message_key(app_id: int | str, sender: str, recipient: str, msg_key: str) -> str:
    """``client_msg_no`` of a migrated one-to-one message: the source app, both parties and MsgKey."""
    digest = hashlib.sha256(f"tim|{app_id}|c|{sender}|{recipient}|{msg_key}".encode()).hexdigest()
    return "m" + digest[:39]


def pair_channel(a: str, b: str) -> str:
    """The state key of a one-to-one conversation (source ids, order-independent)."""
    return "c:" + json.dumps(sorted((a, b)), ensure_ascii=False, separators=(",", ":"))


def group_channel(group_id: str) -> str:
    return f"g:{group_id}"


def split_channel(channel: str) -> tuple[str, str, str]:
    """``("group", id, "")`` or ``("c2c", a, b)`` from a channel key."""
    kind, _, rest = channel.partition(":")
    if kind == "g":
        return "group", rest, ""
    low, high = json.loads(rest)
    return "c2c", str(low), str(high)
