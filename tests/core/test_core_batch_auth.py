"""An authentication failure is never a per-item result, and a BatchResult is true only when every target
succeeded (issue 13, point 9)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from imbridge import AsyncIMClient, BatchItem, BatchResult, IMClient
from imbridge.capabilities import Operation
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.errors import AuthenticationError, NotFoundError
from imbridge.retry import RetryPolicy

TOKEN = "batch-auth-test-token"  # made up for these tests
KEY = "batch-auth-test-key-not-a-secret"
APP = 1400000001


def test_a_batch_result_is_true_only_when_every_target_succeeded() -> None:
    done = BatchItem(target="a", ok=True)
    failed = BatchItem(target="b", ok=False, error=NotFoundError("unknown user 'b'"))
    pending = BatchItem(target="c", ok=False, pending=True)
    assert BatchResult(items=[done], provider="local")
    assert BatchResult(items=[], provider="local")  # nothing asked, nothing failed
    assert not BatchResult(items=[done, failed], provider="local")
    assert not BatchResult(items=[done, pending], provider="local")
    for items in ([done], [done, failed], [pending]):
        result = BatchResult(items=items, provider="local")
        assert bool(result) is result.ok


def test_a_batch_result_never_holds_an_authentication_failure() -> None:
    refused = AuthenticationError("manager token refused", http_status=401)
    with pytest.raises(AuthenticationError) as caught:
        BatchResult(items=[BatchItem(target="a", ok=False, error=refused)], provider="wukong")
    assert caught.value is refused


def _wukong(asynchronous: bool) -> Any:
    emulator = WukongEmulator(manager_token=TOKEN)
    cls = AsyncIMClient if asynchronous else IMClient
    http = httpx.AsyncClient if asynchronous else httpx.Client
    return cls("wukong", base_url="http://wk.emulator", manager_token="not-the-token", store="",
               http_client=http(transport=emulator.transport()), retry=RetryPolicy(initial_backoff=0))  # fmt: skip


def _tencent(asynchronous: bool) -> Any:
    emulator = TencentEmulator(sdk_app_id=APP, secret_key=KEY)
    cls = AsyncIMClient if asynchronous else IMClient
    http = httpx.AsyncClient if asynchronous else httpx.Client
    return cls("tencent", sdk_app_id=APP, secret_key="not-the-key", base_url="http://tencent.emulator",
               http_client=http(transport=emulator.transport()), retry=RetryPolicy(initial_backoff=0))  # fmt: skip


#: Every operation that returns a BatchResult, called with what it needs.
BATCH_CALLS: dict[Operation, Callable[[Any], Any]] = {
    Operation.USERS_REGISTER: lambda im: im.users.register(["alice", "bob"]),
    Operation.USERS_DELETE: lambda im: im.users.delete(["alice"]),
    Operation.MESSAGES_SEND_BATCH: lambda im: im.messages.send_batch("alice", ["bob", "carol"], "hi"),
    Operation.GROUPS_ADD_MEMBERS: lambda im: im.groups.add_members("g1", ["bob"]),
    Operation.GROUPS_REMOVE_MEMBERS: lambda im: im.groups.remove_members("g1", ["bob"]),
}


@pytest.mark.parametrize("make", [_wukong, _tencent], ids=["wukong", "tencent"])
@pytest.mark.parametrize("operation", list(BATCH_CALLS), ids=str)
def test_refused_credentials_raise_from_every_batch_operation(
    make: Callable[[bool], Any], operation: Operation
) -> None:
    with make(False) as im:
        if not im.capabilities[operation].available:
            pytest.skip(f"{operation} is unsupported on {im.provider_name}")
        with pytest.raises(AuthenticationError):
            BATCH_CALLS[operation](im)


@pytest.mark.parametrize("make", [_wukong, _tencent], ids=["wukong", "tencent"])
async def test_refused_credentials_raise_from_an_async_register(make: Callable[[bool], Any]) -> None:
    async with make(True) as im:
        with pytest.raises(AuthenticationError):
            await im.users.register(["alice", "bob"])
