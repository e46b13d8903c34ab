"""Device kinds, and who is online on which: the neutral vocabulary of sessions.

``DeviceKind`` is shared by everything that names a client device: ``users.presence`` reports it,
``users.kick`` takes it, and login credentials are issued for one (WuKongIM keeps one token per device
flag). Each provider maps it to its own codes:

* WuKongIM ``device_flag``: 0 ``APP``, 1 ``WEB``, 2 ``PC`` (WuKongIMGoProto v1.2.3 ``common.go``
  ``DeviceFlag`` constants, the module WuKongIM v2.2.5 builds with; ``internal/api/connz.go:294-299``
  names them App/PC/Web). ``SYSTEM`` (99) is the server's own and is never a client's.
* Tencent ``Platform`` of ``query_online_status``: "iPhone", "Android", "iPad" (apps), "Web", "PC",
  "Mac" (https://www.tencentcloud.com/document/product/1047/35477).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DeviceKind(StrEnum):
    """What kind of client a session runs on."""

    APP = "app"
    """A mobile or tablet app (WuKongIM device flag 0; Tencent iPhone, Android, iPad)."""
    WEB = "web"
    """A browser (WuKongIM device flag 1; Tencent Web)."""
    DESKTOP = "desktop"
    """A desktop client (WuKongIM device flag 2, "PC"; Tencent PC, Mac)."""


class PresenceState(StrEnum):
    """Whether a user (or one of their devices) can be reached right now."""

    ONLINE = "online"
    """Connected to the server now."""
    BACKGROUND = "background"
    """Not connected, but reachable by push: Tencent's ``PushOnline`` (an app in the background or
    killed by the OS, for up to 7 days after its last login)."""
    OFFLINE = "offline"
    """Neither connected nor reachable by push."""


class DeviceSession(BaseModel):
    """One device of a user as the server reports it."""

    model_config = ConfigDict(frozen=True)

    kind: DeviceKind | None = Field(description="None when the server names a device imbridge cannot classify")
    platform: str = Field(description="the server's own name of the device (Tencent Platform, WuKongIM flag)")
    state: PresenceState


class Presence(BaseModel):
    """A user's presence: ONLINE when any device is connected, with each device the server reports."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    state: PresenceState
    devices: list[DeviceSession] = Field(default_factory=list)
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @property
    def online(self) -> bool:
        return self.state is PresenceState.ONLINE

    def device_kinds(self, state: PresenceState = PresenceState.ONLINE) -> set[DeviceKind]:
        """The kinds of the devices in ``state`` (online by default) that could be classified."""
        return {d.kind for d in self.devices if d.state is state and d.kind is not None}
