"""With DEBUG logging on everywhere, sends, failures and retries on every provider leave no secret behind:
not in log records, not in the repr or str of clients, settings, errors and results, not in exception texts
(with their chained causes), and not in cassettes."""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from test_cassette_lint import problems

from imbridge import AsyncIMClient, Conversation, IMClient
from imbridge.config import LocalSettings, TencentSettings, WukongSettings
from imbridge.emulators import EmulatorReply, EmulatorRequest, EmulatorTransport, serve
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.errors import IMBridgeError
from imbridge.retry import RetryPolicy
from imbridge.testing import FakeClock
from imbridge.testing.cassettes import recorder

RETRY = RetryPolicy(max_attempts=3, initial_backoff=0)


class Flaky:
    """Wraps an emulator: answers every ``every``-th request with a 503 (so the client retries), and
    remembers every credential that crossed the wire (the UserSig in the query, the token header)."""

    def __init__(self, inner: Any, every: int = 3) -> None:
        self.inner = inner
        self.every = every
        self.count = 0
        self.seen: set[str] = set()

    def handle(self, request: EmulatorRequest) -> EmulatorReply:
        self.count += 1
        self.seen.update(value for name, value in request.query.items() if name == "usersig")
        self.seen.update(value for name, value in request.headers.items() if name == "token")
        if self.count % self.every == 0:
            return EmulatorReply.text("busy", 503)
        return self.inner.handle(request)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=EmulatorTransport(self))


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)  # root: httpx, httpcore, aiohttp, asyncio and everything else
    caplog.set_level(logging.DEBUG, logger="imbridge")
    yield caplog


def _texts(*objects: Any) -> list[str]:
    out = []
    for obj in objects:
        out += [repr(obj), str(obj)]
        if isinstance(obj, BaseException):
            out.append("".join(traceback.format_exception(obj)))  # chained causes and their messages too
    return out


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    return texts


def _assert_clean(texts: list[str], secret_values: set[str]) -> None:
    assert secret_values, "no secret to look for: the test would prove nothing"
    for value in secret_values:
        assert len(value) >= 8
        # As written, URL-encoded (a UserSig's "*" is "%2A" in a logged URL), or any long piece of it.
        forms = {value, quote(value, safe=""), quote(value), value[:24], value[-24:]}
        leaks = [text[:200] for text in texts if any(form in text for form in forms)]
        assert not leaks, f"a secret leaked into: {leaks[:3]}"


def _exercise(im: IMClient, group_sender: str = "alice") -> tuple[list[Any], str]:
    """Sends that succeed, fail and are retried; what they returned or raised, and a login token."""
    seen: list[Any] = [im, im.describe()]
    calls = [lambda: im.users.register(["alice", "bob"])]
    calls += [lambda: im.messages.send("alice", Conversation.user("bob"), "hello")] * 4
    calls += [
        lambda: im.messages.send("alice", Conversation.user("nobody-here"), "hi"),
        lambda: im.messages.send(group_sender, Conversation.group("no-such-group"), "hi"),
        lambda: im.groups.get("no-such-group"),
    ]
    for call in calls:
        try:
            seen.append(call())
        except IMBridgeError as error:
            seen.append(error)
    credentials = im.users.login_credentials("alice")
    seen.append(credentials)
    return seen, credentials.token.get_secret_value()


def test_tencent_leaves_no_secret(debug_logs: pytest.LogCaptureFixture) -> None:
    key = secrets.token_hex(16)
    emulator = TencentEmulator(sdk_app_id=1400000001, secret_key=key)
    flaky = Flaky(emulator)
    settings = {"sdk_app_id": 1400000001, "secret_key": key, "base_url": "http://tencent.test"}
    with IMClient("tencent", http_client=flaky.client(), retry=RETRY, **settings) as im:
        seen, user_sig = _exercise(im)
    assert flaky.count > 10 and any(isinstance(item, IMBridgeError) for item in seen)
    seen.append(TencentSettings.model_validate(settings))
    _assert_clean(_texts(*seen) + _log_texts(debug_logs), {key, user_sig, *flaky.seen})


def test_wukong_leaves_no_secret(debug_logs: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    token, token_secret = secrets.token_hex(12), secrets.token_hex(16)
    emulator = WukongEmulator(manager_token=token)
    flaky = Flaky(emulator)
    settings = {"base_url": "http://wukong.test", "manager_token": token, "token_secret": token_secret,
                "store": str(tmp_path / "wk.db")}  # fmt: skip
    with IMClient("wukong", http_client=flaky.client(), retry=RETRY, clock=FakeClock(), **settings) as im:
        seen, login_token = _exercise(im)
    # A client with a wrong token: the 401 it gets must not echo either token.
    wrong = secrets.token_hex(12)
    with IMClient("wukong", http_client=httpx.Client(transport=emulator.transport()), retry=RETRY,
                  base_url="http://wukong.test", manager_token=wrong, store="") as refused:  # fmt: skip
        try:
            refused.messages.send("alice", Conversation.user("bob"), "hi")
        except IMBridgeError as error:
            seen.append(error)
    assert any(isinstance(item, IMBridgeError) for item in seen)
    seen.append(WukongSettings.model_validate(settings))
    _assert_clean(_texts(*seen) + _log_texts(debug_logs), {token, token_secret, login_token, wrong, *flaky.seen})


def test_local_leaves_no_secret(debug_logs: pytest.LogCaptureFixture) -> None:
    token_secret = secrets.token_hex(16)
    with IMClient("local", database=":memory:", token_secret=token_secret) as im:
        seen, login_token = _exercise(im)
    seen.append(LocalSettings.model_validate({"database": ":memory:", "token_secret": token_secret}))
    _assert_clean(_texts(*seen) + _log_texts(debug_logs), {token_secret, login_token})


async def test_async_default_driver_leaves_no_secret_in_logs(debug_logs: pytest.LogCaptureFixture) -> None:
    """aiohttp, the default async driver, against an emulator on loopback: its failures too."""
    key = secrets.token_hex(16)
    flaky = Flaky(TencentEmulator(sdk_app_id=1400000001, secret_key=key))
    with serve(flaky) as server:
        async with AsyncIMClient("tencent", sdk_app_id=1400000001, secret_key=key, base_url=server.url,
                                 retry=RETRY) as im:  # fmt: skip
            await im.users.register(["alice", "bob"])
            sent = await im.messages.send("alice", Conversation.user("bob"), "hello")
            errors: list[Any] = []
            try:
                await im.messages.send("alice", Conversation.user("nobody-here"), "hi")
            except IMBridgeError as error:
                errors.append(error)
    # A server that is gone: a transport failure, after the sig was made.
    async with AsyncIMClient("tencent", sdk_app_id=1400000001, secret_key=key, base_url=server.url,
                             retry=RETRY) as gone:  # fmt: skip
        try:
            await gone.messages.send("alice", Conversation.user("bob"), "hi")
        except IMBridgeError as error:
            errors.append(error)
    assert len(errors) == 2 and flaky.count >= 3
    _assert_clean(_texts(sent, *errors) + _log_texts(debug_logs), {key, *flaky.seen})


@pytest.mark.parametrize("provider", ["tencent", "wukong"])
def test_recorded_cassettes_hold_no_secret(provider: str, tmp_path: Path) -> None:
    """Cassettes recorded with imbridge's own recorder (real HTTP to an emulator on loopback) from sends,
    failures, retries and logins pass the same lint as the committed ones, and hold none of the secrets."""
    secret = secrets.token_hex(16)
    if provider == "tencent":
        flaky = Flaky(TencentEmulator(sdk_app_id=1400000001, secret_key=secret))
        settings: dict[str, Any] = {"sdk_app_id": 1400000001, "secret_key": secret}
    else:
        flaky = Flaky(WukongEmulator(manager_token=secret))
        settings = {"manager_token": secret, "store": str(tmp_path / "wk.db")}
    with (
        serve(flaky) as server,
        recorder(tmp_path, "record").use_cassette(f"{provider}.yaml"),
        # WuKongIM sends look a failed attempt up after waits: a fake clock skips them (the emulator stores at once).
        IMClient(
            provider, retry=RETRY, base_url=server.url, clock=FakeClock() if provider == "wukong" else None, **settings
        ) as im,  # fmt: skip
    ):
        login_token = _exercise(im)[1]
    written = [path.read_text(encoding="utf-8") for path in tmp_path.glob("*.yaml")]
    assert written and "interactions" in written[0]
    for text in written:
        assert problems(text) == []
        _assert_clean([text], {secret, login_token, *flaky.seen})
