"""Opaque history cursors: a provider's position, tagged with the provider and the direction."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from imbridge.errors import InvalidRequestError


def encode_cursor(provider: str, position: dict[str, Any]) -> str:
    payload = json.dumps({"p": provider, **position}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(provider: str, cursor: str) -> dict[str, Any]:
    """The position inside ``cursor``; InvalidRequestError for a corrupt or foreign cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidRequestError(f"corrupt history cursor {cursor!r:.60}", provider=provider) from exc
    if not isinstance(position, dict) or position.pop("p", None) != provider:
        raise InvalidRequestError(f"history cursor {cursor!r:.60} was not made by {provider}", provider=provider)
    return position
