"""Issue 13, point 11: every malformed or forged webhook gets a typed refusal, with bounded memory.

Each test here failed on the code before the fix (the message of each says what it did then).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest

# Only what existed before the fix is imported here, so that this module runs (and fails) on that code too;
# the receiver's checks import what they need inside the tests.
from imbridge.errors import AuthenticationError, ConfigurationError, InvalidRequestError
from imbridge.providers.tencent.webhooks import ReplayGuard, WebhookVerifier, parse_event
from imbridge.providers.wukong.webhooks import parse_webhook

APP, TOKEN, REQUEST_TIME = 888888, "xxxxyyyy", 1669872112
PATH_SECRET = "wk-hook-secret-0123456789abcdef"


def signed_query(command: str) -> dict[str, str]:
    sign = hashlib.sha256(f"{TOKEN}{REQUEST_TIME}".encode()).hexdigest()
    return {"SdkAppid": str(APP), "CallbackCommand": command, "Sign": sign, "RequestTime": str(REQUEST_TIME)}


def tencent_receiver(**options: object) -> Any:
    from events_support import tencent_receiver as build

    return build(**options)


def wukong_receiver() -> Any:
    from events_support import wukong_receiver as build

    return build()

STATE = json.dumps({"CallbackCommand": "State.StateChange", "Info": {"Action": "Login", "To_Account": "a"}}).encode()


def test_an_empty_token_is_refused() -> None:
    # Before: WebhookVerifier("") accepted a callback "signed" with sha256("" + time), which anyone can make.
    with pytest.raises(ConfigurationError):
        WebhookVerifier("", APP)
    with pytest.raises(ConfigurationError):
        tencent_receiver(callback_token="")


def test_no_token_needs_an_explicit_insecure_opt_out_and_warns() -> None:
    # Before: token=None silently turned verification off.
    with pytest.raises(ConfigurationError):
        WebhookVerifier(None, APP)
    with pytest.warns(UserWarning, match="NOT verified"):
        verifier = WebhookVerifier(None, APP, insecure_skip_verification=True)
    assert verifier.handle({"SdkAppid": str(APP)}, STATE).command == "State.StateChange"
    with pytest.raises(ConfigurationError):
        tencent_receiver(callback_token=None)
    with pytest.warns(UserWarning, match="does NOT verify"):
        tencent_receiver(callback_token=None, insecure_skip_verification=True)


def test_a_400_digit_request_time_is_an_authentication_refusal() -> None:
    # Before: OverflowError ("int too large to convert to float") before anything was authenticated.
    query = signed_query("State.StateChange") | {"RequestTime": "9" * 400}
    with pytest.raises(AuthenticationError):
        WebhookVerifier(TOKEN, APP).handle(query, STATE, now=time.time())
    reply = tencent_receiver(now=time.time()).handle("POST", "/cb", {}, query, STATE)
    assert reply.status == 401 and isinstance(reply.refusal, AuthenticationError)


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_100k_deep_json_is_refused_as_invalid() -> None:
    # Before: RecursionError from json.loads, in both vendors' parsers.
    with pytest.raises(InvalidRequestError):
        parse_event(DEEP)
    with pytest.raises(InvalidRequestError):
        parse_webhook("msg.notify", DEEP)
    nested = b'{"CallbackCommand":"State.StateChange","Info":{"Action":"Login","To_Account":"a"},"x":' + (
        b'{"a":' * 500 + b"1" + b"}" * 500 + b"}"
    )
    with pytest.raises(InvalidRequestError, match="deeper"):
        parse_event(nested)
    reply = wukong_receiver().handle("POST", f"/wk/{PATH_SECRET}", {}, {"event": "msg.notify"}, DEEP)
    assert reply.status == 400 and isinstance(reply.refusal, InvalidRequestError)


@pytest.mark.parametrize(
    "body",
    [
        {"CallbackCommand": "C2C.CallbackAfterSendMsg", "From_Account": "a", "To_Account": "b", "MsgKey": "k",
         "MsgTime": 1e20, "MsgBody": []},
        {"CallbackCommand": "Group.CallbackAfterSendMsg", "GroupId": "g", "From_Account": "a", "MsgSeq": 1,
         "MsgTime": 10**20, "MsgBody": []},
        {"CallbackCommand": "State.StateChange", "Info": {"Action": "Login", "To_Account": "a"}, "EventTime": 1e20},
        {"CallbackCommand": "Group.CallbackAfterRecallMsg", "GroupId": "g", "MsgSeqList": [], "EventTime": "9" * 30},
    ],
)  # fmt: skip
def test_times_out_of_range_are_invalid_requests(body: dict[str, object]) -> None:
    # Before: OverflowError / OSError ("Value too large for defined data type") from datetime.fromtimestamp.
    with pytest.raises(InvalidRequestError):
        parse_event(json.dumps(body).encode())


def test_array_bodies_where_an_object_is_expected() -> None:
    # Before: AttributeError ("'list' object has no attribute 'get'").
    with pytest.raises(InvalidRequestError):
        parse_event(b"[1, 2]")
    with pytest.raises(InvalidRequestError):
        parse_webhook("msg.offline", b'[{"message_id": 1}]')
    reply = tencent_receiver().handle("POST", "/", {}, signed_query("State.StateChange"), b"[]")
    assert reply.status == 400


@pytest.mark.parametrize("source_id", [[1], {}, "node-1", True, 1.5])
def test_a_wrong_typed_source_id_is_invalid(source_id: object) -> None:
    # Before: TypeError from int([1]); a dict or a string passed through or raised ValueError.
    body = json.dumps({"message_id": 1, "channel_id": "b", "channel_type": 1, "to_uids": [], "source_id": source_id})
    with pytest.raises(InvalidRequestError):
        parse_webhook("msg.offline", body)


def _gzip_bomb(expanded_bytes: int) -> str:
    """Base64 of gzip data that expands to ``expanded_bytes`` spaces, made a megabyte at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * (1024 * 1024)
    parts = [packer.compress(chunk) for _ in range(expanded_bytes // len(chunk))]
    parts.append(packer.flush())
    return base64.b64encode(b"".join(parts)).decode()


def test_a_gzip_bomb_in_compress_to_uids_is_refused_without_expanding_it() -> None:
    # Before: a 272 KB body expanded to 200 MB in memory (gzip.decompress has no cap).
    bomb = _gzip_bomb(200 * 1024 * 1024)
    assert len(bomb) < 400_000
    body = json.dumps({"message_id": 1, "channel_id": "b", "channel_type": 1, "compress": "gzip",
                       "compress_to_uids": bomb, "source_id": 1001})  # fmt: skip
    tracemalloc.start()
    try:
        with pytest.raises(InvalidRequestError, match="expands past"):
            parse_webhook("msg.offline", body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # At most the cap (16 MiB by default) is expanded, once; nothing near the 200 MB.
    assert peak < 48 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB while refusing a bomb"


def test_the_replay_guard_is_shared_by_workers_through_the_store(tmp_path: Path) -> None:
    # Before: the guard lived in each process's memory, so a second worker accepted a replay.
    from imbridge.events.sql_dedupe import SQLDedupeStore

    database = f"sqlite:///{tmp_path / 'claims.db'}"
    first = WebhookVerifier(TOKEN, APP, store=SQLDedupeStore(database))
    second = WebhookVerifier(TOKEN, APP, store=SQLDedupeStore(database))
    query = signed_query("State.StateChange")
    now = float(query["RequestTime"])
    first.handle(query, STATE, now=now)
    with pytest.raises(AuthenticationError, match="replayed"):
        second.handle(query, STATE, now=now + 1)
    # A guard of its own (in memory) is per process: the old behaviour, still available.
    assert ReplayGuard(60).check(int(query["RequestTime"]), query["Sign"], STATE, now=now) is None
