"""The store's operations, the same on SQLite and PostgreSQL: what the providers and emulators rely on."""

from __future__ import annotations

import pytest

from imbridge.errors import ConfigurationError
from imbridge.providers.local.store import NewMessage, Store, conversation_key
from imbridge.storage import SCHEMA_VERSION


@pytest.fixture
def store(store_url: str) -> Store:
    opened = Store(store_url)
    yield opened  # type: ignore[misc]
    opened.close()


def append(store: Store, conversation: str, key: str, at: float, dedupe: str | None = None) -> tuple[int, float, bool]:
    row, new = store.append_message(conversation, key=key, sender="a", elements=[{"t": key}], metadata={"k": key},
                                    time=at, dedupe=dedupe)  # fmt: skip
    return row.seq, row.time, new


def test_schema_version_and_meta(store: Store) -> None:
    assert store.meta("schema_version") == str(SCHEMA_VERSION)
    assert store.meta_setdefault("secret", "first") == "first"
    assert store.meta_setdefault("secret", "second") == "first"
    store.set_meta("k", "1")
    store.set_meta("k", "2")
    assert store.meta("k") == "2" and store.meta("absent") is None


def test_users_and_profiles(store: Store) -> None:
    assert store.add_users(["b", "a", "b"], 1.0) == {"b": True, "a": True}
    assert store.add_users(["a", "c"], 2.0) == {"a": False, "c": True}
    assert store.existing_users(["a", "x", "c"]) == {"a", "c"}
    assert store.existing_users([f"u{n}" for n in range(1200)] + ["a"]) == {"a"}  # more than one IN chunk
    assert store.user_ids() == ["a", "b", "c"]
    store.set_profiles({"a": {"nickname": "A", "custom:x": "1"}})
    store.set_profile_fields("a", {"custom:x": "2"})
    assert store.profile("a") == {"nickname": "A", "custom:x": "2"} and store.profile("b") == {}


def test_groups_members_and_mutes(store: Store) -> None:
    def create(group_id: str, now: float) -> bool:
        return store.create_group(group_id, name="N", owner="a", introduction="i", notification="", face_url="",
                                  now=now, members=[("a", "owner"), ("b", "member")])  # fmt: skip

    assert create("g1", 1.0) and not create("g1", 2.0)
    group = store.group("g1")
    assert group is not None and (group.name, group.owner, group.member_count, group.mute_all) == ("N", "a", 2, False)
    assert store.update_group("g1", {"name": "M", "mute_all": 1}) and not store.update_group("nope", {"name": "x"})
    group = store.group("g1")
    assert group is not None and (group.name, group.mute_all) == ("M", True)
    with pytest.raises(ValueError):
        store.update_group("g1", {"dismissed_at": 1})
    assert store.add_members("g1", [("c", "member"), ("a", "member")], 3.0) == {"c": True, "a": False}
    assert store.member("g1", "a").role == "owner"  # type: ignore[union-attr]
    assert store.set_role("g1", "c", "admin") and not store.set_role("g1", "zz", "admin")
    assert [m.user_id for m in store.members("g1")] == ["a", "b", "c"]
    assert [m.user_id for m in store.members("g1", offset=1, limit=1)] == ["b"]
    assert store.remove_members("g1", ["b", "zz"]) == {"b": True, "zz": False}
    assert store.groups_of("c") == ["g1"] and store.groups_of("b") == []
    store.set_mutes("g1", ["c", "a"], 100.0)
    assert store.member("g1", "c").muted_until == 100.0  # type: ignore[union-attr]
    assert store.mutes("g1", 50.0) == {"a": 100.0, "c": 100.0}
    store.set_mutes("g1", ["a"], None)
    assert store.mutes("g1", 100.0) == {}  # expired at 100: dropped
    assert store.dismiss_group("g1", 5.0) and not store.dismiss_group("g1", 6.0)
    assert store.group("g1") is None and store.group_ids() == []
    append(store, conversation_key("group", "g1"), "old", 1.0)
    assert create("g1", 7.0)  # a dismissed id is free again, its history forgotten
    assert store.messages(conversation_key("group", "g1")) == []
    assert append(store, conversation_key("group", "g1"), "new", 8.0)[0] == 1


def test_seq_time_dedupe_and_paging(store: Store) -> None:
    conv = conversation_key("user", "b", "a")
    assert conv == conversation_key("user", "a", "b")
    assert append(store, conv, "m1", 10.0, "d1") == (1, 10.0, True)
    assert append(store, conv, "m2", 5.0) == (2, 10.0, True)  # an earlier clock reading is raised to the last time
    assert append(store, conv, "m3", 11.0, "d1") == (1, 10.0, False)  # the dedupe key: the stored message
    assert append(store, conv, "m4", 12.0) == (3, 12.0, True)  # and the refused duplicate used no seq
    seen: list[float] = []
    seq, _, _ = append(store, conv, "m5", 0.0)
    row, _ = store.append_message(conv, key="m6", sender="a", elements=[], metadata={}, dedupe=None,
                                  time=lambda: seen.append(1.0) or 99.0)  # fmt: skip
    assert (seq, row.seq, row.time, seen) == (4, 5, 99.0, [1.0])  # a clock is read once, under the lock
    assert [r.seq for r in store.messages(conv, limit=2)] == [5, 4]
    assert [r.seq for r in store.messages(conv, before=4, limit=2)] == [3, 2]
    assert [r.key for r in store.messages(conv, after=3, descending=False)] == ["m5", "m6"]
    assert len(store.messages(conv, limit=-1)) == 5 and store.message_count() == 5
    m1 = store.message_by_key("m1")
    assert m1 is not None and (m1.elements, m1.metadata, m1.dedupe) == ([{"t": "m1"}], {"k": "m1"}, "d1")
    assert store.revoke_message("m1") is True and store.revoke_message("m1") is False
    assert store.revoke_message("nope") is None
    m1 = store.message_by_key("m1")
    assert m1 is not None and m1.revoked and m1.elements == []


def test_dedupe_window(store: Store) -> None:
    conv = conversation_key("group", "g")

    def send(key: str, at: float) -> tuple[int, bool]:
        row, new = store.append_message(conv, key=key, sender="a", elements=[], metadata={}, time=at, dedupe="d",
                                        dedupe_window=120)  # fmt: skip
        return row.seq, new

    assert send("m1", 0.0) == (1, True)
    assert send("m2", 120.0) == (1, False)
    assert send("m3", 121.0) == (2, True)
    assert send("m4", 200.0) == (2, False)


def test_bulk_import_continues_seqs_and_conversations_by_prefix(store: Store) -> None:
    a, b, odd = conversation_key("group", "g_1"), conversation_key("user", "x", "y"), conversation_key("group", "g%1")
    append(store, a, "first", 1.0)
    assert store.append_messages([
        NewMessage(a, "k1", "s", [{"t": 1}], 5.0, {"m": 1}),
        NewMessage(b, "k2", "x", [{"t": 2}], 6.0),
        NewMessage(a, "k3", "s", [{"t": 3}], 7.0, revoked=True),
        NewMessage(odd, "k4", "s", [], 3.0),
    ]) == 4  # fmt: skip
    rows = store.messages(a, descending=False)
    assert [(r.seq, r.key, r.time, r.revoked, r.elements) for r in rows] == [
        (1, "first", 1.0, False, [{"t": "first"}]), (2, "k1", 5.0, False, [{"t": 1}]), (3, "k3", 7.0, True, []),
    ]  # fmt: skip
    assert append(store, a, "after", 2.0)[:2] == (4, 7.0)
    assert store.conversations("u:") == {b: 6.0}
    assert store.conversations("g:g_") == {a: 7.0}  # "_" and "%" are not wildcards
    assert store.conversations() == {a: 7.0, b: 6.0, odd: 3.0}


def test_revocation_records_and_channel_flags(store: Store) -> None:
    assert store.record_revocation("g:1", "k", 1.0) and not store.record_revocation("g:1", "k", 2.0)
    assert store.revoked_keys("g:1", ["k", "j"]) == {"k"} and store.revoked_keys("g:2", ["k"]) == set()
    assert store.channel_flags("c") is None
    store.set_channel_flags("c", '{"ban": 1}')
    store.set_channel_flags("c", '{"ban": 0}')
    assert store.channel_flags("c") == '{"ban": 0}'


def test_reopening_keeps_everything(store_url: str) -> None:
    first = Store(store_url)
    append(first, "c", "m1", 1.0)
    first.close()
    second = Store(store_url)
    try:
        assert append(second, "c", "m2", 0.5)[:2] == (2, 1.0)
    finally:
        second.close()


def test_a_newer_schema_is_refused(store_url: str) -> None:
    store = Store(store_url)
    store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(ConfigurationError, match="newer than this imbridge"):
        Store(store_url)
