"""Several WuKongIM nodes behind one client: settings, rotation, cooldown, and failover without duplicates.

The nodes are one in-process WuKongIM emulator reached under three host names, through an httpx transport
that plays the network: a host may refuse connections (nothing reaches the emulator) or time out after the
emulator handled the request (the request landed, the answer was lost). Every test runs on the sync client
and on the async client (an injected ``httpx.AsyncClient``): one executor decides for both. The aiohttp
driver is run against a real loopback emulator and a closed port.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imbridge import AsyncIMClient, ConfigurationError, Conversation, IMClient, RetryPolicy, Text, TransportError
from imbridge._flow import HTTPRequest
from imbridge._nodes import NodePool
from imbridge.config import WukongSettings
from imbridge.emulators import serve
from imbridge.emulators.wukong import WukongEmulator
from imbridge.testing import FakeClock

TOKEN = "manager-token-for-tests"
NODES = ["http://n1.test:5001", "http://n2.test:5001", "http://n3.test:5001"]


class Network(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Three hosts in front of one emulator; each host answers, refuses, or times out after handling."""

    def __init__(self, emulator: WukongEmulator) -> None:
        self.inner = emulator.transport()
        self.refused: set[str] = set()
        self.timing_out: set[str] = set()
        self.seen: list[tuple[str, str]] = []  # (host, path) of every request that left the client

    def _handle(self, request: httpx.Request, body: bytes) -> httpx.Response:
        host = request.url.host
        self.seen.append((host, request.url.path))
        if host in self.refused:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        response = self.inner.handle_request(request)
        if host in self.timing_out:
            raise httpx.ReadTimeout("timed out", request=request)  # handled, answer lost
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._handle(request, request.read())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._handle(request, await request.aread())

    def hosts(self, path: str | None = None) -> list[str]:
        return [host for host, seen_path in self.seen if path is None or seen_path == path]


@pytest.fixture
def emulator() -> Iterator[WukongEmulator]:
    emulator = WukongEmulator(manager_token=TOKEN)
    yield emulator
    emulator.close()


@pytest.fixture
def network(emulator: WukongEmulator) -> Network:
    return Network(emulator)


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest, network: Network, tmp_path: Path) -> Iterator[Any]:
    """Builds a client over the three nodes; its calls are made with the sync client's shape either way."""
    clock = FakeClock()
    loop = asyncio.new_event_loop()
    made: list[Any] = []

    def build(**settings: Any) -> Any:
        options = {"base_url": ",".join(NODES), "manager_token": TOKEN, "store": str(tmp_path / "s.db"),
                   "policy_cache_seconds": 0, "confirm_replicated": False, "retry": RetryPolicy(initial_backoff=0),
                   "clock": clock, **settings}  # fmt: skip
        if request.param == "sync":
            client: Any = IMClient("wukong", http_client=httpx.Client(transport=network), **options)
            made.append(client)
            return client
        from tests.core.conftest import AsyncAsSync

        async_client = AsyncIMClient("wukong", http_client=httpx.AsyncClient(transport=network), **options)
        made.append(async_client)
        return AsyncAsSync(async_client, loop)

    build.clock = clock  # type: ignore[attr-defined]
    yield build
    for client in made:
        if isinstance(client, IMClient):
            client.close()
        else:
            loop.run_until_complete(client.aclose())
    loop.close()


# -- settings ------------------------------------------------------------------------------------------


def test_base_url_takes_a_list_or_a_comma_separated_string(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WukongSettings(base_url=NODES).base_urls == NODES
    assert WukongSettings(base_url=" , ".join(NODES)).base_url == ",".join(NODES)
    monkeypatch.setenv("IMBRIDGE_WUKONG_BASE_URL", f"{NODES[0]}/,{NODES[1]}")
    settings = WukongSettings()
    assert settings.base_urls == NODES[:2]
    assert settings.replicated_confirmation  # several nodes: confirmed on a majority of replicas
    single = WukongSettings(base_url="http://127.0.0.1:5001/")
    assert single.base_url == "http://127.0.0.1:5001/"  # one URL is kept as given, as before
    assert single.base_urls == ["http://127.0.0.1:5001"] and not single.replicated_confirmation


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ([NODES[0], "ftp://n2"], "base_url[1] must start with http"),
        (f"{NODES[0]},", "no empty entry"),
        ([], "at least one URL"),
        ([NODES[0], NODES[0] + "/"], "lists a node twice"),
        ([NODES[0], "http://n2?x=1"], "base_url[1] must not carry a query"),
        (42, "must be a URL or a list of URLs"),
    ],
)
def test_every_node_url_is_checked_like_one(value: Any, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint.replace("[", r"\[").replace("]", r"\]").replace("?", r"\?")):
        IMClient("wukong", base_url=value, manager_token=TOKEN)


# -- the pool's decisions --------------------------------------------------------------------------------


def _wire(base: str) -> HTTPRequest:
    return HTTPRequest("GET", base + "/varz", {}, {}, None)


def test_pool_turns_skips_cooling_nodes_and_probes_when_all_are_down() -> None:
    pool = NodePool(NODES, cooldown=10)
    assert [pool.pick(0) for _ in range(4)] == [NODES[0], NODES[1], NODES[2], NODES[0]]
    pool.failed(NODES[1], now=100)
    assert {pool.pick(105) for _ in range(6)} == {NODES[0], NODES[2]}
    assert NODES[1] in {pool.pick(110) for _ in range(3)}  # the cooldown is over
    for index, node in enumerate(NODES):
        pool.failed(node, now=200 + index)
    assert pool.pick(203) == NODES[0]  # every node down: the first to come back is probed
    wire = _wire(NODES[0])
    assert pool.route(wire, 203, node=NODES[2]) == NODES[2] and wire.url == NODES[2] + "/varz"


# -- through the client --------------------------------------------------------------------------------


def test_requests_are_spread_over_the_nodes(make: Any, network: Network) -> None:
    im = make()
    im.users.register(["alice", "bob"])
    for index in range(6):
        im.messages.send(sender="alice", to=Conversation.user("bob"), content=[Text(f"m{index}")])
    assert set(network.hosts()) == {"n1.test", "n2.test", "n3.test"}


def test_a_refused_node_is_skipped_until_its_cooldown_ends(make: Any, network: Network) -> None:
    im = make(node_cooldown=30)
    network.refused.add("n2.test")
    im.users.register(["alice", "bob"])
    for index in range(6):
        sent = im.messages.send(sender="alice", to=Conversation.user("bob"), content=[Text(f"m{index}")])
        assert sent.confirmed
    # Refused once, then left out: every other request went to n1 and n3, none failed.
    assert network.hosts().count("n2.test") == 1
    make.clock.advance(31)
    network.refused.clear()
    for index in range(3):
        im.messages.send(sender="alice", to=Conversation.user("bob"), content=[Text(f"later{index}")])
    assert network.hosts()[-12:].count("n2.test") >= 1  # back in rotation after the cooldown


def test_every_node_refusing_is_a_transport_error_that_cannot_have_landed(make: Any, network: Network) -> None:
    im = make(retry=RetryPolicy.none())
    network.refused.update({"n1.test", "n2.test", "n3.test"})
    with pytest.raises(TransportError) as raised:
        im.users.register(["alice"])
    assert not raised.value.may_have_landed
    assert sorted(network.hosts()) == ["n1.test", "n2.test", "n3.test"]  # each node tried once, in one attempt


def test_a_send_that_timed_out_after_landing_is_looked_up_through_another_node_not_resent(
    make: Any, network: Network, emulator: WukongEmulator
) -> None:
    im = make()
    im.users.register(["alice", "bob"])
    network.seen.clear()
    network.timing_out.add("n1.test")  # the next request in turn goes to n1: handled there, answer lost
    sends_before = len(network.hosts("/message/send"))
    sent = None
    for index in range(3):  # whichever send falls on n1
        sent = im.messages.send(sender="alice", to=Conversation.user("bob"), content=[Text(f"m{index}")],
                                idempotency_key=f"key-{index}")  # fmt: skip
        assert sent.confirmed
    assert sent is not None
    sends = network.seen[sends_before:]
    timed_out = [i for i, (host, path) in enumerate(sends) if host == "n1.test" and path == "/message/send"]
    assert len(timed_out) == 1
    after = sends[timed_out[0] + 1 :]
    # The lookup that followed went to another node, and the message was not sent again.
    assert after[0][1] == "/message/byclientmsgno" and after[0][0] != "n1.test"
    assert [path for _host, path in after].count("/message/send") == 2  # only the two other sends
    emulator.flush()
    history = im.messages.history(Conversation.user("bob"), viewer="alice", limit=10).items
    assert sorted(m.elements[0].text for m in history) == ["m0", "m1", "m2"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_aiohttp_driver_moves_past_a_node_that_refuses(tmp_path: Path) -> None:
    emulator = WukongEmulator(manager_token=TOKEN)

    async def run(url: str) -> list[bool]:
        nodes = [f"http://127.0.0.1:{_closed_port()}", url]
        async with AsyncIMClient("wukong", base_url=nodes, manager_token=TOKEN, store=str(tmp_path / "a.db"),
                                 confirm_replicated=False) as im:  # fmt: skip
            await im.users.register(["alice", "bob"])
            results = []
            for index in range(4):
                sent = await im.messages.send(sender="alice", to=Conversation.user("bob"), content=[Text(f"{index}")])
                results.append(sent.confirmed)
            return results

    try:
        with serve(emulator) as server:
            assert asyncio.run(run(server.url)) == [True] * 4
    finally:
        emulator.close()
