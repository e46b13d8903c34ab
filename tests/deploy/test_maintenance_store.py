"""The store side of due work, on SQLite and on a real PostgreSQL: the lease that lets one instance at a time
do the work, and the timed mutes by when they end. (Contention between processes: test_worker_processes.py,
which fails without the lease.)"""

from __future__ import annotations

from imbridge.providers.local.store import Store
from imbridge.storage.maintenance import MAINTENANCE_SCHEMA, DueMute, Leases, MuteSchedule


def test_a_lease_has_one_holder_until_it_expires(store_url: str) -> None:
    store = Store(store_url)
    leases = Leases(store.db)
    assert leases.acquire("work", "a", now=100.0, seconds=10)
    assert not leases.acquire("work", "b", now=105.0, seconds=10)  # a holds it
    assert leases.acquire("work", "a", now=105.0, seconds=10)  # a renews: until 115
    assert not leases.acquire("work", "b", now=114.9, seconds=10)
    current = leases.current("work")
    assert current is not None and (current.holder, current.expires_at) == ("a", 115.0)
    assert leases.acquire("work", "b", now=115.0, seconds=10)  # expired: b takes over
    assert not leases.release("work", "a")  # a no longer holds it: nothing to give back
    assert leases.current("work").holder == "b"  # type: ignore[union-attr]
    assert leases.acquire("other", "a", now=116.0, seconds=10)  # leases are independent by name
    assert leases.release("work", "b") and leases.current("work") is None
    assert leases.acquire("work", "a", now=116.0, seconds=10)
    store.close()


def test_the_lease_schema_is_versioned_apart_and_created_once(store_url: str) -> None:
    store = Store(store_url)
    Leases(store.db)
    Leases(store.db)  # a second instance on the same database finds it made
    assert store.meta(MAINTENANCE_SCHEMA.version_key) == "1"
    assert store.meta("schema_version") == "2"  # the core schema is untouched
    store.close()


def test_due_mutes_and_the_next_end(store_url: str) -> None:
    store = Store(store_url)
    schedule = MuteSchedule(store.db)
    for group_id, user_id, until in (("g1", "a", 10.0), ("g1", "b", 30.0), ("g2", "c", 20.0), ("g2", "d", 10.0)):
        store.set_mutes(group_id, [user_id], until)
    assert schedule.due(5.0, limit=10) == []
    assert schedule.next_end(5.0) == 10.0
    assert schedule.due(20.0, limit=10) == [
        DueMute("g1", "a", 10.0),
        DueMute("g2", "d", 10.0),
        DueMute("g2", "c", 20.0),
    ]
    assert schedule.due(20.0, limit=2) == [DueMute("g1", "a", 10.0), DueMute("g2", "d", 10.0)]  # oldest first
    assert schedule.due_in_group("g2", 20.0) == [DueMute("g2", "c", 20.0), DueMute("g2", "d", 10.0)]
    assert schedule.next_end(20.0) == 30.0 and schedule.next_end(30.0) is None
    store.close()


def test_clearing_keeps_a_mute_renewed_meanwhile(store_url: str) -> None:
    store = Store(store_url)
    schedule = MuteSchedule(store.db)
    store.set_mutes("g", ["a", "b", "c"], 10.0)
    due = schedule.due_in_group("g", 11.0)
    store.set_mutes("g", ["b"], 500.0)  # b is muted again between the read and the clear
    store.set_mutes("g", ["c"], None)  # c is unmuted meanwhile
    assert schedule.clear(due) == {"b"}
    assert store.mutes("g", 11.0) == {"b": 500.0}
    assert schedule.due(11.0, limit=10) == []
    store.close()
