"""The inputs issue 13 lists (points 7, 10, 12), on every provider: each is refused with an IMBridgeError
before any request, where it used to escape as a bare Python error (or, for metadata JSON cannot encode on a
WuKongIM group send, as "unexpected response shape", blaming the server)."""

from __future__ import annotations

import asyncio
import base64
import gc
import math
import threading
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from imbridge import (
    AsyncIMClient,
    ConfigurationError,
    Conversation,
    Face,
    Image,
    IMClient,
    InvalidRequestError,
    MessageRef,
    RetryPolicy,
    Sound,
    Text,
)
from imbridge._cursor import decode_cursor, encode_cursor
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.errors import AuthenticationError, IMBridgeError
from imbridge.providers.tencent.usersig import decode_usersig
from imbridge.testing import FakeClock

TENCENT = {"sdk_app_id": 1400000000, "secret_key": "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e",
           "base_url": "http://127.0.0.1:9"}  # fmt: skip
WUKONG = {"base_url": "http://127.0.0.1:9", "manager_token": "t" * 16, "store": ":memory:"}


class Counted:
    """A client on one provider, seeded with alice, bob and carol in group ``team``, counting its requests."""

    def __init__(self, name: str) -> None:
        from datetime import UTC, datetime

        self.requests: list[str] = []
        self.http: httpx.Client | None = None
        settings: dict[str, Any] = {"database": ":memory:"}
        if name != "local":
            settings = dict(TENCENT if name == "tencent" else WUKONG)
            emulator: Any = TencentEmulator.for_client(settings) if name == "tencent" else WukongEmulator(
                manager_token=WUKONG["manager_token"]
            )
            self.http = httpx.Client(
                transport=emulator.transport(),
                event_hooks={"request": [lambda r: self.requests.append(f"{r.method} {r.url.path}")]},
            )
        self.im = IMClient(name, http_client=self.http, clock=FakeClock(datetime.now(UTC)), **settings)
        self.im.users.register(["alice", "bob", "carol"])
        self.im.groups.create("Team", owner="alice", members=["bob", "carol"], group_id="team")
        self.sent = self.im.messages.send("alice", Conversation.group("team"), "hello")

    def refused(self, call: Callable[[], object], error: type[Exception] = InvalidRequestError) -> Exception:
        before = len(self.requests)
        with pytest.raises(error) as info:
            call()
        assert len(self.requests) == before, f"a request was sent: {self.requests[before:]}"
        return info.value

    def close(self) -> None:
        self.im.close()
        if self.http is not None:
            self.http.close()


@pytest.fixture(params=["local", "tencent", "wukong"])
def counted(request: pytest.FixtureRequest) -> Iterator[Counted]:
    client = Counted(request.param)
    yield client
    client.close()


# (None is a mute until unmuted.)
@pytest.mark.parametrize("duration", [1e20, math.nan, math.inf, -5, 0, True, "60", 2**70, timedelta.max])
def test_mute_durations_that_cannot_be_are_refused(counted: Counted, duration: Any) -> None:
    counted.refused(lambda: counted.im.groups.mute("team", ["carol"], duration=duration))


@pytest.mark.parametrize("ttl", [1e20, math.nan, -1, 2**70, timedelta(days=-1), "86400"])
def test_login_ttls_that_cannot_be_are_refused(counted: Counted, ttl: Any) -> None:
    counted.refused(lambda: counted.im.users.login_credentials("alice", ttl=ttl))


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


UNENCODABLE = [{1, 2}, 2**70, b"bytes", math.nan, math.inf, object(), _nested(33)]
UNENCODABLE_IDS = ["set", "2**70", "bytes", "nan", "inf", "object", "nested-33"]


@pytest.mark.parametrize("value", UNENCODABLE, ids=UNENCODABLE_IDS)
@pytest.mark.parametrize("to", ["user", "group"])
def test_metadata_json_cannot_encode_is_an_invalid_request(counted: Counted, value: Any, to: str) -> None:
    """On WuKongIM group sends this used to be "unexpected response shape" (blaming the server)."""
    target = Conversation.group("team") if to == "group" else Conversation.user("bob")
    error = counted.refused(lambda: counted.im.messages.send("alice", target, "hi", metadata={"k": value}))
    assert "metadata" in str(error)
    counted.refused(lambda: counted.im.messages.send("alice", target, "hi", metadata={1: "int key"}))
    counted.refused(lambda: counted.im.messages.send("alice", target, "hi", options={"k": value}))
    counted.refused(lambda: counted.im.messages.send_batch("alice", ["bob"], "hi", metadata={"k": value}))


def test_nested_cursors_and_references_are_invalid_requests(counted: Counted) -> None:
    deep = base64.urlsafe_b64encode(("[" * 100_000 + "]" * 100_000).encode()).decode()
    counted.refused(lambda: counted.im.messages.history(Conversation.group("team"), "alice", cursor=deep))
    counted.refused(lambda: counted.im.messages.revoke("imref1." + deep))
    with pytest.raises(InvalidRequestError):
        MessageRef.parse("imref1." + deep)
    nested = encode_cursor(counted.im.provider_name, {"d": "backward", "s": [[[[1]]]], "t": {"a": 1}, "k": [1]})
    counted.refused(lambda: counted.im.messages.history(Conversation.group("team"), "alice", cursor=nested))


NESTED = ("[" * 100_000 + "]" * 100_000).encode()
NESTED_PARSERS: dict[str, Callable[[], object]] = {
    "cursor": lambda: decode_cursor("local", base64.urlsafe_b64encode(NESTED).decode()),
    "reference": lambda: MessageRef.parse("imref1." + base64.urlsafe_b64encode(NESTED).decode()),
    "usersig": lambda: decode_usersig(base64.b64encode(zlib.compress(NESTED)).decode()),
}


@pytest.mark.parametrize("parser", NESTED_PARSERS)
def test_nested_input_leaves_the_interpreter_room_to_run_finalizers(parser: str) -> None:
    """A caller's cursor, reference or UserSig nested 100,000 deep is refused without recursing to the
    interpreter's limit. json.loads did recurse there: the collector runs finalizers wherever it is triggered,
    and one run at that depth (a pooled SQLAlchemy connection being let go) failed as an unraisable exception,
    which made a test of this file fail at random. Here the collector runs at every allocation and checks each
    time that Python code can still call 60 frames deep."""

    def reach(depth: int) -> int:
        return 0 if depth == 0 else reach(depth - 1) + 1

    cornered: list[int] = []

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            try:
                reach(60)
            except RecursionError:
                cornered.append(info["generation"])

    threshold = gc.get_threshold()
    gc.callbacks.append(on_collection)
    gc.set_threshold(1)
    try:
        with pytest.raises(IMBridgeError) as refused:
            NESTED_PARSERS[parser]()
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(on_collection)
    assert isinstance(refused.value, AuthenticationError if parser == "usersig" else InvalidRequestError)
    assert cornered == [], f"{len(cornered)} collections ran with no room for a finalizer"


@pytest.mark.parametrize("text", ["", " ", "\t\n", "\u3000"])
def test_empty_and_whitespace_text_is_refused(counted: Counted, text: str) -> None:
    counted.refused(lambda: counted.im.messages.send("alice", Conversation.group("team"), text))
    counted.refused(lambda: counted.im.messages.send("alice", Conversation.group("team"), [Text("ok"), text]))


@pytest.mark.parametrize("element", ["face", "image", "sound"])
def test_element_integers_beyond_64_bits_are_refused(counted: Counted, element: str) -> None:
    """They used to escape the WuKongIM send flow as orjson's TypeError ('Integer exceeds 64-bit range')."""
    build = {"face": lambda: Face(index=2**70), "image": lambda: Image(url="https://e.x/a.png", width=2**64),
             "sound": lambda: Sound(url="https://e.x/s", duration=2**70)}[element]  # fmt: skip
    counted.refused(lambda: counted.im.messages.send_batch("alice", ["bob"], [build()]))
    counted.refused(lambda: counted.im.messages.send("alice", Conversation.group("team"), [build()]))


def test_models_a_caller_builds_raise_imbridge_errors() -> None:
    with pytest.raises(InvalidRequestError):
        Text("")
    with pytest.raises(InvalidRequestError):
        Conversation(kind="group", id=5)  # type: ignore[arg-type]
    for fields in ({"max_attempts": 0}, {"max_attempts": 1.5}, {"initial_backoff": math.nan}, {"bogus": 1}):
        with pytest.raises(ConfigurationError):
            RetryPolicy(**fields)


@pytest.mark.parametrize(
    "options",
    [{"timeout": math.nan}, {"timeout": 2**2000}, {"timeout": "10"}, {"timeout": 0}, {"retry": {"max_attempts": 2}},
     {"bulk_concurrency": "8"}, {"bulk_concurrency": 0}, {"max_connections": -1}, {"http_client": httpx.Client()}],
)  # fmt: skip
def test_bad_client_options_are_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        AsyncIMClient("local", database=":memory:", **options)
    sync_options = {k: v for k, v in options.items() if k not in ("bulk_concurrency", "max_connections", "http_client")}
    if sync_options:
        with pytest.raises(ConfigurationError):
            IMClient("local", database=":memory:", **sync_options)
        im = IMClient("local", database=":memory:")
        with pytest.raises(ConfigurationError):
            im.with_options(**sync_options)
        im.close()


def test_escape_hatch_bodies_json_cannot_encode_are_invalid_requests() -> None:
    wukong = Counted("wukong")
    try:
        wukong.refused(lambda: wukong.im.provider.call("POST", "/channel/info", {"channel_id": {1, 2}}))
        wukong.refused(lambda: wukong.im.provider.call("GET", "/cluster/channels/../x"))
        wukong.refused(lambda: wukong.im.provider.call(5, "/cluster/channels"))
        wukong.refused(lambda: wukong.im.provider.call("GET", "/health\x00"))
    finally:
        wukong.close()
    tencent = Counted("tencent")
    try:
        tencent.refused(lambda: tencent.im.provider.call("group_open_http_svc", "get_group_info", {1: "x"}))
    finally:
        tencent.close()


# -- point 10: a base URL that cannot be is refused when the client is built ------------------------------


BAD_URLS = ["ftp://x", "not a url", "", "http://", "://x", "http://[::1", "http://127.0.0.1:99999",
            "file:///etc/passwd", "http://h/\x00", "http://h:1?x=1", "http://h:1#f"]  # fmt: skip


@pytest.mark.parametrize("base_url", BAD_URLS)
@pytest.mark.parametrize("provider", ["tencent", "wukong"])
def test_a_base_url_that_cannot_be_is_a_configuration_error_at_construction(provider: str, base_url: str) -> None:
    settings = {**(TENCENT if provider == "tencent" else WUKONG), "base_url": base_url}
    for client_class in (IMClient, AsyncIMClient):
        with pytest.raises(ConfigurationError) as info:
            client_class(provider, **settings)
        assert "base_url" in str(info.value)


@pytest.mark.parametrize("provider", ["tencent", "wukong"])
def test_base_url_from_the_environment_is_checked_too(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMBRIDGE_PROVIDER", provider)
    for name, value in (TENCENT if provider == "tencent" else WUKONG).items():
        monkeypatch.setenv(f"IMBRIDGE_{provider.upper()}_{name.upper()}", str(value))
    monkeypatch.setenv(f"IMBRIDGE_{provider.upper()}_BASE_URL", "ftp://x")
    with pytest.raises(ConfigurationError):
        IMClient.from_env()


def test_emulator_urls_and_proxies_are_accepted() -> None:
    for url in ("http://127.0.0.1:9000", "https://adminapisgp.im.qcloud.com", "http://[::1]:5001/prefix/",
                "HTTP://LOCALHOST:5001"):  # fmt: skip
        IMClient("wukong", **{**WUKONG, "base_url": url}).close()
        IMClient("tencent", **{**TENCENT, "base_url": url}).close()


# -- point 12: ids that would change a URL path -------------------------------------------------------------


class _PathRecorder(BaseHTTPRequestHandler):
    """Answers like a WuKongIM that knows every channel, and records the raw request line's path."""

    paths: list[str] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        if self.path.startswith("/cluster/channels?"):
            body = b'{"data":[{"channel_id":"x","channel_type":2}]}'
        else:
            body = b"[]"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture
def recorder_url() -> Iterator[str]:
    _PathRecorder.paths = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PathRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_both_http_clients_collapse_dot_segments(recorder_url: str) -> None:
    """Why ``.`` and ``..`` are refused: a group id ``..`` put in ``/cluster/channels/{id}/2/subscribers``
    reaches another route on the server, with httpx and with aiohttp alike."""
    import aiohttp

    httpx.get(f"{recorder_url}/cluster/channels/../2/subscribers")

    async def with_aiohttp() -> None:
        async with aiohttp.ClientSession() as session, session.get(f"{recorder_url}/cluster/channels/./2/x") as r:
            await r.read()

    asyncio.run(with_aiohttp())
    assert _PathRecorder.paths == ["/cluster/2/subscribers", "/cluster/channels/2/x"]


@pytest.mark.parametrize("group_id", [".", "..", "a/b", "../2", "a\\b", "/"])
def test_ids_that_change_a_path_are_refused_on_every_provider(counted: Counted, group_id: str) -> None:
    im = counted.im
    counted.refused(lambda: im.groups.members(group_id))
    counted.refused(lambda: im.groups.muted(group_id))
    counted.refused(lambda: im.groups.mute(group_id, ["carol"], duration=60))
    counted.refused(lambda: im.groups.get(group_id))
    counted.refused(lambda: im.users.register([group_id]))
    counted.refused(lambda: im.messages.send(group_id, Conversation.user("bob"), "hi"))
    with pytest.raises(InvalidRequestError):
        Conversation.group(group_id)


@pytest.mark.parametrize("group_id", ["%2e%2e", "a?b", "%2F", "a%b"])
def test_other_url_characters_stay_inside_their_path_segment(recorder_url: str, group_id: str) -> None:
    """``?``, ``%`` and ``%2e`` cannot change the path: they are percent-encoded into one segment, on the sync
    (httpx) and async (aiohttp) drivers alike."""
    settings = {**WUKONG, "base_url": recorder_url, "policy_cache_seconds": 0}
    with IMClient("wukong", **settings) as im:
        im.groups.members(group_id)

    async def run_async() -> None:
        async with AsyncIMClient("wukong", **settings) as im:
            await im.groups.members(group_id)

    asyncio.run(run_async())
    routed = [path for path in _PathRecorder.paths if not path.startswith("/cluster/channels?")]
    assert len(routed) == 4, routed
    for path in routed:
        parts = path.split("/")
        assert parts[:3] == ["", "cluster", "channels"] and parts[4] == "2" and len(parts) == 6, path
        assert "." not in parts[3].replace("%252e", "").replace("%252E", ""), path
