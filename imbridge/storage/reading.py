"""Where each user has read each conversation up to: the ``local`` provider's per-user read positions.

A schema of its own (``schema_version:read_positions`` in ``meta``), so a store made before it gains the
table when opened, and the core schema's version is untouched.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, Table, Text

from imbridge.storage.schema import Schema

READING = MetaData()

read_positions = Table(
    "read_positions", READING,
    Column("user_id", Text, primary_key=True),
    Column("conversation", Text, primary_key=True),
    Column("read_seq", BigInteger, nullable=False, server_default="0"),  # read up to this seq
    Column("hidden_seq", BigInteger, nullable=False, server_default="0"),  # deleted from the list up to this seq
)  # fmt: skip

READING_SCHEMA = Schema("read_positions", READING, 1)
