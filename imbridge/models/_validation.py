"""Input checks shared by every provider: input that cannot be valid never reaches the network.

The rules here are neutral: every provider applies them, so an id, a duration or a metadata mapping is
valid on all providers or on none. Vendor limits (Tencent's 32-byte user ids, WuKongIM's ``@#&``) are
checked by the provider that has them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import orjson

from imbridge._masking import mask_url
from imbridge.errors import ConfigurationError, InvalidRequestError

if TYPE_CHECKING:
    from pydantic import ValidationError

#: The longest identifier imbridge accepts. Tencent caps UserIDs at 32 bytes and group ids below 48;
#: providers narrow this further where their API does.
MAX_ID_BYTES = 64

_WHITESPACE = re.compile(r"\s")

#: Characters that change a URL path whatever the encoding: ``/`` (and ``\``, which WHATWG URL parsers and
#: some proxies read as ``/``) end a path segment, and a server that decodes ``%2F`` routes on the decoded
#: path. Refused in every id on every provider (ids end up in URL paths: WuKongIM's ``/cluster/channels/{id}``).
_PATH_SEPARATORS = re.compile(r"[/\\]")
#: Segments that URL normalisation removes: both HTTP clients collapse ``/channels/../2/x`` to ``/2/x``.
_DOT_SEGMENTS = frozenset({".", ".."})


#: Ids that passed :func:`check_id` at its default size (plain ``str`` only): an app sends from and to the
#: same few ids over and over, and each send checks two or three. Forgotten all at once when full.
_CHECKED_IDS: set[str] = set()
_CHECKED_IDS_LIMIT = 4096


def check_id(value: object, what: str, *, max_bytes: int = MAX_ID_BYTES) -> str:
    """Return ``value`` if it is a usable identifier, else raise InvalidRequestError.

    An identifier is a non-empty string of printable characters with no whitespace, no path separator
    (``/``, ``\\``) and not a dot segment (``.``, ``..``), at most ``max_bytes`` UTF-8 bytes: such an id
    is the same id on every provider, and cannot change the URL path it is put in.
    """
    if type(value) is str and value in _CHECKED_IDS and max_bytes == MAX_ID_BYTES:
        return value  # checked before: the rules depend on the value alone
    checked = _check_id(value, what, max_bytes)
    if type(value) is str and max_bytes == MAX_ID_BYTES:  # a str subclass may answer the checks differently
        if len(_CHECKED_IDS) >= _CHECKED_IDS_LIMIT:
            _CHECKED_IDS.clear()
        _CHECKED_IDS.add(value)
    return checked


def _check_id(value: object, what: str, max_bytes: int) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be a string, got {type(value).__name__}")
    if not value or value.strip() != value:
        raise InvalidRequestError(f"{what} must be non-empty with no surrounding spaces, got {value!r:.80}")
    # isprintable() is false for control characters and lone surrogates; spaces are printable, so they
    # are searched apart.
    if not value.isprintable() or _WHITESPACE.search(value):
        raise InvalidRequestError(f"{what} must not contain spaces or control characters, got {value!r:.80}")
    if value in _DOT_SEGMENTS or _PATH_SEPARATORS.search(value):
        raise InvalidRequestError(f"{what} must not be '.' or '..' nor contain '/' or '\\', got {value!r:.80}")
    if len(value.encode()) > max_bytes:
        raise InvalidRequestError(f"{what} is longer than {max_bytes} bytes: {value!r:.80}")
    return value


def check_ids(
    values: Iterable[str], what: str, *, max_bytes: int = MAX_ID_BYTES, allow_empty: bool = False
) -> list[str]:
    """Validate a list of identifiers, refusing a bare string (a common slip: ``register("alice")``)."""
    if isinstance(values, str | bytes | bytearray | Mapping) or not isinstance(values, Iterable):
        raise InvalidRequestError(f"{what} must be a list of ids, not {type(values).__name__}")
    checked = [check_id(v, what, max_bytes=max_bytes) for v in values]
    if not checked and not allow_empty:
        raise InvalidRequestError(f"{what}: at least one id is required")
    if len(set(checked)) != len(checked):
        raise InvalidRequestError(f"{what}: duplicate ids in {checked!r:.200}")
    return checked


def path_segment(value: str, what: str) -> str:
    """``value`` as one URL path segment: checked by :func:`check_id`'s rules, then percent-encoded so that
    ``?``, ``#`` and ``%`` stay inside it (``%2e%2e`` goes out as ``%252e%252e``, never as ``..``)."""
    return quote(check_id(value, what, max_bytes=4 * MAX_ID_BYTES), safe="")


def validation_problems(error: ValidationError) -> str:
    """Pydantic's complaints as ``field: message; ...``, without echoing the input (it may be huge, or a
    secret)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'value'}: {item['msg']}" for item in error.errors()
    )


# -- durations -------------------------------------------------------------------------------------------

MAX_DURATION = timedelta(days=365 * 100)
"""The longest duration any operation accepts (a mute, a login token's lifetime)."""


def check_duration(value: object, what: str, *, maximum: timedelta = MAX_DURATION) -> timedelta:
    """A positive, finite duration of at most ``maximum``, given as a timedelta or a number of seconds."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise InvalidRequestError(f"{what} must be a positive, finite number of seconds, got {value!r}")
        if value > maximum.total_seconds():
            raise InvalidRequestError(f"{what} is longer than {maximum.days} days: {value!r}")
        duration = timedelta(seconds=value)
    else:
        raise InvalidRequestError(f"{what} must be a timedelta or a number of seconds, got {type(value).__name__}")
    if duration <= timedelta(0):
        raise InvalidRequestError(f"{what} must be positive, got {duration.total_seconds():g} seconds")
    if duration > maximum:
        raise InvalidRequestError(f"{what} is longer than {maximum.days} days: {duration.total_seconds():g} seconds")
    return duration


# -- text ------------------------------------------------------------------------------------------------


def utf8_size(value: str, what: str) -> int:
    """The UTF-8 size of ``value``; InvalidRequestError if it cannot be encoded (a lone surrogate)."""
    try:
        return len(value.encode())
    except UnicodeEncodeError:
        raise InvalidRequestError(f"{what} is not valid Unicode text (it holds a lone surrogate)") from None


# -- JSON the caller hands over (metadata, options) ----------------------------------------------------------

MAX_JSON_DEPTH = 32
"""Nesting allowed in metadata and options: far more than any real use, far less than a parser's limit."""
_JSON_INT = (-(2**63), 2**64 - 1)  # what every provider's JSON encoder and the vendors' servers can hold


def check_json_object(value: object, what: str) -> dict[str, Any]:
    """``value`` as a JSON object that every provider stores and gives back unchanged.

    Keys are strings; values are None, booleans, integers within 64 bits, finite floats, strings (valid
    Unicode), lists, tuples and such objects, nested at most MAX_JSON_DEPTH deep. Anything else (sets,
    bytes, NaN, 2**70, int keys...) would be refused by an encoder deep inside a provider, or silently
    changed (NaN becomes null): it is refused here, before any request.
    """
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"{what} must be a mapping of strings to JSON values, not {type(value).__name__}")
    _check_json(value, what, 0)
    try:
        orjson.dumps(value)  # lone surrogates in strings, the one thing the walk does not look at
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"{what} cannot be encoded as JSON: {exc}") from None
    return dict(value)


def check_json_value(value: object, what: str) -> Any:
    """``value`` if it is a JSON value by :func:`check_json_object`'s rules (for raw request bodies)."""
    _check_json(value, what, 0)
    try:
        orjson.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"{what} cannot be encoded as JSON: {exc}") from None
    return value


def _check_json(value: object, where: str, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise InvalidRequestError(f"{where} is nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not _JSON_INT[0] <= value <= _JSON_INT[1]:
            raise InvalidRequestError(f"{where}: the integer {value} does not fit in 64 bits")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequestError(f"{where}: {value!r} is not a JSON number")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequestError(f"{where}: keys must be strings, got {type(key).__name__} {key!r:.40}")
            _check_json(item, f"{where}[{key!r:.40}]", depth + 1)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]", depth + 1)
        return
    raise InvalidRequestError(f"{where}: {type(value).__name__} is not a JSON value")


# -- where the client connects -------------------------------------------------------------------------------


def check_base_url(value: object, what: str = "base_url", schemes: tuple[str, ...] = ("http", "https")) -> str:
    """An absolute ``http(s)://host[:port][/path]`` URL (or of another of ``schemes``) without query, fragment,
    whitespace or control characters; ConfigurationError otherwise (at construction, not on the first request)."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a string, got {type(value).__name__}")
    if not value.isprintable() or _WHITESPACE.search(value):
        raise ConfigurationError(f"{what} must not contain spaces or control characters: {value!r:.80}")
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError when out of range or not a number
    except ValueError as exc:
        raise ConfigurationError(f"{what} is not a valid URL ({exc}): {mask_url(value)!r}") from None
    if parts.scheme.lower() not in schemes:
        allowed = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ConfigurationError(f"{what} must start with {allowed}, got {mask_url(value)!r}")
    if not parts.hostname:
        raise ConfigurationError(f"{what} has no host: {mask_url(value)!r}")
    if parts.query or parts.fragment or value.rstrip().endswith(("?", "#")):
        raise ConfigurationError(f"{what} must not carry a query or a fragment: {mask_url(value)!r}")
    if port == 0:
        raise ConfigurationError(f"{what} has port 0: {mask_url(value)!r}")
    return value
