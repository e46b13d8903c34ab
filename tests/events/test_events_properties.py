"""Property test: no request, however malformed or forged, makes a receiver raise or answer with anything
but a typed refusal; only the vendor's documented shapes are accepted (issue 13.11, issue 18).

Requests are drawn both at random and by mutating genuine bodies (the official Tencent examples, a WuKongIM
batch recorded shape), so that the parsers' inner paths see wrong types, missing fields and odd values.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from events_support import OFFICIAL, PATH_SECRET, signed_query, tencent_receiver, wukong_receiver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imbridge.errors import IMBridgeError
from imbridge.events import EventReceiver, Reply
from imbridge.providers.tencent.webhooks import parse_event
from imbridge.providers.wukong.webhooks import parse_webhook

TENCENT_BODIES = {
    path.stem.removeprefix("webhook_"): json.loads(path.read_text(encoding="utf-8"))["request_examples"][0]["body"]
    for path in OFFICIAL.glob("webhook_*.*.json")
}
WUKONG_MESSAGE = {"header": {"no_persist": 0, "red_dot": 1, "sync_once": 0}, "setting": 0, "message_id": 21280000001,
                  "message_idstr": "21280000001", "client_msg_no": "n-1", "message_seq": 3, "from_uid": "a",
                  "channel_id": "g", "channel_type": 2, "expire": 0, "timestamp": 1796189572,
                  "payload": "eyJ0eXBlIjoxLCJjb250ZW50IjoiaGkifQ=="}  # fmt: skip
WUKONG_BODIES: dict[str, Any] = {
    "msg.notify": [WUKONG_MESSAGE],
    "msg.offline": {**WUKONG_MESSAGE, "to_uids": ["b"], "source_id": 1001},
    "user.onlinestatus": ["alice-1-1-42-1-2"],
}

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with a few values replaced, keys dropped or containers swapped for other JSON."""
    def walk(value: Any, depth: int) -> Any:
        choice = draw(st.integers(0, 9))
        if choice == 0:
            return draw(json_values)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if draw(st.integers(0, 7)) == 0:
                    continue  # dropped
                out[key] = walk(item, depth + 1)
            return out
        if isinstance(value, list):
            return [walk(item, depth + 1) for item in value]
        return value

    return walk(document, 0)


def _check(reply: Reply) -> None:
    assert isinstance(reply, Reply)
    assert reply.error is None, repr(reply.error)  # no handler is registered: any error is imbridge's own
    if reply.status != 200:
        assert reply.status in (400, 401, 403, 404, 405, 413, 500)
        assert isinstance(reply.refusal, IMBridgeError) or reply.status == 500
    assert isinstance(reply.body, bytes)


RECEIVERS: dict[str, EventReceiver] = {}


def _receiver(name: str) -> EventReceiver:
    if name not in RECEIVERS:
        RECEIVERS[name] = {"tencent": tencent_receiver, "wukong": wukong_receiver,
                           "local": lambda: EventReceiver("local")}[name]()  # fmt: skip
    return RECEIVERS[name]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    provider=st.sampled_from(["tencent", "wukong", "local"]),
    method=st.sampled_from(["POST", "GET", "PUT", "post", ""]),
    path=st.sampled_from(["/", f"/hook/{PATH_SECRET}", "/hook/x", "/imbridge/events", ""]) | st.text(max_size=30),
    headers=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4),
    query=st.dictionaries(st.sampled_from(["SdkAppid", "CallbackCommand", "Sign", "RequestTime", "event", "x"]),
                          st.text(max_size=30), max_size=6),
    body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()),
)
def test_random_requests_never_raise(provider: str, method: str, path: str, headers: dict[str, str],
                                     query: dict[str, str], body: bytes) -> None:  # fmt: skip
    _check(_receiver(provider).handle(method, path, headers, query, body))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), command=st.sampled_from(sorted(TENCENT_BODIES)))
def test_mutated_tencent_callbacks_are_events_or_typed_refusals(data: st.DataObject, command: str) -> None:
    body = data.draw(mutated(TENCENT_BODIES[command]))
    raw = json.dumps(body).encode()
    reply = _receiver("tencent").handle("POST", "/", {}, signed_query(command), raw)
    _check(reply)
    with contextlib.suppress(IMBridgeError):
        parse_event(raw, command)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), event=st.sampled_from(sorted(WUKONG_BODIES)))
def test_mutated_wukong_webhooks_are_events_or_typed_refusals(data: st.DataObject, event: str) -> None:
    body = data.draw(mutated(WUKONG_BODIES[event]))
    raw = json.dumps(body).encode()
    _check(_receiver("wukong").handle("POST", f"/hook/{PATH_SECRET}", {}, {"event": event}, raw))
    with contextlib.suppress(IMBridgeError):
        parse_webhook(event, raw)
