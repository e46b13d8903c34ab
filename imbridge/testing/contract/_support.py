"""Helpers shared by the contract tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from imbridge.models import Custom, Face, File, Image, Location, Message, Sound, Text, Video

T = TypeVar("T")

#: One element of every kind, as an app would send it (media by URL).
SAMPLE_ELEMENTS: dict[str, Any] = {
    "text": Text("hello, 世界"),
    "image": Image(url="https://example.com/a.png", width=640, height=480, size=12345, format="png"),
    "file": File(url="https://example.com/report.pdf", name="report.pdf", size=2048),
    "sound": Sound(url="https://example.com/voice.m4a", duration=7, size=4096),
    "video": Video(
        url="https://example.com/clip.mp4", duration=12, size=99999, thumbnail_url="https://example.com/t.jpg"
    ),
    "location": Location(latitude=31.2304, longitude=121.4737, description="Shanghai"),
    "face": Face(index=3, data="smile"),
    "custom": Custom(data='{"kind":"order","id":42}', description="order update"),
}

#: The fields that must survive a round trip on every provider (providers may add their own defaults).
ESSENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "image": ("url",),
    "file": ("url", "name"),
    "sound": ("url", "duration"),
    "video": ("url", "duration"),
    "location": ("latitude", "longitude", "description"),
    "face": ("index",),
    "custom": ("data",),
}


def text_of(message: Message) -> str:
    """The text of a message's first element ('' when it is not text, or revoked)."""
    first = message.elements[0] if message.elements else None
    return first.text if isinstance(first, Text) else ""


def texts(messages: Iterable[Message]) -> list[str]:
    return [text_of(message) for message in messages]


def essentials(element: Any) -> dict[str, Any]:
    return {"type": element.type, **{name: getattr(element, name) for name in ESSENTIAL_FIELDS[element.type]}}


def eventually(check: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.25) -> T:
    """Retry ``check`` until it stops raising AssertionError (for expiries that the server applies)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)
