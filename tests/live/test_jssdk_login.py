"""The official WuKongIM JS SDK against a live server, with credentials and mutes from imbridge.

Runs only when a live WuKongIM server is configured in the environment (``IMBRIDGE_WUKONG_BASE_URL`` and
``IMBRIDGE_WUKONG_MANAGER_TOKEN``, e.g. ``source /work/wk/env``) and ``node`` is on the PATH; skipped, saying
why, otherwise. The SDK (npm ``wukongimjssdk`` 1.0.4 and ``ws`` 8) is installed with npm into a cache
directory outside the repository (``IMBRIDGE_JSSDK_DIR``, default ``~/.cache/imbridge/jssdk``) the first
time, by the ``sdk_dir`` fixture of ``conftest.py``; the harness is ``tests/live/jssdk/client.mjs``. The
server must run with ``tokenAuthOn: true``, as a production deployment does (otherwise any token connects and
the login tests prove nothing): the first test checks that.

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
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from imbridge import Conversation, IMClient

#: WuKongIM answers no CONNACK to a refused token (user/handler/event_connect.go:22-26): the socket just stays
#: silent until the server's pre-auth idle timer closes it (~4 s, server/proto.go:282). This long without a
#: Connected status is a refusal.
REFUSED_AFTER = 6.0

pytestmark = pytest.mark.skipif(
    not (os.environ.get("IMBRIDGE_WUKONG_BASE_URL") and os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN")),
    reason="no live WuKongIM configured (IMBRIDGE_WUKONG_BASE_URL, IMBRIDGE_WUKONG_MANAGER_TOKEN)",
)


@pytest.fixture(scope="module")
def im(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IMClient]:
    store = tmp_path_factory.mktemp("store") / "wukong.db"
    with IMClient(
        "wukong", base_url=os.environ["IMBRIDGE_WUKONG_BASE_URL"],
        manager_token=os.environ["IMBRIDGE_WUKONG_MANAGER_TOKEN"], store=str(store),
    ) as client:  # fmt: skip
        health = client.health()
        if not health.ok:
            pytest.fail(f"the configured WuKongIM cannot be used: {health}")
        yield client


@pytest.fixture(scope="module")
def ws_addr(im: IMClient) -> str:
    return str(im.health().details["ws_addr"])  # the WebSocket address the server advertises (/varz)


@pytest.fixture
def prefix() -> str:
    return "js" + secrets.token_hex(4)


class Client:
    """One run of tests/live/jssdk/client.mjs; its JSON events read as they come."""

    def __init__(self, sdk: Path, addr: str, uid: str, token: str, seconds: float, *send: str) -> None:
        self.process = subprocess.Popen(
            ["node", "client.mjs", addr, uid, token, str(seconds), *(("send", *send) if send else ())],
            cwd=sdk, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))

    def wait_for(self, event: str, within: float, **fields: Any) -> dict[str, Any] | None:
        """The first event of that kind (with those fields) within ``within`` seconds, or None."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = self.events.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(got)
            if got["event"] == event and all(got.get(k) == v for k, v in fields.items()):
                return got
        return None

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def test_web_credentials_log_the_sdk_in_and_it_receives_what_imbridge_sends(
    im: IMClient, sdk_dir: Path, ws_addr: str, prefix: str
) -> None:
    alice, bob = f"{prefix}alice", f"{prefix}bob"
    im.users.register([alice, bob])
    credentials = im.users.login_credentials(alice, ttl=600, device="web")
    assert credentials.extra["device_flag"] == 1
    client = Client(sdk_dir, ws_addr, alice, credentials.token.get_secret_value(), 30)
    try:
        connected = client.wait_for("status", 15, status=1)
        assert connected is not None, f"the SDK never connected: {client.seen}"
        assert connected["device_flag"] == 1  # the SDK's own default: web
        text = f"hello from imbridge {prefix}"
        sent = im.messages.send(bob, Conversation.user(alice), text)
        received = client.wait_for("message", 15, text=text)
        assert received is not None, f"nothing received: {client.seen}"
        assert received["from_uid"] == bob and received["channel_type"] == 1 and received["message_seq"] == sent.seq
    finally:
        client.close()


def test_an_app_token_is_never_answered_for_the_web_sdk(im: IMClient, sdk_dir: Path, ws_addr: str, prefix: str) -> None:
    # The control: the bug of issue 15. Also shows the server checks tokens (tokenAuthOn: true), so the other
    # tests' logins are real checks.
    carol = f"{prefix}carol"
    im.users.register([carol])
    credentials = im.users.login_credentials(carol, ttl=600, device="app")
    client = Client(sdk_dir, ws_addr, carol, credentials.token.get_secret_value(), REFUSED_AFTER + 2)
    try:
        connected = client.wait_for("status", REFUSED_AFTER, status=1)
        assert connected is None, "a token for device flag 0 let a web client in"
    finally:
        client.close()


def test_wukong_does_not_enforce_a_tokens_expiry_on_connect(
    im: IMClient, sdk_dir: Path, ws_addr: str, prefix: str
) -> None:
    dave = f"{prefix}dave"
    im.users.register([dave])
    credentials = im.users.login_credentials(dave, ttl=1, device="web")
    while im._provider.clock.now() <= credentials.expires_at + timedelta(seconds=1):
        time.sleep(0.2)
    client = Client(sdk_dir, ws_addr, dave, credentials.token.get_secret_value(), 20)
    try:
        # Measured: the expired token connects. WuKongIM compares the token with the one registered for the
        # device flag and reads no expiry (event_connect.go:77-89); imbridge's capability notes say so.
        assert client.wait_for("status", 15, status=1) is not None, f"the expired token was refused: {client.seen}"
    finally:
        client.close()


def test_a_muted_members_sdk_send_is_refused_by_the_server_until_the_worker_lifts_the_mute(
    im: IMClient, sdk_dir: Path, ws_addr: str, prefix: str
) -> None:
    owner, erin = f"{prefix}own", f"{prefix}erin"
    im.users.register([owner, erin])
    group = im.groups.create("Team", owner=owner, members=[erin], group_id=f"{prefix}g")
    token = im.users.login_credentials(erin, ttl=600, device="web").token.get_secret_value()
    try:
        im.groups.mute(group.id, [erin], timedelta(seconds=2))
        muted = Client(sdk_dir, ws_addr, erin, token, 15, group.id, "2", "while muted")
        try:
            ack = muted.wait_for("sendack", 12)
        finally:
            muted.close()
        assert ack is not None and ack["reason_code"] == 4, f"expected ReasonInBlacklist (4): {muted.seen}"
        stop = threading.Event()
        worker = threading.Thread(target=im.maintenance.run_forever, args=(1.0,), kwargs={"stop": stop})
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while erin in (im.provider.call("GET", f"/cluster/channels/{group.id}/2/denylist") or []):
                assert time.monotonic() < deadline, "the worker did not lift the mute"
                time.sleep(0.2)
        finally:
            stop.set()
            worker.join(timeout=10)
        free = Client(sdk_dir, ws_addr, erin, token, 15, group.id, "2", "free again")
        try:
            ack = free.wait_for("sendack", 12)
        finally:
            free.close()
        assert ack is not None and ack["reason_code"] == 1 and ack["message_seq"] > 0, free.seen
    finally:
        im.groups.dismiss(group.id)
