"""imbridge's JSON-RPC send transport against a real WuKongIM (v2.2.5).

Runs when ``IMBRIDGE_WUKONG_BASE_URL``, ``IMBRIDGE_WUKONG_MANAGER_TOKEN`` and ``IMBRIDGE_WUKONG_JSONRPC_URL`` (the
node's ``wsAddr``, e.g. ``ws://127.0.0.1:5200``) name one; skipped otherwise. It checks against the real node what
the emulator tests check against the recorded one: every send reported sent is in the history at the seq the
answer gave, with nothing read to confirm it, and a refusal is a typed error with nothing stored.
"""

from __future__ import annotations

import asyncio
import os
import secrets

import httpx
import pytest

from imbridge import AsyncIMClient, IMClient
from imbridge.errors import PermissionDeniedError
from imbridge.models import Conversation, Text

BASE_URL = os.environ.get("IMBRIDGE_WUKONG_BASE_URL", "")
TOKEN = os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN", "")
JSONRPC_URL = os.environ.get("IMBRIDGE_WUKONG_JSONRPC_URL", "")

pytestmark = pytest.mark.skipif(
    not (BASE_URL and JSONRPC_URL),
    reason="a real node: set IMBRIDGE_WUKONG_BASE_URL, IMBRIDGE_WUKONG_MANAGER_TOKEN and IMBRIDGE_WUKONG_JSONRPC_URL",
)


def _settings() -> dict[str, str]:
    return {"base_url": BASE_URL, "manager_token": TOKEN, "jsonrpc_url": JSONRPC_URL}


def _history(sender: str, recipient: str) -> dict[int, str]:
    """seq -> message id of the person chat, read with plain httpx (not imbridge)."""
    body = {"login_uid": sender, "channel_id": recipient, "channel_type": 1, "start_message_seq": 1,
            "end_message_seq": 0, "pull_mode": 1, "limit": 10000}  # fmt: skip
    reply = httpx.post(f"{BASE_URL}/channel/messagesync", json=body, headers={"token": TOKEN}, timeout=10)
    reply.raise_for_status()
    return {row["message_seq"]: str(row["message_id"]) for row in reply.json().get("messages") or []}


def test_concurrent_async_sends_are_each_in_the_history_at_their_answered_seq() -> None:
    sender, recipient = "lj" + secrets.token_hex(5), "lk" + secrets.token_hex(5)

    async def run() -> list[tuple[int | None, str]]:
        async with AsyncIMClient("wukong", **_settings()) as im:
            limit = asyncio.Semaphore(64)

            async def one(number: int) -> tuple[int | None, str]:
                async with limit:
                    sent = await im.messages.send(sender, Conversation.user(recipient), [Text(f"live {number}")])
                assert sent.confirmed
                return sent.seq, sent.ref.key

            return list(await asyncio.gather(*(one(number) for number in range(500))))

    answered = asyncio.run(run())
    history = _history(sender, recipient)
    assert sorted(seq for seq, _key in answered) == list(range(1, 501))
    assert {seq: key for seq, key in answered} == history


def test_sync_sends_are_confirmed_and_stored_once() -> None:
    sender, recipient = "lj" + secrets.token_hex(5), "lk" + secrets.token_hex(5)
    with IMClient("wukong", **_settings()) as im:
        sent = [im.messages.send(sender, Conversation.user(recipient), [Text(f"s{n}")]) for n in range(20)]
    assert [s.seq for s in sent] == list(range(1, 21))
    assert _history(sender, recipient) == {s.seq: s.ref.key for s in sent}


def test_a_send_the_node_refuses_is_a_typed_error_and_nothing_is_stored() -> None:
    member, outsider, group = "lm" + secrets.token_hex(5), "lo" + secrets.token_hex(5), "lg" + secrets.token_hex(5)
    reply = httpx.post(f"{BASE_URL}/channel", json={"channel_id": group, "channel_type": 2, "subscribers": [member]},
                       headers={"token": TOKEN}, timeout=10)  # fmt: skip
    reply.raise_for_status()
    with IMClient("wukong", enforce_policy=False, **_settings()) as im:  # the node's own check, not imbridge's
        with pytest.raises(PermissionDeniedError) as refused:
            im.messages.send(outsider, Conversation.group(group), [Text("not a member")])
        assert refused.value.native_code == 3
        assert im.messages.send(member, Conversation.group(group), [Text("member")]).seq == 1
