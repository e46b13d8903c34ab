"""imbridge's store: everything imbridge keeps itself, on SQLite or PostgreSQL (see :mod:`imbridge.storage`).

The ``local`` provider keeps all its data here; the WuKongIM provider keeps here what WuKongIM does
not (profiles, group names, owners and roles, timed mutes, revocations); the emulators keep their
state here. One database may be shared by several processes (SQLite, one host) or by several hosts
(PostgreSQL): each method is one transaction, and the ones that read before they write lock what they
read first (``imbridge.storage.database`` says how on each backend). In particular a message's seq and
time are assigned in the transaction that stores it, from the conversation's counter row: seqs are
unique and contiguous, and times never go backwards within a conversation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, case, delete, func, select, update
from sqlalchemy.engine import Connection

from imbridge.models import Gender, Profile
from imbridge.providers.base import ProfileUpdate
from imbridge.storage import CORE_SCHEMA, SCHEMA_VERSION, Database, SQLiteWriter
from imbridge.storage.admin import ADMIN_SCHEMA, group_policies, message_delivery, name_cards
from imbridge.storage.core import (
    conversations,
    groups,
    members,
    messages,
    mutes,
    profiles,
    revocations,
    users,
    wukong_channel_flags,
)
from imbridge.storage.core import members as _member_table  # create_group's parameter shadows the name
from imbridge.storage.reading import READING_SCHEMA, read_positions
from imbridge.storage.schema import meta_table

__all__ = [
    "MUTED_FOREVER",
    "SCHEMA_VERSION",
    "GroupRow",
    "MemberRow",
    "MessageRow",
    "NewMessage",
    "Store",
    "conversation_key",
    "profile_fields",
    "profile_from_fields",
]

#: ``mutes.until`` of a mute without an end (lifted only by an unmute): never reached by any clock. SQLite REAL
#: and PostgreSQL double precision both hold infinity.
MUTED_FOREVER = float("inf")

_IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits
_NO_LIMIT = 2**62


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: str
    name: str
    owner: str | None
    introduction: str
    notification: str
    face_url: str
    mute_all: bool
    created_at: float
    member_count: int


@dataclass(frozen=True, slots=True)
class MemberRow:
    user_id: str
    role: str
    joined_at: float
    muted_until: float | None


@dataclass(frozen=True, slots=True)
class MessageRow:
    conversation: str
    seq: int
    key: str
    sender: str
    elements: list[dict[str, Any]]
    metadata: dict[str, Any]
    time: float
    dedupe: str | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store with :meth:`Store.append_messages` (its seq is assigned on insert)."""

    conversation: str
    key: str
    sender: str
    elements: list[dict[str, Any]]
    time: float
    metadata: dict[str, Any] = field(default_factory=dict)
    dedupe: str | None = None
    revoked: bool = False


#: Profile fields are stored one row per field; app-defined keys under this prefix.
CUSTOM_PREFIX = "custom:"
_STANDARD_PROFILE_FIELDS = ("nickname", "avatar_url", "gender", "signature")


def profile_fields(update: ProfileUpdate) -> dict[str, str]:
    """The store's rows for a profile update (fields left None are not written)."""
    fields = {
        name: value.value if isinstance(value, Gender) else value
        for name in _STANDARD_PROFILE_FIELDS
        if (value := getattr(update, name)) is not None
    }
    fields.update({CUSTOM_PREFIX + key: value for key, value in update.custom.items()})
    return fields


def profile_from_fields(user_id: str, fields: dict[str, str], *, provider: str, raw: dict[str, Any]) -> Profile:
    """The normalized profile of a user from the store's rows."""
    gender = fields.get("gender")
    return Profile(
        user_id=user_id,
        nickname=fields.get("nickname"),
        avatar_url=fields.get("avatar_url"),
        gender=Gender(gender) if gender else None,
        signature=fields.get("signature"),
        custom={k[len(CUSTOM_PREFIX) :]: v for k, v in fields.items() if k.startswith(CUSTOM_PREFIX)},
        provider=provider,
        raw=raw,
    )


def conversation_key(kind: str, a: str, b: str | None = None) -> str:
    """The storage key of a conversation: one key for both sides of a one-to-one chat."""
    if kind == "group":
        return f"g:{a}"
    low, high = sorted((a, b or ""))
    return f"u:{low}|{high}"


class _Duplicate(Exception):
    """Raised inside a write transaction to roll it back and return the message a dedupe key found."""

    def __init__(self, row: MessageRow) -> None:
        self.row = row


class Store:
    """imbridge's store on the database ``url`` names (a path, ``:memory:``, ``sqlite:///path`` or
    ``postgresql://…``); created or upgraded in place when opened. Thread-safe."""

    def __init__(self, url: str = ":memory:") -> None:
        self.db = Database(url)
        self.backend = self.db.backend
        #: The SQLite file (``:memory:`` for memory); None on PostgreSQL.
        self.path = self.db.location.path
        self.shown = self.db.shown
        self._insert = self.db.insert
        try:
            self.db.ensure(CORE_SCHEMA)
            self.db.ensure(ADMIN_SCHEMA)
            self.db.ensure(READING_SCHEMA)
        except BaseException:
            self.db.close()
            raise
        self._statements()

    def close(self) -> None:
        self.db.close()

    def __repr__(self) -> str:
        return f"Store({self.shown!r})"

    @contextmanager
    def sqlite_write(self) -> Iterator[SQLiteWriter]:
        """SQLite only: a write transaction in SQLite's own SQL (the emulators' tables)."""
        with self.db.sqlite_write() as db:
            yield db

    def _statements(self) -> None:
        """Statements built once: SQLAlchemy then finds their compiled form in its cache by identity."""
        counter = self._insert(conversations).values(
            key=bindparam("conversation"), last_seq=bindparam("count"), last_time=bindparam("time")
        )
        newest = counter.excluded.last_time
        prepare = self.db.prepare
        self._allocate = prepare(
            counter.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "last_seq": conversations.c.last_seq + counter.excluded.last_seq,
                    # never earlier than the conversation's last message (issue 13: times follow seqs)
                    "last_time": case((newest > conversations.c.last_time, newest), else_=conversations.c.last_time),
                },
            ).returning(conversations.c.last_seq, conversations.c.last_time)
        )
        self._by_dedupe = prepare(
            select(messages).where(
                messages.c.conversation == bindparam("conversation"), messages.c.dedupe == bindparam("dedupe")
            )
        )
        self._insert_message = prepare(messages.insert())
        self._page = {
            descending: prepare(
                select(messages)
                .where(
                    messages.c.conversation == bindparam("conversation"),
                    messages.c.seq < bindparam("before"),
                    messages.c.seq > bindparam("after"),
                )
                .order_by(messages.c.seq.desc() if descending else messages.c.seq.asc())
                .limit(bindparam("limit"))
            )
            for descending in (True, False)
        }
        self._by_key = prepare(select(messages).where(messages.c["key"] == bindparam("key")))
        member_count = (
            select(func.count()).select_from(members).where(members.c.group_id == groups.c.id).scalar_subquery()
        )
        self._group = prepare(
            select(groups, member_count.label("member_count")).where(
                groups.c.id == bindparam("id"), groups.c.dismissed_at.is_(None)
            )
        )
        member_rows = select(members.c.user_id, members.c.role, members.c.joined_at, mutes.c.until).join_from(
            members,
            mutes,
            (mutes.c.group_id == members.c.group_id) & (mutes.c.user_id == members.c.user_id),
            isouter=True,
        )
        self._members = prepare(
            member_rows.where(members.c.group_id == bindparam("group_id"))
            .order_by(members.c.joined_at, members.c.user_id)
            .limit(bindparam("limit"))
            .offset(bindparam("offset"))
        )
        self._member = prepare(
            member_rows.where(members.c.group_id == bindparam("group_id"), members.c.user_id == bindparam("user_id"))
        )
        self._user = prepare(select(users.c.id).where(users.c.id == bindparam("id")))
        self._users_in = select(users.c.id).where(users.c.id.in_(bindparam("ids", expanding=True)))

    # -- meta ---------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self.db.read() as db:
            value = db.execute(select(meta_table.c.value).where(meta_table.c["key"] == key)).scalar_one_or_none()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with self.db.write() as db:
            db.execute(
                self._insert(meta_table)
                .values(key=key, value=value)
                .on_conflict_do_update(index_elements=["key"], set_={"value": value})
            )

    def meta_setdefault(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless one is there; return the stored one."""
        with self.db.write() as db:
            db.execute(self._insert(meta_table).values(key=key, value=value).on_conflict_do_nothing())
            return str(db.execute(select(meta_table.c.value).where(meta_table.c["key"] == key)).scalar_one())

    # -- users and profiles -------------------------------------------------------------------

    def add_users(self, user_ids: Iterable[str], now: float) -> dict[str, bool]:
        """Register users; the value says whether each was new."""
        ids = list(dict.fromkeys(user_ids))
        created: dict[str, bool] = dict.fromkeys(ids, False)
        statement = self._insert(users).on_conflict_do_nothing()
        with self.db.write() as db:
            for user_id in sorted(ids):
                created[user_id] = db.execute(statement, {"id": user_id, "created_at": now}).rowcount == 1
        return created

    def user_ids(self) -> list[str]:
        """Every registered user id, sorted."""
        with self.db.read() as db:
            return list(db.execute(select(users.c.id).order_by(users.c.id)).scalars())

    def existing_users(self, user_ids: Iterable[str]) -> set[str]:
        ids = list(user_ids)
        found: set[str] = set()
        with self.db.read() as db:
            if len(ids) <= 4:  # the common case (a sender, a recipient): one prepared lookup each is cheaper
                return {uid for uid in ids if self._user.first(db, {"id": uid}) is not None}
            for start in range(0, len(ids), _IN_CHUNK):
                found.update(db.execute(self._users_in, {"ids": ids[start : start + _IN_CHUNK]}).scalars())
        return found

    def profile(self, user_id: str) -> dict[str, str]:
        with self.db.read() as db:
            rows = db.execute(select(profiles.c.field, profiles.c.value).where(profiles.c.user_id == user_id))
            return {row.field: row.value for row in rows}

    def set_profile_fields(self, user_id: str, fields: dict[str, str]) -> None:
        self.set_profiles({user_id: fields})

    def set_profiles(self, profiles_by_user: Mapping[str, Mapping[str, str]]) -> None:
        """Set profile fields of many users in one transaction (other fields are kept)."""
        rows = sorted(
            (user_id, name, value) for user_id, fields in profiles_by_user.items() for name, value in fields.items()
        )
        if not rows:
            return
        statement = self._insert(profiles)
        statement = statement.on_conflict_do_update(
            index_elements=["user_id", "field"], set_={"value": statement.excluded.value}
        )
        with self.db.write() as db:
            db.execute(statement, [{"user_id": u, "field": f, "value": v} for u, f, v in rows])

    # -- groups -------------------------------------------------------------------------------

    def group(self, group_id: str) -> GroupRow | None:
        with self.db.read() as db:
            row = self._group.first(db, {"id": group_id})
        if row is None:
            return None
        return GroupRow(
            id=row.id, name=row.name, owner=row.owner, introduction=row.introduction,
            notification=row.notification, face_url=row.face_url, mute_all=bool(row.mute_all),
            created_at=row.created_at, member_count=row.member_count,
        )  # fmt: skip

    def group_ids(self) -> list[str]:
        with self.db.read() as db:
            return list(
                db.execute(
                    select(groups.c.id)
                    .where(groups.c.dismissed_at.is_(None))
                    .order_by(groups.c.created_at, groups.c.id)
                ).scalars()
            )

    def create_group(
        self, group_id: str, *, name: str, owner: str | None, introduction: str, notification: str,
        face_url: str, now: float, members: Sequence[tuple[str, str]],
    ) -> bool:  # fmt: skip
        """Create a group with its initial members; False if a live group has that id already."""
        values = {"id": group_id, "name": name, "owner": owner, "introduction": introduction,
                  "notification": notification, "face_url": face_url, "created_at": now}  # fmt: skip
        with self.db.write() as db:
            # First writer wins: a concurrent create of the same id waits here, then finds the row.
            if db.execute(self._insert(groups).values(values).on_conflict_do_nothing()).rowcount != 1:
                dismissed = db.execute(
                    select(groups.c.dismissed_at).where(groups.c.id == group_id).with_for_update()
                ).scalar_one()
                if dismissed is None:
                    return False
                self._purge_group(db, group_id)  # a dismissed group's id is free again; forget its past
                db.execute(groups.insert().values(values))
            if members:
                statement = self._insert(_member_table)
                statement = statement.on_conflict_do_update(
                    index_elements=["group_id", "user_id"],
                    set_={"role": statement.excluded.role, "joined_at": statement.excluded.joined_at},
                )
                db.execute(
                    statement,
                    [{"group_id": group_id, "user_id": uid, "role": role, "joined_at": now}
                     for uid, role in sorted(dict(members).items())],
                )  # fmt: skip
        return True

    @staticmethod
    def _purge_group(db: Connection, group_id: str) -> None:
        conversation = conversation_key("group", group_id)
        db.execute(delete(groups).where(groups.c.id == group_id))
        db.execute(delete(members).where(members.c.group_id == group_id))
        db.execute(delete(mutes).where(mutes.c.group_id == group_id))
        db.execute(delete(group_policies).where(group_policies.c.group_id == group_id))
        db.execute(delete(name_cards).where(name_cards.c.group_id == group_id))
        db.execute(delete(messages).where(messages.c.conversation == conversation))
        db.execute(delete(conversations).where(conversations.c["key"] == conversation))

    def update_group(self, group_id: str, fields: dict[str, Any]) -> bool:
        allowed = {"name", "introduction", "notification", "face_url", "mute_all", "owner"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown group fields {sorted(unknown)}")
        if not fields:
            return self.group(group_id) is not None
        with self.db.write() as db:
            result = db.execute(
                update(groups).where(groups.c.id == group_id, groups.c.dismissed_at.is_(None)).values(fields)
            )
            return result.rowcount == 1

    def dismiss_group(self, group_id: str, now: float) -> bool:
        with self.db.write() as db:
            result = db.execute(
                update(groups).where(groups.c.id == group_id, groups.c.dismissed_at.is_(None)).values(dismissed_at=now)
            )
            if result.rowcount == 1:
                db.execute(delete(members).where(members.c.group_id == group_id))
                db.execute(delete(name_cards).where(name_cards.c.group_id == group_id))
            return result.rowcount == 1

    # -- members and mutes --------------------------------------------------------------------

    def members(self, group_id: str, *, offset: int = 0, limit: int = -1) -> list[MemberRow]:
        with self.db.read() as db:
            rows = self._members.rows(
                db, {"group_id": group_id, "limit": _NO_LIMIT if limit < 0 else limit, "offset": offset}
            )
            return [MemberRow(row.user_id, row.role, row.joined_at, row.until) for row in rows]

    def member(self, group_id: str, user_id: str) -> MemberRow | None:
        with self.db.read() as db:
            row = self._member.first(db, {"group_id": group_id, "user_id": user_id})
        return MemberRow(row.user_id, row.role, row.joined_at, row.until) if row is not None else None

    def groups_of(self, user_id: str) -> list[str]:
        """Ids of the live groups ``user_id`` is a member of."""
        with self.db.read() as db:
            return list(
                db.execute(
                    select(members.c.group_id)
                    .join(groups, groups.c.id == members.c.group_id)
                    .where(members.c.user_id == user_id, groups.c.dismissed_at.is_(None))
                    .order_by(members.c.group_id)
                ).scalars()
            )

    def add_members(self, group_id: str, new_members: Sequence[tuple[str, str]], now: float) -> dict[str, bool]:
        """Add members; the value says whether each was new (an existing member keeps its role)."""
        added: dict[str, bool] = {}
        statement = self._insert(members).on_conflict_do_nothing()
        with self.db.write() as db:
            for user_id, role in sorted(new_members):
                row = {"group_id": group_id, "user_id": user_id, "role": role, "joined_at": now}
                added[user_id] = db.execute(statement, row).rowcount == 1 or added.get(user_id, False)
        return {user_id: added[user_id] for user_id, _ in new_members}

    def set_role(self, group_id: str, user_id: str, role: str) -> bool:
        with self.db.write() as db:
            result = db.execute(
                update(members).where(members.c.group_id == group_id, members.c.user_id == user_id).values(role=role)
            )
            return result.rowcount == 1

    def remove_members(self, group_id: str, user_ids: Iterable[str]) -> dict[str, bool]:
        """Remove members; the value says whether each was a member."""
        ids = list(user_ids)
        removed: dict[str, bool] = {}
        statement = delete(members).where(
            members.c.group_id == bindparam("group_id"), members.c.user_id == bindparam("user_id")
        )
        cards = delete(name_cards).where(
            name_cards.c.group_id == bindparam("group_id"), name_cards.c.user_id == bindparam("user_id")
        )
        with self.db.write() as db:
            for user_id in sorted(set(ids)):
                removed[user_id] = db.execute(statement, {"group_id": group_id, "user_id": user_id}).rowcount == 1
                db.execute(cards, {"group_id": group_id, "user_id": user_id})
        return {user_id: removed[user_id] for user_id in ids}

    def set_mutes(self, group_id: str, user_ids: Iterable[str], until: float | None) -> None:
        """Mute until ``until`` (epoch seconds), or lift the mute when it is None."""
        ids = sorted(set(user_ids))
        if not ids:
            return
        with self.db.write() as db:
            if until is None:
                db.execute(delete(mutes).where(mutes.c.group_id == group_id, mutes.c.user_id.in_(ids)))
                return
            statement = self._insert(mutes)
            statement = statement.on_conflict_do_update(
                index_elements=["group_id", "user_id"], set_={"until": statement.excluded.until}
            )
            db.execute(statement, [{"group_id": group_id, "user_id": uid, "until": until} for uid in ids])

    def mutes(self, group_id: str, now: float) -> dict[str, float]:
        """Mutes still in force at ``now``; expired ones are dropped as a side effect."""
        with self.db.write() as db:
            db.execute(delete(mutes).where(mutes.c.group_id == group_id, mutes.c.until <= now))
            rows = db.execute(
                select(mutes.c.user_id, mutes.c.until).where(mutes.c.group_id == group_id).order_by(mutes.c.user_id)
            )
            return {row.user_id: row.until for row in rows}

    # -- member administration, join policy, delivery flags (issue 17) -----------------------

    def transfer_owner(self, group_id: str, new_owner: str) -> bool:
        """Make a member the owner in one transaction; the previous owner becomes a member. False when the
        group is unknown or ``new_owner`` is not a member."""
        with self.db.write() as db:
            owner = db.execute(
                select(groups.c.owner).where(groups.c.id == group_id, groups.c.dismissed_at.is_(None)).with_for_update()
            ).first()
            member = db.execute(
                select(members.c.user_id).where(members.c.group_id == group_id, members.c.user_id == new_owner)
            ).first()
            if owner is None or member is None:
                return False
            if owner.owner and owner.owner != new_owner:
                db.execute(
                    update(members)
                    .where(members.c.group_id == group_id, members.c.user_id == owner.owner)
                    .values(role="member")
                )
            db.execute(
                update(members)
                .where(members.c.group_id == group_id, members.c.user_id == new_owner)
                .values(role="owner")
            )
            db.execute(update(groups).where(groups.c.id == group_id).values(owner=new_owner))
            return True

    def delete_user(self, user_id: str) -> bool:
        """Delete an account with its profile, memberships, name cards and mutes (messages stay, as history).
        A group it owned is left without an owner. False if there was no such account."""
        with self.db.write() as db:
            if db.execute(delete(users).where(users.c.id == user_id)).rowcount != 1:
                return False
            db.execute(delete(profiles).where(profiles.c.user_id == user_id))
            db.execute(delete(members).where(members.c.user_id == user_id))
            db.execute(delete(name_cards).where(name_cards.c.user_id == user_id))
            db.execute(delete(mutes).where(mutes.c.user_id == user_id))
            db.execute(update(groups).where(groups.c.owner == user_id).values(owner=None))
            return True

    def groups_page(self, after: tuple[float, str] | None, limit: int) -> list[GroupRow]:
        """Live groups in creation order (then id), strictly after ``after`` = (created_at, id)."""
        query = select(groups.c.id).where(groups.c.dismissed_at.is_(None))
        if after is not None:
            low_time, low_id = after
            query = query.where(
                (groups.c.created_at > low_time) | ((groups.c.created_at == low_time) & (groups.c.id > low_id))
            )
        with self.db.read() as db:
            ids = list(db.execute(query.order_by(groups.c.created_at, groups.c.id).limit(limit)).scalars())
        found = [self.group(group_id) for group_id in ids]
        return [group for group in found if group is not None]

    def group_policy(self, group_id: str) -> tuple[str | None, int | None]:
        """(join option, max members) as last set; (None, None) when never set."""
        with self.db.read() as db:
            row = db.execute(
                select(group_policies.c.join_option, group_policies.c.max_members).where(
                    group_policies.c.group_id == group_id
                )
            ).first()
        return (row.join_option, row.max_members) if row is not None else (None, None)

    def set_group_policy(self, group_id: str, join_option: str | None, max_members: int | None) -> None:
        """Set the join option and/or the size limit; None keeps what is there."""
        statement = self._insert(group_policies).values(
            group_id=group_id, join_option=join_option, max_members=max_members
        )
        statement = statement.on_conflict_do_update(
            index_elements=["group_id"],
            set_={
                "join_option": func.coalesce(statement.excluded.join_option, group_policies.c.join_option),
                "max_members": func.coalesce(statement.excluded.max_members, group_policies.c.max_members),
            },
        )
        with self.db.write() as db:
            db.execute(statement)

    def name_cards(self, group_id: str) -> dict[str, str]:
        with self.db.read() as db:
            rows = db.execute(
                select(name_cards.c.user_id, name_cards.c.name_card).where(name_cards.c.group_id == group_id)
            )
            return {row.user_id: row.name_card for row in rows}

    def set_name_card(self, group_id: str, user_id: str, name_card: str) -> None:
        """A member's name card; an empty one is removed."""
        with self.db.write() as db:
            if not name_card:
                db.execute(delete(name_cards).where(name_cards.c.group_id == group_id, name_cards.c.user_id == user_id))
                return
            statement = self._insert(name_cards).values(group_id=group_id, user_id=user_id, name_card=name_card)
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=["group_id", "user_id"], set_={"name_card": statement.excluded.name_card}
                )
            )

    def set_delivery(self, key: str, *, unread: bool, update_conversation: bool) -> None:
        """Keep a stored message's delivery flags (what conversation lists and unread counts honour)."""
        values = {"key": key, "unread": int(unread), "update_conversation": int(update_conversation)}
        statement = self._insert(message_delivery).values(values)
        with self.db.write() as db:
            db.execute(
                statement.on_conflict_do_update(
                    index_elements=["key"],
                    set_={"unread": values["unread"], "update_conversation": values["update_conversation"]},
                )
            )

    def delivery(self, keys: Iterable[str]) -> dict[str, tuple[bool, bool]]:
        """(unread, update_conversation) of the messages that were sent with other than the defaults."""
        ids = list(keys)
        found: dict[str, tuple[bool, bool]] = {}
        with self.db.read() as db:
            for start in range(0, len(ids), _IN_CHUNK):
                rows = db.execute(
                    select(message_delivery).where(message_delivery.c["key"].in_(ids[start : start + _IN_CHUNK]))
                )
                found.update({row.key: (bool(row.unread), bool(row.update_conversation)) for row in rows})
        return found

    # -- messages -----------------------------------------------------------------------------

    def append_message(
        self, conversation: str, *, key: str, sender: str, elements: list[dict[str, Any]],
        metadata: dict[str, Any], time: float | Callable[[], float], dedupe: str | None,
        dedupe_window: float | None = None,
    ) -> tuple[MessageRow, bool]:  # fmt: skip
        """Store a message at the conversation's next seq. With a ``dedupe`` key already stored in the
        conversation, nothing is written and the stored message is returned; the flag says 'new'.

        ``time`` (epoch seconds, or a clock read once the conversation is locked) is raised to the
        conversation's last message time if it is earlier, so times never go backwards along seqs.

        With ``dedupe_window`` (seconds) a key only holds that long, as servers that dedupe within a
        window do: a stored message older than ``time - dedupe_window`` releases its key and the new
        message is stored."""
        encoded_elements, encoded_metadata = json.dumps(elements), json.dumps(metadata)
        try:
            with self.db.write() as db:
                moment = time() if callable(time) else time
                # Locks the conversation's counter row until commit: the next writer waits here.
                seq, moment = self._allocate.first(db, {"conversation": conversation, "count": 1, "time": moment})
                if dedupe is not None:
                    found = self._by_dedupe.first(db, {"conversation": conversation, "dedupe": dedupe})
                    if found is not None and (dedupe_window is None or found.time >= moment - dedupe_window):
                        raise _Duplicate(_message_row(found))  # rolls the seq back
                    if found is not None:
                        db.execute(
                            update(messages)
                            .where(messages.c.conversation == conversation, messages.c.seq == found.seq)
                            .values(dedupe=None)
                        )
                self._insert_message.run(
                    db,
                    {"conversation": conversation, "seq": seq, "key": key, "sender": sender,
                     "elements": encoded_elements, "metadata": encoded_metadata, "time": moment,
                     "dedupe": dedupe, "revoked": 0},
                )  # fmt: skip
        except _Duplicate as duplicate:
            return duplicate.row, False
        return MessageRow(conversation, seq, key, sender, elements, metadata, moment, dedupe, False), True

    def append_messages(self, new_messages: Iterable[NewMessage]) -> int:
        """Store many messages with the times given (an import, a seed) in one transaction. Each takes
        its conversation's next seq, in the order given; dedupe keys are stored, not checked. Returns
        how many were written."""
        by_conversation: dict[str, list[NewMessage]] = {}
        for message in new_messages:
            by_conversation.setdefault(message.conversation, []).append(message)
        rows: list[dict[str, Any]] = []
        with self.db.write() as db:
            for conversation in sorted(by_conversation):
                batch = by_conversation[conversation]
                last, _ = self._allocate.first(
                    db, {"conversation": conversation, "count": len(batch), "time": max(m.time for m in batch)}
                )
                for seq, message in enumerate(batch, start=last - len(batch) + 1):
                    rows.append({
                        "conversation": conversation, "seq": seq, "key": message.key, "sender": message.sender,
                        "elements": "[]" if message.revoked else json.dumps(message.elements),
                        "metadata": json.dumps(message.metadata), "time": message.time, "dedupe": message.dedupe,
                        "revoked": int(message.revoked),
                    })  # fmt: skip
            if rows:
                db.execute(messages.insert(), rows)
        return len(rows)

    def conversations(self, prefix: str = "") -> dict[str, float]:
        """Conversation keys starting with ``prefix`` and the time of each one's newest message."""
        with self.db.read() as db:
            rows = db.execute(
                select(conversations.c["key"], conversations.c.last_time).where(
                    conversations.c["key"].startswith(prefix, autoescape=True)
                )
            )
            return {row.key: row.last_time for row in rows}

    def message_count(self) -> int:
        """How many messages are stored, in every conversation."""
        with self.db.read() as db:
            return int(db.execute(select(func.count()).select_from(messages)).scalar_one())

    def message_by_dedupe(self, conversation: str, dedupe: str) -> MessageRow | None:
        """The message stored in ``conversation`` under this dedupe key, if any."""
        with self.db.read() as db:
            row = self._by_dedupe.first(db, {"conversation": conversation, "dedupe": dedupe})
        return _message_row(row) if row is not None else None

    def message_by_key(self, key: str) -> MessageRow | None:
        with self.db.read() as db:
            row = self._by_key.first(db, {"key": key})
        return _message_row(row) if row is not None else None

    def messages(
        self,
        conversation: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
        descending: bool = True,
    ) -> list[MessageRow]:
        """Messages of a conversation with seq strictly between ``after`` and ``before`` (``limit`` -1: all)."""
        with self.db.read() as db:
            rows = self._page[descending].rows(
                db,
                {"conversation": conversation, "before": _NO_LIMIT if before is None else before,
                 "after": 0 if after is None else after, "limit": _NO_LIMIT if limit < 0 else limit},
            )  # fmt: skip
            return [_message_row(row) for row in rows]

    def revoke_message(self, key: str) -> bool | None:
        """Mark a message revoked and drop its content. None: no such message; False: already revoked."""
        with self.db.write() as db:
            result = db.execute(
                update(messages)
                .where(messages.c["key"] == key, messages.c.revoked == 0)
                .values(revoked=1, elements="[]")
            )
            if result.rowcount == 1:
                return True
            return False if db.execute(select(messages.c.seq).where(messages.c["key"] == key)).first() else None

    # -- read positions (conversation lists, unread counts) ----------------------------------

    def read_position(self, user_id: str, conversation: str) -> tuple[int, int]:
        """(read up to this seq, hidden from the list up to this seq) of ``user_id`` in a conversation."""
        with self.db.read() as db:
            row = db.execute(
                select(read_positions.c.read_seq, read_positions.c.hidden_seq).where(
                    read_positions.c.user_id == user_id, read_positions.c.conversation == conversation
                )
            ).first()
        return (int(row.read_seq), int(row.hidden_seq)) if row is not None else (0, 0)

    def set_read_position(
        self, user_id: str, conversation: str, *, read_seq: int | None = None, hidden_seq: int | None = None
    ) -> None:
        """Set either position (None keeps it)."""
        changes = {name: value for name, value in (("read_seq", read_seq), ("hidden_seq", hidden_seq))
                   if value is not None}  # fmt: skip
        statement = self._insert(read_positions).values(
            user_id=user_id, conversation=conversation, read_seq=read_seq or 0, hidden_seq=hidden_seq or 0
        )
        with self.db.write() as db:
            db.execute(statement.on_conflict_do_update(index_elements=["user_id", "conversation"], set_=changes))

    def user_chats(self, user_id: str) -> list[str]:
        """Keys of the one-to-one conversations ``user_id`` has a message in (from the counter rows)."""
        key = conversations.c["key"]
        with self.db.read() as db:
            found = db.execute(
                select(key).where(
                    key.startswith(f"u:{user_id}|", autoescape=True) | key.endswith(f"|{user_id}", autoescape=True),
                    conversations.c.last_seq > 0,
                )
            ).scalars()
            return [k for k in found if user_id in k[2:].split("|")]

    def seqs_after(self, conversation: str, after_seq: int, *, not_from: str) -> list[int]:
        """Seqs of the messages after ``after_seq`` not sent by ``not_from``, newest first."""
        with self.db.read() as db:
            return list(
                db.execute(
                    select(messages.c.seq)
                    .where(
                        messages.c.conversation == conversation,
                        messages.c.seq > after_seq,
                        messages.c.sender != not_from,
                    )
                    .order_by(messages.c.seq.desc())
                ).scalars()
            )

    def last_seq(self, conversation: str, *, sender: str | None = None, before_time: float | None = None) -> int:
        """The newest seq of a conversation (0 when empty), of ``sender``'s messages, or stored before a time."""
        query = select(func.max(messages.c.seq)).where(messages.c.conversation == conversation)
        if sender is not None:
            query = query.where(messages.c.sender == sender)
        if before_time is not None:
            query = query.where(messages.c.time < before_time)
        with self.db.read() as db:
            return int(db.execute(query).scalar() or 0)

    # -- revocation records (for providers whose server cannot revoke) ------------------------

    def record_revocation(self, scope: str, key: str, now: float) -> bool:
        with self.db.write() as db:
            result = db.execute(
                self._insert(revocations).values(scope=scope, key=key, revoked_at=now).on_conflict_do_nothing()
            )
            return result.rowcount == 1

    def revoked_keys(self, scope: str, keys: Iterable[str]) -> set[str]:
        ids = list(keys)
        found: set[str] = set()
        with self.db.read() as db:
            for start in range(0, len(ids), _IN_CHUNK):
                found.update(
                    db.execute(
                        select(revocations.c["key"]).where(
                            revocations.c.scope == scope, revocations.c["key"].in_(ids[start : start + _IN_CHUNK])
                        )
                    ).scalars()
                )
        return found

    # -- WuKongIM channel flags it cannot read back -------------------------------------------

    def channel_flags(self, channel_id: str) -> str | None:
        with self.db.read() as db:
            return db.execute(
                select(wukong_channel_flags.c.flags).where(wukong_channel_flags.c.channel_id == channel_id)
            ).scalar_one_or_none()

    def set_channel_flags(self, channel_id: str, flags: str) -> None:
        statement = self._insert(wukong_channel_flags).values(channel_id=channel_id, flags=flags)
        with self.db.write() as db:
            db.execute(statement.on_conflict_do_update(index_elements=["channel_id"], set_={"flags": flags}))


def _message_row(row: Any) -> MessageRow:
    return MessageRow(
        conversation=row.conversation, seq=row.seq, key=row.key, sender=row.sender,
        elements=json.loads(row.elements), metadata=json.loads(row.metadata), time=row.time,
        dedupe=row.dedupe, revoked=bool(row.revoked),
    )  # fmt: skip
