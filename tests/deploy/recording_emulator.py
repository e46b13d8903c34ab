"""The WuKongIM emulator keeping every request it answers: the deployment tests count what reached the server."""

from __future__ import annotations

import json
from typing import Any

from imbridge.emulators._base import EmulatorReply, EmulatorRequest
from imbridge.emulators.wukong import WukongEmulator

TOKEN = "manager"


class RecordingEmulator(WukongEmulator):
    """The emulator, keeping every request; ``refuse`` makes a path answer as the server does a refusal."""

    def __init__(self, **options: Any) -> None:
        super().__init__(manager_token=TOKEN, **options)
        self.seen: list[tuple[str, str, Any]] = []
        self.refuse: dict[str, EmulatorReply] = {}

    def handle(self, request: EmulatorRequest) -> EmulatorReply:
        body = json.loads(request.body) if request.body else None
        self.seen.append((request.method, request.path, body))
        refusal = self.refuse.get(request.path)
        if refusal is not None and (body or {}).get("channel_id") != "fine":
            return refusal
        return super().handle(request)

    def denylist(self, group_id: str) -> list[str]:
        return sorted(json.loads(self.handle(_get(f"/cluster/channels/{group_id}/2/denylist")).body))


def _get(path: str) -> EmulatorRequest:
    return EmulatorRequest("GET", path, {}, {"token": TOKEN}, b"")
