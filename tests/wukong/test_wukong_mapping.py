"""Pure mapping tests: envelopes and the error table (row by row), the payload convention, webhooks."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from imbridge import Custom, Face, File, Image, Location, Sound, Text, Video
from imbridge.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServiceUnavailableError,
)
from imbridge.providers.wukong import mapping, wire
from imbridge.providers.wukong.webhooks import (
    MessageNotifyEvent,
    MessageOfflineEvent,
    OnlineStatusEvent,
    UnknownWebhook,
    parse_webhook,
    path_secret_matches,
)

# Bodies below are the exact answers logged from the real v2.2.5 server (FACTS.md) unless noted.
SUCCESSES = [
    (200, b'{"status":200}', None),
    (200, b'{"data":{"client_msg_no":"dup-1","message_id":2125027596834869248},"status":200}',
     {"client_msg_no": "dup-1", "message_id": 2125027596834869248}),
    (200, b'["bob","alice"]', ["bob", "alice"]),
    (200, b'{"status":"ok"}', {"status": "ok"}),  # /health: a string status is not an envelope
    (200, b'{"message_seq":2}', {"message_seq": 2}),
    (200, b"null", None),  # GET /user/systemuids when empty
]  # fmt: skip


# Not from the server: shapes next to the two common successes, which the fast path must leave to the full
# reading. Only an integer status is an envelope: a float, boolean, string or null one makes a bare object.
EDGE_SUCCESSES = [
    (200, b'{"status":200.0,"data":1}', {"status": 200.0, "data": 1}),
    (200, b'{"status":null,"data":1}', {"status": None, "data": 1}),
    (200, b'{"status":true}', {"status": True}),
    (200, b'{"status":"200"}', {"status": "200"}),
    (200, b'{"data":1}', {"data": 1}),
    (200, b'{"status":200,"data":[1]}', [1]),
]


@pytest.mark.parametrize(("status", "body", "payload"), SUCCESSES + EDGE_SUCCESSES)
def test_success_envelopes(status: int, body: bytes, payload: object) -> None:
    assert mapping.unwrap(status, body, where="x") == payload


def test_an_integer_status_other_than_200_is_not_a_success() -> None:
    with pytest.raises(ProviderError):
        mapping.unwrap(200, b'{"status":201}', where="x")


def test_an_error_names_the_request_given_instead_of_a_string() -> None:
    from imbridge._flow import Request

    with pytest.raises(NotFoundError) as caught:
        mapping.unwrap(200, b'{"status":404}', where=Request("GET", "/message/byclientmsgno"))
    assert "GET /message/byclientmsgno" in caught.value.message


ERRORS = [
    (200, b'{"status":404}', NotFoundError, 404),
    (200, b'{"status":19}', PermissionDeniedError, 19),
    (200, b'{"status":24}', NotFoundError, 24),
    (200, b'{"status":22}', RateLimitError, 22),
    (200, b'{"status":2}', AuthenticationError, 2),
    (200, b'{"status":77}', ProviderError, 77),
    (400, '{"msg":"payload不能为空\uff01","status":400}'.encode(), InvalidRequestError, "payload不能为空\uff01"),
    (400, b'{"msg":"not found","status":400}', InvalidRequestError, "not found"),
    (400, '{"msg":"没有权限","status":403}'.encode(), PermissionDeniedError, "没有权限"),
    (400, b'{"msg":"plugin not found","status":404}', NotFoundError, "plugin not found"),
    (400, b'{"msg":"plugin offline","status":503}', ServiceUnavailableError, "plugin offline"),
    (401, b"", AuthenticationError, 401),
    (404, b"404 page not found", InvalidRequestError, "404 page"),
    (500, b"", ServiceUnavailableError, 500),
    (500, b'{"status":"error","message":"slot not ready"}', ServiceUnavailableError, 500),
    (403, b'{"error":"x","message":"disabled"}', PermissionDeniedError, "x"),
    (429, b"", RateLimitError, 429),
    (200, b"<html>", ServiceUnavailableError, None),  # garbled on the way: retryable, looked up for sends
]


@pytest.mark.parametrize(("status", "body", "error_class", "native"), ERRORS)
def test_error_table(status: int, body: bytes, error_class: type[ProviderError], native: object) -> None:
    with pytest.raises(error_class) as caught:
        mapping.unwrap(status, body, where="POST /x")
    assert type(caught.value) is error_class
    assert caught.value.native_code == native
    assert caught.value.http_status == status
    assert caught.value.retryable is (error_class in (ServiceUnavailableError, RateLimitError))


def test_every_reason_code_row_maps_to_its_class() -> None:
    for code, (error_class, meaning) in mapping.REASON_ERRORS.items():
        error = mapping.error_for(200, json.dumps({"status": code}).encode(), where="w")
        assert type(error) is error_class and meaning in str(error)


def test_fake_channel_id_matches_the_server() -> None:
    # verified live: crc32(pa)=1414740679 < crc32(pb)=3445255037 -> "pb@pa"; system chats (FACTS §8/§9)
    assert wire.fake_channel_id("pa", "pb") == wire.fake_channel_id("pb", "pa") == "pb@pa"
    assert wire.fake_channel_id("____system", "zz") == "____system@zz"
    assert wire.fake_channel_id("pa", "____system") == "pa@____system"


ELEMENTS = [
    Text("hello"),
    Image(url="https://x/i.png", width=10, height=20, size=3),
    Image(url="https://x/a.gif", format="gif"),
    Sound(url="https://x/v.amr", duration=7),
    File(url="https://x/f.pdf", name="f.pdf", size=99),
    Video(url="https://x/v.mp4", duration=12, thumbnail_url="https://x/t.jpg"),
    Location(latitude=1.5, longitude=-2.25, description="here"),
    Face(index=3, data="smile"),
    Custom(data='{"k":1}', description="push", ext="e"),
]


@pytest.mark.parametrize("element", ELEMENTS, ids=lambda e: e.type)
def test_each_element_round_trips_through_the_convention(element: object) -> None:
    payload = mapping.encode_payload([element])  # type: ignore[list-item]
    assert mapping.IMBRIDGE_KEY not in payload  # one element: the convention alone carries it
    back = mapping.payload_to_elements(mapping.decode_payload(mapping.to_base64(payload)))
    assert back == [element]


def test_documented_type_numbers() -> None:
    assert mapping.encode_payload([Text("hello")]) == {"type": 1, "content": "hello"}
    # the reference's own example, byte for byte
    assert mapping.to_base64({"type": 1, "content": "hello"}) == "eyJ0eXBlIjoxLCJjb250ZW50IjoiaGVsbG8ifQ=="
    numbers = [mapping.encode_payload([e])["type"] for e in ELEMENTS]  # type: ignore[list-item]
    assert numbers == [1, 2, 3, 4, 8, 5, 6, 101, 102]


def test_several_elements_and_metadata_ride_under_the_imbridge_key() -> None:
    payload = mapping.encode_payload([Text("a"), Image(url="https://x/i.png")], {"order": 7})
    assert payload["type"] == 1 and payload["content"] == "a"
    back = mapping.decode_payload(mapping.to_base64(payload))
    assert mapping.payload_to_elements(back) == [Text("a"), Image(url="https://x/i.png")]
    assert mapping.payload_metadata(back) == {"order": 7}


def test_foreign_payloads_are_kept_not_dropped() -> None:
    command = {"type": 99, "cmd": "groupUpdate", "param": {}}
    [element] = mapping.payload_to_elements(command)
    assert isinstance(element, Custom) and json.loads(element.data) == command
    raw = base64.b64encode(b"\x00\x01binary").decode()
    [binary] = mapping.payload_to_elements(mapping.decode_payload(raw), raw)
    assert isinstance(binary, Custom) and binary.data == raw


def test_revoke_notice_follows_the_convention() -> None:
    notice = mapping.revoke_payload(None, 2125027596834869248, "alice", channel_type=1, channel_id="bob")
    assert notice["type"] == 1006 and notice["message_id"] == "2125027596834869248"
    assert notice["imbridge"]["revoke"] | {"channel_type": 1, "channel_id": "bob"} == notice["imbridge"]["revoke"]
    assert mapping.revoked_target(notice) == "2125027596834869248"
    assert mapping.revoked_target({"type": 1, "content": "x"}) is None


# -- webhooks (shapes from internal/webhook/webhook.go and internal/types at the tag) --------------

MESSAGE = {
    "header": {"no_persist": 0, "red_dot": 1, "sync_once": 0}, "setting": 0, "message_id": 2125027733623705600,
    "message_idstr": "2125027733623705600", "client_msg_no": "p-1", "message_seq": 1, "from_uid": "pa",
    "channel_id": "pb", "channel_type": 1, "expire": 0, "timestamp": 1795481067,
    "payload": "eyJ0eXBlIjoxLCJjb250ZW50IjoiaGVsbG8ifQ==",
}  # fmt: skip


def test_msg_notify() -> None:
    event = parse_webhook("msg.notify", json.dumps([MESSAGE]))
    assert isinstance(event, MessageNotifyEvent)
    [message] = event.messages
    assert message.message_id == 2125027733623705600 and message.elements == [Text("hello")]
    assert message.sender == "pa" and message.revokes is None


def test_msg_offline_plain_and_gzip() -> None:
    event = parse_webhook("msg.offline", json.dumps({**MESSAGE, "to_uids": ["pb"], "source_id": 1001}))
    assert isinstance(event, MessageOfflineEvent) and event.to_uids == ["pb"] and event.source_id == 1001
    packed = base64.b64encode(gzip.compress(json.dumps(["u1", "u2"]).encode())).decode()
    zipped = parse_webhook(
        "msg.offline", json.dumps({**MESSAGE, "to_uids": [], "compress": "gzip", "compress_to_uids": packed})
    )
    assert isinstance(zipped, MessageOfflineEvent) and zipped.to_uids == ["u1", "u2"]


def test_user_onlinestatus_parses_from_the_right() -> None:
    event = parse_webhook("user.onlinestatus", json.dumps(["alice-1-1-42-1-2", "we-ird-uid-0-0-7-0-0"]))
    assert isinstance(event, OnlineStatusEvent)
    first, second = event.changes
    assert (first.uid, first.device_flag, first.online, first.conn_id) == ("alice", 1, True, 42)
    assert (second.uid, second.online, second.total_online_count) == ("we-ird-uid", False, 0)


@pytest.mark.parametrize(
    ("event", "body"),
    [("msg.notify", "{}"), ("msg.offline", "[]"), ("user.onlinestatus", '["x-1"]'),
     ("msg.notify", "not json"), ("msg.notify", '[{"message_id":"x"}]')],
)  # fmt: skip
def test_malformed_webhooks_are_refused(event: str, body: str) -> None:
    with pytest.raises(InvalidRequestError):
        parse_webhook(event, body)


def test_unknown_webhook_names_are_not_errors() -> None:
    # msg.stream is declared in internal/types/webhook.go at the tag but never sent; anything else may come later.
    event = parse_webhook("msg.stream", "[1]")
    assert isinstance(event, UnknownWebhook) and event.event == "msg.stream" and event.body == [1]


def test_path_secret_check() -> None:
    assert path_secret_matches("s3cr3t", "s3cr3t") and not path_secret_matches("s3cr3", "s3cr3t")
