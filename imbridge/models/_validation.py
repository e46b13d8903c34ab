"""Input checks shared by every provider: input that cannot be valid never reaches the network."""

from __future__ import annotations

import re
from collections.abc import Iterable

from imbridge.errors import InvalidRequestError

#: The longest identifier imbridge accepts. Tencent caps UserIDs at 32 bytes and group ids below 48;
#: providers narrow this further where their API does.
MAX_ID_BYTES = 64

_WHITESPACE = re.compile(r"\s")


def check_id(value: object, what: str, *, max_bytes: int = MAX_ID_BYTES) -> str:
    """Return ``value`` if it is a usable identifier, else raise InvalidRequestError."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be a string, got {type(value).__name__}")
    if not value or value.strip() != value:
        raise InvalidRequestError(f"{what} must be non-empty with no surrounding spaces, got {value!r}")
    # isprintable() is false for control characters; spaces are printable, so they are searched apart.
    if not value.isprintable() or _WHITESPACE.search(value):
        raise InvalidRequestError(f"{what} must not contain spaces or control characters, got {value!r}")
    if len(value.encode()) > max_bytes:
        raise InvalidRequestError(f"{what} is longer than {max_bytes} bytes: {value!r}")
    return value


def check_ids(
    values: Iterable[str], what: str, *, max_bytes: int = MAX_ID_BYTES, allow_empty: bool = False
) -> list[str]:
    """Validate a list of identifiers, refusing a bare string (a common slip: ``register("alice")``)."""
    if isinstance(values, str | bytes):
        raise InvalidRequestError(f"{what} must be a list of ids, not a single string")
    checked = [check_id(v, what, max_bytes=max_bytes) for v in values]
    if not checked and not allow_empty:
        raise InvalidRequestError(f"{what}: at least one id is required")
    if len(set(checked)) != len(checked):
        raise InvalidRequestError(f"{what}: duplicate ids in {checked!r}")
    return checked
