"""One health probe for every HTTP provider: a single cheap authenticated request, read into a ``Health``.

The probe never raises for what a network or a server can do: no answer is ``reachable=False``; refused
credentials are ``authenticated=False``; any other error answer is reachable with authentication unknown.
The client runs it with one attempt (``im.health()``), so a down server is reported at once, not after
the retry policy's backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imbridge._flow import Flow, Request
from imbridge.errors import AuthenticationError, IMBridgeError, PermissionDeniedError, TransportError
from imbridge.models.health import Health
from imbridge.providers.base import Provider


@dataclass
class Reading:
    """What a provider read from a successful probe answer."""

    message: str
    server_version: str | None = None
    authenticated: bool | None = True
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def probe(
    provider: Provider, request: Request, read: Callable[[Any], Reading], *, target: str, details: dict[str, Any]
) -> Flow[Health]:
    """Send ``request`` once and describe the outcome; ``read`` interprets a successful answer.

    ``target`` names what was asked (for the message), ``details`` are secret-free facts about the settings.
    """
    checked_at = provider.clock.now()
    started = provider.clock.monotonic()

    def health(reachable: bool, authenticated: bool | None, message: str, **fields: Any) -> Health:
        latency = (provider.clock.monotonic() - started) * 1000 if reachable else None
        merged = {**details, **fields.pop("details", {})}
        return Health(
            provider=provider.name, reachable=reachable, authenticated=authenticated, latency_ms=latency,
            message=message, details=merged, checked_at=checked_at, **fields,
        )  # fmt: skip

    try:
        reply = yield request
    except TransportError as error:
        return health(False, None, f"no answer from {target}: {error.message}")
    except (AuthenticationError, PermissionDeniedError) as error:
        return health(
            True, False, f"{target} refused the credentials: {error.message}",
            details={"native_code": error.native_code, "http_status": error.http_status},
        )  # fmt: skip
    except IMBridgeError as error:
        code = getattr(error, "native_code", None)
        return health(
            True, None, f"{target} answered with an error ({type(error).__name__}): {error.message}",
            details={"native_code": code, "http_status": getattr(error, "http_status", None)},
        )  # fmt: skip
    try:
        reading = read(reply)
    except (KeyError, IndexError, TypeError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        reading = Reading(
            f"{target} answered in a shape imbridge does not know ({type(error).__name__})", authenticated=None
        )
    return health(
        True, reading.authenticated, reading.message, server_version=reading.server_version,
        warnings=reading.warnings, details=reading.details,
    )  # fmt: skip
