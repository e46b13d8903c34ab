"""What ``im.maintenance.run_due()`` did: the work that fell due on the server, done or not."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class LiftedMute(BaseModel):
    """A timed mute that ended, taken off the server's list."""

    model_config = ConfigDict(frozen=True)

    group_id: str
    user_id: str
    muted_until: datetime = Field(description="when the mute ended")


class MaintenanceFailure(BaseModel):
    """Due work that could not be done this time; it stays due and is tried again on the next run."""

    model_config = ConfigDict(frozen=True)

    group_id: str
    user_ids: list[str]
    error: str = Field(description="the imbridge error's type and message")
    native_code: int | str | None = None


class MaintenanceReport(BaseModel):
    """One run of due work. ``ran`` is False when another instance held the lease (it does the work)."""

    model_config = ConfigDict(frozen=True)

    provider: str
    worker: str = Field(description="who ran it: host, process and client")
    ran: bool
    lease_holder: str | None = Field(default=None, description="the worker holding the lease when ran is False")
    started_at: datetime
    finished_at: datetime
    lifted_mutes: list[LiftedMute] = Field(default_factory=list)
    restored_mutes: list[LiftedMute] = Field(
        default_factory=list, description="members muted again while their old mute was lifted: put back"
    )
    failures: list[MaintenanceFailure] = Field(default_factory=list)
    next_due_at: datetime | None = Field(default=None, description="when the next known work falls due")
    more_due: bool = Field(default=False, description="work already due was left for the next run (batch limit)")
    notes: list[str] = Field(default_factory=list)

    @property
    def did_work(self) -> bool:
        return bool(self.lifted_mutes or self.restored_mutes or self.failures)
