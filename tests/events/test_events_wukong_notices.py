"""Revoke notices read from the command twin, where imbridge's revoke stores them (``sync_once``).

The server renders a stored message's channel with ``MessageResp.From`` (internal/types/message.go:68-77 at
v2.2.5): a person channel's stored id is split at ``@`` and the last part that is not the sender is shown. The
twin of ``a@b`` is ``a@b____cmd``, so the notice reads as ``b____cmd`` or, when the sender is ``b``,
as ``b____cmd`` too: the peer ``a`` is lost. These tests build the webhook bodies by that rule."""

from __future__ import annotations

import base64
import json
from typing import Any

from events_support import PATH_SECRET, wukong_receiver

from imbridge.events import InboundRequest, MessageRevoked
from imbridge.models import Conversation
from imbridge.providers.wukong import mapping, wire


def _rendered_channel(stored_id: str, sender: str) -> str:
    """``MessageResp.From``'s person-channel rule, as the server applies it."""
    shown = stored_id
    for part in stored_id.split("@"):
        if part != sender:
            shown = part
    return shown


def _notify(sender: str, channel_id: str, channel_type: int, payload: dict[str, Any]) -> InboundRequest:
    message = {
        "header": {"no_persist": 0, "red_dot": 0, "sync_once": 1}, "setting": 0, "message_id": 2128005241109385216,
        "message_idstr": "2128005241109385216", "client_msg_no": "revoke-2128005241042276352", "message_seq": 1,
        "from_uid": sender, "channel_id": channel_id, "channel_type": channel_type, "expire": 0,
        "timestamp": 1796190960, "payload": base64.b64encode(json.dumps(payload).encode()).decode(),
    }  # fmt: skip
    return InboundRequest(method="POST", path=f"/hook/{PATH_SECRET}", headers={"content-type": "application/json"},
                          query={"event": "msg.notify"}, body=json.dumps([message]).encode(), client="127.0.0.1")


def _revoked(request: InboundRequest) -> list[MessageRevoked]:
    receiver = wukong_receiver()
    seen: list[MessageRevoked] = []
    receiver.on(MessageRevoked)(seen.append)
    assert receiver.deliver(request).status == 200
    return seen


def test_a_person_notice_names_the_peer_whichever_side_the_twin_renders() -> None:
    for sender, peer in (("alice", "bob"), ("bob", "alice")):
        stored = wire.fake_channel_id(sender, peer) + wire.CMD_SUFFIX
        notice = mapping.revoke_payload(None, 2128005241042276352, sender, channel_type=wire.PERSON, channel_id=peer)
        [event] = _revoked(_notify(sender, _rendered_channel(stored, sender), wire.PERSON, notice))
        assert event.conversation == Conversation.user(peer), (sender, stored)
        assert event.key == "2128005241042276352" and event.revoked_by == sender


def test_a_group_notice_from_the_twin_is_about_the_group() -> None:
    notice = mapping.revoke_payload(None, 2128005241042276352, "alice", channel_type=wire.GROUP, channel_id="team")
    [event] = _revoked(_notify("alice", "team" + wire.CMD_SUFFIX, wire.GROUP, notice))
    assert event.conversation == Conversation.group("team")


def test_a_foreign_notice_without_imbridge_details_loses_only_the_suffix() -> None:
    notice = {"type": 1006, "message_id": "2128005241042276352", "content": "{0}撤回了一条消息"}
    [event] = _revoked(_notify("alice", "team" + wire.CMD_SUFFIX, wire.GROUP, notice))
    assert event.conversation == Conversation.group("team") and event.ref is None


def test_a_forged_conversation_in_the_details_falls_back_on_the_channel() -> None:
    notice = mapping.revoke_payload(None, 2128005241042276352, "alice", channel_type=wire.GROUP, channel_id="../x")
    [event] = _revoked(_notify("alice", "team" + wire.CMD_SUFFIX, wire.GROUP, notice))
    assert event.conversation == Conversation.group("team")
