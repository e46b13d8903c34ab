"""Opaque history cursors: a provider's position, tagged with the provider and the direction."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from imbridge._shallow_json import loads_shallow
from imbridge.errors import InvalidRequestError


def encode_cursor(provider: str, position: dict[str, Any]) -> str:
    payload = json.dumps({"p": provider, **position}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(provider: str, cursor: str) -> dict[str, Any]:
    """The position inside ``cursor``; InvalidRequestError for a corrupt or foreign cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = loads_shallow(raw)  # not json.loads: a hostile cursor would recurse to the interpreter's limit
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidRequestError(f"corrupt history cursor {cursor!r:.60}", provider=provider) from exc
    if not isinstance(position, dict) or position.pop("p", None) != provider:
        raise InvalidRequestError(f"history cursor {cursor!r:.60} was not made by {provider}", provider=provider)
    return position


def check_position(provider: str, position: dict[str, Any], fields: dict[str, type]) -> dict[str, Any]:
    """``position`` if each of ``fields`` it holds has that type (ints within 0..2**63-1, lists of strings);
    InvalidRequestError otherwise: a cursor is opaque, but one can be forged or corrupted and still decode."""
    for name, kind in fields.items():
        if name not in position:
            continue
        value = position[name]
        if kind is int:
            fits = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
        elif kind is list:
            fits = isinstance(value, list) and all(isinstance(item, str) for item in value)
        else:
            fits = isinstance(value, kind)
        if not fits:
            raise InvalidRequestError(f"history cursor holds an invalid position ({name})", provider=provider)
    return position
