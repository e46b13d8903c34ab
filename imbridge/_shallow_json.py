"""JSON from a caller (cursors, message references, UserSigs), parsed only when it is shallow.

``json.loads`` recurses once per nesting level, up to the interpreter's limit: on a hostile input nested 100,000
deep it ends in RecursionError, and any finalizer the garbage collector runs down there fails as an unraisable
exception. What imbridge writes into these strings is a few levels deep, so deeper input is refused before
parsing. (orjson bounds nesting itself, but reads neither integers past 64 bits nor ``Infinity``, which
``json.dumps`` writes and the cursors must read back.)
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]+")


def loads_shallow(raw: bytes) -> Any:
    """``json.loads(raw)``; ValueError when arrays and objects nest deeper than MAX_DEPTH."""
    depth = 0
    for bracket in _NOT_BRACKETS.sub(b"", _STRINGS.sub(b"", raw)):
        if bracket in b"[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1
    return json.loads(raw)
