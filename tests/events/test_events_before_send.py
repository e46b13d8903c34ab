"""One before-send policy, the same outcome on every provider: Tencent asks it through its before-send
callbacks (the receiver answers); WuKongIM and local have no such hook, so the client applies it to the sends
it makes (declared EMULATED, with what it cannot cover: messages client SDKs send straight to the server)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imbridge import AsyncIMClient, Conversation, IMClient, PermissionDeniedError
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.events import Allow, EventReceiver, MessageSending, Refuse, Rewrite
from imbridge.models import Text

KEY = "imbridge-test-key-not-a-secret-0000"


def policy(message: MessageSending) -> Allow | Refuse | Rewrite:
    """An app's moderation rule, written once."""
    text = " ".join(getattr(element, "text", "") for element in message.elements)
    if "spam" in text:
        return Refuse("no spam here")
    if "darn" in text:
        return Rewrite(text.replace("darn", "d**n"), metadata={"moderated": True})
    return Allow()


def _local(tmp: Path, policy: Any) -> tuple[IMClient, Callable[[], int]]:
    client = IMClient("local", database=str(tmp / "local.db"), before_send=policy)
    return client, lambda: 0


def _wukong(tmp: Path, policy: Any) -> tuple[IMClient, Callable[[], int]]:
    emulator = WukongEmulator(manager_token="t")
    sent: list[str] = []
    http = httpx.Client(transport=emulator.transport(),
                        event_hooks={"request": [lambda r: sent.append(r.url.path)]})  # fmt: skip
    client = IMClient("wukong", base_url="http://emulator", manager_token="t", store=str(tmp / "s.db"),
                      http_client=http, before_send=policy)  # fmt: skip
    return client, lambda: sum(path == "/message/send" for path in sent)


def _tencent(tmp: Path, policy: Any) -> tuple[IMClient, Callable[[], int]]:
    receiver = EventReceiver("tencent", sdk_app_id=1400000000, callback_token="tok-tok-tok")
    receiver.on_before_send(policy)
    emulator = TencentEmulator(secret_key=KEY, callback=receiver.deliver, callback_token="tok-tok-tok")
    # The client's own before_send is not applied on Tencent (it would ask twice): Tencent asks the receiver.
    client = IMClient("tencent", sdk_app_id=1400000000, secret_key=KEY, base_url="http://emulator",
                      http_client=httpx.Client(transport=emulator.transport()), before_send=policy)  # fmt: skip
    return client, lambda: -1


@pytest.fixture(params=["local", "wukong", "tencent"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, IMClient, Callable[[], int]]]:
    build = {"local": _local, "wukong": _wukong, "tencent": _tencent}[request.param]
    im, sends = build(tmp_path, policy)
    im.users.register(["alice", "bob"])
    yield request.param, im, sends
    im.close()


def _texts(im: IMClient) -> list[str]:
    page = im.messages.history(Conversation.user("alice"), viewer="bob", limit=10)
    return [getattr(m.elements[0], "text", "") for m in reversed(page.items)]


def test_one_policy_same_outcome_everywhere(client: tuple[str, IMClient, Callable[[], int]]) -> None:
    name, im, sends = client
    im.messages.send("alice", Conversation.user("bob"), "hello")
    with pytest.raises(PermissionDeniedError, match="no spam here"):
        im.messages.send("alice", Conversation.user("bob"), "buy spam")
    im.messages.send("alice", Conversation.user("bob"), "darn it")
    assert _texts(im) == ["hello", "d**n it"]
    if name == "wukong":
        assert sends() == 2  # the refused send never reached the server
    (rewritten,) = [m for m in im.messages.history(Conversation.user("alice"), viewer="bob", limit=10).items
                    if getattr(m.elements[0], "text", "") == "d**n it"]  # fmt: skip
    assert rewritten.metadata == {"moderated": True}


def test_the_async_client_applies_it_too(tmp_path: Path) -> None:
    async def run() -> None:
        async with AsyncIMClient("local", database=str(tmp_path / "a.db"), before_send=policy) as im:
            await im.users.register(["alice", "bob"])
            with pytest.raises(PermissionDeniedError):
                await im.messages.send("alice", Conversation.user("bob"), "spam!")
            sent = await im.messages.send("alice", Conversation.user("bob"), "darn")
            page = await im.messages.history(Conversation.user("alice"), viewer="bob", limit=5)
            assert [m.elements for m in page.items] == [[Text("d**n")]] and sent.ref.key

    asyncio.run(run())


def test_batches_are_not_asked_as_on_tencent(tmp_path: Path) -> None:
    # Tencent's batchsendmsg triggers no callback (reference §6.3): the client does not ask for batches either.
    im, _ = _local(tmp_path, policy)
    im.users.register(["alice", "bob"])
    assert im.messages.send_batch("alice", ["bob"], "spam for all").ok


def test_an_async_or_broken_policy_is_a_configuration_error(tmp_path: Path) -> None:
    from imbridge.errors import ConfigurationError

    async def asynchronous(message: MessageSending) -> Allow:
        return Allow()

    im, _ = _local(tmp_path, asynchronous)
    im.users.register(["alice", "bob"])
    with pytest.raises(ConfigurationError, match="plain function"):
        im.messages.send("alice", Conversation.user("bob"), "hi")
    with pytest.raises(ConfigurationError):
        IMClient("local", database=":memory:", before_send="not a function")
