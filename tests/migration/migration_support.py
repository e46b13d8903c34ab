"""Shared by the migration tests: seeded emulators, settings for both sides, and an independent check of
what the target holds, read straight from the emulators rather than through the migration's own code."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from imbridge import IMClient
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.migration.ids import ORIGIN_KEY, target_id
from imbridge.models import Conversation
from imbridge.providers.base import Direction


@dataclass
class World:
    tmp: Path
    tencent: TencentEmulator
    wukong: WukongEmulator
    key: str
    prefix: str = ""
    clients: list[Any] = field(default_factory=list)

    @classmethod
    def make(cls, tmp: Path, seed: str = "small", *, store_delay: int = 0) -> World:
        key = secrets.token_hex(16)  # a throwaway key made for this test
        tencent = TencentEmulator(secret_key=key, store=str(tmp / "tencent.db"))
        tencent.seed(seed)
        wukong = WukongEmulator(store=str(tmp / "wukong.db"), store_delay_requests=store_delay)
        return cls(tmp, tencent, wukong, key)

    def source(self, transport: httpx.AsyncBaseTransport | None = None) -> dict[str, Any]:
        return {"sdk_app_id": self.tencent.sdk_app_id, "secret_key": self.key, "base_url": "http://tencent.test",
                "profile_custom_keys": ["Level"],
                "http_client": httpx.AsyncClient(transport=transport or self.tencent.transport())}  # fmt: skip

    def target(self, transport: httpx.AsyncBaseTransport | None = None) -> dict[str, Any]:
        return {"base_url": "http://wukong.test", "store": str(self.tmp / "imbridge-wukong.db"),
                "http_client": httpx.AsyncClient(transport=transport or self.wukong.transport())}  # fmt: skip

    def users(self) -> list[str]:
        return [
            uid for uid in self.tencent.store.user_ids() if uid != self.tencent.admin
        ]

    # -- what should be there, from the Tencent emulator's own store ----------------------------------

    def expected(self, *, with_revoked: bool = True) -> dict[tuple[str, str, str], list[str]]:
        """Source ids per channel, in source order: ("group", id, "") -> MsgSeqs; ("c2c", a, b) -> MsgKeys."""
        result: dict[tuple[str, str, str], list[str]] = {}
        for conv in self.tencent.store.conversations("g:"):
            rows = self.tencent.store.messages(conv, limit=-1, descending=False)
            result[("group", conv[2:], "")] = [str(r.seq) for r in rows if with_revoked or not r.revoked]
        for conv in self.tencent.store.conversations("u:"):
            a, _, b = conv[2:].partition("|")
            rows = sorted(
                self.tencent.store.messages(conv, limit=-1),
                key=lambda r: (int(r.time), r.metadata.get("MsgSeq", 0), r.metadata.get("MsgKey", "")),
            )
            result[("c2c", a, b)] = [str(r.metadata["MsgKey"]) for r in rows if with_revoked or not r.revoked]
        return result

    # -- what is there, read from the WuKongIM emulator --------------------------------------------------

    def target_client(self) -> IMClient:
        # A verifier that is no member reads every group: without imbridge's policy checks (enforce_policy
        # refuses a group read by a non-member, as every provider does).
        return IMClient("wukong", base_url="http://wukong.test", store=str(self.tmp / "imbridge-wukong.db"),
                        http_client=httpx.Client(transport=self.wukong.transport()), enforce_policy=False)  # fmt: skip

    def actual(self, channels: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], list[str]]:
        """Origin ids of the migrated messages per channel, in the target's order (duplicates kept)."""
        result: dict[tuple[str, str, str], list[str]] = {}
        with self.target_client() as im:
            for kind, a, b in channels:
                if kind == "group":
                    conv, viewer = Conversation.group(target_id(a, self.prefix)), "verifier"
                else:
                    conv, viewer = Conversation.user(target_id(b, self.prefix)), target_id(a, self.prefix)
                ids = []
                try:
                    for message in im.messages.iter_history(conv, viewer, page_size=100, direction=Direction.FORWARD):
                        origin = message.metadata.get(ORIGIN_KEY)
                        if isinstance(origin, dict):
                            ids.append(str(origin["id"]))
                except Exception:
                    ids = []
                result[(kind, a, b)] = ids
        return result

    def close(self) -> None:
        self.tencent.close()
        self.wukong.close()


#: The migration CLI as a child process runs it.
CLI = [sys.executable, "-m", "imbridge.cli", "migrate"]


def cli_env(
    world: World, tencent_url: str, wukong_url: str, rate_limits: dict[str, int] | None = None
) -> dict[str, str]:
    """The environment of a ``imbridge migrate`` child process: settings of both served emulators only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMBRIDGE_")}
    env.update({
        "IMBRIDGE_TENCENT_SDK_APP_ID": str(world.tencent.sdk_app_id),
        "IMBRIDGE_TENCENT_SECRET_KEY": world.key,
        "IMBRIDGE_TENCENT_BASE_URL": tencent_url,
        "IMBRIDGE_WUKONG_BASE_URL": wukong_url,
        "IMBRIDGE_WUKONG_STORE": str(world.tmp / "imbridge-wukong.db"),
    })  # fmt: skip
    if rate_limits:
        env["IMBRIDGE_TENCENT_RATE_LIMITS"] = json.dumps(rate_limits)
    return env


def wait_for_state(state: str, sql: str, at_least: int, timeout: float = 60.0) -> int:
    """Poll the state database (read-only, beside the running migration) until ``sql`` counts ``at_least``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)) as db:
                value = int(db.execute(sql).fetchone()[0] or 0)
            if value >= at_least:
                return value
        except sqlite3.OperationalError:
            pass  # not created yet
        time.sleep(0.1)
    raise AssertionError(f"the state never reached {at_least} for {sql!r}")
