"""A real three-node WuKongIM v2.2.5 cluster's answers, replayed: failover, confirmation, the token defect.

``cassettes/wukong/cluster/answers.json`` was recorded by ``tools/wukong_cluster/record.py`` from three real
v2.2.5 nodes on loopback (PROVENANCE.md): a healthy send, its lookup, the channel's replicas and config, each
node's own copy of the message; the routes hit by the token-forwarding defect, through every node; and what a
surviving node answered while the channel's leader was SIGKILLed. Every test here reads those answers; none is
written by hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from imbridge import (
    AsyncIMClient,
    Conversation,
    IMClient,
    InvalidRequestError,
    ProviderError,
    RetryPolicy,
    ServiceUnavailableError,
    Text,
)
from imbridge.providers.wukong import mapping, wire
from imbridge.providers.wukong.provider import WukongProvider
from imbridge.testing import FakeClock

RECORDING = json.loads((Path(__file__).parents[2] / "cassettes/wukong/cluster/answers.json").read_text())
ANSWERS: list[dict[str, Any]] = RECORDING["answers"]
NODES: list[str] = RECORDING["nodes"]
PREFIX: str = RECORDING["prefix"]
GROUP, ALICE, BOB = PREFIX + "g", PREFIX + "a", PREFIX + "b"

FAILOVER = [a for a in ANSWERS if a.get("seconds_after_kill") is not None and a.get("status") == 400]
DEFECT = [a for a in ANSWERS if a["note"].startswith("token defect") and a.get("status") == 400]


def _where(answer: dict[str, Any]) -> str:
    return f"{answer['method']} {answer['path']}"


def _error(answer: dict[str, Any]) -> ProviderError | None:
    return mapping.error_for(answer["status"], answer["response"].encode(), where=_where(answer))


def test_the_recording_holds_each_kind_of_answer() -> None:
    assert {a["path"] for a in FAILOVER} >= {"/message/byclientmsgno", "/channel/messagesync"}
    assert any("获取频道所在节点失败" in a["response"] for a in FAILOVER)
    assert any("connect: connection refused" in a["response"] for a in FAILOVER)
    assert {a["path"] for a in DEFECT} >= {"/user/onlinestatus", "/conversation/sync", "/user/systemuids_add"}


@pytest.mark.parametrize("answer", FAILOVER, ids=lambda a: f"{a['path']}@{a['seconds_after_kill']}s")
def test_a_failover_answer_is_retryable_never_the_callers_fault(answer: dict[str, Any]) -> None:
    error = _error(answer)
    assert isinstance(error, ServiceUnavailableError) and not isinstance(error, InvalidRequestError)
    assert error.retryable and error.retry_after == timedelta(seconds=1)
    assert error.http_status == 400 and error.native_code == json.loads(answer["response"])["msg"]


@pytest.mark.parametrize("answer", DEFECT, ids=lambda a: f"{a['path']}@{a['node']}")
def test_the_token_forwarding_defect_is_named_and_not_retried(answer: dict[str, Any]) -> None:
    error = _error(answer)
    assert type(error) is ProviderError and mapping.is_token_defect(error)
    assert not error.retryable
    assert "defect" in error.message and "internal/api/" in error.message  # where in the server source


def test_the_config_of_a_channel_on_a_node_that_does_not_lead_its_slot_is_an_ordinary_refusal() -> None:
    refusals = [a for a in ANSWERS if a["path"].endswith("/config") and a.get("status") == 400]
    assert refusals
    for answer in refusals:
        assert isinstance(_error(answer), InvalidRequestError)  # not a failover: the client asks the next node


# -- through the client, on three nodes -------------------------------------------------------------------


class RecordedCluster:
    """Answers each request with the recorded answer of the same request through the same node, else through
    any node, else of the same route. The lookup first answers what a surviving node said during the failover,
    ``failovers`` times."""

    def __init__(self, failovers: int) -> None:
        # Before the kill; not the sends that only set the scene or show the defect (one answer per route).
        healthy = [a for a in ANSWERS if a.get("seconds_after_kill") is None and "status" in a
                   and a["note"] not in ("another conversation", "token defect: persisted send with subscribers")]
        self.by_route: dict[tuple[str, str], dict[str, Any]] = {}
        self.by_node: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.by_key: dict[tuple[str, str, str], dict[str, Any]] = {}  # the same request through any node
        for answer in healthy:
            self.by_route.setdefault((answer["method"], answer["path"]), answer)
            self.by_node[(answer["method"], answer["path"], answer["node"] + self._key(answer))] = answer
            self.by_key.setdefault((answer["method"], answer["path"], self._key(answer)), answer)
        lookup_failover = next(a for a in FAILOVER if a["path"] == "/message/byclientmsgno")
        self.lookups: list[dict[str, Any]] = [lookup_failover] * failovers
        self.seen: list[tuple[str, str]] = []

    @staticmethod
    def _key(answer: dict[str, Any]) -> str:
        return RecordedCluster.key(answer["path"], answer.get("params") or {}, answer.get("body"))

    @staticmethod
    def key(path: str, params: dict[str, str], body: Any) -> str:
        """What tells recorded answers of one route on one node apart: the query, and presence's uid list."""
        return f"|{json.dumps(params, sort_keys=True)}|{json.dumps(body) if path == '/user/onlinestatus' else ''}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        node = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        path = request.url.path
        self.seen.append((node, path))
        params = dict(request.url.params)
        body = json.loads(request.content) if request.content else None
        answer: dict[str, Any] | None
        if path == "/message/byclientmsgno" and self.lookups:
            answer = self.lookups.pop(0)
        else:
            key = self.key(path, params, body)
            answer = (self.by_node.get((request.method, path, node + key))
                      or self.by_key.get((request.method, path, key)) or self.by_route.get((request.method, path)))
        if answer is None or "status" not in answer:
            return httpx.Response(599, text=f"not recorded: {request.method} {path}")
        return httpx.Response(answer["status"], content=answer["response"].encode())


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A client over the recorded nodes; the async one is driven to completion per call."""

    def build(cluster: RecordedCluster, clock: FakeClock) -> Any:
        options: dict[str, Any] = {"base_url": NODES, "manager_token": "<MANAGER_TOKEN>", "store": "",
                                   "enforce_policy": False, "clock": clock,
                                   "retry": RetryPolicy(max_attempts=4, max_total_wait=10)}  # fmt: skip
        if request.param == "sync":
            return IMClient("wukong", http_client=httpx.Client(transport=httpx.MockTransport(cluster)), **options)
        return AsyncIMClient("wukong", http_client=httpx.AsyncClient(transport=httpx.MockTransport(cluster)), **options)

    def run(im: Any, call: Any) -> Any:
        if isinstance(im, IMClient):
            with im:
                return call(im)

        async def go() -> Any:
            async with im:
                return await call(im)

        return asyncio.run(go())

    yield lambda cluster, clock, call: run(build(cluster, clock), call)


def _send(im: Any) -> Any:
    return im.messages.send(sender=ALICE, to=Conversation.group(GROUP), content=[Text("before the kill")])


def test_a_send_rides_through_the_failover_and_is_confirmed_on_a_majority(client: Any) -> None:
    cluster, clock = RecordedCluster(failovers=2), FakeClock()
    sent = client(cluster, clock, _send)
    assert sent.confirmed and sent.seq == 1
    assert clock.elapsed >= 2.0  # the two failover answers were each retried after their retry_after
    paths = [path for _node, path in cluster.seen]
    assert paths.count("/message/send") == 1  # never re-sent
    assert paths.count("/cluster/messages") >= 2  # read from a majority of the replicas' own stores
    assert f"/cluster/channels/{GROUP}/2/replicas" in paths
    assert len({node for node, _path in cluster.seen}) == len(NODES)  # spread over every node


def test_a_send_whose_confirmation_keeps_failing_over_raises_a_retryable_error(client: Any) -> None:
    cluster, clock = RecordedCluster(failovers=1000), FakeClock()
    with pytest.raises(ServiceUnavailableError) as raised:
        client(cluster, clock, _send)
    assert "MAY HAVE LANDED" in raised.value.message and "could not be confirmed" in raised.value.message
    assert [path for _node, path in cluster.seen].count("/message/send") == 1


def test_presence_asks_each_node_when_the_cluster_cannot_forward_it(client: Any) -> None:
    cluster, clock = RecordedCluster(failovers=0), FakeClock()
    presence = client(cluster, clock, lambda im: im.users.presence([ALICE, BOB]))
    assert [p.user_id for p in presence] == [ALICE, BOB]
    assert all(p.state.value == "offline" for p in presence)  # no client connected while recording
    asked = [node for node, path in cluster.seen if path == "/user/onlinestatus"]
    assert len(asked) >= 3  # both uids through one node (refused: the defect), then each uid node by node


# -- a follower left behind after a failover (cassettes/wukong/cluster/lagging.json) -------------------------

LAGGING = json.loads((Path(__file__).parents[2] / "cassettes/wukong/cluster/lagging.json").read_text())


def _confirm(recording: dict[str, Any]) -> tuple[Any, list[tuple[str, str]], FakeClock]:
    """Run the confirmation on a majority of replicas for the recording's message, through the sync executor,
    against the recorded answers (per node where the recording has one)."""
    healthy = [a for a in recording["answers"] if a.get("seconds_after_kill") is None and "status" in a]
    answers = {(a["path"], a["node"], (a.get("params") or {}).get("node_id", "")): a for a in healthy}
    by_path = {a["path"]: a for a in healthy}
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        node = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        seen.append((node, request.url.path))
        answer = answers.get((request.url.path, node, request.url.params.get("node_id", ""))) or by_path.get(
            request.url.path)
        if answer is None:
            return httpx.Response(599, text="not recorded")
        return httpx.Response(answer["status"], content=answer["response"].encode())

    clock = FakeClock()
    im = IMClient("wukong", base_url=recording["nodes"], manager_token="<MANAGER_TOKEN>", store="", clock=clock,
                  http_client=httpx.Client(transport=httpx.MockTransport(handler)))  # fmt: skip
    lookup = next(a for a in recording["answers"] if a["path"] == "/message/byclientmsgno" and a["status"] == 200)
    found = wire.MessageResp.model_validate_json(lookup["response"])
    channel = lookup["params"]["channel_id"]
    provider = im.provider._provider  # the flow under test, driven by the client's own executor
    assert isinstance(provider, WukongProvider)
    with im:
        try:
            return im._executor.run("messages.send", provider._confirm_replicated(channel, 2, found)), seen, clock
        except ServiceUnavailableError as error:
            return error, seen, clock


def test_a_message_only_on_the_channels_leader_is_not_confirmed() -> None:
    result, seen, clock = _confirm(LAGGING)
    assert isinstance(result, ServiceUnavailableError)
    assert "on 1 of the 2 replicas a majority needs" in result.message and "MAY BE LOST" in result.message
    assert clock.elapsed >= 9  # it waited for the followers, on the fake clock
    assert {path for _node, path in seen} >= {"/cluster/channels/" + LAGGING["channel"] + "/2/replicas"}


def test_a_message_on_every_replica_is_confirmed() -> None:
    result, seen, _clock = _confirm(RECORDING)
    assert isinstance(result, wire.MessageResp) and result.message_seq == 1
    assert [path for _node, path in seen].count("/cluster/messages") == 2  # a majority of three, then done


# -- reading a channel's info right after a write ------------------------------------------------------------


def test_a_channel_is_read_from_its_slot_leaders_own_copy() -> None:
    writes = [a for a in ANSWERS if a["path"] == "/cluster/channels" and a["note"].startswith("right after the write")]
    # The evidence: right after a ban through one node, some node's answer may still show the old flag; the
    # slot leader's own copy has the write.
    (own,) = [a for a in writes if (a.get("params") or {}).get("node_id")]
    assert json.loads(own["response"])["data"][0]["ban"] == 1
    cluster, clock = RecordedCluster(failovers=0), FakeClock()
    im = IMClient("wukong", base_url=NODES, manager_token="<MANAGER_TOKEN>", store="", clock=clock,
                  http_client=httpx.Client(transport=httpx.MockTransport(cluster)))  # fmt: skip
    provider = im.provider._provider
    assert isinstance(provider, WukongProvider)
    with im:
        channel = im._executor.run("groups.get", provider._channel(GROUP))
    assert channel.ban  # what the slot leader holds
    reads = [node for node, path in cluster.seen if path == "/cluster/channels"]
    assert reads == [own["node"]]  # pinned to the slot leader, with its own node_id
