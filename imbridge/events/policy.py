"""The before-send policy applied by imbridge itself, for providers whose server never asks the app.

Tencent asks the app before delivering any message (its before-send callbacks, answered by
``EventReceiver.on_before_send``). WuKongIM (v2.2.5) and the local provider have no such hook, so an
``IMClient(..., before_send=policy)`` applies the same policy to every ``messages.send`` made through that
client, before any request: it cannot see messages client SDKs send straight to the server. As on Tencent,
where ``batchsendmsg`` triggers no callback, ``send_batch`` is not asked.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from imbridge.errors import ConfigurationError, InvalidRequestError, PermissionDeniedError
from imbridge.events.models import Allow, Decision, MessageSending, Refuse, Rewrite
from imbridge.models import Conversation, Element

__all__ = ["BeforeSendPolicy", "apply"]

BeforeSendPolicy = Callable[[MessageSending], Decision]
"""A plain function: it runs inside the send, before any request, on the sync and the async client."""


def apply(
    policy: BeforeSendPolicy, *, provider: str, sender: str, to: Conversation, elements: Sequence[Element],
    metadata: Mapping[str, Any], key: str, now: Any,
) -> tuple[tuple[Element, ...], Mapping[str, Any]]:  # fmt: skip
    """The elements and metadata to send after asking ``policy``; PermissionDeniedError when it refuses."""
    pending = MessageSending(
        provider=provider, event_id=f"{provider}:sending:{key}", occurred_at=now, received_at=now, sender=sender,
        conversation=to, elements=list(elements), metadata=dict(metadata),
    )  # fmt: skip
    decision = policy(pending)
    if inspect.isawaitable(decision):
        if inspect.iscoroutine(decision):
            decision.close()
        raise ConfigurationError("the client's before_send policy must be a plain function, not async")
    if isinstance(decision, Allow):
        return tuple(elements), metadata
    if isinstance(decision, Refuse):
        raise PermissionDeniedError(
            f"refused by the before-send policy: {decision.reason}" if decision.reason else
            "refused by the before-send policy", provider=provider, operation="messages.send",
            native_code=decision.code if decision.code is not None else "before_send",
        )  # fmt: skip
    if isinstance(decision, Rewrite):
        if not decision.content:
            raise InvalidRequestError("the before-send policy rewrote the message to nothing", provider=provider)
        return tuple(decision.content), metadata if decision.metadata is None else decision.metadata
    raise ConfigurationError(f"the before_send policy returned {type(decision).__name__}, not Allow/Refuse/Rewrite")
