"""The ``conversations`` phase: each user's conversation list and unread counts, Tencent IM -> WuKongIM.

After the history phase the target already lists a conversation wherever a migrated message is (WuKongIM
files one per group member and per one-to-one pair), with every migrated message from others unread. This
phase makes each user's list what it was at the source, through the neutral API on both sides:

* a conversation on the source list gets its unread count (``set_unread``; WuKongIM can lower a count, and
  the target holds at least the source's unread messages unless the source counted some it no longer
  keeps, which is reported);
* a conversation on the target list but not on the source list (deleted there, or dropped from Tencent's
  recent contacts) is deleted on the target: hidden until its next message, like Tencent's;
* pinned and muted flags are counted in the item's detail, not carried: WuKongIM has neither.

``verify_conversations`` reads both lists again and compares them conversation by conversation.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from imbridge.client import AsyncIMClient
from imbridge.errors import ConflictError, IMBridgeError
from imbridge.migration import ids
from imbridge.migration.state import DONE, FAILED
from imbridge.models import Conversation, ConversationSummary

if TYPE_CHECKING:
    from imbridge.migration.pipeline import Migration

PHASE = "conversations"
#: State meta key: when the phase last started a run (history copied after that is carried again).
MARK = "conversations_carried_at"
PAGE = 100
#: Mismatches listed in a verify result (the count covers them all).
MAX_LISTED = 100


def _channel_of(user: str, conversation: Conversation) -> str:
    if conversation.is_group:
        return ids.group_channel(conversation.id)
    return ids.pair_channel(user, conversation.id)


def _target_conversation(migration: Migration, conversation: Conversation) -> Conversation:
    if conversation.is_group:
        return Conversation.group(migration.gid(conversation.id))
    return Conversation.user(migration.uid(conversation.id))


async def _source_list(
    migration: Migration, source: AsyncIMClient, user: str, counts: dict[str, int], notes: list[str]
) -> dict[str, tuple[Conversation, int]]:
    """The source list as target conversations -> (conversation, unread), for the channels that were migrated;
    pinned and muted ones counted and conversations left out noted in ``counts`` and ``notes``."""
    wanted: dict[str, tuple[Conversation, int]] = {}
    async for summary in source.conversations.iter(user, page_size=PAGE):
        counts["pinned"] += bool(summary.pinned)
        counts["muted"] += bool(summary.muted)
        history = migration.state.item("history", _channel_of(user, summary.conversation))
        if history is None or history.status != DONE:
            notes.append(f"{summary.conversation} not migrated")  # not planned, or its history is not complete
            continue
        target = _target_conversation(migration, summary.conversation)
        wanted[str(target)] = (target, summary.unread)
    return wanted


async def _target_list(target: AsyncIMClient, user: str) -> dict[str, ConversationSummary]:
    return {str(summary.conversation): summary async for summary in target.conversations.iter(user, page_size=PAGE)}


async def carry_user(migration: Migration, source: AsyncIMClient, target: AsyncIMClient, user: str) -> str:
    """Make ``user``'s target list match the source's; returns what was done (the item's detail)."""
    tuid = migration.uid(user)
    counts = {"listed": 0, "unread_set": 0, "deleted": 0, "pinned": 0, "muted": 0}
    notes: list[str] = []
    wanted = await _source_list(migration, source, user, counts, notes)
    have = await _target_list(target, tuid)
    for key, (conversation, unread) in wanted.items():
        counts["listed"] += 1
        there = have.get(key)
        if there is not None and there.unread == unread:
            continue
        try:
            await target.conversations.set_unread(tuid, conversation, unread)
            counts["unread_set"] += 1
        except ConflictError:
            shown = there.unread if there is not None else 0
            notes.append(f"{conversation}: {unread} unread at the source, the target holds {shown}")
    for key, summary in have.items():
        if key not in wanted:
            await target.conversations.delete(tuid, summary.conversation)
            counts["deleted"] += 1
    detail = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items() if n)
    return "; ".join([detail or "no conversations", *notes])[:500]


def _users_of(migration: Migration, channels: list[str]) -> set[str]:
    """The users whose lists a channel is on: both of a pair, every member of a group."""
    users: set[str] = set()
    for channel in channels:
        kind, a, b = ids.split_channel(channel)
        if kind == "group":
            group = migration.state.item("groups", a)
            if group is not None:
                users.update(str(member[0]) for member in group.data.get("members") or [])
        else:
            users.update((a, b))
    return users


def requeue_users(migration: Migration, users: set[str], reason: str) -> int:
    """Carry these users' lists again on the next run (a repair of what verify found different)."""
    return migration.state.requeue(PHASE, sorted(users), reason)


async def conversations_phase(migration: Migration) -> int:
    """Carry every planned user's conversation list (items keyed by source user id, added on first run).

    A channel whose history was copied again since this phase last ran (a target that lost its data, a repair)
    leaves the unread counts of its users' conversations as WuKongIM counts fresh messages: those users' items
    are queued again first."""
    source, target = await migration._open()
    claims = migration._claims
    assert claims is not None, "phases run inside Migration.awork()"

    async def prepare() -> float:
        started = time.time()
        migration.state.add_items(PHASE, ((user, {}) for user in migration.state.keys("accounts")))
        last = migration.state.get_meta(MARK)
        if last is not None:
            copied = migration.state.updated_since("history", DONE, float(last))
            affected = _users_of(migration, copied) & set(migration.state.keys(PHASE, DONE))
            requeue_users(migration, affected, "history copied again since the list was carried")
        return started

    started = float(await claims.once("conversations", prepare))  # once per run, whichever worker comes first
    task = migration.progress.task(PHASE, migration.state.count(PHASE), migration.state.count(PHASE, DONE))

    async def carry(keys: list[str]) -> None:
        (user,) = keys
        try:
            migration.state.set_status(PHASE, user, DONE, await carry_user(migration, source.client, target, user))
        except IMBridgeError as error:
            migration.state.set_status(PHASE, user, FAILED, f"{type(error).__name__}: {error}"[:500])
        task.advance()

    handled = await migration._claimed(PHASE, carry)
    task.finish()
    migration.state.set_meta(MARK, started)
    return handled


async def verify_conversations(migration: Migration, source: AsyncIMClient, target: AsyncIMClient) -> dict[str, Any]:
    """Each carried user's source list against the target's: the same conversations, the same unread counts."""
    started = time.monotonic()
    users = migration.state.keys(PHASE, DONE)
    mismatches: list[dict[str, Any]] = []
    compared = 0
    skipping_recalled = migration.options.revoked == "skip"
    explained = [0]  # unread counts lower on the target because recalled messages were skipped by option
    task = migration.progress.task("verify conversations", len(users))

    async def check(user: str) -> None:
        nonlocal compared
        tuid = migration.uid(user)
        try:
            wanted = await _source_list(migration, source, user, {"pinned": 0, "muted": 0}, [])
            have = await _target_list(target, tuid)
        except IMBridgeError as error:
            mismatches.append({"user": user, "reason": f"could not be read: {type(error).__name__}: {error}"})
            task.advance()
            return
        compared += len(wanted)
        missing = sorted(set(wanted) - set(have))
        extra = sorted(set(have) - set(wanted))
        unread = {key: [wanted[key][1], have[key].unread] for key in wanted if key in have and
                  wanted[key][1] != have[key].unread}  # fmt: skip
        if skipping_recalled:  # recalled messages left out can only make the target's count lower
            lower = {key for key, (there, here) in unread.items() if here < there}
            explained[0] += len(lower)
            unread = {key: pair for key, pair in unread.items() if key not in lower}
        if missing or extra or unread:
            mismatches.append({"user": user, "missing_on_target": missing[:20], "only_on_target": extra[:20],
                               "unread_source_target": dict(list(unread.items())[:20])})  # fmt: skip
        task.advance()

    await migration._bounded(users, check)
    task.finish()
    return {"ok": not mismatches, "users": len(users), "conversations": compared,
            "lower_unread_recalled_skipped": explained[0], "mismatch_count": len(mismatches),
            "mismatches": mismatches[:MAX_LISTED], "seconds": round(time.monotonic() - started, 2)}  # fmt: skip


def conversations_text(result: dict[str, Any]) -> str:
    """The conversation part of a verify result, for people."""
    verdict = "OK" if result.get("ok") else f"{result.get('mismatch_count')} users differ"
    lines = [f"  conversation lists: {verdict} — {result.get('users')} users, {result.get('conversations')} "
             f"conversations compared with their unread counts in {result.get('seconds')} s"]  # fmt: skip
    if result.get("lower_unread_recalled_skipped"):
        lines.append(f"  {result['lower_unread_recalled_skipped']} unread counts are lower on the target: recalled "
                     "messages were skipped (option revoked=skip)")  # fmt: skip
    for item in result.get("mismatches") or []:
        parts = [f"{name.replace('_', ' ')} {item[name]}" for name in ("missing_on_target", "only_on_target",
                 "unread_source_target") if item.get(name)] or [item.get("reason", "")]  # fmt: skip
        lines.append(f"  mismatch conversations of {item['user']}: " + "; ".join(parts))
    return "\n".join(lines)
