"""Tencent UserSig (TLS sig v2, HMAC-SHA256): generate, decode, verify, and a cache for the admin sig.

``generate_usersig`` mirrors the official ``tls-sig-api-v2-python`` library byte for byte (same
``json.dumps`` defaults, key order and ``zlib.compress`` level), so its output equals that library's
string; other official libraries emit other strings with the same ``TLS.sig``, which is why
verification decodes and recomputes instead of comparing strings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from imbridge._shallow_json import loads_shallow
from imbridge.errors import AuthenticationError

__all__ = ["DEFAULT_EXPIRE", "UserSigCache", "decode_usersig", "generate_usersig", "verify_usersig"]

DEFAULT_EXPIRE = 180 * 86400
"""The official libraries' default validity (180 days), in seconds."""

_TO_URL = str.maketrans({"+": "*", "/": "-", "=": "_"})
_FROM_URL = str.maketrans({"*": "+", "-": "/", "_": "="})


def _hmac(key: str, identifier: str, sdk_app_id: int, issued: int, expire: int) -> str:
    # Line order is identifier, sdkappid, time, expire; every line ends with "\n".
    content = f"TLS.identifier:{identifier}\nTLS.sdkappid:{sdk_app_id}\nTLS.time:{issued}\nTLS.expire:{expire}\n"
    digest = hmac.new(key.encode(), content.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def generate_usersig(
    sdk_app_id: int, key: str, identifier: str, expire: int = DEFAULT_EXPIRE, now: int | float | None = None
) -> str:
    """A UserSig for ``identifier``, valid ``expire`` seconds from ``now`` (Unix seconds; default: the clock)."""
    if expire <= 0:
        raise ValueError("expire must be a positive number of seconds")
    issued = int(time.time() if now is None else now)
    document: dict[str, Any] = {
        "TLS.ver": "2.0",
        "TLS.identifier": str(identifier),
        "TLS.sdkappid": int(sdk_app_id),
        "TLS.expire": int(expire),
        "TLS.time": issued,
    }
    document["TLS.sig"] = _hmac(key, str(identifier), int(sdk_app_id), issued, int(expire))
    compressed = zlib.compress(json.dumps(document).encode())
    return base64.b64encode(compressed).decode().translate(_TO_URL)


def decode_usersig(usersig: str) -> dict[str, Any]:
    """The JSON document inside a UserSig (not verified). AuthenticationError if it is not one."""
    try:
        raw = zlib.decompress(base64.b64decode(usersig.translate(_FROM_URL), validate=True))
        document = loads_shallow(raw)  # nesting bounded before parsing (json.loads: RecursionError)
    except (binascii.Error, zlib.error, ValueError, TypeError, AttributeError):
        raise AuthenticationError("not a UserSig (cannot be decoded)", provider="tencent") from None
    if not isinstance(document, dict):
        raise AuthenticationError("not a UserSig (no JSON object inside)", provider="tencent")
    return document


def verify_usersig(
    usersig: str, sdk_app_id: int, key: str, now: int | float | None = None, identifier: str | None = None
) -> dict[str, Any]:
    """Check a UserSig as the server does and return its document.

    Raises AuthenticationError when the signature does not match ``key``, the sig belongs to another
    app (or another ``identifier``, when given), or it has expired (``now > TLS.time + TLS.expire``).
    """
    document = decode_usersig(usersig)
    try:
        app = int(document["TLS.sdkappid"])
        user = str(document["TLS.identifier"])
        issued = int(document["TLS.time"])
        expire = int(document["TLS.expire"])
        signature = str(document["TLS.sig"])
    except (KeyError, TypeError, ValueError):
        raise AuthenticationError("UserSig lacks required fields", provider="tencent") from None
    if "TLS.userbuf" in document:
        raise AuthenticationError("UserSig carries a userbuf (a TRTC PrivateMapKey, not an IM sig)", provider="tencent")
    if app != int(sdk_app_id):
        raise AuthenticationError(f"UserSig was issued for another app ({app})", provider="tencent", native_code=70014)
    if identifier is not None and user != identifier:
        raise AuthenticationError("UserSig was issued for another user", provider="tencent", native_code=70013)
    expected = _hmac(key, user, app, issued, expire)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise AuthenticationError("UserSig signature does not match the key", provider="tencent", native_code=70009)
    current = time.time() if now is None else now
    if current > issued + expire:
        raise AuthenticationError(
            "UserSig has expired", provider="tencent", native_code=70001, credentials_expired=True
        )
    return document


class UserSigCache:
    """The admin UserSig, generated once and renewed before it expires.

    Safe under threads and asyncio tasks: the lock only guards a cheap check and, rarely, one HMAC,
    so holding it never blocks an event loop for long.
    """

    def __init__(
        self,
        sdk_app_id: int,
        key: Callable[[], str],
        identifier: str,
        ttl: int,
        *,
        clock: Callable[[], float] = time.time,
        renew_margin: float = 0.1,
    ) -> None:
        self._sdk_app_id = sdk_app_id
        self._key = key
        self._identifier = identifier
        self._ttl = ttl
        self._clock = clock
        # Renew once 90% of the validity has passed (at least 60 s early), so no request carries a
        # sig that expires in flight.
        self._margin = max(60.0, ttl * renew_margin) if ttl > 120 else ttl / 2
        self._lock = threading.Lock()
        self._sig: str | None = None
        self._renew_at = 0.0
        self.generated = 0
        """How many sigs were made (for tests and metrics)."""

    def get(self) -> str:
        with self._lock:
            now = self._clock()
            if self._sig is None or now >= self._renew_at:
                issued = int(now)
                self._sig = generate_usersig(self._sdk_app_id, self._key(), self._identifier, self._ttl, now=issued)
                self._renew_at = issued + self._ttl - self._margin
                self.generated += 1
            return self._sig

    def invalidate(self) -> None:
        """Forget the cached sig (the server said it expired); the next ``get`` makes a new one."""
        with self._lock:
            self._sig = None

    def __repr__(self) -> str:
        return f"UserSigCache(sdk_app_id={self._sdk_app_id}, identifier={self._identifier!r}, ttl={self._ttl})"
