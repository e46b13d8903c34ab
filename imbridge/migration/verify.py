"""``verify``: every planned channel read on both sides and compared by count and an ordered content hash.

A message's fingerprint is its source id, its sender (as a target id), its original time, whether it is
recalled, and its normalized elements: on the source side from Tencent's history, on the target side from
WuKongIM's history and the origin the migration wrote into the message's metadata. The hash runs over the
fingerprints in order, so a missing, duplicated, reordered or altered message is a mismatch. Groups are
also compared by name, owner, members and roles, and (once the mutes phase ran) mutes and mute_all.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from imbridge.client import AsyncIMClient
from imbridge.errors import IMBridgeError
from imbridge.migration import ids
from imbridge.migration.source import TencentSource
from imbridge.migration.state import DONE
from imbridge.models import Conversation, Message
from imbridge.providers.base import Direction

if TYPE_CHECKING:
    from imbridge.migration.pipeline import Migration

MAX_LISTED = 100
TARGET_PAGE = 200


class _Digest:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.count = 0

    def add(self, source_id: Any, sender: str, stamp: int, revoked: bool, message: Message) -> None:
        elements = [] if revoked else [e.model_dump(mode="json", exclude_none=True) for e in message.elements]
        line = json.dumps([str(source_id), sender, stamp, revoked, elements], sort_keys=True, ensure_ascii=False)
        self.hash.update(line.encode() + b"\n")
        self.count += 1

    @property
    def hexdigest(self) -> str:
        return self.hash.hexdigest()[:16]


async def _source_digest(migration: Migration, source: TencentSource, channel: str) -> tuple[_Digest, int | None]:
    """The source side of a channel, and its lower bound (oldest seq, or time, still held by Tencent)."""
    kind, a, b = ids.split_channel(channel)
    as_of = int(migration.options.as_of or time.time())
    skip_revoked = migration.options.revoked == "skip"
    digest = _Digest()
    lower: int | None = None
    if kind == "group":
        seqs = await source.group_seqs(a)
        checkpoint = migration.state.checkpoint(channel)
        last = int(checkpoint.position["last"]) if checkpoint else seqs.last
        stream = source.group_messages(a, max(seqs.first - 1, 0), min(last, seqs.last))
    else:
        stream = source.c2c_messages(a, b, int(migration.options.since), as_of)
    async for message in stream:
        stamp = int(message.time.timestamp())
        if stamp > as_of:
            break
        source_id: Any = message.seq if kind == "group" else message.ref.key
        if lower is None:
            lower = int(source_id) if kind == "group" else stamp
        if message.revoked and skip_revoked:
            continue
        digest.add(source_id, migration.uid(message.sender), stamp, message.revoked, message)
    return digest, lower


async def _target_digest(
    migration: Migration, target: AsyncIMClient, channel: str, lower: int | None
) -> tuple[_Digest, int, int]:
    """The target side: (digest of migrated messages, messages older than the source now holds, others)."""
    kind, a, b = ids.split_channel(channel)
    if kind == "group":
        group = migration.state.item("groups", a)
        owner = (group.data.get("owner") if group else None) or a
        conversation, viewer = Conversation.group(migration.gid(a)), migration.uid(owner)
    else:
        conversation, viewer = Conversation.user(migration.uid(b)), migration.uid(a)
    digest = _Digest()
    aged = foreign = 0
    async for message in target.messages.iter_history(
        conversation, viewer, page_size=TARGET_PAGE, direction=Direction.FORWARD
    ):
        origin = message.metadata.get(ids.ORIGIN_KEY)
        if not isinstance(origin, dict):
            foreign += 1  # written by someone else (an app, the MirrorClient without a source id)
            continue
        source_id, stamp = str(origin.get("id")), int(origin.get("time") or 0)
        position = int(source_id) if kind == "group" and source_id.isdigit() else stamp
        if lower is None or position < lower:
            aged += 1  # the source no longer holds it (retention): not comparable
            continue
        digest.add(source_id, message.sender, stamp, message.revoked, message)
    return digest, aged, foreign


async def _check_group(migration: Migration, source: TencentSource, target: AsyncIMClient, group_id: str) -> list[str]:
    """What differs between the source group and the target group now."""
    problems: list[str] = []
    tgid = migration.gid(group_id)
    info = await source.client.groups.get(group_id)
    there = await target.groups.get(tgid)
    if there.name != (info.name or group_id):
        problems.append(f"name {there.name!r} != {info.name!r}")
    if info.owner and there.owner != migration.uid(info.owner):
        problems.append(f"owner {there.owner!r} != {migration.uid(info.owner)!r}")
    wanted = {migration.uid(m.user_id): m.role for m in await source.client.groups.members(group_id)}
    have = {m.user_id: m for m in await target.groups.members(tgid)}
    missing = sorted(set(wanted) - set(have))
    extra = sorted(set(have) - set(wanted))
    if missing:
        problems.append(f"members missing on the target: {', '.join(missing[:10])}")
    if extra:
        problems.append(f"members only on the target: {', '.join(extra[:10])}")
    roles = sorted(uid for uid, role in wanted.items() if uid in have and have[uid].role != role)
    if roles:
        problems.append(f"roles differ: {', '.join(roles[:10])}")
    mutes = migration.state.item("mutes", group_id)
    if mutes is not None and mutes.status == DONE:
        muted_source = {migration.uid(m.user_id) for m in await source.client.groups.muted(group_id)}
        muted_target = {m.user_id for m in await target.groups.muted(tgid)}
        if muted_source - muted_target:
            problems.append(f"not muted on the target: {', '.join(sorted(muted_source - muted_target)[:10])}")
        if info.mute_all != there.mute_all:
            problems.append(f"mute_all {there.mute_all} != {info.mute_all}")
    return problems


async def verify(migration: Migration, source: TencentSource, target: AsyncIMClient) -> dict[str, Any]:
    """Compare every planned channel and group; ``ok`` is True only when nothing differs."""
    started = time.monotonic()
    channels = migration.state.keys("history")
    groups = [key for key in migration.state.keys("groups")]
    mismatches: list[dict[str, Any]] = []
    totals = {"source_messages": 0, "target_messages": 0, "aged_out_at_source": 0, "not_from_migration": 0}
    task = migration.progress.task("verify", len(channels) + len(groups))

    async def check_channel(channel: str) -> None:
        try:
            source_digest, lower = await _source_digest(migration, source, channel)
            target_digest, aged, foreign = await _target_digest(migration, target, channel, lower)
        except IMBridgeError as error:
            mismatches.append({"channel": channel, "reason": f"could not be read: {type(error).__name__}: {error}"})
            task.advance()
            return
        totals["source_messages"] += source_digest.count
        totals["target_messages"] += target_digest.count
        totals["aged_out_at_source"] += aged
        totals["not_from_migration"] += foreign
        if (source_digest.count, source_digest.hexdigest) != (target_digest.count, target_digest.hexdigest):
            mismatches.append({
                "channel": channel, "source_count": source_digest.count, "target_count": target_digest.count,
                "source_hash": source_digest.hexdigest, "target_hash": target_digest.hexdigest,
                "reason": "count differs" if source_digest.count != target_digest.count else "content or order differs",
            })  # fmt: skip
        task.advance()

    async def check_group(group_id: str) -> None:
        try:
            problems = await _check_group(migration, source, target, group_id)
        except IMBridgeError as error:
            problems = [f"could not be read: {type(error).__name__}: {error}"]
        if problems:
            mismatches.append({"group": group_id, "reason": "; ".join(problems)})
        task.advance()

    await migration._bounded(channels, check_channel)
    await migration._bounded(groups, check_group)
    task.finish()
    return {
        "ok": not mismatches, "channels": len(channels), "groups": len(groups), **totals,
        "mismatch_count": len(mismatches), "mismatches": mismatches[:MAX_LISTED],
        "seconds": round(time.monotonic() - started, 2),
    }  # fmt: skip


def verify_text(result: dict[str, Any]) -> str:
    """The verify result for people."""
    verdict = "OK, zero mismatches" if result.get("ok") else f"{result.get('mismatch_count')} MISMATCHES"
    lines = [
        f"Verify: {verdict} — {result.get('channels')} channels and {result.get('groups')} groups compared; "
        f"{result.get('source_messages')} source messages, {result.get('target_messages')} migrated messages "
        f"in the target (counts and ordered content hashes) in {result.get('seconds')} s",
    ]
    if result.get("aged_out_at_source"):
        lines.append(f"  {result['aged_out_at_source']} migrated messages are no longer held by the source (retention)")
    if result.get("not_from_migration"):
        lines.append(f"  {result['not_from_migration']} target messages were not written by the migration")
    if result.get("conversation_lists"):
        from imbridge.migration.conversations import conversations_text

        lines.append(conversations_text(result["conversation_lists"]))
    for item in result.get("mismatches") or []:
        where = item.get("channel") or f"group {item.get('group')}"
        counts = f" (source {item['source_count']}, target {item['target_count']})" if "source_count" in item else ""
        lines.append(f"  mismatch {where}: {item['reason']}{counts}")
    return "\n".join(lines)
