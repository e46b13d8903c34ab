"""Identifiers on the target, and the idempotency key of each migrated message.

Both are pure functions of the source identity, so a re-run (or the MirrorClient during the cut-over) derives
exactly the same ones: the same target ids, and the same WuKongIM ``client_msg_no`` for the same source
message, which is what lets a lookup tell whether that message is already in the target. The id mapping is
an escape, not a hash: it can be reversed, so it can never send two source ids to one target id.
"""

from __future__ import annotations

import hashlib
import json
import re

#: The escape character: every character the target cannot take is written ``~XX`` (its UTF-8 bytes in hex).
ESCAPE = "~"
#: Characters never taken literally. WuKongIM refuses ``@ # &`` in ids; ``/ ? % \\`` would change the URL paths
#: that ids go into; ``~`` is the escape itself. Whitespace and unprintable characters are escaped as well.
_ESCAPED_CHARS = frozenset("@#&/?%\\~")
_HEX = re.compile(r"~([0-9A-F]{2})")

#: The key under which a migrated message's metadata records where it came from.
ORIGIN_KEY = "imbridge_migration"


def _literal(char: str) -> bool:
    return char not in _ESCAPED_CHARS and char.isprintable() and not char.isspace()


def _escape(char: str) -> str:
    # surrogatepass: a lone surrogate (JSON allows one) is escaped too, and comes back from source_id().
    return "".join(f"{ESCAPE}{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def target_id(source_id: str, prefix: str = "") -> str:
    """The target's id for a source user or group: unchanged when the target can take it, else every
    character it cannot take (and the escape ``~`` itself) written as ``~XX`` per UTF-8 byte, like
    percent-encoding (``alice@corp`` -> ``alice~40corp``). The mapping is reversible
    (:func:`source_id`), so two source ids never share a target id; ``prefix`` is prepended."""
    if source_id in (".", ".."):  # a dot segment would change the path it is put in
        return prefix + _escape(".") * len(source_id)
    if all(_literal(char) for char in source_id):
        return prefix + source_id
    return prefix + "".join(char if _literal(char) else _escape(char) for char in source_id)


def source_id(target: str, prefix: str = "") -> str:
    """The inverse of :func:`target_id`: the source id a target id was made from."""
    if not target.startswith(prefix):
        raise ValueError(f"{target!r} does not start with the prefix {prefix!r}")
    out = bytearray()
    rest = target[len(prefix) :]
    position = 0
    while position < len(rest):
        match = _HEX.match(rest, position)
        if match:
            out.append(int(match.group(1), 16))
            position = match.end()
        elif rest[position] == ESCAPE:
            raise ValueError(f"{target!r} has a {ESCAPE!r} that does not start an escape")
        else:
            out += rest[position].encode("utf-8", "surrogatepass")
            position += 1
    return out.decode("utf-8", "surrogatepass")


def unsafe_prefix(prefix: str) -> str | None:
    """Why ``prefix`` cannot be put before target ids, or None when it can."""
    bad = sorted({char for char in prefix if not _literal(char)})
    return f"it contains {''.join(bad)!r}" if bad else None


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
