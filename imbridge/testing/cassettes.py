"""Recording and replaying HTTP exchanges (vcrpy), with secrets replaced before anything is written.

Matching is on method, path and the query without its volatile parameters (Tencent's ``usersig`` and
``random``), never on host, so a cassette recorded against one address replays against another. In
replay mode a request that matches nothing fails: the network is never reached.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    import vcr

PLACEHOLDER = "<REDACTED>"

#: Query parameters whose value changes on every request or is a credential.
VOLATILE_QUERY = frozenset({"usersig", "random"})
SECRET_HEADERS = ("token", "authorization", "cookie", "set-cookie")

JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
USERSIG_PATTERN = re.compile(r"eJ[wy][A-Za-z0-9*_-]{60,}")
TOKEN_FIELD_PATTERN = re.compile(r'("(?:token|usersig|UserSig|secret_key|manager_token)"\s*:\s*")[^"]*(")')


def scrub_text(text: str) -> str:
    """Replace anything shaped like a JWT, a UserSig or a token field with the placeholder."""
    text = JWT_PATTERN.sub(PLACEHOLDER, text)
    text = USERSIG_PATTERN.sub(PLACEHOLDER, text)
    return TOKEN_FIELD_PATTERN.sub(lambda m: m.group(1) + PLACEHOLDER + m.group(2), text)


def _scrub_body(body: Any) -> Any:
    if isinstance(body, bytes):
        try:
            return scrub_text(body.decode()).encode()
        except UnicodeDecodeError:
            return body
    if isinstance(body, str):
        return scrub_text(body)
    return body


def _before_record_request(request: Any) -> Any:
    request.body = _scrub_body(request.body)
    return request


def _before_record_response(response: dict[str, Any]) -> dict[str, Any]:
    body = response.get("body", {})
    if "string" in body:
        body["string"] = _scrub_body(body["string"])
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in SECRET_HEADERS:
            headers[name] = [PLACEHOLDER]
    return response


def stable_query(request: Any) -> list[tuple[str, str]]:
    return sorted(
        (k, v) for k, v in parse_qsl(urlsplit(request.uri).query, keep_blank_values=True) if k not in VOLATILE_QUERY
    )


def _match_stable_query(first: Any, second: Any) -> None:
    if stable_query(first) != stable_query(second):
        raise AssertionError(f"query differs: {stable_query(first)} != {stable_query(second)}")


def recorder(directory: Path, mode: str) -> vcr.VCR:
    """A VCR for ``directory``: ``record`` overwrites cassettes, ``replay`` only plays them back."""
    import vcr

    machine = vcr.VCR(
        cassette_library_dir=str(directory),
        record_mode="all" if mode == "record" else "none",
        match_on=["method", "path", "stable_query"],
        filter_headers=[(name, PLACEHOLDER) for name in SECRET_HEADERS],
        filter_query_parameters=[("usersig", PLACEHOLDER)],
        before_record_request=_before_record_request,
        before_record_response=_before_record_response,
        decode_compressed_response=True,
    )
    machine.register_matcher("stable_query", _match_stable_query)
    return machine
