"""For each fault kind, sends through a FaultProxy; the server's state then has to match what was reported.

Targets: the WuKongIM and Tencent emulators served on 127.0.0.1, and a real WuKongIM when
``IMBRIDGE_FAULT_LIVE=1`` (``IMBRIDGE_WUKONG_BASE_URL``, ``IMBRIDGE_WUKONG_MANAGER_TOKEN``). Both drivers:
sync (httpx) and async (aiohttp, the default). ``IMBRIDGE_FAULT_SENDS=1000`` for the full run;
``IMBRIDGE_FAULT_REPORT=path`` appends one JSON line per run with the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fault_harness import (
    FULL_RUN,
    HOLD_BEFORE,
    RETRY,
    SENDS,
    TIMEOUT,
    TRANSPORT_FAULTS,
    WUKONG_FLOW_SLEEPS,
    asend_all,
    check,
    history_stored,
    plan_for,
    send_all,
    tencent_stored,
    wukong_emulator_stored,
)

from imbridge import AsyncIMClient, Conversation, IMClient
from imbridge.emulators import serve
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.testing.faults import Fault, FaultPlan, FaultProxy

LIVE = os.environ.get("IMBRIDGE_FAULT_LIVE") == "1"
APP_ID = 1400000001


@dataclass
class Target:
    name: str
    upstream: str
    settings: Callable[[str], dict[str, Any]]  # base URL -> client settings
    stored: Callable[[str, str], Counter[str]]  # sender, recipient -> texts on the server
    prepare: Callable[[list[str]], None]  # users the server must know
    flow_sleeps: float
    kinds: tuple[Fault, ...]


ALL = tuple(Fault)
NOT_TENCENT_ONLY = tuple(kind for kind in Fault if kind is not Fault.FREQUENCY_BODY)


@pytest.fixture(scope="module")
def wukong_emulator() -> Iterator[Target]:
    token = secrets.token_hex(8)  # made here: a throwaway token for a throwaway server
    emulator = WukongEmulator(manager_token=token, store_delay_requests=1)
    with serve(emulator) as server:
        yield Target(
            "wukong-emulator", server.url,
            lambda url: {"base_url": url, "manager_token": token, "store": ""},
            lambda sender, recipient: wukong_emulator_stored(emulator, sender, recipient),
            lambda _users: None, WUKONG_FLOW_SLEEPS, NOT_TENCENT_ONLY,
        )  # fmt: skip
    emulator.close()


@pytest.fixture(scope="module")
def tencent_emulator() -> Iterator[Target]:
    key = secrets.token_hex(16)
    # The server's own frequency limits are far above the client's pacing: only the proxy's faults count.
    emulator = TencentEmulator(sdk_app_id=APP_ID, secret_key=key, rate_limits={"*": 100_000.0})
    with serve(emulator) as server:
        yield Target(
            "tencent-emulator", server.url,
            lambda url: {"sdk_app_id": APP_ID, "secret_key": key, "base_url": url},
            lambda sender, recipient: tencent_stored(emulator, sender, recipient),
            lambda users: emulator.store.add_users(users, time.time()), 0.0, ALL,
        )  # fmt: skip
    emulator.close()


@pytest.fixture(scope="module")
def wukong_real() -> Target:
    if not LIVE:
        pytest.skip("set IMBRIDGE_FAULT_LIVE=1 (and IMBRIDGE_WUKONG_BASE_URL / _MANAGER_TOKEN) for a real WuKongIM")
    url = os.environ.get("IMBRIDGE_WUKONG_BASE_URL", "http://127.0.0.1:5001")
    token = os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN", "")

    def stored(sender: str, recipient: str) -> Counter[str]:
        with IMClient("wukong", base_url=url, manager_token=token, store="") as reader:
            return history_stored(reader, sender, recipient)

    return Target(
        "wukong-real", url, lambda base: {"base_url": base, "manager_token": token, "store": ""},
        stored, lambda _users: None, WUKONG_FLOW_SLEEPS, NOT_TENCENT_ONLY,
    )  # fmt: skip


TARGETS = ("wukong_emulator", "tencent_emulator", "wukong_real")
#: The fault kinds each target can meet (FREQUENCY_BODY is Tencent's body-coded frequency control).
TARGET_KINDS = {"wukong_emulator": NOT_TENCENT_ONLY, "tencent_emulator": tuple(Fault), "wukong_real": NOT_TENCENT_ONLY}


def _cases(kinds: frozenset[Fault] | None = None) -> list[Any]:
    """(target, kind) pairs that exist, limited to ``kinds`` when given: nothing is generated to be skipped."""
    return [
        pytest.param(target, kind, id=f"{target}-{kind}")
        for target in TARGETS
        for kind in TARGET_KINDS[target]
        if kinds is None or kind in kinds
    ]


def _record(target: Target, driver: str, summary: dict[str, Any]) -> None:
    path = os.environ.get("IMBRIDGE_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"target": target.name, "driver": driver, **summary}) + "\n")


def _users() -> tuple[str, str]:
    suffix = secrets.token_hex(4)  # a fresh conversation per run: a real server keeps earlier runs' messages
    return f"fs{suffix}", f"fr{suffix}"


@pytest.mark.parametrize(("target_name", "kind"), _cases())
def test_sync_sends_under_fault(target_name: str, kind: Fault, request: pytest.FixtureRequest) -> None:
    target: Target = request.getfixturevalue(target_name)
    sender, recipient = _users()
    target.prepare([sender, recipient])
    with (
        FaultProxy(target.upstream, plan_for(kind)) as proxy,
        IMClient(target.name.split("-")[0], retry=RETRY, timeout=TIMEOUT, **target.settings(proxy.url)) as im,
    ):
        outcomes = send_all(im, proxy, f"{kind}-sync", sender, Conversation.user(recipient), SENDS)
        assert proxy.settle() == 0  # every held request has landed before the state is read
    report = check(kind, outcomes, target.stored(sender, recipient), proxy, flow_sleeps=target.flow_sleeps)
    _record(target, "sync", report.summary())
    assert report.problems == []
    assert report.faults_injected > 0, "the plan injected nothing: the test proved nothing"
    assert report.ok > 0


# In CI the async driver meets the transport-level faults (where drivers differ); an HTTP-level fault is
# the same answer to every driver and runs on the sync one. IMBRIDGE_FAULT_SENDS runs every kind on both.
# Each kind runs with one send at a time and with 8 in flight: coalesced confirmation (issue 19) shares reads
# only between sends in flight together, so every fault also meets shared reads.
@pytest.mark.parametrize("in_flight", [1, 8], ids=["one-at-a-time", "8-in-flight"])
@pytest.mark.parametrize(("target_name", "kind"), _cases(None if FULL_RUN else TRANSPORT_FAULTS))
async def test_async_sends_under_fault(
    target_name: str, kind: Fault, in_flight: int, request: pytest.FixtureRequest
) -> None:
    target: Target = request.getfixturevalue(target_name)
    sender, recipient = _users()
    target.prepare([sender, recipient])
    driver = "async" if in_flight == 1 else f"async-c{in_flight}"
    with FaultProxy(target.upstream, plan_for(kind, seed=9 if in_flight == 1 else 11)) as proxy:
        async with AsyncIMClient(
            target.name.split("-")[0], retry=RETRY, timeout=TIMEOUT, **target.settings(proxy.url)
        ) as im:
            outcomes = await asend_all(
                im, proxy, f"{kind}-{driver}", sender, Conversation.user(recipient), SENDS, concurrency=in_flight
            )
        assert await asyncio.to_thread(proxy.settle) == 0
    stored = await asyncio.to_thread(target.stored, sender, recipient)
    report = check(kind, outcomes, stored, proxy, flow_sleeps=target.flow_sleeps, concurrent=in_flight > 1)
    _record(target, driver, report.summary())
    assert report.problems == []
    assert report.faults_injected > 0
    assert report.ok > 0


@pytest.mark.parametrize("target_name", TARGETS)
async def test_concurrent_sends_under_every_fault(target_name: str, request: pytest.FixtureRequest) -> None:
    """Every kind at once, 8 sends in flight: the state invariants hold under concurrency too."""
    target: Target = request.getfixturevalue(target_name)
    sender, recipient = _users()
    target.prepare([sender, recipient])
    plan = FaultPlan(dict.fromkeys(target.kinds, 0.02), seed=10, hold=TIMEOUT + 3.0, slow=TIMEOUT / 3, retry_after="1",
                     hold_before=HOLD_BEFORE)
    with FaultProxy(target.upstream, plan) as proxy:
        async with AsyncIMClient(
            target.name.split("-")[0], retry=RETRY, timeout=TIMEOUT, **target.settings(proxy.url)
        ) as im:
            outcomes = await asend_all(
                im, proxy, "mixed", sender, Conversation.user(recipient), SENDS * 2, concurrency=8
            )
        assert await asyncio.to_thread(proxy.settle) == 0
    stored = await asyncio.to_thread(target.stored, sender, recipient)
    reports = [check(kind, outcomes, stored, proxy, flow_sleeps=target.flow_sleeps) for kind in target.kinds[:1]]
    assert reports[0].problems == []
    assert sum(proxy.counts.values()) > 0
