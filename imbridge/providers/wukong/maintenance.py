"""WuKongIM due work: timed mutes that have ended are taken off the server's denylist.

WuKongIM has no timed mute: a denylisted member stays refused by the server itself (a client SEND answers
reason 4, ``ReasonInBlacklist``: internal/service/permission.go:126-144) until someone removes the entry.
imbridge keeps each mute's end in its store; ``run_due`` lifts every mute that has ended, in every group,
without waiting for a later imbridge call to touch the group. Instances sharing a store take turns through
the store's lease (``imbridge.storage.maintenance``), so one of them does it at a time.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from imbridge._flow import Flow
from imbridge.errors import IMBridgeError
from imbridge.models.maintenance import LiftedMute, MaintenanceFailure, MaintenanceReport
from imbridge.providers.wukong._core import WukongCore, _ts
from imbridge.providers.wukong.mapping import NAME
from imbridge.storage.maintenance import DueMute, Leases, MuteSchedule

#: The lease every instance sharing a store contends for.
LEASE_NAME = "wukong.maintenance"
#: Mutes lifted per run at most (the rest are left for the next run, which the report says is due at once).
BATCH = 1000


class WukongMaintenance(WukongCore):
    _leases: Leases | None = None

    def run_due(self, worker: str, lease: timedelta) -> Flow[MaintenanceReport]:
        if self.store is not None and self._leases is None:
            self._leases = Leases(self.store.db)  # creates the lease table the first time
        return self._run_due(worker, lease.total_seconds())

    def _run_due(self, worker: str, seconds: float) -> Flow[MaintenanceReport]:
        begun = self.clock.now()
        leases = self._leases
        if self.store is None or leases is None:
            return MaintenanceReport(
                provider=NAME, worker=worker, ran=True, started_at=begun, finished_at=self.clock.now(),
                notes=["no store: imbridge keeps no timed mutes, so nothing falls due"],
            )  # fmt: skip
        if not leases.acquire(LEASE_NAME, worker, now=self._now(), seconds=seconds):
            holder = leases.current(LEASE_NAME)
            return MaintenanceReport(
                provider=NAME, worker=worker, ran=False, lease_holder=holder.holder if holder else None,
                started_at=begun, finished_at=self.clock.now(),
            )  # fmt: skip
        schedule = MuteSchedule(self.store.db)
        lifted: list[LiftedMute] = []
        restored: list[LiftedMute] = []
        failures: list[MaintenanceFailure] = []
        try:
            due = schedule.due(self._now(), limit=BATCH)
            by_group: dict[str, list[DueMute]] = defaultdict(list)
            for mute in due:
                by_group[mute.group_id].append(mute)
            for group_id, mutes in by_group.items():
                try:
                    back = yield from self._lift_mutes(group_id, mutes)
                except IMBridgeError as error:  # the mutes stay due: the next run tries them again
                    failures.append(MaintenanceFailure(
                        group_id=group_id, user_ids=[m.user_id for m in mutes],
                        error=f"{type(error).__name__}: {error.message}", native_code=error.native_code,
                    ))  # fmt: skip
                    continue
                for mute in mutes:
                    done = LiftedMute(group_id=group_id, user_id=mute.user_id, muted_until=_ts(mute.until))
                    (restored if mute.user_id in back else lifted).append(done)
                # A long run keeps the lease: another instance must not start the same work meanwhile.
                leases.acquire(LEASE_NAME, worker, now=self._now(), seconds=seconds)
            more = len(due) == BATCH
            next_end = schedule.next_end(self._now())
        finally:
            leases.release(LEASE_NAME, worker)  # also when the run is cancelled (the flow is closed)
        return MaintenanceReport(
            provider=NAME, worker=worker, ran=True, started_at=begun, finished_at=self.clock.now(),
            lifted_mutes=lifted, restored_mutes=restored, failures=failures, more_due=more,
            next_due_at=self.clock.now() if more else (_ts(next_end) if next_end is not None else None),
        )  # fmt: skip
