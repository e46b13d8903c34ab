"""The Tencent IM -> WuKongIM migration: plan, run (phases), verify, status, report.

Phases, each resumable on its own (progress is recorded per item in the state database):

1. ``accounts``  register every planned user in the target;
2. ``profiles``  copy profiles into the target's store (WuKongIM keeps none);
3. ``groups``    create each group with its name, owner, admins, members, introduction and notification;
4. ``history``   copy every group's messages (walking MsgSeq up) and every discovered one-to-one pair's
                 (``admin_getroammsg``), oldest first, one channel strictly in order, channels concurrently;
5. ``mutes``     member mutes with their remaining duration, then mute_all. After the history on purpose:
                 WuKongIM's ``ban`` drops every send, and a muted member's old messages must still be copied.
6. ``conversations``  each user's conversation list and unread counts (:mod:`.conversations`).

Idempotence: each message's ``client_msg_no`` is derived from its source identity (:mod:`.ids`) and sent
with imbridge's caller-chosen-key path, which looks the key up before sending; a per-channel checkpoint
saves re-reading what is known to be done. Killing the process at any moment and running again yields
each message exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from imbridge.capabilities import Operation
from imbridge.client import AsyncIMClient, IMClient
from imbridge.errors import (
    ConfigurationError,
    ConflictError,
    IMBridgeError,
    MessageMayHaveLandedError,
    NotFoundError,
)
from imbridge.migration import ids
from imbridge.migration.conversations import conversations_phase, requeue_users, verify_conversations
from imbridge.migration.progress import Progress, make_progress
from imbridge.migration.source import TencentSource
from imbridge.migration.state import DONE, FAILED, PENDING, SKIPPED, ClaimLost, IdCollisionError, StateDB
from imbridge.migration.workers import (
    POLL_SECONDS,
    Claims,
    claimed,
    payload,
    peak_rss_mb,
    start_processes,
    stop_processes,
)
from imbridge.models import Conversation, Custom, Element, Group, Member, Message, MessageRef, Role, Text
from imbridge.providers.base import Direction

T = TypeVar("T")

PHASES = ("accounts", "profiles", "groups", "history", "mutes", "conversations")
#: The plan's own progress, saved as it goes so that an interrupted plan resumes: groups read (their data),
#: users whose recent contacts were read (their peers).
PLAN_GROUPS, PLAN_USERS = "plan:groups", "plan:users"
#: Messages of a channel looked at, newest first, when a run re-checks that the target still holds it.
RECHECK_SCAN = 200
#: verify --repair: at most this many rounds of re-queue, run, verify.
MAX_REPAIR_ROUNDS = 3
#: Mismatches kept in a repair's result and in the state file (verify's own limit).
MAX_LISTED_MISMATCHES = 100
MAX_MUTE = timedelta(days=36500)


# -- issue 17: what member administration adds to a group's plan ------------------------------------


def _admin_plan(info: Group, members: Sequence[Member]) -> dict[str, Any]:
    """The join policy and the name cards of a source group, for the plan."""
    return {
        "join_option": info.join_option.value if info.join_option else None,
        "max_members": info.max_members,
        "name_cards": {m.user_id: m.name_card for m in members if m.name_card},
    }


def _join_policy(target: AsyncIMClient, data: Mapping[str, Any]) -> dict[str, Any]:
    """create() keywords for the planned join policy, when the target keeps one."""
    if not target.capabilities[Operation.GROUPS_JOIN_POLICY].available:
        return {}
    policy = {"join_option": data.get("join_option"), "max_members": data.get("max_members")}
    members = len(data.get("members", ()))
    if policy["max_members"] is not None and policy["max_members"] < members:
        policy["max_members"] = None  # never below the members being carried (a source answering oddly)
    return {key: value for key, value in policy.items() if value is not None}


async def _carry_name_cards(
    target: AsyncIMClient, group_id: str, data: Mapping[str, Any], uid: Callable[[str], str]
) -> None:
    if not data.get("name_cards") or not target.capabilities[Operation.GROUPS_SET_NAME_CARD].available:
        return
    for source_uid, card in sorted(data["name_cards"].items()):
        await target.groups.set_name_card(group_id, uid(source_uid), card)


#: Waits (seconds) between lookups of a message whose send may have landed (a loaded WuKongIM that accepted it
#: but had not stored it yet, an answer lost on the way): found, it was sent; never sent again from here.
STORE_LAG_WAITS = (1.0, 3.0, 5.0)
REVOKED_PLACEHOLDER = "[this message was recalled before the migration]"
ClientSpec = AsyncIMClient | IMClient | Mapping[str, Any]

NOTES = [
    "WuKongIM stamps every message with the time it was sent to it and has no import API: the original "
    "time, sender and source ids of each migrated message are kept in its metadata under "
    f"'{ids.ORIGIN_KEY}' (time = Unix seconds of the Tencent MsgTimeStamp).",
    "Only what Tencent still holds is migrated: history inside the roaming retention window (7/30/90 days by "
    "edition); one-to-one conversations of users that were listed or discovered (Tencent has no API that "
    "lists all accounts).",
    "Recalled messages are copied as recalled (a placeholder then imbridge's revoke, i.e. a type-1006 notice "
    "plus imbridge's store) or skipped, by option; their content is gone at the source.",
    "Member mutes keep their remaining duration (from Tencent's MutedUntil); a permanent one stays a mute "
    "without an end. They and mute_all are applied after the group's history, since WuKongIM's ban drops every "
    "send.",
    "Roles, owners, join options, size limits and name cards are carried where the target keeps them (on WuKongIM "
    "in imbridge's store).",
    "Each user's conversation list is carried with its unread counts (WuKongIM can only lower a count, so a count "
    "the source kept for messages it no longer holds is reported); a conversation missing from the source list "
    "is deleted on the target until its next message; pinned and muted flags are not carried (WuKongIM has "
    "neither).",
]


@dataclass
class MigrationOptions:
    """How a migration runs. Stored with the plan; a resumed run uses the same values."""

    concurrency: int = 8
    """Channels (or groups, or batches of accounts) each worker process handles at the same time (each
    channel strictly in order). Before worker processes existed this was called ``workers``; a state file
    from then keeps its value here."""
    workers: int = 1
    """Worker processes on this host (``imbridge migrate run --workers N``); 1 runs in this process."""
    lease: float = 60.0
    """Seconds a worker's claim on an item lasts without a heartbeat (renewed every quarter of it): how
    long the work of a worker that died on another host waits before another takes it over."""
    revoked: str = "revoke"
    """``revoke``: copy recalled messages as recalled; ``skip``: leave them out."""
    id_prefix: str = ""
    """Prepended to every target user and group id (to migrate into a server shared with other data)."""
    discover_contacts: bool = True
    """Read each user's recent contacts to find one-to-one conversations (and users) to migrate."""
    as_of: float | None = None
    """Migrate history up to this Unix time; default: when the plan was made (the cut-over point)."""
    since: float = 0.0
    """One-to-one history from this Unix time (Tencent holds nothing older than its retention anyway)."""
    checkpoint_every: int = 50
    """Messages between two checkpoint writes (each message is looked up before sending anyway)."""
    recheck: bool = True
    """Each run first looks for what earlier runs finished on the target (one read per group and channel)
    and copies again what the target lost (restored from an older backup, restarted empty)."""
    uncertain_wait: float = 30.0
    """Seconds after a send that may have landed (MessageMayHaveLandedError, still not found by its lookups)
    before its channel is taken up again, at the end of the phase or by a later run: the message is then looked
    up by its key once more and sent only if absent. Make it longer than any request can be held on its way
    to the target (client timeout, proxies): WuKongIM stores a re-sent copy beside a late original."""

    def __post_init__(self) -> None:
        if self.revoked not in ("revoke", "skip"):
            raise ConfigurationError(f"revoked is 'revoke' or 'skip', not {self.revoked!r}")
        if self.workers < 1:
            raise ConfigurationError("workers must be at least 1")
        if self.concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        if self.lease < 2:
            raise ConfigurationError("lease must be at least 2 seconds")
        if not 0 <= self.uncertain_wait <= 86_400:
            raise ConfigurationError("uncertain_wait is 0 to 86400 seconds")
        problem = ids.unsafe_prefix(self.id_prefix)
        if problem:
            raise ConfigurationError(f"id_prefix {self.id_prefix!r} cannot start target ids: {problem}")


def _stamp(value: datetime) -> int:
    return int(value.timestamp())


def _client_for(spec: ClientSpec, default_provider: str, overrides: Mapping[str, Any]) -> tuple[AsyncIMClient, bool]:
    """An AsyncIMClient for ``spec``, and whether the migration owns (and so closes) it."""
    if isinstance(spec, AsyncIMClient):
        return spec, False
    if isinstance(spec, IMClient):
        # Same provider object (settings, store, pacing state); HTTP through the async driver.
        return AsyncIMClient(spec._provider), True
    settings = dict(spec)
    name = str(settings.pop("provider", default_provider))
    return AsyncIMClient(name, **{**settings, **overrides}), True


def _upgrade_options(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """Options stored by an imbridge from before worker processes: their ``workers`` was the concurrency."""
    if stored and "concurrency" not in stored:
        stored = {**stored, "concurrency": stored.get("workers", 8), "workers": 1}
    return stored


def _effective_options(given: MigrationOptions | None, stored: dict[str, Any] | None) -> MigrationOptions:
    """The options of a run: those stored with the plan, or those given, keeping what the plan fixed."""
    stored = _upgrade_options(stored)
    if given is None:
        return MigrationOptions(**stored) if stored else MigrationOptions()
    if not stored:
        return given
    # options given again to a planned migration (e.g. --workers): what the plan fixed stays
    if not given.id_prefix:
        given.id_prefix = str(stored.get("id_prefix") or "")
    if not given.since:
        given.since = float(stored.get("since") or 0.0)
    if given.id_prefix != stored.get("id_prefix", ""):
        raise ConfigurationError(
            f"this migration was planned with id_prefix {stored.get('id_prefix', '')!r}; it cannot change "
            f"to {given.id_prefix!r} (the ids already written on the target would no longer match)"
        )
    if given.as_of is None:
        given.as_of = stored.get("as_of")
    return given


class _ExpectedMessages:
    """The messages the history phase will have looked at: a group's from its MsgSeq range (planned), a
    pair's extrapolated from the pairs finished so far, each replaced by its count once it is done."""

    def __init__(self, items: Iterable[Any], processed: Mapping[str, int]) -> None:
        self.done = sum(processed.values())
        self.known = 0  # finished channels' counts, and groups' planned counts
        self.open_pairs = 0
        self.pair_messages = self.pair_count = 0
        self.planned: dict[str, int] = {}
        for item in items:
            seen = processed.get(item.key, 0)
            if item.status == DONE:
                self.known += seen
                if not item.key.startswith("g:"):
                    self.pair_messages, self.pair_count = self.pair_messages + seen, self.pair_count + 1
            elif "estimate" in item.data:
                self.planned[item.key] = max(int(item.data["estimate"]), seen)
                self.known += self.planned[item.key]
            else:
                self.open_pairs += 1
                self.planned[item.key] = seen
                self.known += seen

    def finished(self, channel: str, count: int) -> None:
        self.known += count - self.planned.pop(channel, 0)
        if not channel.startswith("g:"):
            self.open_pairs -= 1
            self.pair_messages, self.pair_count = self.pair_messages + count, self.pair_count + 1

    def total(self) -> int:
        average = self.pair_messages / self.pair_count if self.pair_count else 0.0
        return self.known + round(self.open_pairs * average)

    def estimated(self) -> bool:
        return self.open_pairs > 0


class Migration:
    """A migration from Tencent IM (``source``) to WuKongIM (``target``), its state in ``state``: a SQLite
    file path or a PostgreSQL URL (``postgresql://…``, shared by workers on several hosts).

    ``source`` and ``target`` are clients (``AsyncIMClient``; an ``IMClient``'s provider is reused) or
    settings mappings (``{"sdk_app_id": ..., "secret_key": ...}`` / ``{"base_url": ..., "store": ...}``, an
    optional ``provider`` key, and ``http_client`` for an injected ``httpx.AsyncClient``). A target built
    here runs with ``enforce_policy=False``: old messages of members who left or are muted must be copied.

    The ``a``-prefixed methods are coroutines; ``plan``/``run``/``verify`` run them in ``asyncio.run`` (use
    the coroutines when you pass client objects bound to your own event loop).
    """

    def __init__(
        self,
        source: ClientSpec,
        target: ClientSpec,
        state: str,
        options: MigrationOptions | None = None,
        *,
        progress: Progress | str = "none",
    ) -> None:
        self._source_spec, self._target_spec = source, target
        self.state_url = state
        self.state = StateDB(state)
        self._claims: Claims | None = None
        try:
            self.options = _effective_options(options, self.state.get_meta("options"))
        except BaseException:
            self.state.close()
            raise
        self.progress = make_progress(progress) if isinstance(progress, str) else progress
        self._source: TencentSource | None = None
        self._target: AsyncIMClient | None = None
        self._owned: list[AsyncIMClient] = []
        self._user_ids: dict[str, str] = {}
        self._group_ids: dict[str, str] = {}

    # -- clients ----------------------------------------------------------------------------------

    async def _open(self) -> tuple[TencentSource, AsyncIMClient]:
        if self._source is None or self._target is None:
            source, own_source = _client_for(self._source_spec, "tencent", {})
            target, own_target = _client_for(self._target_spec, "wukong", {"enforce_policy": False})
            self._owned = [c for c, owned in ((source, own_source), (target, own_target)) if owned]
            config = getattr(target._provider, "config", None)
            if target.provider_name == "wukong" and getattr(config, "enforce_policy", False):
                raise ConfigurationError(
                    "the target client must be built with enforce_policy=False: messages of members who have "
                    "left or are muted must still be migrated"
                )
            self._source, self._target = TencentSource(source), target
        return self._source, self._target

    async def aclose(self) -> None:
        for client in self._owned:
            await client.aclose()
        self._owned = []
        self._source = self._target = None

    def close(self) -> None:
        self.progress.close()
        self.state.close()

    def _sync(self, work: Callable[[], Awaitable[T]]) -> T:
        async def body() -> T:
            try:
                return await work()
            finally:
                await self.aclose()

        return asyncio.run(body())

    def plan(self, users: Iterable[str] = ()) -> dict[str, Any]:
        return self._sync(lambda: self.aplan(users))

    def run(self, users: Iterable[str] = (), phases: Sequence[str] = PHASES) -> dict[str, Any]:
        return self._sync(lambda: self.arun(users, phases))

    def join(self, phases: Sequence[str] = PHASES) -> dict[str, Any]:
        return self._sync(lambda: self.ajoin(phases))

    def work(self, phases: Sequence[str] = PHASES) -> None:
        self._sync(lambda: self.awork(phases))

    def verify(self) -> dict[str, Any]:
        return self._sync(self.averify)

    def repair(self) -> dict[str, Any]:
        return self._sync(self.arepair)

    def replay_journal(self) -> dict[str, Any]:
        from imbridge.migration.mirror import replay_journal

        async def work() -> dict[str, Any]:
            _, target = await self._open()
            return await replay_journal(self.state, target)

        return self._sync(work)

    # -- ids --------------------------------------------------------------------------------------

    def _load_ids(self) -> None:
        self._user_ids = self.state.mapped("user")
        self._group_ids = self.state.mapped("group")

    def uid(self, source_id: str) -> str:
        mapped = self._user_ids.get(source_id)
        if mapped is None:
            mapped = ids.target_id(source_id, self.options.id_prefix)
            self.state.map_ids("user", [(source_id, mapped)])  # raises, recording nothing, on a collision
            self._user_ids[source_id] = mapped
        return mapped

    def gid(self, source_id: str) -> str:
        mapped = self._group_ids.get(source_id)
        if mapped is None:
            mapped = ids.target_id(source_id, self.options.id_prefix)
            self.state.map_ids("group", [(source_id, mapped)])
            self._group_ids[source_id] = mapped
        return mapped

    # -- plan -------------------------------------------------------------------------------------

    async def aplan(self, users: Iterable[str] = ()) -> dict[str, Any]:
        """Discover what to migrate (groups, members, users, one-to-one pairs) and record it.

        Each group read, each user's contacts read and each pair counted is saved at once: an interrupted
        plan resumes where it stopped (the users listed before are kept). Once a plan is complete,
        planning again re-reads everything, adds what is new and keeps the progress of what was planned."""
        source, _ = await self._open()
        started = time.monotonic()
        existing = self.state.get_meta("plan") or {}
        planning = self.state.get_meta("planning") or {"complete": True}
        as_of = self.options.as_of or existing.get("as_of") or planning.get("as_of") or time.time()
        self.options.as_of = as_of
        self.state.set_meta("options", asdict(self.options))
        if planning.get("complete", True):  # a new plan, or a new round of an old one: read everything again
            self.state.delete_items(PLAN_GROUPS)
            self.state.delete_items(PLAN_USERS)
            planning = {"complete": False, "groups_listed": False, "as_of": as_of, "seconds": 0.0}
            self.state.set_meta("planning", planning)
        self._load_ids()
        self.state.add_items(PLAN_USERS, ((u, {}) for u in dict.fromkeys(u.strip() for u in users) if u))
        task = self.progress.task("plan", None)
        try:
            await self._plan_groups(source, planning, task)
            await self._plan_contacts(source, task)
        finally:
            planning["seconds"] = round(planning.get("seconds", 0.0) + time.monotonic() - started, 2)
            self.state.set_meta("planning", planning)
        task.finish()
        return self._record_plan(source, existing, planning)

    async def _plan_groups(self, source: TencentSource, planning: dict[str, Any], task: Any) -> None:
        if not planning["groups_listed"]:
            self.state.add_items(PLAN_GROUPS, ((g, {}) for g in await source.group_ids()))
            planning["groups_listed"] = True
            self.state.set_meta("planning", planning)
        pending = self.state.keys(PLAN_GROUPS, PENDING)
        task.add_total(len(pending))
        assert self.options.as_of is not None
        as_of = self.options.as_of

        async def read_group(group_id: str) -> None:
            try:
                info = await source.client.groups.get(group_id)
                members = await source.client.groups.members(group_id)
                muted = await source.client.groups.muted(group_id)
            except NotFoundError:
                self.state.set_status(PLAN_GROUPS, group_id, SKIPPED, "dismissed at the source since it was listed")
                task.advance()
                return
            channel = ids.group_channel(group_id)
            checkpoint = self.state.checkpoint(channel)
            if checkpoint is None:
                # The MsgSeq range now: the channel's message count for progress, and where it starts.
                seqs = await source.group_seqs(group_id)
                estimate = max(seqs.last - seqs.first + 1, 0) if seqs.last else 0
                if as_of <= time.time():  # the range cannot grow before as_of any more: the run starts from it
                    position = {"seq": seqs.first - 1 if seqs.first else 0, "last": seqs.last}
                    self.state.save_checkpoint(channel, position, 0, 0)
            else:
                planned = self.state.item("history", channel)
                estimate = int(planned.data.get("estimate", 0)) if planned else 0
            data = {
                "name": info.name, "owner": info.owner, "introduction": info.introduction,
                "notification": info.notification, "face_url": info.face_url, "mute_all": info.mute_all,
                "members": [[m.user_id, m.role.value] for m in members],
                # None: muted without an end (Tencent's permanent MuteTime), kept as such on the target.
                "mutes": {m.user_id: m.muted_until.timestamp() if m.muted_until else None for m in muted if m.muted},
                "estimate": estimate,
                **_admin_plan(info, members),
            }  # fmt: skip
            with self.state.transaction():
                self.state.add_items(PLAN_USERS, ((m.user_id, {}) for m in members), own_transaction=False)
                self.state.finish_item(PLAN_GROUPS, group_id, data)
            task.advance()

        await self._bounded(pending, read_group)

    async def _plan_contacts(self, source: TencentSource, task: Any) -> None:
        """Recent contacts of every known user; a peer nobody listed is a user whose contacts are read in turn."""
        if not self.options.discover_contacts:
            self.state.set_many(PLAN_USERS, self.state.keys(PLAN_USERS, PENDING), DONE)
            return

        async def read_contacts(user_id: str) -> None:
            peers, _ = await source.recent_contacts(user_id)
            with self.state.transaction():
                self.state.add_items(PLAN_USERS, ((p, {}) for p in peers), own_transaction=False)
                self.state.finish_item(PLAN_USERS, user_id, {"peers": sorted(set(peers))})
            task.advance()

        while pending := self.state.keys(PLAN_USERS, PENDING):
            task.add_total(len(pending))
            await self._bounded(pending, read_contacts)

    def _record_plan(self, source: TencentSource, existing: dict[str, Any], planning: dict[str, Any]) -> dict[str, Any]:
        """Turn the plan's progress into the phases' items; refuse (writing nothing) ids that would collide."""
        known = self.state.keys(PLAN_USERS, DONE)
        groups = {item.key: item.data for item in self.state.items(PLAN_GROUPS, DONE)}
        pairs = sorted({ids.pair_channel(user.key, peer) for user in self.state.items(PLAN_USERS, DONE)
                        for peer in user.data.get("peers", ())})  # fmt: skip
        prefix = self.options.id_prefix
        fresh_users = [(u, ids.target_id(u, prefix)) for u in known if u not in self._user_ids]
        fresh_groups = [(g, ids.target_id(g, prefix)) for g in groups if g not in self._group_ids]
        for kind, fresh in (("user", fresh_users), ("group", fresh_groups)):
            collisions = self.state.collisions(kind, fresh)
            if collisions:  # reported in full before anything is written to the target
                raise IdCollisionError(kind, collisions)
        self.uid_all(known)
        for group_id in groups:
            self.gid(group_id)
        # A group's message count comes from its MsgSeq range; a pair's is known only once it is read (one
        # more call per pair, as many as reading most pairs takes): the progress extrapolates those.
        estimates: dict[str, dict[str, Any]] = {ids.group_channel(g): {"estimate": d.get("estimate", 0)}
                                                for g, d in groups.items()}  # fmt: skip
        estimates.update({p: {} for p in pairs})
        group_data = {g: {k: v for k, v in d.items() if k != "estimate"} for g, d in groups.items()}
        new = {
            "accounts": self.state.add_items("accounts", ((u, {}) for u in known)),
            "profiles": self.state.add_items("profiles", ((u, {}) for u in known)),
            "groups": self.state.add_items("groups", group_data.items()),
            "history": self.state.add_items("history", estimates.items()),
            "mutes": self.state.add_items("mutes", ((g, {}) for g in groups)),
        }
        assert self.options.as_of is not None
        as_of = self.options.as_of
        plan = {
            "as_of": as_of, "as_of_iso": datetime.fromtimestamp(as_of, UTC).isoformat(timespec="seconds"),
            "created": existing.get("created") or time.time(), "source_app": source.app_id,
            "users": len(known), "groups": len(groups), "c2c_pairs": len(pairs),
            "group_messages": sum(int(d.get("estimate", 0)) for d in groups.values()),
            "seconds": planning.get("seconds", 0.0),
        }  # fmt: skip
        self.state.set_meta("plan", plan)
        planning["complete"] = True
        self.state.set_meta("planning", planning)
        return {**plan, "new_items": new}

    def planned(self) -> bool:
        """True once a plan is complete (an interrupted plan is resumed by ``plan`` or ``run``)."""
        planning = self.state.get_meta("planning") or {"complete": True}
        return self.state.get_meta("plan") is not None and bool(planning.get("complete", True))

    def uid_all(self, users: Iterable[str]) -> None:
        fresh = [(u, ids.target_id(u, self.options.id_prefix)) for u in users if u not in self._user_ids]
        self.state.map_ids("user", fresh)
        self._user_ids.update(fresh)

    async def _bounded(self, items: Sequence[T], work: Callable[[T], Awaitable[None]]) -> None:
        """Run ``work`` over ``items`` with at most ``workers`` at once; nothing is queued ahead (memory flat)."""
        iterator = iter(items)

        async def worker() -> None:
            for item in iterator:
                await work(item)

        await asyncio.gather(*(worker() for _ in range(min(self.options.concurrency, max(len(items), 1)))))

    # -- run --------------------------------------------------------------------------------------

    async def arun(self, users: Iterable[str] = (), phases: Sequence[str] = PHASES) -> dict[str, Any]:
        """Run the phases (all by default) from where they stopped; plans first if nothing is planned (or
        resumes an interrupted plan). Unless ``options.recheck`` is off, what earlier runs finished is first
        looked for on the target, and what the target lost is queued again (see :meth:`arecheck`).

        This starts a *run* (a number in the state database that the workers of this run share): failed
        items are queued again, then the work is done in this process (``options.workers == 1``) or by
        that many worker processes (:mod:`.workers`), which workers started elsewhere with :meth:`ajoin`
        help with."""
        self._check_phases(phases)
        if not self.planned():
            await self.aplan(users)
        await self._open()
        self._load_ids()
        assert self.options.as_of is not None
        run = self.state.update_meta("run", lambda old: {"id": int((old or {}).get("id", 0)) + 1, "at": time.time()})
        for phase in phases:
            self.state.reset_failed(phase)
        if self.options.recheck:
            await self.arecheck()
        await self._work_here(phases, int(run["id"]))
        self._fold_timings(int(run["id"]))
        return self.status()

    async def ajoin(self, phases: Sequence[str] = PHASES) -> dict[str, Any]:
        """Take part in the run under way (started by ``arun`` on another host, on a shared PostgreSQL state):
        wait for its plan, then work (in this process or ``options.workers`` processes) until it is done."""
        self._check_phases(phases)
        run = await self._current_run()
        await self._work_here(phases, run)
        return self.status()

    @staticmethod
    def _check_phases(phases: Sequence[str]) -> None:
        unknown = [p for p in phases if p not in PHASES]
        if unknown:
            raise ConfigurationError(f"unknown phases {unknown}; phases are {', '.join(PHASES)}")

    async def _current_run(self) -> int:
        """The run under way; waits for a plan and a run to exist (a worker may start before the planner)."""
        while True:
            run = self.state.get_meta("run")
            if run is not None and self.planned():
                options = _upgrade_options(self.state.get_meta("options"))
                if options:  # what the plan fixed (id prefix, as_of) comes from the state database
                    self.options = _effective_options(self.options, options)
                return int(run["id"])
            await asyncio.sleep(POLL_SECONDS * 4)

    async def _work_here(self, phases: Sequence[str], run: int) -> None:
        if self.options.workers == 1:
            await self.awork(phases, run)
            return
        data = payload(self, phases)
        await self.aclose()  # this process only watches: its clients are not needed meanwhile
        processes = start_processes(data, self.options.workers)
        try:
            await self._watch(processes)
        finally:
            stop_processes(processes)

    async def _watch(self, processes: Sequence[Any]) -> None:
        """Show the progress of every worker (this host's and others'), read from the state database, until
        this host's worker processes have exited; record how each ended."""
        tasks: dict[str, Any] = {}
        shown: dict[str, int] = {}
        messages = self.progress.task("messages", None, sum(self.state.totals()))
        shown["messages"] = sum(self.state.totals())
        exited: set[int] = set()
        while True:
            counts = self.state.counts()
            for phase in PHASES:
                by_status = counts.get(phase, {})
                total, done = sum(by_status.values()), total_done(by_status)
                if phase not in tasks and total:
                    tasks[phase] = self.progress.task(phase, total, done, eta=phase != "history")
                    shown[phase] = done
                elif phase in tasks:
                    tasks[phase].advance(done - shown[phase])
                    shown[phase] = done
            processed = sum(self.state.totals())
            messages.advance(processed - shown["messages"])
            shown["messages"] = processed
            for process in processes:
                code = process.poll()
                if code is not None and process.pid not in exited:
                    exited.add(process.pid)
                    self.state.worker_exited(process.pid, code)
            if len(exited) == len(processes):
                break
            await asyncio.sleep(1.0)
        for task in [*tasks.values(), messages]:
            task.finish()

    async def awork(self, phases: Sequence[str] = PHASES, run: int | None = None) -> None:
        """One worker: the phases in order, each item claimed from the state database (see :mod:`.workers`)."""
        if run is None:
            run = await self._current_run()
        await self._open()
        self._load_ids()
        claims = Claims(self.state, run, self.options.lease)
        self._claims = claims
        await claims.start()
        detail = "stopped"
        try:
            for phase in PHASES:
                if phase not in phases:
                    continue
                current = self.state.get_meta("run")
                claims.run = int(current["id"]) if current else run  # a newer run started meanwhile: join it
                started = time.time()
                handled = await getattr(self, f"_phase_{phase}")()
                self._record_span(claims.run, phase, started, handled)
                self.state.worker_heartbeat(claims.name, peak_rss_mb())
            detail = "finished"
        except BaseException as error:
            detail = f"stopped: {type(error).__name__}: {error}"[:300]
            raise
        finally:
            await claims.stop(detail)
            self._claims = None

    def _record_span(self, run: int, phase: str, started: float, handled: int) -> None:
        """Merge this worker's time in ``phase`` into the run's span (first start to last end, items summed)."""
        ended = time.time()

        def merge(old: Any) -> Any:
            spans = dict(old or {})
            span = spans.get(phase) or {"start": started, "end": ended, "items": 0}
            spans[phase] = {"start": min(span["start"], started), "end": max(span["end"], ended),
                            "items": span["items"] + handled}  # fmt: skip
            return spans

        self.state.update_meta(f"spans:{run}", merge)

    def _fold_timings(self, run: int) -> None:
        """Add the run's per-phase spans (every worker's) to the migration's timings."""
        spans = self.state.get_meta(f"spans:{run}") or {}
        timings = self.state.get_meta("timings") or {}
        for phase in PHASES:
            if phase not in spans:
                continue
            elapsed = spans[phase]["end"] - spans[phase]["start"]
            handled = spans[phase]["items"]
            previous = timings.get(phase, {})
            timings[phase] = {
                "seconds": round(previous.get("seconds", 0.0) + elapsed, 3),
                "items": previous.get("items", 0) + handled,
                "last_run_seconds": round(elapsed, 3),
                "last_run_items": handled,
            }
        self.state.set_meta("timings", timings)
        self.state.delete_meta(f"spans:{run}")

    def _claimed(self, phase: str, work: Callable[[list[str]], Awaitable[None]], *, batch: int = 1) -> Awaitable[int]:
        assert self._claims is not None, "phases run inside awork()"
        return claimed(self._claims, phase, work, concurrency=self.options.concurrency, batch=batch)

    async def _phase_accounts(self) -> int:
        _, target = await self._open()
        task = self.progress.task("accounts", self.state.count("accounts"), self.state.count("accounts", DONE))

        async def register(chunk: list[str]) -> None:
            result = await target.users.register([self.uid(u) for u in chunk])
            back = {self.uid(u): u for u in chunk}
            with self.state.transaction():
                for item in result.items:
                    self.state.set_status("accounts", back[item.target], DONE if item.ok else FAILED, item.detail)
            task.advance(len(chunk))

        handled = await self._claimed("accounts", self._guard("accounts", register), batch=100)
        task.finish()
        return handled

    async def _phase_profiles(self) -> int:
        source, target = await self._open()
        task = self.progress.task("profiles", self.state.count("profiles"), self.state.count("profiles", DONE))

        async def copy(chunk: list[str]) -> None:
            try:
                profiles = await source.client.users.get_profiles(chunk)
            except NotFoundError:
                profiles = []
                for user_id in chunk:  # one unknown user fails the whole call: find which
                    try:
                        profiles += await source.client.users.get_profiles([user_id])
                    except NotFoundError:
                        self.state.set_status("profiles", user_id, SKIPPED, "unknown to Tencent")
            for profile in profiles:
                fields = {"nickname": profile.nickname, "avatar_url": profile.avatar_url, "gender": profile.gender,
                          "signature": profile.signature}  # fmt: skip
                if any(v is not None for v in fields.values()) or profile.custom:
                    await target.users.set_profile(
                        self.uid(profile.user_id), nickname=profile.nickname, avatar_url=profile.avatar_url,
                        gender=profile.gender, signature=profile.signature, custom=profile.custom or None,
                    )  # fmt: skip
                self.state.set_status("profiles", profile.user_id, DONE)
            task.advance(len(chunk))

        handled = await self._claimed("profiles", self._guard("profiles", copy), batch=100)
        task.finish()
        return handled

    def _guard(
        self, phase: str, work: Callable[[list[str]], Awaitable[None]]
    ) -> Callable[[list[str]], Awaitable[None]]:
        """A chunk that fails is marked failed (a re-run retries it) instead of stopping the phase."""

        async def guarded(chunk: list[str]) -> None:
            try:
                await work(chunk)
            except IMBridgeError as error:
                self.state.set_many(phase, [k for k in chunk if self._pending(phase, k)], FAILED, str(error)[:500])

        return guarded

    def _pending(self, phase: str, key: str) -> bool:
        item = self.state.item(phase, key)
        return item is not None and item.status == PENDING

    async def _phase_groups(self) -> int:
        _, target = await self._open()
        task = self.progress.task("groups", self.state.count("groups"), self.state.count("groups", DONE))

        async def create(keys: list[str]) -> None:
            (key,) = keys
            item = self.state.item("groups", key)
            assert item is not None
            try:
                detail = await self._create_group(target, key, item.data)
                self.state.set_status("groups", key, DONE, detail)
            except IMBridgeError as error:
                self.state.set_status("groups", key, FAILED, str(error)[:500])
            task.advance()

        handled = await self._claimed("groups", create)
        task.finish()
        return handled

    async def _create_group(self, target: AsyncIMClient, group_id: str, data: dict[str, Any]) -> str:
        members = [(self.uid(uid), Role(role)) for uid, role in data["members"]]
        owner_source = data.get("owner") or next((uid for uid, role in data["members"] if role == "owner"), None)
        detail = ""
        if owner_source is None:  # an app-owned group: the first admin (or member) stands in
            ranked = sorted(data["members"], key=lambda m: m[1] != "admin")
            owner_source = ranked[0][0] if ranked else "administrator"
            detail = f"no owner at the source; {owner_source} owns it on the target"
        owner = self.uid(owner_source)
        admins = [uid for uid, role in members if role is Role.ADMIN and uid != owner]
        plain = [uid for uid, role in members if role is Role.MEMBER and uid != owner]
        tgid = self.gid(group_id)
        spec: dict[str, Any] = {"name": data["name"] or group_id, "owner": owner, "members": plain, "admins": admins,
                "group_id": tgid, "introduction": data.get("introduction") or "",
                "notification": data.get("notification") or "", "face_url": data.get("face_url") or ""}  # fmt: skip
        spec.update(_join_policy(target, data))
        try:
            await target.groups.create(**spec)
            await _carry_name_cards(target, tgid, data, self.uid)
            return detail
        except ConflictError:
            pass
        existing = await target.groups.get(tgid)
        roles = {m.user_id: m.role for m in await target.groups.members(tgid)}
        wanted = {uid: role for uid, role in members}
        wanted[owner] = Role.OWNER
        if existing.owner == owner and roles == wanted and existing.name == spec["name"]:
            return detail or "already there"
        checkpoint = self.state.checkpoint(ids.group_channel(group_id))
        if checkpoint is None or checkpoint.migrated == 0:
            # Created by an earlier, interrupted run: re-created (no history was copied into it yet).
            await target.groups.dismiss(tgid)
            await target.groups.create(**spec)
            await _carry_name_cards(target, tgid, data, self.uid)
            return detail or "re-created (an interrupted run left it incomplete)"
        return await self._repair_group(target, group_id, spec, existing, roles, wanted) or detail

    async def _repair_group(self, target: AsyncIMClient, group_id: str, spec: dict[str, Any], existing: Group,
                            roles: dict[str, Role], wanted: dict[str, Role]) -> str:  # fmt: skip
        """A group that holds migrated history but differs from the source: repaired in place (members
        added, roles and profile fields set), never dismissed. The owner cannot be changed here."""
        tgid = spec["group_id"]
        if existing.owner != spec["owner"]:
            raise ConflictError(
                f"group {tgid!r} is owned by {existing.owner!r} on the target and by {spec['owner']!r} at the "
                "source; it holds migrated history, so it is not re-created: transfer the ownership by hand",
                provider=target.provider_name,
            )  # fmt: skip
        done: list[str] = []
        moved = [u for u, role in wanted.items()
                 if u in roles and roles[u] != role and Role.OWNER not in (role, roles[u])]  # fmt: skip
        if moved and target.capabilities[Operation.GROUPS_SET_ROLE].available:
            for uid in moved:  # issue 17: a role is set in place
                await target.groups.set_role(tgid, uid, wanted[uid])
            done.append(f"{len(moved)} roles set")
            moved = []
        if moved:  # without set_role, a role is changed by removing and adding back
            await target.groups.remove_members(tgid, moved)
            self.state.requeue("mutes", [group_id], "members added back: their mutes are applied again")
        for role in (Role.ADMIN, Role.MEMBER):
            add = [u for u, r in wanted.items() if r is role and (u not in roles or u in moved)]
            if add:
                await target.groups.add_members(tgid, add, role=role)
                done.append(f"{len(add)} {role.value}s added")
        if existing.name != spec["name"] or existing.introduction != spec["introduction"]:
            await target.groups.update(tgid, name=spec["name"], introduction=spec["introduction"],
                                       notification=spec["notification"], face_url=spec["face_url"])  # fmt: skip
            done.append("name and profile set")
        return "repaired in place: " + (", ".join(done) or "nothing to change")

    # -- history ----------------------------------------------------------------------------------

    async def _phase_history(self) -> int:
        total = self.state.count("history")
        # Channels differ in size by orders of magnitude: their bar has no ETA; the messages bar has one.
        channels = self.progress.task("channels", total, total - self.state.count("history", PENDING), eta=False)
        expected = _ExpectedMessages(self.state.iter_items("history"), self.state.processed())
        messages = self.progress.task("messages", expected.total(), expected.done, estimated=expected.estimated())
        claims = self._claims
        assert claims is not None

        async def migrate(keys: list[str]) -> None:
            (channel,) = keys
            kind, group_id, _ = ids.split_channel(channel)
            group = self.state.item("groups", group_id) if kind == "group" else None
            if group is not None and group.status != DONE:
                channels.advance()
                return  # stays pending until its group exists on the target
            # A channel stopped at a message whose send may have landed is taken up again once, under the same
            # claim (its heartbeat keeps it): _channel first waits out options.uncertain_wait, so the message can
            # no longer be on its way, then looks its key up and sends it only if absent. Still uncertain: left
            # failed, with the key in its checkpoint, for a later run.
            for again in (False, True):
                try:
                    await self._channel(channel, messages)
                    with self.state.fenced("history", channel, claims.holder) as c:
                        self.state.set_status("history", channel, DONE)
                        self.state.worker_update(claims.name, c, channels=1)
                    done = self.state.checkpoint(channel)
                    before = expected.total()
                    expected.finished(channel, done.migrated + done.skipped if done else 0)
                    messages.add_total(expected.total() - before)
                except MessageMayHaveLandedError as error:
                    if not again:
                        continue
                    with contextlib.suppress(ClaimLost), self.state.fenced("history", channel, claims.holder):
                        detail = f"uncertain: {type(error).__name__}: {error}"[:500]
                        self.state.set_status("history", channel, FAILED, detail)
                except IMBridgeError as error:
                    with contextlib.suppress(ClaimLost), self.state.fenced("history", channel, claims.holder):
                        self.state.set_status("history", channel, FAILED, f"{type(error).__name__}: {error}"[:500])
                break
            channels.advance()

        handled = await self._claimed("history", migrate)
        channels.finish()
        messages.finish()
        return handled

    def _save(self, channel: str, position: dict[str, Any], migrated: int, skipped: int, counted: int) -> None:
        """Save a channel's checkpoint, only while this worker holds its claim (:class:`ClaimLost` if not),
        and add the messages looked at since the last save to this worker's count."""
        claims = self._claims
        with self.state.fenced("history", channel, claims.holder if claims else None) as c:
            self.state.save_checkpoint(channel, position, migrated, skipped)
            if claims is not None and counted:
                self.state.worker_update(claims.name, c, messages=counted)

    async def _channel(self, channel: str, messages: Any) -> None:
        source, target = await self._open()
        kind, a, b = ids.split_channel(channel)
        assert self.options.as_of is not None
        as_of = int(self.options.as_of)
        checkpoint = self.state.checkpoint(channel)
        migrated, skipped = (checkpoint.migrated, checkpoint.skipped) if checkpoint else (0, 0)
        position: dict[str, Any] = dict(checkpoint.position) if checkpoint else {}
        claims = self._claims

        def check() -> None:
            if claims is not None:
                claims.check("history", channel)

        stream: AsyncIterator[Message]
        if kind == "group":
            if "seq" not in position:  # not started (or started over by a repair, keeping its upper bound)
                seqs = await source.group_seqs(a)
                position["seq"] = seqs.first - 1 if seqs.first else 0
                position.setdefault("last", seqs.last)
                self._save(channel, position, migrated, skipped, 0)
            stream = source.group_messages(a, int(position["seq"]), int(position["last"]))
            lifted = await self._lift_mute_all(target, a)
        else:
            position.setdefault("t", int(self.options.since))
            position.setdefault("keys", [])
            stream = source.c2c_messages(a, b, int(position["t"]), as_of)
            lifted = False
        done_keys = set(position.get("keys", []))
        since_save = 0
        lost = False
        if isinstance(position.get("uncertain"), dict):
            # The next message's send may have landed: its key is looked up (and the message sent only if
            # absent) no sooner than options.uncertain_wait after that send failed.
            wait = float(position["uncertain"].get("at", 0)) + self.options.uncertain_wait - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        try:
            async for message in stream:
                stamp = _stamp(message.time)
                if stamp > as_of:
                    break
                if kind == "c2c" and (
                    stamp < position["t"] or (stamp == position["t"] and message.ref.key in done_keys)
                ):
                    continue  # done before the interruption
                check()  # never send once this worker cannot be sure the channel is still its own
                try:
                    copied = await self._copy(target, source.app_id, message)
                except MessageMayHaveLandedError as error:
                    position["uncertain"] = {"key": error.idempotency_key, "at": time.time()}
                    raise
                position.pop("uncertain", None)
                if copied:
                    migrated += 1
                    source_id = message.seq if kind == "group" else message.ref.key
                    # what a later run looks for on the target to tell that it still holds this channel
                    position["copied"] = {"id": str(source_id), "order": message.seq if kind == "group" else stamp}
                else:
                    skipped += 1
                messages.advance()
                if kind == "group":
                    position["seq"] = message.seq
                else:
                    if stamp != position["t"]:
                        position["t"], done_keys = stamp, set()
                    done_keys.add(message.ref.key)
                    position["keys"] = sorted(done_keys)
                since_save += 1
                if since_save >= self.options.checkpoint_every:
                    self._save(channel, position, migrated, skipped, since_save)
                    since_save = 0
        except ClaimLost:
            lost = True  # another worker resumes from the last checkpoint saved: write nothing more
            raise
        finally:
            try:
                if not lost:
                    self._save(channel, position, migrated, skipped, since_save)
            except ClaimLost:
                lost = True
                raise
            finally:
                if lifted and not lost:  # (a worker that took the channel over lifts and restores it itself)
                    await target.groups.mute_all(self.gid(a), True)

    async def _lift_mute_all(self, target: AsyncIMClient, group_id: str) -> bool:
        """A re-run (or a repair) after the group was muted as a whole on the target: WuKongIM's ban would
        drop the history, so lift it meanwhile."""
        group = self.state.item("groups", group_id)
        if group is None or not group.data.get("mute_all"):
            return False
        mutes = self.state.item("mutes", group_id)
        banned = (await target.groups.get(self.gid(group_id))).mute_all
        if banned:
            await target.groups.mute_all(self.gid(group_id), False)
        # banned again afterwards also when an interrupted run left it lifted
        return banned or (mutes is not None and mutes.status == DONE)

    async def _copy(self, target: AsyncIMClient, app_id: int, message: Message) -> bool:
        """Send one source message to the target (exactly once); False when it is skipped by option."""
        if message.revoked and self.options.revoked == "skip":
            return False
        conv = message.conversation
        if conv.is_group:
            to = Conversation.group(self.gid(conv.id))
            source_id: str | int = message.seq if message.seq is not None else message.ref.key
            key = ids.group_message_key(app_id, conv.id, int(source_id))
            peer = None
        else:
            recipient = message.ref.extra.get("To_Account") or conv.id
            to = Conversation.user(self.uid(recipient))
            source_id = message.ref.key
            key = ids.c2c_message_key(app_id, message.sender, recipient, message.ref.key)
            peer = recipient
        label = str(conv) if conv.is_group else "c2c:" + ",".join(sorted((message.sender, str(peer))))
        origin = {"source": "tencent", "app": app_id, "conversation": label, "id": source_id,
                  "sender": message.sender, "time": _stamp(message.time), "revoked": message.revoked}  # fmt: skip
        metadata = {**message.metadata, ids.ORIGIN_KEY: origin}
        content: list[Element] = list(message.elements)
        if message.revoked:
            content = [Text(REVOKED_PLACEHOLDER)]
        elif not content:
            content = [Custom(data="", description="empty message at the source")]
        sender = self.uid(message.sender)
        try:
            ref = await self._send(target, sender, to, content, key, metadata)
        except NotFoundError:
            # A sender (or peer) the plan did not know, e.g. a member who left: register, then send.
            users = [message.sender] + ([peer] if peer else [])
            self.state.add_items("accounts", ((u, {}) for u in users))
            await target.users.register([self.uid(u) for u in users])
            self.state.set_many("accounts", users, DONE, "registered during history")
            ref = await self._send(target, sender, to, content, key, metadata)
        if message.revoked:
            await target.messages.revoke(ref)
        return True

    @staticmethod
    async def _send(
        target: AsyncIMClient, sender: str, to: Conversation, content: list[Element], key: str,
        metadata: dict[str, Any],
    ) -> MessageRef:  # fmt: skip
        """One send (the key is looked up first, so a message an earlier run stored is not sent again). When it
        may have landed (a loaded WuKongIM accepted it but had not stored it, an answer lost on the way), it is
        looked up again a few times, never sent again here: still absent, the error goes up and the channel
        is taken up again after options.uncertain_wait."""
        try:
            return (await target.messages.send(sender, to, content, idempotency_key=key, metadata=metadata)).ref
        except MessageMayHaveLandedError as error:
            for wait in STORE_LAG_WAITS:
                await asyncio.sleep(wait)
                try:
                    found = await target.messages.find_by_key(sender, to, key)
                except IMBridgeError:
                    continue  # a failed lookup says nothing: the message stays uncertain
                if found is not None:
                    return found.ref
            raise error

    # -- mutes ------------------------------------------------------------------------------------

    async def _phase_mutes(self) -> int:
        _, target = await self._open()
        task = self.progress.task("mutes", self.state.count("mutes"), self.state.count("mutes", DONE))

        async def apply(keys: list[str]) -> None:
            (group_id,) = keys
            history = self.state.item("history", ids.group_channel(group_id))
            group = self.state.item("groups", group_id)
            if history is None or history.status != DONE or group is None or group.status != DONE:
                task.advance()
                return  # stays pending: its history (or the group) is not complete yet
            try:
                now = time.time()
                tgid = self.gid(group_id)
                for uid, until in sorted(group.data.get("mutes", {}).items()):
                    if until is None:  # permanent at the source: without an end on the target too
                        await target.groups.mute(tgid, [self.uid(uid)], None)
                        continue
                    remaining = min(float(until) - now, MAX_MUTE.total_seconds())
                    if remaining >= 1:
                        await target.groups.mute(tgid, [self.uid(uid)], timedelta(seconds=remaining))
                if group.data.get("mute_all"):
                    await target.groups.mute_all(tgid, True)
                self.state.set_status("mutes", group_id, DONE)
            except IMBridgeError as error:
                self.state.set_status("mutes", group_id, FAILED, str(error)[:500])
            task.advance()

        handled = await self._claimed("mutes", apply)
        task.finish()
        return handled

    # -- conversations ----------------------------------------------------------------------------

    async def _phase_conversations(self) -> int:
        return await conversations_phase(self)

    # -- re-check and repair ---------------------------------------------------------------------

    async def arecheck(self) -> dict[str, Any]:
        """Look on the target for what earlier runs finished: each group (one read) and each channel's last
        copied message (one page of its newest messages). A target restored from an older backup or
        restarted empty would otherwise be reported complete. What it lost is queued again: the group is
        created again, the channel copied again from its first message (each looked up before it is sent,
        so only what the target lacks is sent), and every account registered again."""
        _, target = await self._open()
        groups = self.state.keys("groups", DONE)
        channels = self.state.keys("history", DONE)
        if not groups and not channels:
            return {}
        task = self.progress.task("recheck", len(groups) + len(channels), eta=False)
        lost_groups: list[str] = []
        lost_channels: list[str] = []

        async def check_group(group_id: str) -> None:
            if await self._group_missing(target, group_id):
                lost_groups.append(group_id)
            task.advance()

        async def check_channel(channel: str) -> None:
            try:
                if not await self._channel_intact(target, channel):
                    lost_channels.append(channel)
            except IMBridgeError:
                pass  # unreadable now: nothing can be concluded; the phases report an unreachable target
            task.advance()

        await self._bounded(groups, check_group)
        await self._bounded(channels, check_channel)
        task.finish()
        result: dict[str, Any] = {"at": time.time(), "groups": len(groups), "channels": len(channels),
                  "lost_groups": len(lost_groups), "lost_channels": len(lost_channels)}  # fmt: skip
        if lost_groups or lost_channels:
            reason = "not found on the target when re-checked: copied again"
            channels_of_groups = [ids.group_channel(g) for g in lost_groups]
            self._requeue(lost_groups, [*lost_channels, *channels_of_groups], reason, accounts=bool(lost_groups))
            result["requeued"] = {"groups": sorted(lost_groups)[:50], "channels": sorted(lost_channels)[:50]}
        self.state.set_meta("recheck", result)
        return result

    async def _group_missing(self, target: AsyncIMClient, group_id: str) -> bool:
        try:
            await target.groups.get(self.gid(group_id))
        except NotFoundError:
            return True
        except IMBridgeError:
            return False  # unreachable now: nothing can be concluded
        return False

    def _target_view(self, channel: str) -> tuple[Conversation, str]:
        """(conversation, viewer) of a channel on the target, as verify reads it."""
        kind, a, b = ids.split_channel(channel)
        if kind == "group":
            group = self.state.item("groups", a)
            owner = (group.data.get("owner") if group else None) or a
            return Conversation.group(self.gid(a)), self.uid(owner)
        return Conversation.user(self.uid(b)), self.uid(a)

    async def _channel_intact(self, target: AsyncIMClient, channel: str) -> bool:
        """Whether the target still holds the last message copied into ``channel``."""
        checkpoint = self.state.checkpoint(channel)
        if checkpoint is None or checkpoint.migrated == 0:
            return True  # nothing was copied: nothing to lose
        copied = checkpoint.position.get("copied")
        group = channel.startswith("g:")
        conversation, viewer = self._target_view(channel)
        seen = 0
        try:
            async for message in target.messages.iter_history(
                conversation, viewer, page_size=50, direction=Direction.BACKWARD
            ):
                origin = message.metadata.get(ids.ORIGIN_KEY)
                if not isinstance(origin, dict):
                    continue  # the app's own messages
                if copied is None or str(origin.get("id")) == str(copied["id"]):
                    return True  # (a checkpoint from before "copied" was kept: any migrated message will do)
                source_id = str(origin.get("id"))
                order = int(source_id) if group and source_id.isdigit() else int(origin.get("time") or 0)
                if order < int(copied["order"]):
                    return False  # older than the last copied one, which is not there
                seen += 1
                if seen >= RECHECK_SCAN:
                    return True  # many newer (mirrored) messages: assumed intact; verify reads it all
        except NotFoundError:
            return False
        return False

    def _requeue(self, groups: Iterable[str], channels: Iterable[str], reason: str, *, accounts: bool) -> None:
        """Queue again what the target lost or holds wrong: groups (with their mutes), channels (from their
        first message), and every account when ``accounts`` (the target lost whole groups: it was emptied)."""
        group_list = sorted(set(groups))
        channel_list = sorted(set(channels))
        for channel in channel_list:
            self.state.reset_checkpoint(channel)
        self.state.requeue("groups", group_list, reason)
        self.state.requeue("mutes", group_list, reason)
        self.state.requeue("history", channel_list, reason)
        if accounts:
            self.state.requeue("accounts", self.state.keys("accounts", DONE), reason)

    async def arepair(self, result: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Re-copy what verify finds missing or wrong: the groups and channels it names are queued again
        (see :meth:`_requeue`), the phases run, and verify runs again; up to :data:`MAX_REPAIR_ROUNDS`
        rounds while each finds something new to repair. ``result`` is a verify result to start from.

        Copying again appends: a message the target lost in the middle of a channel comes back after the
        ones it preceded (WuKongIM cannot insert), which the final verify reports as an order difference."""
        current = dict(result) if result is not None else await self.averify(every_mismatch=True)
        before = current.get("mismatch_count", 0)
        repaired_groups: set[str] = set()
        repaired_channels: set[str] = set()
        repaired_users: set[str] = set()
        rounds = 0
        while not current.get("ok") and rounds < MAX_REPAIR_ROUNDS:
            mismatches = current.get("mismatches") or []
            groups = {str(m["group"]) for m in mismatches if m.get("group")} - repaired_groups
            channels = {str(m["channel"]) for m in mismatches if m.get("channel")} - repaired_channels
            listed_users = {str(m["user"]) for m in (current.get("conversation_lists") or {}).get("mismatches", [])}
            users = listed_users - repaired_users
            if not groups and not channels and not users:
                break  # what is left was repaired once already: copying again would not change it
            requeue_users(self, users, "queued again by verify --repair")
            repaired_users |= users
            _, target = await self._open()
            lost = [g for g in groups if await self._group_missing(target, g)]
            # a lost group's history went with it, whether or not verify could list the channel
            channels |= {ids.group_channel(g) for g in lost if self.state.item("history", ids.group_channel(g))}
            self._requeue(groups, channels, "queued again by verify --repair", accounts=bool(lost))
            repaired_groups |= groups
            repaired_channels |= channels
            await self.arun()
            current = await self.averify(every_mismatch=True)
            rounds += 1
        listed = (current.get("mismatches") or [])[:MAX_LISTED_MISMATCHES]
        return {"ok": bool(current.get("ok")), "mismatches_before": before, "rounds": rounds,
                "requeued_groups": len(repaired_groups), "requeued_channels": len(repaired_channels),
                "verify": {**current, "mismatches": listed}}  # fmt: skip

    # -- verify, status, report -------------------------------------------------------------------

    async def averify(self, *, every_mismatch: bool = False) -> dict[str, Any]:
        """Compare source and target; ``every_mismatch`` lists them all (a repair's input), not the first 100."""
        from imbridge.migration.verify import MAX_LISTED, verify

        source, target = await self._open()
        self._load_ids()
        result = await verify(self, source, target, limit=None if every_mismatch else MAX_LISTED)
        if self.state.count("conversations", DONE):
            lists = await verify_conversations(self, source.client, target)
            result["conversation_lists"] = lists
            result["ok"] = bool(result.get("ok")) and lists["ok"]
            result["mismatch_count"] = int(result.get("mismatch_count") or 0) + lists["mismatch_count"]
        self.state.set_meta("verify", {**result, "mismatches": result["mismatches"][:MAX_LISTED]})
        return result

    def status(self) -> dict[str, Any]:
        """Per-phase item counts, messages migrated and skipped, from the state database alone."""
        migrated, skipped = self.state.totals()
        counts = self.state.counts()
        phases = {p: {s: counts.get(p, {}).get(s, 0) for s in (PENDING, DONE, FAILED, SKIPPED)} for p in PHASES}
        complete = all(v[PENDING] == 0 and v[FAILED] == 0 for v in phases.values()) and bool(counts)
        return {"plan": self.state.get_meta("plan"), "phases": phases, "messages_migrated": migrated,
                "messages_skipped": skipped, "complete": complete}  # fmt: skip

    def failures(self, limit: int = 20) -> list[dict[str, str]]:
        return [{"phase": i.phase, "item": i.key, "error": i.detail} for i in self.state.failures(limit)]

    def workers(self) -> list[dict[str, Any]]:
        """The worker processes of the latest run (every host's), from the state database."""
        run = self.state.get_meta("run")
        rows = self.state.workers(int(run["id"])) if run else []
        return [{"worker": r["id"], "host": r["host"], "pid": r["pid"], "channels": r["channels"],
                 "messages": r["messages"], "items": r["items"], "peak_rss_mb": r["peak_rss_mb"],
                 "seconds": round((r["finished"] or r["heartbeat"]) - r["started"], 1),
                 "state": r["detail"] or "running"} for r in rows]  # fmt: skip

    def report(self) -> dict[str, Any]:
        """Everything about this migration: plan, per-phase progress and timings, verify result, notes."""
        timings = self.state.get_meta("timings") or {}
        history = timings.get("history", {})
        migrated = self.state.totals()[0]
        rate = migrated / history["seconds"] if history.get("seconds") else None
        return {
            **self.status(), "options": self.state.get_meta("options"), "timings": timings,
            "history_messages_per_second": round(rate, 1) if rate else None, "failures": self.failures(),
            "recheck": self.state.get_meta("recheck"), "verify": self.state.get_meta("verify"),
            "workers": self.workers(), "notes": NOTES,
        }  # fmt: skip


def total_done(by_status: Mapping[str, int]) -> int:
    """Items of a phase that are no longer pending (done, skipped or failed)."""
    return sum(n for status, n in by_status.items() if status != PENDING)


def summary_text(report: Mapping[str, Any]) -> str:
    """The report for people."""
    plan = report.get("plan") or {}
    lines = ["Migration Tencent IM -> WuKongIM"]
    if plan:
        counted = f" (up to {plan['group_messages']} messages)" if plan.get("group_messages") is not None else ""
        lines.append(
            f"  planned: {plan.get('users')} users, {plan.get('groups')} groups{counted}, "
            f"{plan.get('c2c_pairs')} one-to-one conversations; history up to {plan.get('as_of_iso')}"
        )
    recheck = report.get("recheck")
    if recheck:
        lost = recheck.get("lost_groups", 0) + recheck.get("lost_channels", 0)
        lines.append(
            f"  re-checked on the target: {recheck.get('groups')} groups and {recheck.get('channels')} channels "
            "finished earlier; "
            + (f"{recheck.get('lost_groups')} groups and {recheck.get('lost_channels')} channels were missing "
               "and were queued to be copied again" if lost else "all still there")
        )  # fmt: skip
    timings = report.get("timings") or {}
    for phase, counts in (report.get("phases") or {}).items():
        spent = timings.get(phase, {}).get("seconds")
        took = f" in {spent:.1f} s" if spent is not None else ""
        extra = f", {counts['failed']} FAILED" if counts.get("failed") else ""
        extra += f", {counts['skipped']} skipped" if counts.get("skipped") else ""
        extra += f", {counts['pending']} pending" if counts.get("pending") else ""
        lines.append(f"  {phase:<9} {counts.get('done', 0)} done{extra}{took}")
    rate = report.get("history_messages_per_second")
    lines.append(f"  messages: {report.get('messages_migrated', 0)} migrated, {report.get('messages_skipped', 0)} "
                 f"skipped" + (f" ({rate:.0f} messages/s)" if rate else ""))  # fmt: skip
    workers = report.get("workers") or []
    if len(workers) > 1:
        lines.append(f"  workers (latest run): {len(workers)}")
        for w in workers:
            rss = f", peak RSS {w['peak_rss_mb']:.0f} MB" if w.get("peak_rss_mb") else ""
            lines.append(f"    {w['worker']}: {w['channels']} channels, {w['messages']} messages{rss}; {w['state']}")
    for failure in report.get("failures") or []:
        lines.append(f"  failed: {failure['phase']} {failure['item']}: {failure['error']}")
    verify = report.get("verify")
    if verify:
        from imbridge.migration.verify import verify_text

        lines.append(verify_text(verify))
    lines.append("Notes:")
    lines += [f"  - {note}" for note in report.get("notes") or NOTES]
    return "\n".join(lines)


__all__ = ["NOTES", "PHASES", "Migration", "MigrationOptions", "summary_text"]
