"""Nothing committed under cassettes/ may hold a secret, a UserSig or anything shaped like a token."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from imbridge.testing.cassettes import JWT_PATTERN, PLACEHOLDER, SECRET_HEADERS, USERSIG_PATTERN

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
PLACEHOLDERS = {PLACEHOLDER, "<MANAGER_TOKEN>", "<ISSUED_TOKEN>", "<USERSIG>"}
TOKEN_FIELD = re.compile(r'"(?:token|usersig|UserSig|secret_key|manager_token|secret)"\s*:\s*"([^"]*)"')
#: A long run of hex or base64 characters is how keys and tokens look; message ids and seqs are shorter.
KEY_SHAPED = re.compile(r"(?<![A-Za-z0-9])[0-9a-f]{48,}(?![A-Za-z0-9])")


def problems(text: str) -> list[str]:
    """Every secret-looking thing in one cassette's text."""
    found = [f"JWT-shaped: {m.group()[:20]}..." for m in JWT_PATTERN.finditer(text)]
    found += [f"UserSig-shaped: {m.group()[:20]}..." for m in USERSIG_PATTERN.finditer(text)]
    found += [f"token field: {m.group()[:40]}" for m in TOKEN_FIELD.finditer(text) if m.group(1) not in PLACEHOLDERS]
    found += [f"key-shaped hex: {m.group()[:20]}..." for m in KEY_SHAPED.finditer(text)]
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return found
    for interaction in (document or {}).get("interactions", []) if isinstance(document, dict) else []:
        request = interaction.get("request", {})
        for name, values in (request.get("headers") or {}).items():
            if name.lower() in SECRET_HEADERS and any(v not in PLACEHOLDERS for v in values):
                found.append(f"request header {name} not redacted")
        for name, value in parse_qsl(urlsplit(request.get("uri", "")).query):
            if name.lower() == "usersig" and value not in PLACEHOLDERS:
                found.append("usersig query parameter not redacted")
        for name, values in ((interaction.get("response") or {}).get("headers") or {}).items():
            if name.lower() in SECRET_HEADERS and any(v not in PLACEHOLDERS for v in values):
                found.append(f"response header {name} not redacted")
    return found


def _cassette_files() -> list[Path]:
    return sorted(p for p in CASSETTES.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json"))


def test_there_are_cassettes_to_check() -> None:
    assert len(_cassette_files()) >= 10


@pytest.mark.parametrize("path", _cassette_files(), ids=lambda p: str(p.relative_to(CASSETTES)))
def test_cassette_holds_no_secret(path: Path) -> None:
    assert problems(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "planted",
    [
        "Authorization: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl",
        "usersig: eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQW",
        'body: \'{"uid":"alice","token":"a-real-token-value"}\'',
        "key: 5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e",
        "interactions:\n- request:\n    uri: http://x/v4/openim/sendmsg?usersig=abc&random=1\n    headers: {}\n",
        "interactions:\n- request:\n    uri: http://x/message/send\n    headers:\n      token: [hunter2]\n",
    ],
)
def test_lint_catches_a_planted_secret(planted: str) -> None:
    assert problems(planted) != []
