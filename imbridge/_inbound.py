"""Reading requests that arrive from outside (vendor webhooks): bounded, and failing only with typed errors.

Everything here treats its input as hostile: the body is size-checked before it is parsed, JSON nesting
is bounded, numbers that become times are range-checked, and every failure is an imbridge error that
says what was wrong (``native_code`` is a short reason slug; ``http_status`` what to answer).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from imbridge.errors import AuthenticationError, InvalidRequestError, PermissionDeniedError

__all__ = [
    "Limits",
    "forged",
    "gunzip_base64",
    "load_json",
    "malformed",
    "millis",
    "nests_deeper",
    "not_allowed",
    "seconds",
]

#: The latest time a vendor timestamp may name (the last second of year 9999, datetime's limit).
_MAX_SECONDS = 253_402_300_799


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one inbound request may cost (memory and CPU), whatever it holds."""

    max_body_bytes: int = 8 * 1024 * 1024
    """WuKongIM batches up to 100 messages per ``msg.notify`` POST; Tencent bodies are a few KB."""
    max_json_depth: int = 64
    """Vendor payloads nest a handful of levels (message content a few more)."""
    max_decompressed_bytes: int = 16 * 1024 * 1024
    """Cap on WuKongIM's gzipped ``compress_to_uids`` once expanded (about 400,000 uids)."""


def forged(reason: str, message: str, *, provider: str, status: int = 401) -> AuthenticationError:
    """A request that does not prove it comes from the vendor."""
    return AuthenticationError(message, provider=provider, native_code=reason, http_status=status)


def not_allowed(reason: str, message: str, *, provider: str) -> PermissionDeniedError:
    return PermissionDeniedError(message, provider=provider, native_code=reason, http_status=403)


def malformed(reason: str, message: str, *, provider: str, status: int = 400) -> InvalidRequestError:
    """A request that is not what the vendor sends."""
    return InvalidRequestError(message, provider=provider, native_code=reason, http_status=status)


def nests_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def load_json(body: bytes, limits: Limits, *, provider: str) -> Any:
    """The body as JSON, within ``limits``; InvalidRequestError otherwise (never a parser's own error)."""
    if len(body) > limits.max_body_bytes:
        raise malformed("body_too_large", f"body of {len(body)} bytes exceeds {limits.max_body_bytes}",
                        provider=provider, status=413)  # fmt: skip
    try:
        # orjson stops at 1024 levels with a ValueError, so even a hostile body cannot exhaust the stack.
        value = orjson.loads(body)
    except (ValueError, TypeError):
        raise malformed("not_json", "body is not JSON", provider=provider) from None
    # Only a body with more brackets than the limit can nest deeper than it: most skip the walk.
    if body.count(b"[") + body.count(b"{") > limits.max_json_depth and nests_deeper(value, limits.max_json_depth):
        raise malformed("too_deep", f"JSON nests deeper than {limits.max_json_depth} levels", provider=provider)
    return value


def _integer(value: Any, what: str, provider: str) -> int:
    if isinstance(value, bool):
        raise malformed("malformed", f"{what} is not a number", provider=provider)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.lstrip("-").isdigit():
        return int(value)
    raise malformed("malformed", f"{what} is not an integer: {str(value)[:40]!r}", provider=provider)


def seconds(value: Any, what: str, *, provider: str) -> datetime:
    """A Unix time in seconds (number or digit string) as a UTC datetime, range-checked."""
    number = _integer(value, what, provider)
    if not 0 <= number <= _MAX_SECONDS:
        raise malformed("malformed", f"{what} is out of range: {number}", provider=provider)
    return datetime.fromtimestamp(number, UTC)


def millis(value: Any, what: str, *, provider: str) -> datetime | None:
    """A Unix time in milliseconds (number or digit string; absent or "" gives None), range-checked."""
    if value is None or value == "":
        return None
    number = _integer(value, what, provider)
    if not 0 <= number <= _MAX_SECONDS * 1000:
        raise malformed("malformed", f"{what} is out of range: {number}", provider=provider)
    return datetime.fromtimestamp(number / 1000, UTC)


def gunzip_base64(text: Any, limits: Limits, *, what: str, provider: str) -> bytes:
    """Base64 of gzip data, expanded to at most ``limits.max_decompressed_bytes`` (a decompression bomb
    is refused once it passes the cap, never expanded whole)."""
    if not isinstance(text, str):
        raise malformed("malformed", f"{what} is not a base64 string", provider=provider)
    try:
        packed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise malformed("malformed", f"{what} is not valid base64", provider=provider) from None
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    cap = limits.max_decompressed_bytes
    try:
        out = inflater.decompress(packed, cap + 1)
    except zlib.error:
        raise malformed("malformed", f"{what} is not gzip data", provider=provider) from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise malformed("too_large", f"{what} expands past {cap} bytes", provider=provider, status=413)
    if not inflater.eof:
        raise malformed("malformed", f"{what} is truncated gzip data", provider=provider)
    return out
