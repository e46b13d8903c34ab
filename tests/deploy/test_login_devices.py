"""``login_credentials(..., device=...)``: the neutral device kind on every provider.

WuKongIM keeps one token per (uid, device_flag) and checks a CONNECT against the token of the flag the
client sends (internal/user/handler/event_connect.go:77-89 at v2.2.5-20260422); the flags are
WuKongIMGoProto's ``APP`` 0, ``WEB`` 1, ``PC`` 2 (common.go, the module v2.2.5 builds with). The live proof
that a token issued for ``device="web"`` lets the official JS SDK in is tests/live/test_jssdk_login.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from imbridge import IMClient, InvalidRequestError
from imbridge.emulators.wukong import WukongEmulator
from imbridge.models.device import DeviceKind
from imbridge.providers.tencent.usersig import verify_usersig
from imbridge.testing import FakeClock

MANAGER = "manager-token-for-tests"


@pytest.fixture
def wukong(tmp_path: Path) -> Iterator[tuple[IMClient, WukongEmulator, list[httpx.Request]]]:
    emulator = WukongEmulator(manager_token=MANAGER)
    sent: list[httpx.Request] = []
    http = httpx.Client(transport=emulator.transport(), event_hooks={"request": [sent.append]})
    im = IMClient(
        "wukong", http_client=http, base_url="http://wk.test", manager_token=MANAGER, store=str(tmp_path / "s.db")
    )
    im.users.register(["alice"])
    sent.clear()
    yield im, emulator, sent
    im.close()
    http.close()
    emulator.close()


def _token_posts(sent: list[httpx.Request]) -> list[dict[str, object]]:
    return [json.loads(r.content) for r in sent if r.url.path == "/user/token"]


def _devices(im: IMClient, uid: str) -> dict[int, str]:
    """The server's own record: token per device flag (GET /cluster/devices)."""
    rows = im.provider.call("GET", "/cluster/devices", params={"uid": uid})["data"]
    return {row["device_flag"]: row["token"] for row in rows}


@pytest.mark.parametrize(("device", "flag"), [("app", 0), ("web", 1), ("desktop", 2), (DeviceKind.WEB, 1)])
def test_wukong_token_is_registered_for_the_device_flag_of_its_kind(
    wukong: tuple[IMClient, WukongEmulator, list[httpx.Request]], device: str, flag: int
) -> None:
    im, _, sent = wukong
    credentials = im.users.login_credentials("alice", ttl=3600, device=device)
    (posted,) = _token_posts(sent)
    assert posted["device_flag"] == flag and posted["uid"] == "alice"
    assert credentials.device == DeviceKind(device)
    assert credentials.extra["device_flag"] == flag
    token = credentials.token.get_secret_value()
    assert _devices(im, "alice")[flag] == token
    # The token names its flag too, so an app can tell which client it belongs to.
    assert jwt.decode(token, options={"verify_signature": False})["dfl"] == flag


def test_wukong_tokens_of_two_kinds_live_side_by_side(
    wukong: tuple[IMClient, WukongEmulator, list[httpx.Request]],
) -> None:
    im, _, _ = wukong
    web = im.users.login_credentials("alice", device="web").token.get_secret_value()
    app = im.users.login_credentials("alice", device="app").token.get_secret_value()
    devices = _devices(im, "alice")
    assert devices[1] == web and devices[0] == app and web != app


def test_wukong_default_device_is_the_configured_flag(tmp_path: Path) -> None:
    emulator = WukongEmulator(manager_token=MANAGER)
    for configured, expected_kind in ((None, DeviceKind.APP), (1, DeviceKind.WEB), (7, None)):
        extra = {} if configured is None else {"device_flag": configured}
        with IMClient(
            "wukong", http_client=httpx.Client(transport=emulator.transport()), base_url="http://wk.test",
            manager_token=MANAGER, store=str(tmp_path / f"{configured}.db"), **extra,
        ) as im:  # fmt: skip
            im.users.register(["bob"])
            credentials = im.users.login_credentials("bob")
            flag = 0 if configured is None else configured
            assert credentials.extra["device_flag"] == flag
            assert credentials.device == expected_kind  # flag 7 is no kind imbridge names
            assert _devices(im, "bob")[flag] == credentials.token.get_secret_value()
    emulator.close()


@pytest.mark.parametrize("device", ["WEB", "pc", "mobile", 1, ""])
def test_unknown_device_kind_is_refused_before_any_request(
    wukong: tuple[IMClient, WukongEmulator, list[httpx.Request]], device: object
) -> None:
    im, _, sent = wukong
    with pytest.raises(InvalidRequestError, match="device must be one of"):
        im.users.login_credentials("alice", device=device)  # type: ignore[arg-type]
    assert sent == []


async def test_async_client_takes_the_device_too(tmp_path: Path) -> None:
    from imbridge import AsyncIMClient

    emulator = WukongEmulator(manager_token=MANAGER)
    async with AsyncIMClient(
        "wukong", http_client=httpx.AsyncClient(transport=emulator.transport()), base_url="http://wk.test",
        manager_token=MANAGER, store=str(tmp_path / "a.db"),
    ) as im:  # fmt: skip
        await im.users.register(["carol"])
        credentials = await im.users.login_credentials("carol", device="desktop")
        assert credentials.extra["device_flag"] == 2 and credentials.device is DeviceKind.DESKTOP
    emulator.close()


def test_local_records_the_device_in_the_token_and_accepts_every_kind() -> None:
    clock = FakeClock()
    with IMClient("local", database=":memory:", clock=clock) as im:
        im.users.register(["alice"])
        for kind in DeviceKind:
            credentials = im.users.login_credentials("alice", ttl=timedelta(hours=1), device=kind)
            token = credentials.token.get_secret_value()
            assert credentials.device is kind
            assert jwt.decode(token, options={"verify_signature": False})["dev"] == kind.value
            assert im.provider.authenticate(token) == "alice"
        plain = im.users.login_credentials("alice")
        assert plain.device is None
        assert "dev" not in jwt.decode(plain.token.get_secret_value(), options={"verify_signature": False})


def test_tencent_usersig_is_the_same_for_every_device_kind() -> None:
    # A UserSig carries TLS.ver, identifier, sdkappid, time, expire and the HMAC, and no platform
    # (https://www.tencentcloud.com/document/product/1047/34385): the kind is accepted, not bound.
    clock = FakeClock()
    key = "imbridge-test-key-not-a-secret"
    with IMClient("tencent", sdk_app_id=1400000001, secret_key=key, base_url="http://tim.test", clock=clock) as im:
        sigs = {kind: im.users.login_credentials("alice", ttl=600, device=kind) for kind in DeviceKind}
        plain = im.users.login_credentials("alice", ttl=600)
    assert {c.token.get_secret_value() for c in sigs.values()} == {plain.token.get_secret_value()}
    for kind, credentials in sigs.items():
        assert credentials.device is None and credentials.extra["requested_device"] == kind.value
        document = verify_usersig(
            credentials.token.get_secret_value(), 1400000001, key, now=clock.now().timestamp(), identifier="alice"
        )
        assert set(document) == {"TLS.ver", "TLS.identifier", "TLS.sdkappid", "TLS.time", "TLS.expire", "TLS.sig"}
