"""``im.maintenance.run_due()`` on WuKongIM (the WuKongIM emulator: the denylist is the server's state), its
schedules (``run_forever``, the async client's background runs) and what it does when things go wrong.

The proof against the real server is the contract test ``test_maintenance.py`` (recorded in
``cassettes/wukong/test_maintenance/``); ``test_worker_processes.py`` runs several workers on one store.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from recording_emulator import TOKEN, RecordingEmulator

from imbridge import AsyncIMClient, IMClient, PermissionDeniedError
from imbridge.emulators._base import EmulatorReply
from imbridge.emulators.wukong import WukongEmulator
from imbridge.models.maintenance import MaintenanceReport
from imbridge.providers.wukong import maintenance as wukong_maintenance
from imbridge.resources.maintenance import next_wait
from imbridge.storage.maintenance import Leases
from imbridge.testing import FakeClock


@pytest.fixture
def emulator() -> Iterator[RecordingEmulator]:
    made = RecordingEmulator()
    yield made
    made.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 12, 1, tzinfo=UTC))


def _client(emulator: WukongEmulator, store: str, clock: Any = None, **options: Any) -> IMClient:
    return IMClient(
        "wukong", http_client=httpx.Client(transport=emulator.transport()), base_url="http://wk.test",
        manager_token=TOKEN, store=store, policy_cache_seconds=0, clock=clock, **options,
    )  # fmt: skip


def _groups(im: IMClient, *group_ids: str) -> None:
    im.users.register(["own", "a", "b", "c"])
    for group_id in group_ids:
        im.groups.create("T", owner="own", members=["a", "b", "c"], group_id=group_id)


def _removes(emulator: RecordingEmulator) -> list[tuple[str, list[str]]]:
    return [(body["channel_id"], body["uids"]) for method, path, body in emulator.seen if path.endswith("_remove")]


def test_run_due_lifts_ended_mutes_in_every_group_with_nothing_else(
    emulator: RecordingEmulator, clock: FakeClock, tmp_path: Path
) -> None:
    im = _client(emulator, str(tmp_path / "s.db"), clock)
    _groups(im, "g1", "g2", "g3")
    im.groups.mute("g1", ["a", "b"], timedelta(seconds=10))
    im.groups.mute("g2", ["c"], timedelta(seconds=20))
    im.groups.mute("g3", ["a"], timedelta(seconds=60))
    clock.advance(21)
    emulator.seen.clear()
    report = im.maintenance.run_due()
    assert report.ran and report.failures == [] and not report.more_due
    assert sorted((m.group_id, m.user_id) for m in report.lifted_mutes) == [("g1", "a"), ("g1", "b"), ("g2", "c")]
    assert {m.user_id: m.muted_until for m in report.lifted_mutes if m.group_id == "g1"} == {
        "a": clock.now() - timedelta(seconds=11),
        "b": clock.now() - timedelta(seconds=11),
    }
    # One request per group that had something due, and nothing else (no reads: the store knows what is due).
    assert sorted(_removes(emulator)) == [("g1", ["a", "b"]), ("g2", ["c"])]
    assert len(emulator.seen) == 2
    assert emulator.denylist("g1") == [] and emulator.denylist("g2") == [] and emulator.denylist("g3") == ["a"]
    assert report.next_due_at == clock.now() + timedelta(seconds=39)
    # Done once: a second run finds nothing due.
    emulator.seen.clear()
    again = im.maintenance.run_due()
    assert again.lifted_mutes == [] and emulator.seen == []
    im.close()


def test_a_member_muted_again_while_the_old_mute_is_lifted_stays_muted(
    emulator: RecordingEmulator, clock: FakeClock, tmp_path: Path
) -> None:
    store = str(tmp_path / "s.db")
    worker, app = _client(emulator, store, clock), _client(emulator, store, clock)
    _groups(app, "g")
    app.groups.mute("g", ["a"], timedelta(seconds=5))
    clock.advance(6)
    # Drive the worker's flow by hand so that the app's new mute lands between the worker reading what is due
    # and its blacklist_remove reaching the server: the interleaving a real race can produce.
    provider = worker._provider
    flow = provider.run_due("w1", timedelta(seconds=60))
    remove = next(flow)
    assert remove.path == "/channel/blacklist_remove" and remove.json["uids"] == ["a"]
    app.groups.mute("g", ["a"], timedelta(hours=1))
    answer = worker.provider.call("POST", remove.path, remove.json)  # the worker's remove reaches the server now
    put_back = flow.send(answer)
    assert put_back.path == "/channel/blacklist_add" and put_back.json["uids"] == ["a"]
    with pytest.raises(StopIteration) as done:
        flow.send(worker.provider.call("POST", put_back.path, put_back.json))
    report: MaintenanceReport = done.value.value
    assert [m.user_id for m in report.restored_mutes] == ["a"] and report.lifted_mutes == []
    assert emulator.denylist("g") == ["a"]
    (member,) = app.groups.muted("g")
    assert member.muted_until == clock.now() + timedelta(hours=1)
    worker.close()
    app.close()


def test_a_failed_group_is_reported_and_stays_due(
    emulator: RecordingEmulator, clock: FakeClock, tmp_path: Path
) -> None:
    im = _client(emulator, str(tmp_path / "s.db"), clock, retry=None)
    _groups(im, "broken", "fine")
    im.groups.mute("broken", ["a"], timedelta(seconds=5))
    im.groups.mute("fine", ["b"], timedelta(seconds=5))
    clock.advance(6)
    emulator.refuse["/channel/blacklist_remove"] = EmulatorReply(400, b'{"msg":"nope","status":400}', {})
    report = im.maintenance.run_due()
    assert [(m.group_id, m.user_id) for m in report.lifted_mutes] == [("fine", "b")]
    (failure,) = report.failures
    assert (failure.group_id, failure.user_ids) == ("broken", ["a"]) and "InvalidRequestError" in failure.error
    assert emulator.denylist("broken") == ["a"]
    del emulator.refuse["/channel/blacklist_remove"]
    retried = im.maintenance.run_due()
    assert [(m.group_id, m.user_id) for m in retried.lifted_mutes] == [("broken", "a")]
    assert emulator.denylist("broken") == []
    im.close()


def test_another_holder_of_the_lease_means_this_run_does_nothing(
    emulator: RecordingEmulator, clock: FakeClock, tmp_path: Path
) -> None:
    im = _client(emulator, str(tmp_path / "s.db"), clock)
    _groups(im, "g")
    im.groups.mute("g", ["a"], timedelta(seconds=5))
    clock.advance(6)
    store = im._provider.store
    assert Leases(store.db).acquire(wukong_maintenance.LEASE_NAME, "other-host:1:x", now=clock.now().timestamp(),
                                    seconds=60)  # fmt: skip
    emulator.seen.clear()
    report = im.maintenance.run_due()
    assert not report.ran and report.lease_holder == "other-host:1:x" and report.lifted_mutes == []
    assert emulator.seen == [] and emulator.denylist("g") == ["a"]
    clock.advance(61)  # the other holder died: its lease expires and this worker takes over
    taken = im.maintenance.run_due()
    assert taken.ran and [m.user_id for m in taken.lifted_mutes] == ["a"]
    assert Leases(store.db).current(wukong_maintenance.LEASE_NAME) is None  # released at the end of the run
    im.close()


def test_a_run_cancelled_midway_gives_its_lease_back(
    emulator: RecordingEmulator, clock: FakeClock, tmp_path: Path
) -> None:
    im = _client(emulator, str(tmp_path / "s.db"), clock)
    _groups(im, "g")
    im.groups.mute("g", ["a"], timedelta(seconds=5))
    clock.advance(6)
    flow = im._provider.run_due("w1", timedelta(seconds=60))
    next(flow)  # waiting for the server's answer, holding the lease
    leases = Leases(im._provider.store.db)
    assert leases.current(wukong_maintenance.LEASE_NAME).holder == "w1"  # type: ignore[union-attr]
    flow.close()  # what the executor does when the task is cancelled
    assert leases.current(wukong_maintenance.LEASE_NAME) is None
    im.close()


def test_a_batch_limit_leaves_the_rest_due_at_once(
    emulator: RecordingEmulator, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wukong_maintenance, "BATCH", 2)
    im = _client(emulator, str(tmp_path / "s.db"), clock)
    _groups(im, "g")
    im.groups.mute("g", ["a", "b", "c"], timedelta(seconds=5))
    clock.advance(6)
    first = im.maintenance.run_due()
    assert len(first.lifted_mutes) == 2 and first.more_due and first.next_due_at == clock.now()
    assert next_wait(first, 30.0, clock.now()) == pytest.approx(0.05)
    second = im.maintenance.run_due()
    assert len(second.lifted_mutes) == 1 and not second.more_due
    assert emulator.denylist("g") == []
    im.close()


def test_without_a_store_nothing_falls_due(emulator: RecordingEmulator) -> None:
    with _client(emulator, "") as im:
        report = im.maintenance.run_due()
    assert report.ran and report.lifted_mutes == [] and "no store" in report.notes[0]
    assert emulator.seen == []


def test_a_refused_mute_leaves_the_store_as_it_was(
    emulator: RecordingEmulator, clock: FakeClock, tmp_path: Path
) -> None:
    im = _client(emulator, str(tmp_path / "s.db"), clock)
    _groups(im, "g")
    emulator.refuse["/channel/blacklist_add"] = EmulatorReply(400, b'{"msg":"nope","status":400}', {})
    with pytest.raises(Exception, match="nope"):
        im.groups.mute("g", ["a"], timedelta(minutes=5))
    assert im.groups.muted("g") == []
    assert im.maintenance.run_due().next_due_at is None  # no end was left in the store
    im.close()


def test_next_wait_is_the_interval_or_the_next_end() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    base = {"provider": "wukong", "worker": "w", "started_at": now, "finished_at": now}
    assert next_wait(None, 30.0, now) == 30.0
    assert next_wait(MaintenanceReport(ran=True, **base), 30.0, now) == 30.0
    soon = MaintenanceReport(ran=True, next_due_at=now + timedelta(seconds=2), **base)
    assert next_wait(soon, 30.0, now) == 2.0
    late = MaintenanceReport(ran=True, next_due_at=now + timedelta(minutes=5), **base)
    assert next_wait(late, 30.0, now) == 30.0
    assert next_wait(MaintenanceReport(ran=False, next_due_at=now, **base), 30.0, now) == 30.0


# -- schedules, on the real clock ---------------------------------------------------------------------


def test_run_forever_lifts_a_mute_when_it_ends_and_stops_when_told(emulator: RecordingEmulator, tmp_path: Path) -> None:
    im = _client(emulator, str(tmp_path / "s.db"))
    _groups(im, "g")
    im.groups.mute("g", ["a"], timedelta(seconds=0.6))
    muted_at = time.monotonic()
    stop, reports = threading.Event(), []
    thread = threading.Thread(target=im.maintenance.run_forever, args=(5.0,), kwargs={"stop": stop,
                              "on_report": reports.append})  # fmt: skip
    thread.start()
    deadline = time.monotonic() + 10
    while emulator.denylist("g") and time.monotonic() < deadline:
        time.sleep(0.02)
    took = time.monotonic() - muted_at
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    # The interval is 5 s, but the worker knew the mute's end and woke for it.
    assert emulator.denylist("g") == [] and 0.55 <= took < 2.5, took
    assert [m.user_id for r in reports for m in r.lifted_mutes] == ["a"]
    im.close()


def test_run_forever_outlives_a_down_server(tmp_path: Path) -> None:
    errors: list[Exception] = []
    stop = threading.Event()
    with IMClient("wukong", base_url="http://127.0.0.1:9", store=str(tmp_path / "s.db"), timeout=1) as im:
        im._provider.store.set_mutes("g", ["a"], 1.0)  # due since 1970: the run tries the server and fails
        thread = threading.Thread(
            target=im.maintenance.run_forever, args=(0.1,),
            kwargs={"stop": stop, "on_report": lambda r: errors.extend(r.failures)},  # type: ignore[arg-type]
        )  # fmt: skip
        thread.start()
        time.sleep(0.8)
        stop.set()
        thread.join(timeout=5)
    assert len(errors) >= 2 and all("TransportError" in str(e) for e in errors)


def test_the_interval_must_be_positive(emulator: RecordingEmulator) -> None:
    with _client(emulator, "") as im, pytest.raises(Exception, match="interval"):
        im.maintenance.run_forever(0)


async def test_async_client_runs_due_work_in_the_background_until_aclose(
    emulator: RecordingEmulator, tmp_path: Path
) -> None:
    store = str(tmp_path / "s.db")
    app = _client(emulator, store)
    _groups(app, "g")
    im = AsyncIMClient(
        "wukong", http_client=httpx.AsyncClient(transport=emulator.transport()), base_url="http://wk.test",
        manager_token=TOKEN, store=store, background_maintenance=0.2,
    )  # fmt: skip
    assert im.maintenance.running  # made inside a running loop: started at once
    app.groups.mute("g", ["a"], timedelta(seconds=0.5))
    deadline = time.monotonic() + 5
    while emulator.denylist("g") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert emulator.denylist("g") == []
    task = im.maintenance._task
    await im.aclose()
    assert task is not None and task.done() and not im.maintenance.running
    app.close()


async def test_async_start_and_stop(emulator: RecordingEmulator, tmp_path: Path) -> None:
    async with AsyncIMClient(
        "wukong", http_client=httpx.AsyncClient(transport=emulator.transport()), base_url="http://wk.test",
        manager_token=TOKEN, store=str(tmp_path / "s.db"),
    ) as im:  # fmt: skip
        reports: list[MaintenanceReport] = []
        task = im.maintenance.start(0.05, on_report=reports.append)
        assert im.maintenance.start(0.05) is task  # already running: the same task
        await asyncio.sleep(0.3)
        await im.maintenance.stop()
        assert task.done() and len(reports) >= 2 and all(r.ran for r in reports)
        assert (await im.maintenance.run_due()).ran


def test_background_maintenance_outside_a_loop_starts_on_async_with(
    emulator: RecordingEmulator, tmp_path: Path
) -> None:
    im = AsyncIMClient(
        "wukong", http_client=httpx.AsyncClient(transport=emulator.transport()), base_url="http://wk.test",
        manager_token=TOKEN, store=str(tmp_path / "s.db"), background_maintenance=0.1,
    )  # fmt: skip

    async def use() -> bool:
        async with im:
            return im.maintenance.running

    assert asyncio.run(use()) is True


def test_mutes_still_end_on_the_next_send_without_a_worker(
    emulator: RecordingEmulator, clock: FakeClock, tmp_path: Path
) -> None:
    # The lazy path stays: a send through imbridge lifts an ended mute on its way (the same lifting code).
    im = _client(emulator, str(tmp_path / "s.db"), clock)
    _groups(im, "g")
    im.groups.mute("g", ["a"], timedelta(seconds=5))
    from imbridge import Conversation

    with pytest.raises(PermissionDeniedError):
        im.messages.send("a", Conversation.group("g"), "muted")
    clock.advance(6)
    im.messages.send("a", Conversation.group("g"), "free")
    assert emulator.denylist("g") == []
    im.close()


# -- imbridge worker --once ----------------------------------------------------------------------------


def test_worker_once_prints_its_report(
    emulator: RecordingEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from imbridge.cli import main
    from imbridge.emulators import serve

    store = str(tmp_path / "s.db")
    monkeypatch.chdir(tmp_path)
    with serve(emulator) as server:
        with IMClient("wukong", base_url=server.url, manager_token=TOKEN, store=store) as app:
            _groups(app, "g")
            app.groups.mute("g", ["a"], timedelta(seconds=0.2))
        time.sleep(0.3)
        for name, value in (("BASE_URL", server.url), ("MANAGER_TOKEN", TOKEN), ("STORE", store)):
            monkeypatch.setenv(f"IMBRIDGE_WUKONG_{name}", value)
        assert main(["--provider", "wukong", "--json", "worker", "--once"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert main(["--provider", "wukong", "worker", "--once"]) == 0
        text = capsys.readouterr().out
    assert [(m["group_id"], m["user_id"]) for m in report["lifted_mutes"]] == [("g", "a")]
    assert emulator.denylist("g") == []
    assert "lifted 0 mute(s)" in text
