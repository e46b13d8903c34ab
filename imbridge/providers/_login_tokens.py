"""Login tokens that imbridge itself issues (the local provider, WuKongIM): HS256 JWTs, one implementation.

Times are the provider's clock, not PyJWT's wall clock, so a token behaves the same under an injected
(test) clock as it does for real.
"""

from __future__ import annotations

import secrets
from typing import Any

import jwt
from pydantic import SecretStr

from imbridge.errors import AuthenticationError
from imbridge.providers.local.store import Store


def signing_key(configured: SecretStr | None, store: Store | None, meta_key: str) -> str:
    """The configured secret; else one made once and kept in the store (so tokens survive a restart);
    else, with no store, one for this process only."""
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    fresh = secrets.token_hex(32)
    return store.meta_setdefault(meta_key, fresh) if store is not None else fresh


def issue(key: str, *, user_id: str, issuer: str, issued: int, expires: int, **claims: Any) -> str:
    return jwt.encode({"sub": user_id, "iss": issuer, "iat": issued, "exp": expires, **claims}, key, "HS256")


def verify(token: str, key: str, *, issuer: str, now: float, provider: str) -> str:
    """The user ``token`` was issued to; AuthenticationError if forged, foreign, expired or not yet valid."""
    try:
        claims = jwt.decode(
            token, key, algorithms=["HS256"], issuer=issuer,
            options={"require": ["sub", "exp", "iat"], "verify_exp": False, "verify_iat": False},
        )  # fmt: skip
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"login token refused: {type(exc).__name__}", provider=provider) from None
    if not isinstance(claims["exp"], int | float) or not isinstance(claims["iat"], int | float):
        raise AuthenticationError("login token refused: malformed time claims", provider=provider)
    if claims["exp"] <= now:
        raise AuthenticationError("login token expired", provider=provider)
    if claims["iat"] > now:
        raise AuthenticationError("login token refused: issued in the future", provider=provider)
    return str(claims["sub"])


def claim(token: str, name: str, default: Any) -> Any:
    """One claim of a token ``verify`` has accepted (read without checking again)."""
    return jwt.decode(token, options={"verify_signature": False}).get(name, default)
