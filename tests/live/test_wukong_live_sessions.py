"""Presence, kicks, online-only messages and notifications on a real WuKongIM with the official JS SDK connected.

Runs only when a live WuKongIM (v2.2.5, token auth on or off) is configured in the environment
(``IMBRIDGE_WUKONG_BASE_URL`` and ``IMBRIDGE_WUKONG_MANAGER_TOKEN``, e.g. ``source /work/wk/env``) and
``node``/``npm`` are on the PATH; skipped, saying why, otherwise. The client is ``tests/live/jssdk/recv.mjs`` on
the official SDK, run from the npm cache of ``conftest.py``'s ``sdk_dir`` fixture; it connects to the WebSocket
address the server advertises (``/varz`` ``ws_addr``). Every user gets a per-run prefix; nothing is wiped.

    source /work/wk/env && .venv/bin/python -m pytest tests/live -v
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imbridge import Conversation, Delivery, DeviceKind, IMClient, PresenceState

WEB = 1  # the JS SDK connects as device flag 1 (WEB) by default (its lib/config.js)

pytestmark = pytest.mark.skipif(
    not (os.environ.get("IMBRIDGE_WUKONG_BASE_URL") and os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN")),
    reason="no live WuKongIM configured (IMBRIDGE_WUKONG_BASE_URL, IMBRIDGE_WUKONG_MANAGER_TOKEN)",
)


class SdkClient:
    """A ``recv.mjs`` process: its JSON lines read on a thread, waited for by predicate."""

    def __init__(self, sdk: Path, addr: str, uid: str, token: str) -> None:
        self.process = subprocess.Popen(
            ["node", "recv.mjs", "--uid", uid, "--token", token, "--device", str(WEB), "--addr", addr,
             "--timeout", "60"],
            cwd=sdk, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip().startswith("{"):
                self.lines.put(json.loads(line))

    def wait_for(self, matches: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        for event in self.seen:
            if matches(event):
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(event)
            if matches(event):
                return event
        raise AssertionError(f"the SDK client never printed the awaited line; it printed {self.seen}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=10)


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.2)


@pytest.fixture
def im(tmp_path: Path) -> Iterator[IMClient]:
    # Login tokens registered for device flag 1: the flag the JS SDK connects with (a token of another flag is
    # never answered: test_jssdk_login.py's control).
    with IMClient(
        "wukong", base_url=os.environ["IMBRIDGE_WUKONG_BASE_URL"],
        manager_token=os.environ["IMBRIDGE_WUKONG_MANAGER_TOKEN"], store=str(tmp_path / "store.db"), device_flag=WEB,
    ) as client:  # fmt: skip
        health = client.health()
        if not health.ok:
            pytest.fail(f"the configured WuKongIM cannot be used: {health}")
        yield client


@pytest.fixture
def connect(im: IMClient, sdk_dir: Path) -> Callable[[str, str], SdkClient]:
    """Start recv.mjs as (uid, token) against the WebSocket address the server advertises (/varz)."""
    addr = str(im.health().details["ws_addr"])
    return lambda uid, token: SdkClient(sdk_dir, addr, uid, token)


def test_presence_reports_the_connected_sdk_and_kick_disconnects_it(
    im: IMClient, connect: Callable[[str, str], SdkClient]
) -> None:
    prefix = "live" + secrets.token_hex(3)
    user, other = f"{prefix}u", f"{prefix}o"
    im.users.register([user, other])
    credentials = im.users.login_credentials(user, ttl=600)
    sdk = connect(user, credentials.token.get_secret_value())
    try:
        sdk.wait_for(lambda e: e.get("event") == "status" and e.get("status_name") == "Connected")
        presence, offline = im.users.presence([user, other])
        assert presence.state is PresenceState.ONLINE and presence.device_kinds() == {DeviceKind.WEB}
        assert [d.platform for d in presence.devices] == ["WEB"]
        assert offline.state is PresenceState.OFFLINE

        im.users.kick(user, device="web")
        kicked = sdk.wait_for(lambda e: e.get("event") == "status" and e.get("status_name") == "ConnectKick")
        assert kicked["reason_code"] == 12  # ReasonConnectKick
        assert sdk.process.wait(timeout=10) == 3  # recv.mjs: "connect failed/kicked"
        _eventually(lambda: im.users.presence([user])[0].state is PresenceState.OFFLINE)
    finally:
        sdk.stop()


def test_online_only_message_and_notification_reach_the_connected_member(
    im: IMClient, connect: Callable[[str, str], SdkClient]
) -> None:
    prefix = "live" + secrets.token_hex(3)
    owner, member = f"{prefix}own", f"{prefix}mem"
    im.users.register([owner, member])
    group = im.groups.create("Live", owner=owner, members=[member], group_id=f"{prefix}g")
    credentials = im.users.login_credentials(member, ttl=600)
    sdk = connect(member, credentials.token.get_secret_value())
    try:
        sdk.wait_for(lambda e: e.get("event") == "status" and e.get("status_name") == "Connected")
        sent = im.messages.send(owner, Conversation.group(group.id), "typing...", delivery=Delivery(online_only=True))
        assert not sent.confirmed  # never stored, so never looked up
        live = sdk.wait_for(lambda e: e.get("event") == "message" and e.get("client_msg_no") ==
                            sent.ref.extra["client_msg_no"])  # fmt: skip
        assert live["content"]["content"] == "typing..."
        im.groups.notify(group.id, "maintenance at 22:00")
        command = sdk.wait_for(lambda e: e.get("event") == "cmd")
        assert command["content"]["cmd"] == "groupSystemNotification"
        assert command["content"]["param"] == {"group_id": group.id, "content": "maintenance at 22:00"}
        im.groups.notify(group.id, "you are on duty", to=[member])  # the subscribers form
        targeted = sdk.wait_for(lambda e: e.get("event") == "cmd" and e["content"]["param"]["content"] ==
                                "you are on duty")  # fmt: skip
        assert targeted["content"]["param"]["group_id"] == group.id
        assert im.messages.history(Conversation.group(group.id), viewer=member).items == []
    finally:
        sdk.stop()
        im.groups.dismiss(group.id)
