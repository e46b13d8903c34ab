"""The send path builds its results without validating them a second time (the async-speed issue):
they must be exactly what the validating constructors build, and a reply it cannot read must still be
treated as an unknown outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from wukong_fake import FakeWukong

from imbridge import Conversation, IMClient, MessageRef, SentMessage, Text
from imbridge.providers.wukong import wire
from imbridge.resources.messages import _content

MakeClient = Callable[..., IMClient]


def _same_model(built: Any, validated: Any) -> None:
    assert type(built) is type(validated)
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set
    assert built.model_dump() == validated.model_dump()
    assert repr(built) == repr(validated)
    # And it is a model pydantic itself accepts as valid, field for field.
    assert type(validated).model_validate(built.model_dump()) == built


def test_text_from_a_string_is_the_validated_text() -> None:
    (built,) = _content("héllo wörld")
    _same_model(built, Text("héllo wörld"))
    assert built.model_dump(exclude_unset=True) == {"text": "héllo wörld"}
    first, second = _content(["one", Text("two")])
    _same_model(first, Text("one"))
    assert second == Text("two")


@pytest.mark.parametrize("confirm", [False, True])
@pytest.mark.parametrize("to", [Conversation.user("alice"), Conversation.group("g1")])
def test_send_result_is_the_validated_model(
    make_client: MakeClient, server: FakeWukong, confirm: bool, to: Conversation
) -> None:
    im = make_client(enforce_policy=False)
    im.users.register(["alice", "bob"])
    if to.is_group:
        im.groups.create(name="Team", owner="alice", members=["bob"], group_id="g1")
    sent = im.messages.send(sender="bob", to=to, content="hi", confirm=confirm, idempotency_key=f"key-{confirm}")
    stored = server.bodies("/message/send")[-1]
    assert sent.confirmed is confirm
    message_id = sent.raw["message_id"]
    expected_ref = MessageRef(
        provider="wukong", conversation=to, sender="bob", key=str(message_id), seq=sent.seq,
        extra={"client_msg_no": stored["client_msg_no"]},
    )  # fmt: skip
    expected = SentMessage(
        ref=expected_ref, time=sent.time, seq=sent.seq, confirmed=confirm, provider="wukong", raw=sent.raw
    )
    _same_model(sent.ref, expected_ref)
    _same_model(sent, expected)
    assert MessageRef.parse(str(sent.ref)) == sent.ref
    if confirm:
        assert sent.seq is not None and sent.time is not None and set(sent.raw) >= {"message_seq", "timestamp"}


@pytest.mark.parametrize(
    "data",
    [
        None, [], "x", {}, {"message_id": "12", "client_msg_no": "k"}, {"message_id": 12},
        {"message_id": True, "client_msg_no": "k"}, {"message_id": 1.5, "client_msg_no": "k"},
        {"message_id": 12, "client_msg_no": 7},
    ],
)  # fmt: skip
def test_send_result_reads_only_its_own_shape(data: Any) -> None:
    assert wire.SendResult.read(data) is None


def test_send_result_reads_the_real_reply_shape() -> None:
    # The shape a real v2.2.5 server answered (cassettes/wukong), extra keys ignored.
    read = wire.SendResult.read({"message_id": 2125027596830674944, "client_msg_no": "k1", "reason_code": 0})
    assert read == wire.SendResult(2125027596830674944, "k1")


def test_an_unreadable_send_reply_is_looked_up_not_failed(make_client: MakeClient, server: FakeWukong) -> None:
    im = make_client(enforce_policy=False)
    im.users.register(["alice", "bob"])
    real = server.__call__

    def garbled(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/message/send":
            server.intercept = None
            real(request)  # stored, but the answer is not the send result's shape
            server.requests.pop()
            server.intercept = garbled
            return httpx.Response(200, json={"status": 200, "data": {"message_id": "not-a-number"}})
        return None

    server.intercept = garbled
    sent = im.messages.send(sender="bob", to=Conversation.user("alice"), content="hi", confirm=False)
    assert sent.confirmed  # found by its client_msg_no instead of failing or sending twice
    assert server.paths().count("/message/send") == 1
    assert "/message/byclientmsgno" in server.paths()
