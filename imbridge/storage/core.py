"""The tables of imbridge's store (users, profiles, groups, members, mutes, messages, revocations), version 2.

Version 1 is what the first, SQLite-only store wrote (``meta.schema_version = '1'``); version 2 adds the
``conversations`` table, one row per conversation holding its last seq and last message time: the row a
writer locks to allocate the next seq (see :mod:`imbridge.storage.database`), filled from the messages
on upgrade. It also takes in the WuKongIM provider's ``wukong_channel_flags`` (created on the fly before)
and an index for "groups of a user".
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, Index, Integer, MetaData, Table, Text, func, insert, select
from sqlalchemy.engine import Connection

from imbridge.storage.schema import Schema

SCHEMA_VERSION = 2

CORE = MetaData()

users = Table(
    "users", CORE,
    Column("id", Text, primary_key=True),
    Column("created_at", Double, nullable=False),
)  # fmt: skip
profiles = Table(
    "profiles", CORE,
    Column("user_id", Text, primary_key=True),
    Column("field", Text, primary_key=True),
    Column("value", Text, nullable=False),
)  # fmt: skip
groups = Table(
    "groups", CORE,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("owner", Text),
    Column("introduction", Text, nullable=False, server_default=""),
    Column("notification", Text, nullable=False, server_default=""),
    Column("face_url", Text, nullable=False, server_default=""),
    Column("mute_all", Integer, nullable=False, server_default="0"),
    Column("created_at", Double, nullable=False),
    Column("dismissed_at", Double),
)  # fmt: skip
members = Table(
    "members", CORE,
    Column("group_id", Text, primary_key=True),
    Column("user_id", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("joined_at", Double, nullable=False),
)  # fmt: skip
members_by_user = Index("members_user", members.c.user_id)
mutes = Table(
    "mutes", CORE,
    Column("group_id", Text, primary_key=True),
    Column("user_id", Text, primary_key=True),
    Column("until", Double, nullable=False),
)  # fmt: skip
messages = Table(
    "messages", CORE,
    Column("conversation", Text, primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("key", Text, nullable=False, unique=True),
    Column("sender", Text, nullable=False),
    Column("elements", Text, nullable=False),
    Column("metadata", Text, nullable=False, server_default="{}"),
    Column("time", Double, nullable=False),
    Column("dedupe", Text),
    Column("revoked", Integer, nullable=False, server_default="0"),
)  # fmt: skip
Index(
    "messages_dedupe", messages.c.conversation, messages.c.dedupe, unique=True,
    sqlite_where=messages.c.dedupe.is_not(None), postgresql_where=messages.c.dedupe.is_not(None),
)  # fmt: skip
revocations = Table(
    "revocations", CORE,
    Column("scope", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("revoked_at", Double, nullable=False),
)  # fmt: skip
conversations = Table(
    "conversations", CORE,
    Column("key", Text, primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_time", Double, nullable=False),
)  # fmt: skip
wukong_channel_flags = Table(
    "wukong_channel_flags", CORE,
    Column("channel_id", Text, primary_key=True),
    Column("flags", Text, nullable=False),
)  # fmt: skip


def _upgrade_1_to_2(connection: Connection) -> None:
    conversations.create(connection, checkfirst=True)
    wukong_channel_flags.create(connection, checkfirst=True)  # the WuKongIM provider made it on the fly
    members_by_user.create(connection, checkfirst=True)
    connection.execute(
        insert(conversations).from_select(
            ["key", "last_seq", "last_time"],
            select(messages.c.conversation, func.max(messages.c.seq), func.max(messages.c.time)).group_by(
                messages.c.conversation
            ),
        )
    )


CORE_SCHEMA = Schema("core", CORE, SCHEMA_VERSION, {1: _upgrade_1_to_2})
