"""Sending over WuKongIM's JSON-RPC WebSocket (``jsonrpc_url``).

Three layers, each against what the real v2.2.5 node did (tests/fixtures/wukong/jsonrpc/recording.json, recorded
with plain aiohttp; its PROVENANCE.md):

* the provider's reading of the node's frames, on the recorded frames themselves;
* the emulator's JSON-RPC session, replayed against every recorded conversation (same setup, same frames, the same
  answers);
* imbridge's sync and async clients on the emulator served over a real WebSocket, with the network failing as
  networks do: a connection that dies before the send reaches the node, one that dies after the node stored it and
  before its answer left, an answer held past the client's timeout, a node that is not listening, a stale token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imbridge import AsyncIMClient, IMClient
from imbridge._flow import Call
from imbridge._sockets import AsyncSockets, SyncSockets
from imbridge.emulators import JsonRpcServer, serve, serve_jsonrpc
from imbridge.emulators._base import EmulatorRequest, LoopbackServer
from imbridge.emulators.wukong import JsonRpcSession, WukongEmulator
from imbridge.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    MessageMayHaveLandedError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    TransportError,
)
from imbridge.models import Conversation, PresenceState, Text
from imbridge.providers.wukong import jsonrpc
from imbridge.providers.wukong.events import to_events
from imbridge.providers.wukong.webhooks import parse_webhook
from imbridge.retry import RetryPolicy

RECORDING = json.loads((Path(__file__).parents[1] / "fixtures/wukong/jsonrpc/recording.json").read_text())
SCENARIOS: dict[str, Any] = RECORDING["scenarios"]
TOKEN = "manager-secret"


def _received(name: str, conn: str | None = None) -> list[dict[str, Any]]:
    return [f["data"] for f in SCENARIOS[name]["frames"]
            if f["dir"] == "received" and f.get("conn") == conn and "close" not in f["data"]]  # fmt: skip


def _sent(name: str, conn: str | None = None) -> list[dict[str, Any]]:
    return [f["data"] for f in SCENARIOS[name]["frames"]
            if f["dir"] == "sent" and f.get("conn") == conn and "close" not in f["data"]]  # fmt: skip


def _answer_to(name: str, request_id: str) -> dict[str, Any]:
    return next(frame for frame in _received(name) if frame.get("id") == request_id)


# -- the provider's reading of the real node's frames ---------------------------------------------------------


def test_a_stored_send_reads_as_its_id_and_seq() -> None:
    answer = _answer_to("01_person_send_success", "s0")
    assert jsonrpc.read_answer(answer, "messages.send") == (int(answer["result"]["messageId"]), 1)


@pytest.mark.parametrize(
    ("scenario", "error", "code"),
    [
        ("03_group_send_non_member", PermissionDeniedError, 3),
        ("06_group_send_nonexistent", PermissionDeniedError, 3),  # the node says 3, not 5 (ChannelNotExist)
        ("04_group_send_banned", PermissionDeniedError, 19),
        ("05a_group_send_disbanded_channel_info", NotFoundError, 24),
        ("05b_group_send_deleted_channel_delete", NotFoundError, 24),
        ("07_person_send_sender_blacklisted", PermissionDeniedError, 4),
    ],
)
def test_a_refused_send_reads_as_its_typed_error(scenario: str, error: type[Exception], code: int) -> None:
    answer = _answer_to(scenario, "s1")
    assert answer["result"]["reasonCode"] == code and answer["result"]["messageSeq"] == 0
    with pytest.raises(error) as raised:
        jsonrpc.read_answer(answer, "messages.send")
    assert raised.value.native_code == code  # type: ignore[attr-defined]
    assert "not stored" in str(raised.value)


@pytest.mark.parametrize("scenario", ["11a_payload_json_object", "11b_payload_not_base64_string"])
def test_a_frame_the_node_cannot_decode_reads_as_an_invalid_request(scenario: str) -> None:
    answer = next(frame for frame in _received(scenario) if "error" in frame)
    with pytest.raises(InvalidRequestError, match="unmarshal"):
        jsonrpc.read_answer(answer, "messages.send")


def test_an_answer_without_a_seq_is_an_unknown_outcome_not_a_confirmation() -> None:
    # noPersist is answered with reason 1 and seq 0 (scenario 10): nothing stored, so nothing confirmed.
    no_persist = next(frame for frame in _received("10_header_variants", "A")
                      if frame.get("result", {}).get("messageSeq") == 0)  # fmt: skip
    with pytest.raises(ServiceUnavailableError):
        jsonrpc.read_answer(no_persist, "messages.send")
    with pytest.raises(ServiceUnavailableError):
        jsonrpc.read_answer({"jsonrpc": "2.0", "id": "x", "result": {"reasonCode": 15, "messageSeq": 0}}, "send")


def test_the_login_answer_is_read_as_the_node_gives_it() -> None:
    jsonrpc.check_login(_answer_to("01_person_send_success", "c1"))  # reasonCode 1: in
    # A refused token gets no answer at all: the node drops the connection (scenario 09).
    frames = SCENARIOS["09_token_auth_on"]["frames"]
    refused = [f for f in frames if f["dir"] == "received" and f.get("conn") == "wrong"]
    assert [list(f["data"]) for f in refused] == [["close", "reason", "ws_msg_type"]]
    with pytest.raises(AuthenticationError, match="did not answer"):
        jsonrpc.check_login(None)
    with pytest.raises(AuthenticationError):
        jsonrpc.check_login({"jsonrpc": "2.0", "id": "login", "error": {"code": 2, "message": "ReasonAuthFail"}})


def test_a_pushed_message_is_acknowledged_as_the_node_expects() -> None:
    pushed = next(frame for frame in _received("08_recv_and_recvack", "B") if frame.get("method") == "recv")
    recorded_ack = next(frame for frame in _sent("08_recv_and_recvack", "B") if frame.get("method") == "recvack")
    assert jsonrpc.acknowledge(pushed) == recorded_ack
    assert jsonrpc.acknowledge({"jsonrpc": "2.0", "method": "event", "params": {}}) is None


def test_the_send_frame_has_the_shape_the_node_answered() -> None:
    recorded = _sent("01_person_send_success")[1]["params"]
    body = {"header": {"red_dot": 1}, "client_msg_no": recorded["clientMsgNo"], "from_uid": "a",
            "channel_id": recorded["channelId"], "channel_type": 1, "payload": recorded["payload"]}  # fmt: skip
    assert jsonrpc.send_params(body) == recorded


def test_login_uses_its_own_device_and_a_token_every_process_derives_alike() -> None:
    first, second = jsonrpc.login("key", "alice"), jsonrpc.login("key", "alice")
    assert first["params"]["deviceFlag"] == 99 and first["params"]["token"] == second["params"]["token"]
    assert first["params"]["deviceId"] != second["params"]["deviceId"]  # a slave closes same-id connections
    assert jsonrpc.token("key", "alice") != jsonrpc.token("other", "alice") != jsonrpc.token("key", "bob")
    assert jsonrpc.token_request("key", "alice")["device_level"] == 0


# -- the emulator against every recorded conversation ----------------------------------------------------------


def _normal(frame: dict[str, Any]) -> dict[str, Any]:
    """What must match between the node's frame and the emulator's: ids and times differ from run to run."""
    frame = json.loads(json.dumps(frame))
    result, params = frame.get("result"), frame.get("params")
    if isinstance(result, dict):
        if "messageId" in result:
            assert isinstance(result["messageId"], str) and result["messageId"].isdigit()
            result["messageId"] = "<id>"
        result.pop("timeDiff", None)
    if isinstance(params, dict):
        for key in ("messageId", "timestamp"):
            if key in params:
                params[key] = f"<{key}>"
    return frame


@pytest.mark.parametrize("scenario", sorted(set(SCENARIOS) - {"09_token_auth_on", "14_preauth_idle_close"}))
def test_the_emulator_answers_every_recorded_conversation_as_the_node_did(scenario: str) -> None:
    emulator = WukongEmulator()
    recorded = SCENARIOS[scenario]
    pushed: dict[str | None, list[dict[str, Any]]] = {}
    sessions: dict[str | None, JsonRpcSession] = {}
    answered: dict[str | None, list[dict[str, Any]]] = {}
    steps = [(e["t_ms"], 0, e) for e in recorded.get("http", [])] + [(f["t_ms"], 1, f) for f in recorded["frames"]]
    for _t, kind, step in sorted(steps, key=lambda item: (item[0], item[1])):
        if kind == 0:
            request = step["request"]
            body = json.dumps(request.get("body")).encode() if request.get("body") is not None else b""
            reply = emulator.handle(EmulatorRequest(request["method"], request["path"], request.get("query") or {},
                                                    {}, body))  # fmt: skip
            assert reply.status == step["response"]["status"], request
            continue
        conn = step.get("conn")
        if step["dir"] != "sent" or "close" in step["data"]:
            continue
        session = sessions.get(conn)
        if session is None:
            session = sessions[conn] = emulator.jsonrpc(pushed.setdefault(conn, []).append)
        answers, closed = session.receive(json.dumps(step["data"]))
        assert not closed
        answered.setdefault(conn, []).extend(answers)
    for conn in sessions:
        got = [*answered.get(conn, []), *pushed.get(conn, [])]
        want = _received(scenario, conn)
        key = lambda frame: json.dumps(_normal(frame), sort_keys=True)  # noqa: E731 - order of pushes vs answers
        assert sorted(map(key, got)) == sorted(map(key, want)), scenario


def test_the_emulator_refuses_a_wrong_token_by_saying_nothing_and_closing() -> None:
    emulator = WukongEmulator()
    emulator.token_auth = True
    body = json.dumps({"uid": "a", "token": "right", "device_flag": 99}).encode()
    emulator.handle(EmulatorRequest("POST", "/user/token", {}, {}, body))
    wrong = emulator.jsonrpc(lambda _frame: None)
    assert wrong.receive(json.dumps({"method": "connect", "params": {"uid": "a", "token": "x", "deviceFlag": 99},
                                     "id": "c"})) == ([], True)  # fmt: skip
    right = emulator.jsonrpc(lambda _frame: None)
    login = {"method": "connect", "id": "c", "params": {"uid": "a", "token": "right", "deviceFlag": 99}}
    answers, closed = right.receive(json.dumps(login))
    assert answers[0]["result"]["reasonCode"] == 1 and not closed
    first = emulator.jsonrpc(lambda _frame: None)
    assert first.receive(json.dumps({"method": "ping", "id": "p"})) == ([], True)  # the first frame must be connect


# -- imbridge's clients on the emulator, over a real WebSocket -------------------------------------------------


class Node:
    """The emulator on loopback: its REST API and its JSON-RPC WebSocket, with the HTTP routes counted."""

    def __init__(self, emulator: WukongEmulator, http: LoopbackServer, rpc: JsonRpcServer) -> None:
        self.emulator, self.http, self.rpc = emulator, http, rpc
        self.routes: list[str] = []
        handle = emulator.handle

        def counted(request: EmulatorRequest) -> Any:
            self.routes.append(request.path)
            return handle(request)

        emulator.handle = counted  # type: ignore[method-assign]

    def settings(self, **overrides: Any) -> dict[str, Any]:
        return {"base_url": self.http.url, "manager_token": TOKEN, "jsonrpc_url": self.rpc.url,
                "retry": RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01), **overrides}  # fmt: skip

    def rows(self, channel_id: str, channel_type: int, *, login_uid: str = "reader", limit: int = 100) -> list[Any]:
        """The channel's stored messages, as POST /channel/messagesync gives them (no membership check)."""
        self.emulator.flush()
        body = {"login_uid": login_uid, "channel_id": channel_id, "channel_type": channel_type,
                "start_message_seq": 0, "end_message_seq": 0, "pull_mode": 0, "limit": limit}  # fmt: skip
        reply = self.emulator.handle(EmulatorRequest("POST", "/channel/messagesync", {}, {"token": TOKEN},
                                                     json.dumps(body).encode()))  # fmt: skip
        return list(json.loads(reply.body)["messages"] or [])

    def stored(self, sender: str, to: Conversation) -> list[str]:
        """The texts of the conversation's history, read straight from the emulator's store."""
        self.emulator.flush()
        with IMClient("wukong", base_url=self.http.url, manager_token=TOKEN) as reader:
            page = reader.messages.history(to, sender, limit=100)
        oldest_first = sorted(page.items, key=lambda message: message.seq or 0)
        return [element.text for message in oldest_first for element in message.elements if isinstance(element, Text)]


@pytest.fixture
def node() -> Iterator[Node]:
    emulator = WukongEmulator(manager_token=TOKEN)
    with serve(emulator) as http, serve_jsonrpc(emulator.jsonrpc) as rpc:
        yield Node(emulator, http, rpc)


Sender = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def send_with(request: pytest.FixtureRequest, node: Node) -> Iterator[Callable[..., Any]]:
    """``send_with(settings)(sender, to, text, **options)``: one send on a sync or an async client (a new client per
    settings, closed at the end)."""
    sync_clients: list[IMClient] = []
    loop = asyncio.new_event_loop()
    async_clients: list[AsyncIMClient] = []

    def make(**settings: Any) -> Sender:
        if request.param == "sync":
            client = IMClient("wukong", **node.settings(**settings))
            sync_clients.append(client)
            return lambda sender, to, text, **options: client.messages.send(sender, to, [Text(text)], **options)
        aclient = loop.run_until_complete(_async_client(node.settings(**settings)))
        async_clients.append(aclient)
        return lambda sender, to, text, **options: loop.run_until_complete(
            aclient.messages.send(sender, to, [Text(text)], **options))  # fmt: skip

    yield make
    for client in sync_clients:
        client.close()
    for aclient in async_clients:
        loop.run_until_complete(aclient.aclose())
    loop.close()


async def _async_client(settings: dict[str, Any]) -> AsyncIMClient:
    return AsyncIMClient("wukong", **settings)


def test_a_send_is_confirmed_by_the_answer_alone(node: Node, send_with: Callable[..., Sender]) -> None:
    send = send_with()
    to = Conversation.user("bob")
    sent = [send("alice", to, f"m{i}") for i in range(3)]
    assert [s.seq for s in sent] == [1, 2, 3] and all(s.confirmed for s in sent)
    assert sent[0].raw["message_seq"] == 1 and "timestamp" not in sent[0].raw and sent[0].time is None
    # No read confirmed them: the only HTTP request is the token of alice's connections, set once.
    assert node.routes == ["/user/token"]
    assert node.stored("alice", to) == ["m0", "m1", "m2"]
    assert node.rpc.connections_opened == 1


def test_a_confirmed_send_is_listed_in_the_history_at_its_seq(node: Node, send_with: Callable[..., Sender]) -> None:
    send = send_with()
    to = Conversation.user("bob")
    for number in range(20):
        sent = send("alice", to, f"n{number}")
        with IMClient("wukong", base_url=node.http.url, manager_token=TOKEN) as reader:
            newest = reader.messages.history(to, "alice", limit=1).items[0]
        assert (newest.seq, newest.ref.key) == (sent.seq, sent.ref.key)


@pytest.mark.parametrize(
    ("setup", "error", "code"),
    [
        ({"subscribers": ["carol"]}, PermissionDeniedError, 3),
        ({"subscribers": ["alice"], "ban": 1}, PermissionDeniedError, 19),
        ({"subscribers": ["alice"], "disband": 1}, NotFoundError, 24),
    ],
)
def test_a_refused_group_send_is_a_typed_error_and_nothing_is_stored(
    node: Node, send_with: Callable[..., Sender], setup: dict[str, Any], error: type[Exception], code: int
) -> None:
    body = {"channel_id": "g1", "channel_type": 2, **setup}
    node.emulator.handle(EmulatorRequest("POST", "/channel", {}, {"token": TOKEN}, json.dumps(body).encode()))
    send = send_with(enforce_policy=False)  # imbridge's own checks off: the node's answer is what is read
    with pytest.raises(error) as raised:
        send("alice", Conversation.group("g1"), "hello")
    assert raised.value.native_code == code  # type: ignore[attr-defined]
    assert node.rows("g1", 2) == []


def test_a_blocked_sender_is_refused_in_a_person_chat(node: Node, send_with: Callable[..., Sender]) -> None:
    body = {"channel_id": "bob", "channel_type": 1, "uids": ["alice"]}
    node.emulator.handle(EmulatorRequest("POST", "/channel/blacklist_add", {}, {"token": TOKEN},
                                         json.dumps(body).encode()))  # fmt: skip
    with pytest.raises(PermissionDeniedError, match="reason code 4"):
        send_with()("alice", Conversation.user("bob"), "hello")
    assert node.stored("alice", Conversation.user("bob")) == []


def test_an_answer_lost_after_the_node_stored_the_send_is_found_not_sent_again(
    node: Node, send_with: Callable[..., Sender]
) -> None:
    send = send_with()
    to = Conversation.user("bob")
    send("alice", to, "before")
    node.rpc.fault = lambda frame: "lose answer" if frame.get("method") == "send" else None
    sent = send("alice", to, "lost answer")
    assert sent.confirmed and sent.seq == 2
    node.rpc.fault = None
    send("alice", to, "after")  # on a new connection
    assert node.stored("alice", to) == ["before", "lost answer", "after"]
    assert node.rpc.connections_opened == 2


def test_a_send_whose_connection_died_before_the_node_read_it_may_have_landed_and_is_never_resent(
    node: Node, send_with: Callable[..., Sender]
) -> None:
    send = send_with()
    to = Conversation.user("bob")
    node.rpc.fault = lambda frame: "drop" if frame.get("method") == "send" else None
    with pytest.raises(MessageMayHaveLandedError) as raised:
        send("alice", to, "dropped", idempotency_key="k-dropped")
    assert raised.value.idempotency_key == "k-dropped"
    node.rpc.fault = None
    assert node.stored("alice", to) == []
    assert node.rpc.connections_opened == 1  # not re-sent on a new connection


def test_an_answer_held_past_the_timeout_is_found_by_its_key(node: Node, send_with: Callable[..., Sender]) -> None:
    send = send_with(timeout=0.3)
    to = Conversation.user("bob")
    node.rpc.fault = lambda frame: "hold" if frame.get("method") == "send" else None
    node.rpc.hold_seconds = 0.6
    sent = send("alice", to, "held")
    assert sent.confirmed and sent.seq == 1
    node.rpc.fault = None
    time.sleep(0.4)  # the held answer arrives on a connection nobody waits on any more
    assert send("alice", to, "next").seq == 2
    assert node.stored("alice", to) == ["held", "next"]


def test_a_node_not_listening_is_a_transport_error_that_never_landed(
    node: Node, send_with: Callable[..., Sender]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    send = send_with(jsonrpc_url=f"ws://127.0.0.1:{closed_port}")
    with pytest.raises(TransportError) as raised:
        send("alice", Conversation.user("bob"), "nowhere")
    assert raised.value.may_have_landed is False and raised.value.attempts == 2  # retried once, as the policy says
    assert node.stored("alice", Conversation.user("bob")) == []


def test_a_new_connection_sets_its_token_first_whatever_another_process_set(
    node: Node, send_with: Callable[..., Sender]
) -> None:
    node.emulator.token_auth = True
    send = send_with()
    to = Conversation.user("bob")
    assert send("alice", to, "first").seq == 1
    # Another process, with another key, sets its own token for alice's flag 99; alice's open connection stays in.
    other = {"uid": "alice", "token": "someone-else", "device_flag": 99, "device_level": 0}
    node.emulator.handle(EmulatorRequest("POST", "/user/token", {}, {"token": TOKEN}, json.dumps(other).encode()))
    node.rpc.fault = lambda frame: "lose answer" if frame.get("method") == "send" else None
    assert send("alice", to, "lost").seq == 2  # the connection died: found by its key
    node.rpc.fault = None
    # The next connection sets alice's token again before its login, and the send goes through.
    assert send("alice", to, "after").seq == 3
    assert node.routes.count("/user/token") == 3  # alice's first connection's, the other process's, the second's
    assert node.stored("alice", to) == ["first", "lost", "after"]


def test_options_only_http_knows_go_over_http(node: Node, send_with: Callable[..., Sender]) -> None:
    send = send_with()
    sent = send("alice", Conversation.user("bob"), "with options", options={"expire": 60})
    assert sent.confirmed and "/message/send" in node.routes and node.rpc.connections_opened == 0


def test_the_settings_are_checked_when_the_client_is_built() -> None:
    with pytest.raises(ConfigurationError, match="ws:// or wss://"):
        IMClient("wukong", base_url="http://127.0.0.1:1", jsonrpc_url="http://127.0.0.1:2")
    with pytest.raises(ConfigurationError, match="one node"):
        IMClient("wukong", base_url="http://127.0.0.1:1,http://127.0.0.1:2", jsonrpc_url="ws://127.0.0.1:2")


# -- the connections themselves -------------------------------------------------------------------------------


def _call(url: str, uid: str, **params: Any) -> Call:
    return Call(url, uid, lambda: jsonrpc.login("k", uid), jsonrpc.check_login, jsonrpc.acknowledge, "send",
                {"clientMsgNo": "k1", "channelId": "bob", "channelType": 1, "payload": "aGk=", **params}, "send")


def test_pushed_messages_are_acknowledged_while_sends_wait(node: Node) -> None:
    acknowledged: list[str] = []
    original = JsonRpcSession.receive

    def watching(session: JsonRpcSession, text: str | bytes) -> Any:
        frame = json.loads(text)
        if frame.get("method") == "recvack":
            acknowledged.append(frame["params"]["messageId"])
        return original(session, text)

    JsonRpcSession.receive = watching  # type: ignore[method-assign]
    try:

        async def scenario() -> None:
            sockets = AsyncSockets()
            try:
                await sockets.call(_call(node.rpc.url, "bob"), 5)  # bob's connection is open
                answer = await sockets.call(_call(node.rpc.url, "alice"), 5)  # alice writes to bob
                for _ in range(100):
                    if acknowledged:
                        break
                    await asyncio.sleep(0.01)
                assert acknowledged == [answer["result"]["messageId"]]
            finally:
                await sockets.aclose()

        asyncio.run(scenario())
    finally:
        JsonRpcSession.receive = original  # type: ignore[method-assign]


def test_a_connection_answering_an_error_is_closed_and_the_next_call_opens_another(node: Node) -> None:
    async def scenario() -> None:
        sockets = AsyncSockets()
        try:
            answer = await sockets.call(_call(node.rpc.url, "alice", payload={"not": "base64"}), 5)
            assert "error" in answer
            good = await sockets.call(_call(node.rpc.url, "alice"), 5)  # the stuck connection is not reused
            assert good["result"]["reasonCode"] == 1
        finally:
            await sockets.aclose()

    asyncio.run(scenario())
    assert node.rpc.connections_opened == 2
    sync = SyncSockets()
    try:
        assert "error" in sync.call(_call(node.rpc.url, "carol", payload={"not": "base64"}), 5)
        assert sync.call(_call(node.rpc.url, "carol"), 5)["result"]["reasonCode"] == 1
    finally:
        sync.close()
    assert node.rpc.connections_opened == 4


def test_idle_connections_are_closed_and_reopened_when_needed(node: Node) -> None:
    async def scenario() -> None:
        sockets = AsyncSockets(idle_seconds=0.05)
        try:
            await sockets.call(_call(node.rpc.url, "alice"), 5)
            await asyncio.sleep(0.3)
            assert not sockets._links
            await sockets.call(_call(node.rpc.url, "alice"), 5)
        finally:
            await sockets.aclose()

    asyncio.run(scenario())
    sync = SyncSockets(idle_seconds=0.05)
    try:
        sync.call(_call(node.rpc.url, "bob"), 5)
        time.sleep(0.2)
        sync.call(_call(node.rpc.url, "bob"), 5)
    finally:
        sync.close()
    assert node.rpc.connections_opened == 4
    for _ in range(200):  # the server notices a closed connection in its own thread
        if not node.emulator.connections("alice") and not node.emulator.connections("bob"):
            break
        time.sleep(0.01)
    assert not node.emulator.connections("alice") and not node.emulator.connections("bob")  # offline again


def test_concurrent_async_sends_share_one_connection_per_sender(node: Node) -> None:
    async def scenario() -> list[Any]:
        async with AsyncIMClient("wukong", **node.settings()) as im:
            to = Conversation.user("bob")
            return list(await asyncio.gather(*(im.messages.send("alice", to, [Text(f"c{i}")]) for i in range(40))))

    sent = asyncio.run(scenario())
    assert sorted(s.seq for s in sent) == list(range(1, 41))
    assert node.rpc.connections_opened == 1 and node.routes == ["/user/token"]


def test_the_sending_connection_does_not_make_its_user_look_online(node: Node) -> None:
    with IMClient("wukong", **node.settings()) as im:
        im.messages.send("alice", Conversation.user("bob"), [Text("hi")])
        assert node.emulator.connections("alice")  # the node sees alice's SYSTEM connection
        presence = im.users.presence(["alice"])
    assert presence[0].state is PresenceState.OFFLINE and presence[0].devices == []


def test_online_events_of_sending_connections_are_not_the_user_coming_online() -> None:
    body = json.dumps(["alice-99-1-7-1-1", "alice-1-1-8-1-2"]).encode()
    events = to_events(parse_webhook("user.onlinestatus", body), body, datetime.now(UTC))
    seen = [(type(event).__name__, getattr(event, "platform", None)) for event in events]
    assert seen == [("UserOnline", "1")]


# -- many sends with the network failing at random -------------------------------------------------------------

FAULT_SENDS = int(os.environ.get("IMBRIDGE_FAULT_SENDS", "80"))  # 1000 for the full run, as tests/faults
NETWORK_FAULTS = ("drop", "lose answer", "hold", "hold before")


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_under_network_faults_no_send_reported_sent_is_lost_or_stored_twice(node: Node, driver: str) -> None:
    """Every send frame meets one of the faults with probability 1/10 each (seeded): the connection dying before the
    node reads it, dying after the node stored it, its answer held past the client's timeout, or the send itself held
    on the way until after the client gave up on it (it then lands after the lookups). Afterwards the
    node's history must hold each send reported sent exactly once at the seq reported, no send twice, and every
    failure must be MessageMayHaveLandedError (the only failure these faults can cause), its message stored at most
    once."""
    rng = random.Random(f"jsonrpc-{driver}")
    faults: Counter[str] = Counter()

    def fault(frame: dict[str, Any]) -> str | None:
        if frame.get("method") != "send":
            return None
        draw = rng.random()
        kind = NETWORK_FAULTS[int(draw * 10)] if draw < 4 / 10 else None
        if kind is not None:
            faults[kind] += 1
        return kind

    node.rpc.fault, node.rpc.hold_seconds = fault, 1.0  # past the timeout and the lookups after it (0.75 s)
    settings = node.settings(timeout=0.15)
    to = Conversation.user("bob")
    outcomes: dict[str, Any] = {}
    if driver == "sync":
        with IMClient("wukong", **settings) as im:
            for number in range(FAULT_SENDS):
                try:
                    outcomes[f"f{number}"] = im.messages.send("alice", to, [Text(f"f{number}")])
                except MessageMayHaveLandedError as error:
                    outcomes[f"f{number}"] = error
    else:

        async def run() -> None:
            async with AsyncIMClient("wukong", **settings) as im:
                limit = asyncio.Semaphore(16)

                async def one(number: int) -> None:
                    async with limit:
                        try:
                            outcomes[f"f{number}"] = await im.messages.send("alice", to, [Text(f"f{number}")])
                        except MessageMayHaveLandedError as error:
                            outcomes[f"f{number}"] = error

                await asyncio.gather(*(one(number) for number in range(FAULT_SENDS)))

        asyncio.run(run())
    node.rpc.fault = None
    time.sleep(1.2)  # what is still held lands (or reaches connections nobody waits on)
    rows = node.rows("bob", 1, login_uid="alice", limit=10 * FAULT_SENDS)  # the person chat as alice reads it
    stored: dict[str, list[int]] = {}
    for row in rows:
        text = json.loads(base64.b64decode(row["payload"]))["content"]
        stored.setdefault(text, []).append(row["message_seq"])
    assert all(len(seqs) == 1 for seqs in stored.values()), "a message stored twice"
    sent = {text: outcome for text, outcome in outcomes.items() if not isinstance(outcome, Exception)}
    assert all(outcome.confirmed and stored.get(text) == [outcome.seq] for text, outcome in sent.items())
    assert len(outcomes) == FAULT_SENDS and sum(faults.values()) > 0
    landed = [text for text, outcome in outcomes.items() if isinstance(outcome, Exception)]
    assert set(stored) <= set(outcomes)
    print(f"{driver}: {len(sent)} sent, {len(landed)} may have landed ({sum(text in stored for text in landed)} of "
          f"them stored), faults {dict(faults)}")  # fmt: skip
