"""Issue 17's store operations on SQLite and PostgreSQL alike: owners, name cards, join policies, group pages,
account deletion, delivery flags and mutes without an end."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from imbridge.providers.local.store import MUTED_FOREVER, Store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def _group(store: Store, group_id: str, now: float) -> None:
    members = [("a", "owner"), ("b", "member"), ("c", "admin")]
    assert store.create_group(group_id, name=group_id.upper(), owner="a", introduction="", notification="",
                              face_url="", now=now, members=members)  # fmt: skip


def test_admin_schema_is_recorded(store: Store) -> None:
    assert store.meta("schema_version:admin") == "1"


def test_transfer_owner(store: Store) -> None:
    _group(store, "g1", 1.0)
    assert store.transfer_owner("g1", "b")
    roles = {m.user_id: m.role for m in store.members("g1")}
    assert roles == {"a": "member", "b": "owner", "c": "admin"}
    group = store.group("g1")
    assert group is not None and group.owner == "b"
    assert not store.transfer_owner("g1", "stranger") and not store.transfer_owner("nope", "b")


def test_name_cards_follow_membership(store: Store) -> None:
    _group(store, "g1", 1.0)
    store.set_name_card("g1", "b", "Bee")
    store.set_name_card("g1", "c", "Sea")
    store.set_name_card("g1", "c", "See")
    assert store.name_cards("g1") == {"b": "Bee", "c": "See"}
    store.set_name_card("g1", "c", "")
    store.remove_members("g1", ["b"])
    assert store.name_cards("g1") == {}


def test_group_policy_keeps_what_is_not_given(store: Store) -> None:
    _group(store, "g1", 1.0)
    assert store.group_policy("g1") == (None, None)
    store.set_group_policy("g1", "closed", 50)
    store.set_group_policy("g1", None, 20)
    assert store.group_policy("g1") == ("closed", 20)
    store.set_group_policy("g1", "free", None)
    assert store.group_policy("g1") == ("free", 20)
    store.dismiss_group("g1", 2.0)
    _group(store, "g1", 3.0)  # a new group with the id: the old policy is gone
    assert store.group_policy("g1") == (None, None)


def test_groups_page_in_creation_order(store: Store) -> None:
    for n, group_id in enumerate(["g3", "g1", "g2"]):
        _group(store, group_id, 10.0 + n)
    _group(store, "g0", 11.0)  # same time as g1: the id breaks the tie
    first = store.groups_page(None, 2)
    assert [g.id for g in first] == ["g3", "g0"]
    rest = store.groups_page((first[-1].created_at, first[-1].id), 10)
    assert [g.id for g in rest] == ["g1", "g2"]


def test_delete_user(store: Store) -> None:
    store.add_users(["a", "b", "c"], 1.0)
    store.set_profile_fields("b", {"nickname": "B"})
    _group(store, "g1", 1.0)
    store.set_name_card("g1", "a", "A")
    store.set_mutes("g1", ["a"], 100.0)
    assert store.delete_user("a") and not store.delete_user("a")
    assert store.existing_users(["a", "b"]) == {"b"}
    group = store.group("g1")
    assert group is not None and group.owner is None
    assert [m.user_id for m in store.members("g1")] == ["b", "c"] and store.name_cards("g1") == {}


def test_mute_without_end_never_expires(store: Store) -> None:
    _group(store, "g1", 1.0)
    store.set_mutes("g1", ["b"], MUTED_FOREVER)
    assert store.mutes("g1", 1e12) == {"b": MUTED_FOREVER}
    member = store.member("g1", "b")
    assert member is not None and member.muted_until is not None and math.isinf(member.muted_until)


def test_delivery_flags(store: Store) -> None:
    store.set_delivery("k1", unread=False, update_conversation=True)
    store.set_delivery("k2", unread=False, update_conversation=False)
    store.set_delivery("k1", unread=True, update_conversation=False)
    assert store.delivery(["k1", "k2", "k3"]) == {"k1": (True, False), "k2": (False, False)}
