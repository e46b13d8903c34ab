"""Due work: what falls due on the server is done by the maintenance worker alone."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from imbridge import Conversation
from imbridge.models.maintenance import MaintenanceReport
from imbridge.testing.contract._support import eventually
from imbridge.testing.plugin import Contract

#: The worker's interval in these tests, and how long a mute lasts.
INTERVAL = 1.0
MUTE = 2.0


def _team(contract: Contract) -> tuple[str, str]:
    owner, member = contract.users("own", "mem")
    group = contract.im.groups.create("Team", owner=owner, members=[member], group_id=contract.gid("g"))
    contract.track_group(group.id)
    return group.id, member


def _server_muted(contract: Contract, group_id: str) -> set[str]:
    """Who the server itself holds muted, read without imbridge's mute emulation (which would lift an ended
    mute on the way through, and so prove nothing about the worker)."""
    if contract.provider == "wukong":
        # The denylist WuKongIM checks a client's SEND against (internal/service/permission.go:126-144), read
        # through the raw API: imbridge's groups.muted() would sweep ended mutes itself.
        denylist = contract.im.provider.call("GET", f"/cluster/channels/{group_id}/2/denylist")
        return {str(uid) for uid in denylist or []}
    # Tencent keeps ShutUpUntil and answers get_group_muted_account itself; local is its own server.
    return {member.user_id for member in contract.im.groups.muted(group_id)}


def test_run_due_reports_a_run(contract: Contract) -> None:
    """run_due runs and says what it did: nothing failed, and nothing is lifted where nothing ended."""
    group_id, member = _team(contract)
    contract.im.groups.mute(group_id, [member], timedelta(hours=1))
    report = contract.im.maintenance.run_due()
    assert isinstance(report, MaintenanceReport) and report.provider == contract.provider
    assert report.ran and report.failures == [] and report.lifted_mutes == []
    assert report.started_at <= report.finished_at
    assert member in _server_muted(contract, group_id)


def test_timed_mute_ends_on_the_server_with_only_the_worker_running(contract: Contract) -> None:
    """A timed mute ends on the server within the worker's interval, with no other imbridge call."""
    group_id, member = _team(contract)
    contract.im.groups.mute(group_id, [member], timedelta(seconds=MUTE))
    muted_at = time.monotonic()
    assert member in _server_muted(contract, group_id)

    stop = threading.Event()
    reports: list[MaintenanceReport] = []
    worker = threading.Thread(
        target=contract.im.maintenance.run_forever, args=(INTERVAL,), kwargs={"stop": stop, "on_report": reports.append}
    )
    worker.start()
    try:

        def ended() -> None:
            assert member not in _server_muted(contract, group_id)

        eventually(ended, timeout=MUTE + INTERVAL + 10, interval=0.25)
        took = time.monotonic() - muted_at
        if contract.provider == "wukong":  # the only provider with something to do: the worker did it

            def reported() -> None:
                assert [(m.group_id, m.user_id) for r in reports for m in r.lifted_mutes] == [(group_id, member)]

            eventually(reported, timeout=INTERVAL + 5, interval=0.05)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    # Ended within the worker's interval of the mute's end (plus the polling and a loaded machine's slack).
    # (Tencent keeps ShutUpUntil in whole seconds: a mute may end up to a second early there.)
    assert MUTE - 1.0 <= took <= MUTE + INTERVAL + 3.0, took
    assert all(report.ran and not report.failures for report in reports)
    sent = contract.im.messages.send(member, Conversation.group(group_id), "free again")
    assert sent.ref.sender == member
