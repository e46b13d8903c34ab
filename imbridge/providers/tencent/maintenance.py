"""Tencent due work: none. Tencent ends timed mutes itself (``forbid_send_msg`` takes ``MuteTime`` in seconds
and the server keeps ``ShutUpUntil``, https://www.tencentcloud.com/document/product/1047/34951)."""

from __future__ import annotations

from datetime import timedelta

from imbridge._flow import Flow
from imbridge.models.maintenance import MaintenanceReport
from imbridge.providers.tencent._core import TencentCore
from imbridge.providers.tencent.mapping import NAME


class TencentMaintenance(TencentCore):
    def run_due(self, worker: str, lease: timedelta) -> Flow[MaintenanceReport]:
        now = self.clock.now()
        return MaintenanceReport(
            provider=NAME, worker=worker, ran=True, started_at=now, finished_at=now,
            notes=["nothing falls due: Tencent ends timed mutes on the server"],
        )  # fmt: skip
        yield  # pragma: no cover - makes this a generator: there is no request to make
