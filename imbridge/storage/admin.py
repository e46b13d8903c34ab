"""The tables issue 17 added to imbridge's store: group join policies, member name cards, and the delivery
flags of messages sent as not unread or not updating conversations.

A schema of its own (``meta.schema_version:admin``) beside the core one, so that it is created in any store,
new or older, without a step in the core schema's version chain.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table, Text

from imbridge.storage.schema import Schema

ADMIN = MetaData()

group_policies = Table(
    "group_policies", ADMIN,
    Column("group_id", Text, primary_key=True),
    Column("join_option", Text),
    Column("max_members", Integer),
)  # fmt: skip
name_cards = Table(
    "name_cards", ADMIN,
    Column("group_id", Text, primary_key=True),
    Column("user_id", Text, primary_key=True),
    Column("name_card", Text, nullable=False),
)  # fmt: skip
message_delivery = Table(
    "message_delivery", ADMIN,
    Column("key", Text, primary_key=True),
    Column("unread", Integer, nullable=False),
    Column("update_conversation", Integer, nullable=False),
)  # fmt: skip

ADMIN_SCHEMA = Schema("admin", ADMIN, 1)
