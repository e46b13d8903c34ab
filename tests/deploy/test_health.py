"""``im.health()`` and ``imbridge doctor``: a closed port, a wrong WuKongIM token, a wrong Tencent key and a
healthy server give four distinct answers, and none of them raises.

The WuKongIM answers come from a real v2.2.5 server on loopback, recorded in ``cassettes/wukong/deploy/``
(``GET /varz`` with the manager token, and with a wrong one: HTTP 401, internal/api/server_http.go:49-60).
Record them again against a running server with::

    IMBRIDGE_DEPLOY_RECORD=1 IMBRIDGE_WUKONG_BASE_URL=http://127.0.0.1:5001 IMBRIDGE_WUKONG_MANAGER_TOKEN=... \\
        .venv/bin/python -m pytest tests/deploy/test_health.py -k recorded

The closed port is a real one (bound, then closed); the Tencent answers come from imbridge's Tencent
emulator, which verifies UserSigs as the service documents (70009 for a sig made with another key).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from imbridge import AsyncIMClient, IMClient
from imbridge.cli import main
from imbridge.emulators import serve
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.errors import UnsupportedOperationError
from imbridge.models.health import Health
from imbridge.providers.wukong.health import PROVEN_VERSION, version_warnings
from imbridge.testing import cassettes

RECORD = os.environ.get("IMBRIDGE_DEPLOY_RECORD") == "1"
CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "wukong" / "deploy"
REAL_URL = os.environ.get("IMBRIDGE_WUKONG_BASE_URL", "http://127.0.0.1:5001") if RECORD else "http://127.0.0.1:5001"
REAL_TOKEN = os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN", "") if RECORD else cassettes.PLACEHOLDER
WRONG_TOKEN = "not-the-manager-token"
TENCENT_KEY = "imbridge-test-key-not-a-secret"
TENCENT_APP = 1400000001


def _recorder(mode: str = "record" if RECORD else "replay") -> Any:
    return cassettes.recorder(CASSETTES, mode)


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound by us, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wukong(base_url: str, token: str, **options: Any) -> IMClient:
    return IMClient("wukong", base_url=base_url, manager_token=token, store="", **options)


# -- WuKongIM, recorded from the real server -----------------------------------------------------------


def test_recorded_healthy_wukong_reports_its_version() -> None:
    with _recorder().use_cassette("health_ok.yaml"), _wukong(REAL_URL, REAL_TOKEN) as im:
        health = im.health()
    assert isinstance(health, Health) and health.provider == "wukong"
    assert health.ok and health.reachable and health.authenticated is True
    assert health.server_version == PROVEN_VERSION == "v2.2.5-20260422"
    assert health.warnings == []
    assert health.latency_ms is not None and health.latency_ms >= 0
    assert health.details["api_url"] == "http://127.0.0.1:5001" and health.details["manager_token_on"] == 1
    assert REAL_TOKEN not in repr(health) and REAL_TOKEN not in json.dumps(health.model_dump(mode="json"))


def test_recorded_wrong_token_is_reachable_but_not_authenticated() -> None:
    with _recorder().use_cassette("health_wrong_token.yaml"), _wukong(REAL_URL, WRONG_TOKEN) as im:
        health = im.health()
    assert health.reachable is True and health.authenticated is False and not health.ok
    assert health.details["http_status"] == 401 and health.server_version is None
    assert "manager_token" in health.message


def test_closed_port_is_unreachable_and_fast() -> None:
    with _wukong(f"http://127.0.0.1:{_closed_port()}", "anything") as im:
        health = im.health()
    assert health.reachable is False and health.authenticated is None and not health.ok
    assert health.latency_ms is None and "no answer" in health.message


def test_health_is_one_attempt_with_its_own_timeout() -> None:
    # A server that accepts the connection and never answers: one attempt of `timeout` seconds, no retry.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with _wukong(url, "t", timeout=30) as im:
            health = im.health(timeout=0.3)
    assert health.reachable is False and "timed out" in health.message.lower()


def test_emulator_varz_has_the_fields_of_the_recorded_server() -> None:
    document = yaml.safe_load((CASSETTES / "health_ok.yaml").read_text())
    (interaction,) = document["interactions"]
    real = json.loads(interaction["response"]["body"]["string"])
    emulator = WukongEmulator(manager_token="t")
    with IMClient(
        "wukong", http_client=httpx.Client(transport=emulator.transport()), base_url="http://wk.test",
        manager_token="t", store="",
    ) as im:  # fmt: skip
        emulated = im.provider.call("GET", "/varz")
    assert list(emulated) == list(real)  # same keys, same order (the Varz struct's)
    assert {k: type(v) for k, v in emulated.items()} == {k: type(v) for k, v in real.items()}
    assert emulated["version"] == real["version"] == PROVEN_VERSION
    emulator.close()


# -- WuKongIM, on the emulator --------------------------------------------------------------------------


@pytest.fixture
def emulated_wukong() -> Iterator[WukongEmulator]:
    emulator = WukongEmulator(manager_token="right")
    yield emulator
    emulator.close()


def _on(emulator: Any, **settings: Any) -> IMClient:
    provider = "tencent" if isinstance(emulator, TencentEmulator) else "wukong"
    base = {"base_url": "http://emulated.test"}
    if provider == "wukong":
        base["store"] = ""
    return IMClient(provider, http_client=httpx.Client(transport=emulator.transport()), **base, **settings)


@pytest.mark.parametrize(
    ("version", "warned"),
    [("v2.2.5-20260422", False), ("v2.2.6-20270101", False), ("v2.3.0-20270301", True), ("v3.0.1", True),
     ("", True), ("dev", True)],
)  # fmt: skip
def test_versions_off_the_proven_line_are_warned_about(version: str, warned: bool) -> None:
    emulator = WukongEmulator(manager_token="right", version=version)
    with _on(emulator, manager_token="right") as im:
        health = im.health()
    assert health.ok and health.server_version == (version or None)
    assert bool(health.warnings) is warned and health.warnings == version_warnings(version)
    emulator.close()


def test_a_server_without_manager_token_is_ok_but_warned_about() -> None:
    emulator = WukongEmulator(manager_token=None)
    with _on(emulator) as im:
        health = im.health()
    assert health.ok and any("no managerToken" in w for w in health.warnings)
    emulator.close()


def test_something_that_is_not_wukong_is_reachable_with_authentication_unknown() -> None:
    def elsewhere(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"hello": "world"})

    with IMClient("wukong", http_client=httpx.Client(transport=httpx.MockTransport(elsewhere)), store="") as im:
        health = im.health()
    assert health.reachable and health.authenticated is None and not health.ok
    assert "not as WuKongIM does" in health.message


def test_a_failing_server_is_reachable_with_authentication_unknown() -> None:
    calls: list[httpx.Request] = []

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"msg": "overloaded"})

    with IMClient("wukong", http_client=httpx.Client(transport=httpx.MockTransport(failing)), store="") as im:
        health = im.health()
    assert health.reachable and health.authenticated is None and health.details["http_status"] == 503
    assert len(calls) == 1  # the retry policy (3 attempts by default) is not applied to a health check


async def test_async_health_gives_the_same_answers(emulated_wukong: WukongEmulator) -> None:
    for token, authenticated in (("right", True), ("wrong", False)):
        async with AsyncIMClient(
            "wukong", http_client=httpx.AsyncClient(transport=emulated_wukong.transport()), base_url="http://wk.test",
            manager_token=token, store="",
        ) as im:  # fmt: skip
            health = await im.health()
        assert health.reachable and health.authenticated is authenticated
    async with AsyncIMClient("wukong", base_url=f"http://127.0.0.1:{_closed_port()}", store="") as im:
        assert (await im.health()).reachable is False


# -- Tencent, on the emulator ---------------------------------------------------------------------------


@pytest.fixture
def tencent() -> Iterator[TencentEmulator]:
    emulator = TencentEmulator(sdk_app_id=TENCENT_APP, secret_key=TENCENT_KEY)
    yield emulator
    emulator.close()


def test_tencent_healthy(tencent: TencentEmulator) -> None:
    with _on(tencent, sdk_app_id=TENCENT_APP, secret_key=TENCENT_KEY) as im:
        health = im.health()
    assert health.ok and health.server_version is None and health.warnings == []
    assert health.details["admin_status"] == "Imported" and health.details["sdk_app_id"] == TENCENT_APP


def test_tencent_wrong_key_is_not_authenticated(tencent: TencentEmulator) -> None:
    with _on(tencent, sdk_app_id=TENCENT_APP, secret_key="some-other-key") as im:
        health = im.health()
    assert health.reachable and health.authenticated is False and not health.ok
    assert health.details["native_code"] == 70009  # "UserSig 验证失败" (signed with another key)
    assert "some-other-key" not in repr(health)


def test_tencent_wrong_app_and_non_admin_are_not_authenticated(tencent: TencentEmulator) -> None:
    with _on(tencent, sdk_app_id=TENCENT_APP + 1, secret_key=TENCENT_KEY) as im:
        assert im.health().details["native_code"] == 70014
    with _on(tencent, sdk_app_id=TENCENT_APP, secret_key=TENCENT_KEY, admin="alice") as im:
        health = im.health()
    assert health.authenticated is False and health.details["native_code"] == 60010


def test_tencent_closed_port_is_unreachable() -> None:
    with IMClient(
        "tencent", sdk_app_id=TENCENT_APP, secret_key=TENCENT_KEY, base_url=f"http://127.0.0.1:{_closed_port()}"
    ) as im:
        health = im.health()
    assert health.reachable is False and health.authenticated is None


def test_tencent_reads_the_official_account_check_example() -> None:
    # The example of https://www.tencentcloud.com/document/product/1047/34956: UserID_1 Imported, UserID_2 not.
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "tencent" / "official" / "account_check.json"
    example = json.loads(fixture.read_text())
    answer = example["response_examples"][0]["body"]
    sent: list[dict[str, Any]] = []

    def official(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=answer)

    for admin, warned in (("UserID_1", False), ("UserID_2", True)):
        with IMClient(
            "tencent", sdk_app_id=TENCENT_APP, secret_key=TENCENT_KEY, admin=admin, base_url="http://t.test",
            http_client=httpx.Client(transport=httpx.MockTransport(official)),
        ) as im:  # fmt: skip
            health = im.health()
        assert health.ok and bool(health.warnings) is warned
    # The request has the documented shape: CheckItem, a list of {"UserID": ...}.
    assert sent[0] == {"CheckItem": [{"UserID": "UserID_1"}]}
    assert set(sent[0]) == set(example["request_examples"][0]["body"])


# -- local ----------------------------------------------------------------------------------------------


def test_local_is_ok_while_its_database_answers(tmp_path: Path) -> None:
    im = IMClient("local", database=str(tmp_path / "l.db"))
    health = im.health()
    assert health.ok and health.details["schema_version"] and health.details["database"].endswith("l.db")
    for part in tmp_path.iterdir():  # the file (and its WAL) overwritten: no longer a database
        with part.open("r+b") as file:
            file.truncate(0)
            file.write(b"garbage!" * 512)
    broken = im.health()
    assert broken.reachable is False and not broken.ok and "not a database" in broken.message
    im.close()


def test_a_provider_without_a_check_says_so() -> None:
    from imbridge.providers.base import Provider
    from imbridge.providers.local.provider import LocalProvider

    class NoCheck(LocalProvider):
        name = "nocheck"
        health = Provider.health  # the base's refusal

    provider = NoCheck(LocalProvider.settings_class(database=":memory:"))
    with IMClient(provider) as im, pytest.raises(UnsupportedOperationError):
        im.health()
    provider.close()


# -- imbridge doctor: four answers, four exit codes --------------------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in list(os.environ):
        if name.startswith("IMBRIDGE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def _doctor(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, dict[str, Any]]:
    code = main(["--json", *options, "doctor"])
    return code, json.loads(capsys.readouterr().out)


def test_doctor_healthy_recorded_wukong_exits_0(environment: pytest.MonkeyPatch, capsys: Any) -> None:
    environment.setenv("IMBRIDGE_WUKONG_BASE_URL", REAL_URL)
    environment.setenv("IMBRIDGE_WUKONG_MANAGER_TOKEN", REAL_TOKEN)
    environment.setenv("IMBRIDGE_WUKONG_STORE", "")
    with _recorder("replay").use_cassette("health_ok.yaml"):
        code, report = _doctor(capsys, "--provider", "wukong")
    assert code == 0 and report["health"]["server_version"] == PROVEN_VERSION and report["health"]["authenticated"]
    assert REAL_TOKEN not in json.dumps(report)


def test_doctor_wrong_token_exits_1(environment: pytest.MonkeyPatch, capsys: Any) -> None:
    environment.setenv("IMBRIDGE_WUKONG_BASE_URL", REAL_URL)
    environment.setenv("IMBRIDGE_WUKONG_MANAGER_TOKEN", WRONG_TOKEN)
    environment.setenv("IMBRIDGE_WUKONG_STORE", "")
    with _recorder("replay").use_cassette("health_wrong_token.yaml"):
        code, report = _doctor(capsys, "--provider", "wukong")
    assert code == 1 and report["health"]["reachable"] and report["health"]["authenticated"] is False


def test_doctor_closed_port_exits_1_with_text(environment: pytest.MonkeyPatch, capsys: Any) -> None:
    environment.setenv("IMBRIDGE_WUKONG_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    environment.setenv("IMBRIDGE_WUKONG_STORE", "")
    assert main(["--provider", "wukong", "doctor"]) == 1
    out = capsys.readouterr().out
    assert "Health: wukong: unreachable" in out and "Capabilities:" in out


def test_doctor_wrong_tencent_key_exits_1(environment: pytest.MonkeyPatch, capsys: Any, tencent: Any) -> None:
    with serve(tencent) as server:
        environment.setenv("IMBRIDGE_TENCENT_BASE_URL", server.url)
        environment.setenv("IMBRIDGE_TENCENT_SDK_APP_ID", str(TENCENT_APP))
        environment.setenv("IMBRIDGE_TENCENT_SECRET_KEY", "some-other-key")
        code, report = _doctor(capsys, "--provider", "tencent")
        assert code == 1 and report["health"]["authenticated"] is False
        assert report["health"]["details"]["native_code"] == 70009
        environment.setenv("IMBRIDGE_TENCENT_SECRET_KEY", TENCENT_KEY)
        code, report = _doctor(capsys, "--provider", "tencent")
        assert code == 0 and report["health"]["authenticated"] is True
    assert "some-other-key" not in json.dumps(report) and TENCENT_KEY not in json.dumps(report)


def test_doctor_local_exits_0(environment: pytest.MonkeyPatch, capsys: Any, tmp_path: Path) -> None:
    environment.setenv("IMBRIDGE_LOCAL_DATABASE", str(tmp_path / "d.db"))
    code, report = _doctor(capsys, "--provider", "local")
    assert code == 0 and report["health"]["reachable"] is True and report["health"]["authenticated"] is True
