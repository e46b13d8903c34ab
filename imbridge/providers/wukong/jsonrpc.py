"""Sending over WuKongIM's JSON-RPC WebSocket (``WukongSettings.jsonrpc_url``): what goes on the wire, and what the
node's answers mean. Pure functions; the connections are the executor's (imbridge/_sockets.py).

Facts, each from the server's source at tag v2.2.5-20260422 (``/work/wk/src``) and the real node's answers recorded
in ``tests/fixtures/wukong/jsonrpc/recording.json`` (its PROVENANCE.md says how):

- A send is answered only after the message is stored: the client path persists, then acknowledges
  (internal/user/handler/event_onsend.go hands the send to the channel, whose persist step answers with a sendack,
  internal/channel/handler/event_persist.go and event_sendack.go), while ``POST /message/send`` answers before
  storing. So the answer's ``messageSeq`` confirms the send with no read.
- Success is reason code 1 (``ReasonSuccess``: WuKongIMGoProto v1.2.3 common.go:160-189 numbers the codes from
  ``ReasonUnknown`` 0), not 0 as the protocol document's example says. ``payload`` is base64 (a Go ``[]byte``:
  pkg/jsonrpc/types.go ``SendParams``), not a JSON object.
- The connection logs in as the sender on device flag 99 (``SYSTEM``) at device level 0 (slave), with a token
  set by ``POST /user/token`` for that flag: the user's own apps keep their flags and tokens, a slave connection
  kicks no other connection (internal/user/handler/event_connect.go:126-175, only same-deviceId slaves are closed,
  so each connection has its own device id), and ``recvack`` from a slave only drops the node's retry of that push
  (internal/user/handler/event_recvack.go:26-44: only a master's ack moves the user's conversation).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from imbridge.errors import (
    AuthenticationError,
    InvalidRequestError,
    ServiceUnavailableError,
)
from imbridge.providers.wukong import wire
from imbridge.providers.wukong.mapping import NAME, REASON_ERRORS

SYSTEM_DEVICE_FLAG = wire.SYSTEM_DEVICE_FLAG
"""WuKongIM's ``SYSTEM`` device flag (WuKongIMGoProto common.go): never one of the user's own apps."""
SLAVE = 0
REASON_SUCCESS = 1


def token(key: str, uid: str) -> str:
    """The token imbridge's connections of ``uid`` log in with: derived from the client's signing key, so every
    process configured alike sets the same one (none replaces another's under its open connections)."""
    return hmac.new(key.encode(), b"wukong-jsonrpc:" + uid.encode(), hashlib.sha256).hexdigest()[:40]


def token_request(key: str, uid: str) -> dict[str, Any]:
    """The ``POST /user/token`` body that lets ``uid``'s JSON-RPC connections in (a node checking tokens refuses
    any other: event_connect.go:71-92)."""
    return {"uid": uid, "token": token(key, uid), "device_flag": SYSTEM_DEVICE_FLAG, "device_level": SLAVE}


def login(key: str, uid: str) -> dict[str, Any]:
    """The ``connect`` request of one new connection (its own device id: see the module's notes)."""
    return {"method": "connect", "params": {"uid": uid, "token": token(key, uid), "deviceFlag": SYSTEM_DEVICE_FLAG,
                                            "deviceId": "imbridge-" + secrets.token_hex(8)}}  # fmt: skip


def check_login(answer: Any) -> None:
    """Raise the error of a refused login (None: no answer came). The node answers nothing at all to a refused
    token: handleConnect returns an error with ReasonAuthFail, and its caller then logs and returns without a
    connack (internal/user/handler/event_connect.go:23-26; recording.json, ``wrong_token``). An ``error`` object
    carries the reason code of other refusals (pkg/jsonrpc/types.go ``FromProtoConnackNotification``)."""
    if answer is None:
        raise AuthenticationError(
            "WuKongIM did not answer the JSON-RPC login, which is how it refuses a token: the one set by POST "
            "/user/token for device flag 99 was replaced or is not checked the same way (or the node is overloaded)",
            provider=NAME,
        )  # fmt: skip
    result = answer.get("result") if type(answer) is dict else None
    if type(result) is dict and result.get("reasonCode") == REASON_SUCCESS:
        return
    error = answer.get("error") if type(answer) is dict else None
    code = error.get("code") if type(error) is dict else None
    raise AuthenticationError(f"WuKongIM refused the JSON-RPC login: {str(answer)[:200]}", provider=NAME,
                              native_code=code if isinstance(code, int) else None)  # fmt: skip


def acknowledge(frame: Any) -> Mapping[str, Any] | None:
    """The ``recvack`` of a message the node pushed to the connection (unacknowledged, the node pushes it again and
    again); None for any other notification."""
    if frame.get("method") != "recv":
        return None
    params = frame.get("params")
    if type(params) is not dict:
        return None
    return {"method": "recvack", "params": {"header": params.get("header") or {}, "messageId": params.get("messageId"),
                                            "messageSeq": params.get("messageSeq")}}  # fmt: skip


def send_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-RPC ``send`` of an ordinary stored message, from the ``POST /message/send`` body imbridge built."""
    header = body.get("header") or {}
    return {"clientMsgNo": body["client_msg_no"], "channelId": body["channel_id"], "channelType": body["channel_type"],
            "payload": body["payload"], "header": {"redDot": bool(header.get("red_dot"))}}  # fmt: skip


def read_answer(answer: Any, operation: str) -> tuple[int, int]:
    """``(message_id, message_seq)`` of a send the node stored. Raises the error of a refusal, or
    ServiceUnavailableError for an answer that does not say (the caller looks the message up: it may be stored)."""
    result = answer.get("result") if type(answer) is dict else None
    if type(result) is dict:
        code = result.get("reasonCode")
        if code == REASON_SUCCESS:
            message_id, seq = result.get("messageId"), result.get("messageSeq")
            if type(message_id) is str and message_id.isdigit() and type(seq) is int and seq > 0:
                return int(message_id), seq
        elif type(code) is int and code in REASON_ERRORS and code != wire.REASON_SYSTEM_ERROR:
            error_class, meaning = REASON_ERRORS[code]
            raise error_class(f"WuKongIM refused the send: {meaning} (reason code {code}); it is not stored",
                              provider=NAME, operation=operation, native_code=code)  # fmt: skip
        raise ServiceUnavailableError(f"WuKongIM answered the JSON-RPC send with {str(result)[:200]}",
                                      provider=NAME, operation=operation,
                                      native_code=code if type(code) is int else None)  # fmt: skip
    error = answer.get("error") if type(answer) is dict else None
    if type(error) is dict:
        # A request the node could not read (pkg/jsonrpc codec): refused before it became a send.
        code = error.get("code")
        raise InvalidRequestError(f"WuKongIM refused the JSON-RPC send: {str(error.get('message'))[:200]}",
                                  provider=NAME, operation=operation,
                                  native_code=code if isinstance(code, int) else None)  # fmt: skip
    raise ServiceUnavailableError(f"WuKongIM answered the JSON-RPC send with {str(answer)[:200]}", provider=NAME,
                                  operation=operation)  # fmt: skip
