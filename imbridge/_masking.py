"""Showing settings without their secrets (no third-party import: every provider module uses it)."""

from __future__ import annotations

import re

_AUTHORITY = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)(.*)$", re.DOTALL)


def mask_url(text: str) -> str:
    """``text`` with the password of a ``scheme://user:password@host`` URL replaced by ``***``."""
    match = _AUTHORITY.match(text)
    if match is None:
        return text
    scheme, authority, rest = match.groups()
    credentials, at, host = authority.rpartition("@")
    if not at:
        return text
    user, colon, _password = credentials.partition(":")
    return f"{scheme}{user}{':***' if colon else ''}@{host}{rest}"
