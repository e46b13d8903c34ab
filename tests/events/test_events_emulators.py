"""The emulators' callbacks against the vendors' own evidence: the Tencent emulator's bodies against the official
examples and its handling of the documented before-send answers (given verbatim); the WuKongIM emulator's
webhooks against what the real server sent (tests/fixtures/wukong/webhooks/). And the same app handler
(ChatIndex), unchanged, on both emulators through imbridge clients."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat_index import ChatIndex
from events_support import PATH_SECRET, official
from test_events_wukong_recorded import RECORDING

from imbridge import Conversation, IMClient, PermissionDeniedError
from imbridge.emulators.tencent import CALLBACK_COMMANDS, TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.events import EventReceiver, InboundRequest, Reply
from imbridge.models import Custom, Text

KEY = "imbridge-test-key-not-a-secret-0000"
TOKEN = "emulator-callback-token"


class Recorder:
    """An in-process callback target: keeps every request and answers with ``answer(request)``."""

    def __init__(self, answer: Any = None) -> None:
        self.requests: list[InboundRequest] = []
        self.answer = answer or (lambda request: Reply(200, b'{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}'))

    def __call__(self, request: InboundRequest) -> Any:
        self.requests.append(request)
        return self.answer(request)

    def bodies(self, command: str) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.requests if r.query.get("CallbackCommand") == command]


#: Fields a page's request table lists that its example leaves out.
FIELD_TABLES = {"Group.CallbackAfterGroupInfoChanged": {"Name", "Introduction", "Notification", "FaceUrl"}}


def tencent(target: Any) -> tuple[TencentEmulator, IMClient]:
    emulator = TencentEmulator(secret_key=KEY, callback=target, callback_token=TOKEN)
    client = IMClient("tencent", sdk_app_id=1400000000, secret_key=KEY, base_url="http://emulator",
                      http_client=httpx.Client(transport=emulator.transport()))  # fmt: skip
    return emulator, client


def _exercise(client: IMClient) -> None:
    client.users.register(["alice", "bob", "carol"])
    sent = client.messages.send("alice", Conversation.user("bob"), "hello")
    client.groups.create("Team", owner="alice", members=["bob"], group_id="team")
    in_group = client.messages.send("bob", Conversation.group("team"), "hi team")
    client.messages.revoke(sent.ref)
    client.messages.revoke(in_group.ref)
    client.groups.add_members("team", ["carol"])
    client.groups.remove_members("team", ["carol"])
    client.groups.update("team", name="Team 2", notification="be nice")
    client.users.set_profile("alice", nickname="Al")
    client.groups.dismiss("team")


def test_tencent_callbacks_are_shaped_as_the_official_examples_and_signed() -> None:
    recorder = Recorder()
    emulator, client = tencent(recorder)
    _exercise(client)
    assert emulator.drain_callbacks()
    for command in CALLBACK_COMMANDS:
        bodies = recorder.bodies(command)
        assert bodies, f"no {command} callback"
        documented = set(official(command)["request_examples"][0]["body"]) | FIELD_TABLES.get(command, set())
        for body in bodies:
            extra = set(body) - documented - {"EventTime"}  # EventTime: in every group page's field table
            assert not extra, (command, extra)
            assert body["CallbackCommand"] == command
    for request in recorder.requests:
        assert list(request.query)[:5] == ["SdkAppid", "CallbackCommand", "contenttype", "ClientIP", "OptPlatform"]
        at = request.query["RequestTime"]
        assert request.query["Sign"] == hashlib.sha256(f"{TOKEN}{at}".encode()).hexdigest()
    emulator.close()


@pytest.fixture
def answers() -> Iterator[dict[str, dict[str, Any]]]:
    """The before-send answers exactly as the one-to-one page prints them (/1047/34364)."""
    yield {e["title"]: e["body"] for e in official("C2C.CallbackBeforeSendMsg")["response_examples"]}


def _answering(body: dict[str, Any] | None, status: int = 200) -> Recorder:
    def answer(request: InboundRequest) -> Reply:
        if request.query["CallbackCommand"] != "C2C.CallbackBeforeSendMsg":
            return Reply(200, b"{}")
        return Reply(status, json.dumps(body).encode() if body is not None else b"not json")

    return Recorder(answer)


def _history(client: IMClient) -> list[Any]:
    return client.messages.history(Conversation.user("alice"), viewer="bob", limit=10).items


def test_tencent_emulator_honours_the_documented_before_send_answers(answers: dict[str, dict[str, Any]]) -> None:
    titles = list(answers)
    allowed, forbidden, dropped, modified = (answers[t] for t in titles)
    _, client = tencent(_answering(allowed))
    client.users.register(["alice", "bob"])
    client.messages.send("alice", Conversation.user("bob"), "one")
    assert [m.elements for m in _history(client)] == [[Text("one")]]

    _, client = tencent(_answering(forbidden))
    client.users.register(["alice", "bob"])
    with pytest.raises(PermissionDeniedError) as refused:
        client.messages.send("alice", Conversation.user("bob"), "two")
    assert refused.value.native_code == 20006 and _history(client) == []

    _, client = tencent(_answering(dropped))
    client.users.register(["alice", "bob"])
    sent = client.messages.send("alice", Conversation.user("bob"), "three")  # the sender is told it went out
    assert sent.ref.key and _history(client) == []

    _, client = tencent(_answering(modified))
    client.users.register(["alice", "bob"])
    client.messages.send("alice", Conversation.user("bob"), "four")
    (message,) = _history(client)
    assert message.elements == [Text("red packet"), Custom(data=" LV1", description=" CustomElement.MemberLevel ")]
    assert message.metadata == {"CloudCustomData": "your new cloud custom data"}

    # No usable answer: Tencent's default policy, deliver.
    for broken in (_answering(None), _answering(allowed, status=500)):
        _, client = tencent(broken)
        client.users.register(["alice", "bob"])
        client.messages.send("alice", Conversation.user("bob"), "five")
        assert len(_history(client)) == 1


def test_the_same_app_handler_on_both_emulators(tmp_path: Path) -> None:
    receiver = EventReceiver("tencent", sdk_app_id=1400000000, callback_token=TOKEN)
    index = ChatIndex(receiver)
    emulator, client = tencent(receiver.deliver)
    _exercise(client)
    emulator.drain_callbacks()
    assert sorted(index.messages.values()) == ["hello", "hi team"] and len(index.revoked) == 2
    assert index.left["team"] == {"carol"} and index.members["team"] == set()

    receiver = EventReceiver("wukong", path_secret=PATH_SECRET)
    index = ChatIndex(receiver)
    wukong = WukongEmulator(manager_token="t", webhook=lambda r: receiver.deliver(_at_secret(r)),
                            store_delay_requests=1, webhook_retry_delay=0.01)  # fmt: skip
    client = IMClient("wukong", base_url="http://emulator", manager_token="t", store=str(tmp_path / "s.db"),
                      http_client=httpx.Client(transport=wukong.transport()))  # fmt: skip
    _exercise(client)
    wukong.drain_callbacks()
    assert sorted(index.messages.values()) == ["hello", "hi team"] and len(index.revoked) == 2
    # WuKongIM reports no membership change (declared PARTIAL): the same handler simply sees none.
    assert index.members == {} and index.left == {}


def _at_secret(request: InboundRequest) -> InboundRequest:
    from dataclasses import replace

    return replace(request, path=f"/hook/{PATH_SECRET}")


def _by_event(bodies: Iterable[tuple[str, str | bytes]]) -> dict[str, list[Any]]:
    """Webhook bodies (parsed) by event name, in arrival order."""
    grouped: dict[str, list[Any]] = {}
    for event, body in bodies:
        grouped.setdefault(event, []).append(json.loads(body))
    return grouped


def _emulated(tmp_path: Path) -> tuple[WukongEmulator, Recorder, IMClient]:
    """A WuKongIM emulator whose webhooks a recorder takes, and a client on it."""
    recorder = Recorder(lambda request: Reply(200, b""))
    wukong = WukongEmulator(manager_token="t", webhook=recorder)
    client = IMClient("wukong", base_url="http://emulator", manager_token="t", store=str(tmp_path / "s.db"),
                      http_client=httpx.Client(transport=wukong.transport()))  # fmt: skip
    return wukong, recorder, client


def test_wukong_emulator_webhooks_have_the_real_servers_shapes(tmp_path: Path) -> None:
    real = _by_event((item["query"]["event"], item["body"]) for item in RECORDING["requests"])
    wukong, recorder, client = _emulated(tmp_path)
    client.users.register(["alice", "bob", "carol"])
    client.messages.send("alice", Conversation.user("bob"), "hello")
    client.groups.create("G", owner="alice", members=["bob", "carol"], group_id="g")
    client.messages.send("bob", Conversation.group("g"), "hi")
    client.users.login_credentials("carol", device="web")  # a web client logs in with a web token
    connection = wukong.connect("carol", 1)
    wukong.disconnect(connection)
    wukong.drain_callbacks()
    ours = _by_event((request.query["event"], request.body) for request in recorder.requests)
    assert set(ours) == set(real) == {"msg.notify", "msg.offline", "user.onlinestatus"}
    real_message, our_message = real["msg.notify"][0][0], ours["msg.notify"][0][0]
    assert list(our_message) == list(real_message)  # the same fields, in MessageResp's order
    assert our_message["header"] == real_message["header"] == {"no_persist": 0, "red_dot": 1, "sync_once": 0}
    assert list(ours["msg.offline"][0]) == list(real["msg.offline"][0])
    group_offline = next(b for b in ours["msg.offline"] if b["channel_type"] == 2)
    assert sorted(group_offline["to_uids"]) == ["alice", "carol"]  # the sender filtered out, as recorded
    entry = re.compile(r"^.+-\d+-[01]-\d+-\d+-\d+$")
    assert all(entry.match(e) for batch in ours["user.onlinestatus"] for e in batch)
    entries = [e for batch in ours["user.onlinestatus"] for e in batch]  # batched, as the server's loop does
    assert entries == ["carol-1-1-1-1-1", "carol-1-0-1-0-0"]
    wukong.close()


def _revoke_notices(bodies: dict[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(event, message) of every type-1006 notice in msg.notify batches and msg.offline bodies."""
    messages = [(event, m) for event, batches in bodies.items() if event != "user.onlinestatus"
                for body in batches for m in (body if isinstance(body, list) else [body])]  # fmt: skip
    return [(e, m) for e, m in messages if json.loads(base64.b64decode(m["payload"])).get("type") == 1006]


def test_wukong_emulator_reports_revoke_notices_as_the_real_server_did(tmp_path: Path) -> None:
    # The recording's own ids, so the person channel's fake id (ordered by CRC32) and its rendering are the
    # real server's: imbridge's revokes of a one-to-one and a group message, nobody connected.
    users = RECORDING["users"]
    alice, bob, carol, group = users["alice"], users["bob"], users["carol"], users["group"]
    real = _by_event((item["query"]["event"], item["body"]) for item in RECORDING["requests"])
    wukong, recorder, client = _emulated(tmp_path)
    client.users.register([alice, bob, carol])
    client.messages.revoke(client.messages.send(alice, Conversation.user(bob), "hello").ref)
    client.groups.create("G", owner=alice, members=[bob, carol], group_id=group)
    client.messages.revoke(client.messages.send(bob, Conversation.group(group), "hi").ref)
    wukong.drain_callbacks()
    ours = _by_event((request.query["event"], request.body) for request in recorder.requests)

    def shape(notices: list[tuple[str, dict[str, Any]]]) -> list[tuple[Any, ...]]:
        return sorted((event, m["channel_type"], m["channel_id"], m["from_uid"], json.dumps(m["header"]),
                       tuple(sorted(m.get("to_uids", ())))) for event, m in notices)  # fmt: skip

    assert len(_revoke_notices(real)) == 4  # msg.notify and msg.offline of each
    assert shape(_revoke_notices(ours)) == shape(_revoke_notices(real))
    wukong.close()


def test_wukong_emulator_retries_msg_notify_as_the_server_does() -> None:
    failing = Recorder(lambda request: Reply(500 if request.query["event"] == "msg.notify" else 200, b""))
    wukong = WukongEmulator(webhook=failing, webhook_retry_delay=0.01)
    payload = "eyJ0eXBlIjoxLCJjb250ZW50IjoiaGkifQ=="
    reply = wukong.handle(_post("/message/send", {"from_uid": "a", "channel_id": "b", "channel_type": 1,
                                                  "payload": payload}))  # fmt: skip
    assert reply.status == 200
    wukong.drain_callbacks()
    notify = [r for r in failing.requests if r.query["event"] == "msg.notify"]
    offline = [r for r in failing.requests if r.query["event"] == "msg.offline"]
    # msg.notify: 5 attempts (msgNotifyEventRetryMaxCount), then dropped; msg.offline: once (webhook.go:201-226).
    assert len(notify) == 5 and len({r.body for r in notify}) == 1 and len(offline) == 1
    wukong.close()


def _post(path: str, body: dict[str, Any]) -> Any:
    from imbridge.emulators import EmulatorRequest

    return EmulatorRequest("POST", path, {}, {}, json.dumps(body).encode())
