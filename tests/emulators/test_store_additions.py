"""Store methods the emulators need: bulk message import, windowed dedupe, bulk profiles, lookups."""

from __future__ import annotations

from imbridge.providers.local.store import NewMessage, Store, conversation_key


def test_append_messages_assigns_seqs_in_order_and_continues() -> None:
    store = Store()
    a, b = conversation_key("group", "g1"), conversation_key("user", "x", "y")
    store.append_message(a, key="first", sender="s", elements=[], metadata={}, time=1.0, dedupe=None)
    written = store.append_messages([
        NewMessage(a, "k1", "s", [{"t": 1}], 5.0, {"m": 1}),
        NewMessage(b, "k2", "x", [{"t": 2}], 6.0),
        NewMessage(a, "k3", "s", [{"t": 3}], 7.0, revoked=True),
    ])  # fmt: skip
    assert written == 3
    rows = store.messages(a, descending=False)
    assert [(r.seq, r.key, r.time, r.revoked, r.elements) for r in rows] == [
        (1, "first", 1.0, False, []), (2, "k1", 5.0, False, [{"t": 1}]), (3, "k3", 7.0, True, []),
    ]  # fmt: skip
    assert store.message_by_key("k1").metadata == {"m": 1}  # type: ignore[union-attr]
    assert store.conversations("u:") == {b: 6.0}
    assert store.conversations() == {a: 7.0, b: 6.0}


def test_dedupe_window_releases_old_keys() -> None:
    store = Store()
    conv = conversation_key("user", "a", "b")

    def send(key: str, at: float) -> tuple[int, bool]:
        row, new = store.append_message(conv, key=key, sender="a", elements=[], metadata={}, time=at, dedupe="d",
                                        dedupe_window=120)  # fmt: skip
        return row.seq, new

    assert send("m1", 0.0) == (1, True)
    assert send("m2", 120.0) == (1, False)  # inside the window: the original
    assert send("m3", 121.0) == (2, True)  # past it: stored again, and now holds the key
    assert send("m4", 200.0) == (2, False)
    # Without a window a key holds forever, as before.
    row, new = store.append_message(conv, key="m5", sender="a", elements=[], metadata={}, time=1e9, dedupe="e")
    again, new_again = store.append_message(conv, key="m6", sender="a", elements=[], metadata={}, time=2e9,
                                            dedupe="e")  # fmt: skip
    assert new and not new_again and again.key == row.key == "m5"


def test_profiles_groups_of_and_meta() -> None:
    store = Store()
    store.add_users(["a", "b"], 0.0)
    store.set_profiles({"a": {"nick": "A"}, "b": {"nick": "B", "x": "1"}})
    store.set_profile_fields("a", {"x": "2"})
    assert store.profile("a") == {"nick": "A", "x": "2"} and store.profile("b") == {"nick": "B", "x": "1"}
    for gid in ("g2", "g1", "g3"):
        store.create_group(gid, name=gid, owner="a", introduction="", notification="", face_url="", now=0.0,
                           members=[("a", "owner")])  # fmt: skip
    store.dismiss_group("g3", 1.0)
    assert store.groups_of("a") == ["g1", "g2"] and store.groups_of("b") == []
    store.set_meta("k", "1")
    store.set_meta("k", "2")
    assert store.meta("k") == "2"
