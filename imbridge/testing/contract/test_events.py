"""Inbound events: what the provider's webhooks (or the local provider's own deliveries) report, as neutral
events, through the receiver an app mounts. Capability-aware: an event kind a provider declares PARTIAL or
UNSUPPORTED is checked for what the declaration says (no event from imbridge's own change), not for the event.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

from imbridge import Conversation, Operation, Support
from imbridge.events import InboundRequest, MemberJoined, MemberLeft, MessageCreated, MessageRevoked
from imbridge.testing.contract._support import text_of
from imbridge.testing.events import EventChannel
from imbridge.testing.plugin import Contract


def _delivers(channel: EventChannel, kind: str) -> bool:
    return channel.receiver.support[kind].support in (Support.NATIVE, Support.EMULATED)


def test_a_send_produces_exactly_one_message_created(contract: Contract) -> None:
    events = contract.inbound
    alice, bob = contract.users("alice", "bob")
    sent = contract.im.messages.send(alice, Conversation.user(bob), "hello, events")
    found = events.wait_for(MessageCreated, lambda e: e.ref.key == sent.ref.key)
    assert len(found) == 1, found
    (event,) = found
    # The very reference the send returned: an app can match the event to what it stored.
    assert event.ref == sent.ref
    assert event.provider == contract.provider and event.message.sender == alice
    assert text_of(event.message) == "hello, events"
    assert event.message.conversation == Conversation.user(bob)


def test_a_group_send_produces_exactly_one_message_created(contract: Contract) -> None:
    events = contract.inbound
    alice, bob = contract.users("alice", "bob")
    group = contract.im.groups.create("Events", owner=alice, members=[bob], group_id=contract.gid("g"))
    contract.track_group(group.id)
    sent = contract.im.messages.send(bob, Conversation.group(group.id), "to the group")
    found = events.wait_for(MessageCreated, lambda e: e.ref == sent.ref)
    assert len(found) == 1, found
    assert found[0].message.conversation == Conversation.group(group.id) and found[0].message.sender == bob
    assert text_of(found[0].message) == "to the group"


def test_a_revoke_produces_message_revoked(contract: Contract) -> None:
    events = contract.inbound
    alice, bob = contract.users("alice", "bob")
    sent = contract.im.messages.send(alice, Conversation.user(bob), "soon gone")
    if not contract.supports(Operation.MESSAGES_REVOKE):
        contract.expect_unsupported(lambda: contract.im.messages.revoke(sent.ref))
        return
    contract.im.messages.revoke(sent.ref)
    revoked = events.wait_for(MessageRevoked, lambda e: e.refers_to(sent.ref))
    assert len(revoked) == 1, revoked
    assert revoked[0].ref in (None, sent.ref)
    # The revoke is not a new message of the conversation's.
    assert len(events.wait_for(MessageCreated, lambda e: e.ref.key == sent.ref.key)) == 1


def test_joins_and_leaves(contract: Contract) -> None:
    events = contract.inbound
    alice, bob, carol = contract.users("alice", "bob", "carol")
    group = contract.im.groups.create("Members", owner=alice, members=[bob], group_id=contract.gid("g"))
    contract.track_group(group.id)
    contract.im.groups.add_members(group.id, [carol])
    contract.im.groups.remove_members(group.id, [carol])
    joined = events.wait_for(MemberJoined, lambda e: e.group_id == group.id and e.user_id == carol, timeout=3.0)
    left = events.wait_for(MemberLeft, lambda e: e.group_id == group.id and e.user_id == carol, timeout=3.0)
    for kind, found in (("member.joined", joined), ("member.left", left)):
        if _delivers(events, kind):
            assert len(found) == 1, (kind, found)
        else:
            # Declared PARTIAL or UNSUPPORTED: imbridge's own change produces no event, and the notes say why.
            assert found == [] and events.receiver.support[kind].notes
            contract.outcome = "not_delivered"


def _tampered(channel: EventChannel, genuine: InboundRequest) -> list[tuple[str, InboundRequest]]:
    """Forged and stale copies of a genuine delivery, made with the provider's own rules (and hashlib/hmac,
    not with the receiver's code)."""
    now = int(channel.clock())
    if channel.provider == "tencent":
        query = dict(genuine.query)
        stale_at = now - 600
        stale_sign = hashlib.sha256(f"{channel.secret}{stale_at}".encode()).hexdigest()
        return [
            ("a wrong Sign", replace(genuine, query=query | {"Sign": "0" * 64})),
            ("a Sign of another token", replace(genuine, query=query | {
                "Sign": hashlib.sha256(f"guess{query['RequestTime']}".encode()).hexdigest()})),
            ("no Sign", replace(genuine, query={k: v for k, v in query.items() if k not in ("Sign", "RequestTime")})),
            ("another app", replace(genuine, query=query | {"SdkAppid": "1"})),
            ("a stale but well-signed RequestTime", replace(genuine, query=query | {
                "RequestTime": str(stale_at), "Sign": stale_sign})),
        ]  # fmt: skip
    if channel.provider == "wukong":
        # WuKongIM signs nothing (and sends no time): what is forged is the path secret.
        prefix, _, secret = genuine.path.rpartition("/")
        return [
            ("a wrong path secret", replace(genuine, path=f"{prefix}/{secret[:-1]}x")),
            ("no path secret", replace(genuine, path=prefix or "/")),
        ]
    key = channel.secret.encode()

    def signed(at: int, body: bytes) -> dict[str, str]:
        mac = hmac.new(key, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
        return {"x-imbridge-timestamp": str(at), "x-imbridge-signature": f"v1={mac}"}

    return [
        ("a changed body", replace(genuine, body=genuine.body.replace(b"hello", b"HELLO"))),
        ("a signature of another key", replace(genuine, headers={
            "x-imbridge-timestamp": str(now),
            "x-imbridge-signature": "v1=" + hmac.new(b"guess", genuine.body, hashlib.sha256).hexdigest()})),
        ("a stale but well-signed timestamp", replace(genuine, headers=signed(now - 3600, genuine.body))),
    ]  # fmt: skip


def test_forged_and_stale_requests_are_refused(contract: Contract) -> None:
    events = contract.inbound
    alice, bob = contract.users("alice", "bob")
    sent = contract.im.messages.send(alice, Conversation.user(bob), "hello, forgers")
    (created,) = events.wait_for(MessageCreated, lambda e: e.ref.key == sent.ref.key)
    genuine = events.delivery_of(created)
    before = len(events.received)
    for what, forged in _tampered(events, genuine):
        reply = events.resend(forged)
        assert 400 <= reply.status < 500, (what, reply.status)
        assert reply.handled == () and reply.refusal is not None, what
    assert len(events.received) == before


def test_a_retried_delivery_yields_one_event(contract: Contract) -> None:
    events = contract.inbound
    alice, bob = contract.users("alice", "bob")
    sent = contract.im.messages.send(alice, Conversation.user(bob), "hello, again")
    (created,) = events.wait_for(MessageCreated, lambda e: e.ref.key == sent.ref.key)
    retry = events.resend(events.delivery_of(created))
    assert retry.status == 200 and retry.handled == () and retry.duplicates >= 1
    assert len(events.wait_for(MessageCreated, lambda e: e.ref.key == sent.ref.key)) == 1
