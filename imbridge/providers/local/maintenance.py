"""Local due work: none. A mute ends when its time has passed, because every check compares it with the clock."""

from __future__ import annotations

from datetime import timedelta

from imbridge._flow import Flow
from imbridge.models.maintenance import MaintenanceReport
from imbridge.providers.local._core import NAME, LocalCore


class LocalMaintenance(LocalCore):
    def run_due(self, worker: str, lease: timedelta) -> Flow[MaintenanceReport]:
        def compute() -> MaintenanceReport:
            now = self.clock.now()
            return MaintenanceReport(
                provider=NAME, worker=worker, ran=True, started_at=now, finished_at=now,
                notes=["nothing falls due: mutes are compared with the clock whenever they are checked"],
            )  # fmt: skip

        return self._run(compute)
