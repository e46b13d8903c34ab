"""``verify``: every planned channel counted at the source on its own and compared with the target.

Verify does not read the source through the migration's reader (``TencentSource.group_messages`` /
``c2c_messages``), so a reader that skips messages cannot verify clean. It takes its own count:

- a group: ``NextMsgSeq`` from ``get_group_info``, then ``group_msg_get_simple`` walked down from
  ``NextMsgSeq - 1`` by the documentation's own recipe ("以后拉取时拉取 Seq 填上次返回的最小 Seq 减1",
  https://cloud.tencent.com/document/api/269/2738). Every seq from 1 to ``NextMsgSeq - 1`` must be accounted
  for: a message (migrated), a recalled placeholder (migrated revoked, or skipped by option), an expired or
  deleted placeholder (``IsPlaceMsg`` 1, or below an ``IsFinished`` 2), or a system message. A seq that the
  service returned nothing for is a gap;
- a one-to-one pair: ``admin_getroammsg`` over the migration's time window, continued with ``LastMsgTime`` and
  ``LastMsgKey`` until ``Complete`` is 1 (https://www.tencentcloud.com/document/product/1047/35478), its
  ``MsgCnt`` summed and its ``MsgKey`` set kept.

Each channel's mismatch lists, by source id, what is missing from the target (``missing``: group MsgSeqs or
C2C MsgKeys, what a repair would copy again), seqs nobody accounts for (``unaccounted``), ids migrated more than
once (``duplicated``) and ids whose content differs (``altered``). A message's fingerprint is its source id, its
sender (as a target id), its original time, whether it is recalled, and its normalized elements. Groups are also
compared by name, owner, members and roles, and (once the mutes phase ran) mutes and mute_all.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imbridge.client import AsyncIMClient
from imbridge.errors import IMBridgeError
from imbridge.migration import ids
from imbridge.migration.source import TencentSource
from imbridge.migration.state import DONE
from imbridge.models import Conversation, Message
from imbridge.providers.base import Direction
from imbridge.providers.tencent import mapping, wire

if TYPE_CHECKING:
    from imbridge.migration.pipeline import Migration

MAX_LISTED = 100
"""Mismatching channels listed in the result (all are counted)."""
MAX_IDS = 10_000
"""Source ids listed per channel and kind (``missing_count`` etc. count them all)."""
TARGET_PAGE = 200
CENSUS_WINDOW = 20
ROAM_PAGE = 100
GROUP_SERVICE = "group_open_http_svc"

MESSAGE, RECALLED, EXPIRED, SYSTEM = "message", "recalled", "expired", "system"


def _fingerprint(source_id: Any, sender: str, stamp: int, revoked: bool, message: Message) -> str:
    elements = [] if revoked else [e.model_dump(mode="json", exclude_none=True) for e in message.elements]
    return json.dumps([str(source_id), sender, stamp, revoked, elements], sort_keys=True, ensure_ascii=False)


@dataclass
class _Census:
    """The source side of one channel, counted by verify itself."""

    states: dict[str, str] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    unaccounted: list[str] = field(default_factory=list)
    expired_below: int = 0
    """Group seqs below this one are expired (an ``IsFinished`` 2 answer)."""
    reported: int | None = None
    """C2C: the sum of ``MsgCnt`` over the answers."""


async def _call(source: TencentSource, service: str, command: str, body: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = await source.client.provider.call(service, command, body)
    return reply


async def _group_census(source: TencentSource, group_id: str, last: int) -> _Census:
    only_next_seq = {"GroupBaseInfoFilter": ["NextMsgSeq"]}
    info = await _call(
        source, GROUP_SERVICE, "get_group_info", {"GroupIdList": [group_id], "ResponseFilter": only_next_seq}
    )
    groups = wire.GetGroupInfoResponse.model_validate(info).GroupInfo
    next_seq = groups[0].NextMsgSeq if groups and groups[0].NextMsgSeq else 1
    top = min(next_seq - 1, last)
    census = _Census()
    request = top
    while request >= 1:
        reply = await _call(source, GROUP_SERVICE, "group_msg_get_simple",
                            {"GroupId": group_id, "ReqMsgSeq": request, "ReqMsgNumber": CENSUS_WINDOW,
                             "WithRecalledMsg": 1})  # fmt: skip
        page = wire.GroupMsgGetSimpleResponse.model_validate(reply)
        got = [m for m in page.messages() if 1 <= m.MsgSeq <= request]
        for item in got:
            seq = str(item.MsgSeq)
            if item.IsPlaceMsg == mapping.PLACEHOLDER_EXPIRED:
                census.states[seq] = EXPIRED
            elif item.IsSystemMsg:
                census.states[seq] = SYSTEM
            else:
                census.states[seq] = RECALLED if item.IsPlaceMsg == mapping.PLACEHOLDER_RECALLED else MESSAGE
                census.messages[seq] = mapping.group_message_from_wire(item, group_id)
        lowest = min((m.MsgSeq for m in got), default=request + 1)
        if page.IsFinished == 2:  # cut short, and the messages it left out have expired: so has all below
            census.expired_below = lowest
            break
        # The doc's recipe: next ask at the smallest seq returned minus 1 (a window with nothing in it moves on).
        request = lowest - 1 if got else request - CENSUS_WINDOW
    for number in range(max(census.expired_below, 1), top + 1):
        if str(number) not in census.states:
            census.unaccounted.append(str(number))
    census.order = sorted(census.messages, key=int)
    return census


async def _c2c_census(source: TencentSource, a: str, b: str, since: int, as_of: int) -> _Census:
    census = _Census(reported=0)
    body: dict[str, Any] = {"Operator_Account": a, "Peer_Account": b, "MaxCnt": ROAM_PAGE, "MinTime": since,
                            "MaxTime": as_of}  # fmt: skip
    conversation = Conversation.user(b)
    for _ in range(1_000_000):  # a guard: every answer moves LastMsgKey on
        page = wire.GetRoamMsgResponse.model_validate(await _call(source, "openim", "admin_getroammsg", body))
        census.reported = (census.reported or 0) + page.MsgCnt
        for item in page.MsgList:
            message = mapping.c2c_message_from_wire(item, conversation)
            census.states[item.MsgKey] = RECALLED if message.revoked else MESSAGE
            census.messages[item.MsgKey] = message
        if page.Complete == 1 or not page.MsgList or not page.LastMsgKey:
            break
        body.update(MaxTime=page.LastMsgTime, LastMsgKey=page.LastMsgKey)
    ordered = sorted(census.messages.items(), key=lambda kv: (kv[1].time, kv[1].raw.get("MsgSeq", 0), kv[0]))
    census.order = [key for key, _ in ordered]
    return census


@dataclass
class _Target:
    counts: Counter[str] = field(default_factory=Counter)
    prints: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    times: dict[str, int] = field(default_factory=dict)
    foreign: int = 0


async def _target_side(migration: Migration, target: AsyncIMClient, channel: str) -> _Target:
    kind, a, b = ids.split_channel(channel)
    if kind == "group":
        group = migration.state.item("groups", a)
        owner = (group.data.get("owner") if group else None) or a
        conversation, viewer = Conversation.group(migration.gid(a)), migration.uid(owner)
    else:
        conversation, viewer = Conversation.user(migration.uid(b)), migration.uid(a)
    side = _Target()
    async for message in target.messages.iter_history(
        conversation, viewer, page_size=TARGET_PAGE, direction=Direction.FORWARD
    ):
        origin = message.metadata.get(ids.ORIGIN_KEY)
        if not isinstance(origin, dict):
            side.foreign += 1  # written by someone else (an app, the MirrorClient without a source id)
            continue
        source_id, stamp = str(origin.get("id")), int(origin.get("time") or 0)
        side.counts[source_id] += 1
        if source_id not in side.prints:
            side.order.append(source_id)
            side.times[source_id] = stamp
            side.prints[source_id] = _fingerprint(source_id, message.sender, stamp, message.revoked, message)
    return side


async def _compare_channel(
    migration: Migration, source: TencentSource, target: AsyncIMClient, channel: str
) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """(the channel's mismatch, or None; its totals)."""
    kind, a, b = ids.split_channel(channel)
    as_of = int(migration.options.as_of or time.time())
    skip_revoked = migration.options.revoked == "skip"
    if kind == "group":
        checkpoint = migration.state.checkpoint(channel)
        last = int(checkpoint.position["last"]) if checkpoint else 2**63
        census = await _group_census(source, a, last)
    else:
        census = await _c2c_census(source, a, b, int(migration.options.since), as_of)
    side = await _target_side(migration, target, channel)

    expected: list[str] = []
    for source_id in census.order:
        message = census.messages[source_id]
        if int(message.time.timestamp()) > as_of or (message.revoked and skip_revoked):
            continue
        expected.append(source_id)
    wanted = set(expected)
    oldest = min((int(census.messages[i].time.timestamp()) for i in expected), default=None)
    aged = [
        i for i in side.counts
        if i not in wanted and (census.states.get(i) == EXPIRED or (kind == "group" and i.isdigit()
                                and int(i) < census.expired_below) or (oldest is None or side.times[i] < oldest))
    ]  # fmt: skip
    aged_set = set(aged)
    missing = [i for i in expected if i not in side.counts]
    duplicated = sorted((i for i, n in side.counts.items() if n > 1 and i not in aged_set), key=_order_key)
    unknown = sorted((i for i in side.counts if i not in wanted and i not in aged_set), key=_order_key)
    altered = []
    for source_id in expected:
        if source_id in side.prints:
            message = census.messages[source_id]
            stamp = int(message.time.timestamp())
            mine = _fingerprint(source_id, migration.uid(message.sender), stamp, message.revoked, message)
            if mine != side.prints[source_id]:
                altered.append(source_id)
    in_both = [i for i in side.order if i in wanted]
    order_differs = in_both != [i for i in expected if i in side.counts]
    target_count = sum(n for i, n in side.counts.items() if i not in aged_set)
    totals = {
        "source_messages": len(expected), "target_messages": target_count, "aged_out_at_source": len(aged),
        "not_from_migration": side.foreign, "unaccounted_at_source": len(census.unaccounted),
        "expired_at_source": sum(1 for v in census.states.values() if v == EXPIRED)
        + max(census.expired_below - 1, 0),
        "system_at_source": sum(1 for v in census.states.values() if v == SYSTEM),
    }  # fmt: skip
    reasons = []
    for label, items in (("missing on the target", missing), ("not accounted for at the source", census.unaccounted),
                         ("migrated more than once", duplicated), ("content differs", altered),
                         ("not at the source", unknown)):  # fmt: skip
        if items:
            reasons.append(f"{len(items)} {label}")
    if order_differs:
        reasons.append("order differs")
    if census.reported is not None and census.reported != len(census.messages):
        reasons.append(f"the source's MsgCnt adds up to {census.reported}, its MsgKeys to {len(census.messages)}")
    if not reasons:
        return None, totals
    mismatch: dict[str, Any] = {
        "channel": channel, "kind": kind, "source_count": len(expected), "target_count": target_count,
        "reason": "; ".join(reasons),
    }  # fmt: skip
    for name, items in (("missing", missing), ("unaccounted", census.unaccounted), ("duplicated", duplicated),
                        ("altered", altered), ("not_at_source", unknown)):  # fmt: skip
        mismatch[name] = items[:MAX_IDS]
        mismatch[f"{name}_count"] = len(items)
    return mismatch, totals


def _order_key(source_id: str) -> tuple[int, str]:
    return (int(source_id), "") if source_id.isdigit() else (0, source_id)


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


async def verify(
    migration: Migration, source: TencentSource, target: AsyncIMClient, *, limit: int | None = MAX_LISTED
) -> dict[str, Any]:
    """Compare every planned channel and group; ``ok`` is True only when nothing differs.

    ``mismatches`` lists up to ``limit`` channels and groups (all with None: what a repair reads); a channel's
    entry names what is missing on the target by source id (``missing``), which ``verify --repair`` copies
    again."""
    started = time.monotonic()
    channels = migration.state.keys("history")
    groups = [key for key in migration.state.keys("groups")]
    mismatches: list[dict[str, Any]] = []
    names = ("source_messages", "target_messages", "aged_out_at_source", "not_from_migration",
             "unaccounted_at_source", "expired_at_source", "system_at_source", "missing_total")  # fmt: skip
    totals = dict.fromkeys(names, 0)
    task = migration.progress.task("verify", len(channels) + len(groups))

    async def check_channel(channel: str) -> None:
        try:
            mismatch, counts = await _compare_channel(migration, source, target, channel)
        except IMBridgeError as error:
            mismatches.append({"channel": channel, "reason": f"could not be read: {type(error).__name__}: {error}"})
            task.advance()
            return
        for name, value in counts.items():
            totals[name] += value
        if mismatch is not None:
            totals["missing_total"] += mismatch["missing_count"]
            mismatches.append(mismatch)
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
    mismatches.sort(key=lambda item: str(item.get("channel") or item.get("group")))
    return {
        "ok": not mismatches, "channels": len(channels), "groups": len(groups), **totals,
        "mismatch_count": len(mismatches), "mismatches": mismatches[:limit],
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
    accounted = [f"{result[name]} {label}" for name, label in (
        ("expired_at_source", "expired at the source"), ("system_at_source", "system messages at the source"),
        ("unaccounted_at_source", "seqs nobody accounts for")) if result.get(name)]  # fmt: skip
    if accounted:
        lines.append("  source seqs not migrated: " + ", ".join(accounted))
    if result.get("conversation_lists"):
        from imbridge.migration.conversations import conversations_text

        lines.append(conversations_text(result["conversation_lists"]))
    for item in result.get("mismatches") or []:
        where = item.get("channel") or f"group {item.get('group')}"
        counts = f" (source {item['source_count']}, target {item['target_count']})" if "source_count" in item else ""
        lines.append(f"  mismatch {where}: {item['reason']}{counts}")
        if item.get("missing"):
            shown = ", ".join(item["missing"][:10])
            lines.append(f"    missing: {shown}{' ...' if item['missing_count'] > 10 else ''}")
    return "\n".join(lines)
