"""Message content elements, one model per kind. A message is a list of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imbridge.errors import InvalidRequestError
from imbridge.models._build import fill
from imbridge.models._validation import validation_problems

MAX_INT = 2**63 - 1
"""The largest integer an element field takes: what every provider's JSON encoder and the vendors hold."""


class _Element(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    if not TYPE_CHECKING:  # type checkers keep the signature pydantic derives from the fields

        def __init__(self, /, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as error:
                # An element is what a caller builds to send: a wrong one is an invalid request.
                message = f"invalid {type(self).__name__}: {validation_problems(error)}"
                raise InvalidRequestError(message) from None


class Text(_Element):
    """Plain text."""

    type: Literal["text"] = "text"
    text: str = Field(min_length=1)

    def __init__(self, text: str | None = None, /, **data: object) -> None:
        if type(text) is str and text and not data and (text.isascii() or _encodable(text)):
            # Text("hi"), once per send in the README's idiom: a non-empty str (valid Unicode) is all the
            # validation asks for, so it is stored as pydantic would store it, without running it (tests
            # compare the two).
            fill(self, {"type": "text", "text": text}, {"text"})
            return
        if text is not None:
            data["text"] = text
        super().__init__(**data)


def _encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogate), as pydantic requires of a str field."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class Image(_Element):
    """An image, by URL (imbridge does not upload media)."""

    type: Literal["image"] = "image"
    url: str = Field(min_length=1)
    width: int | None = Field(default=None, ge=0, le=MAX_INT)
    height: int | None = Field(default=None, ge=0, le=MAX_INT)
    size: int | None = Field(default=None, ge=0, le=MAX_INT, description="bytes")
    format: str | None = Field(default=None, description="jpg, gif, png, bmp or other")
    uuid: str | None = None
    thumbnail_url: str | None = None


class File(_Element):
    """A file, by URL."""

    type: Literal["file"] = "file"
    url: str = Field(min_length=1)
    name: str = Field(min_length=1)
    size: int | None = Field(default=None, ge=0, le=MAX_INT, description="bytes")
    uuid: str | None = None


class Sound(_Element):
    """A voice message, by URL."""

    type: Literal["sound"] = "sound"
    url: str = Field(min_length=1)
    duration: int = Field(ge=0, le=MAX_INT, description="seconds")
    size: int | None = Field(default=None, ge=0, le=MAX_INT, description="bytes")
    uuid: str | None = None


class Video(_Element):
    """A video with its thumbnail, by URL."""

    type: Literal["video"] = "video"
    url: str = Field(min_length=1)
    duration: int = Field(ge=0, le=MAX_INT, description="seconds")
    size: int | None = Field(default=None, ge=0, le=MAX_INT, description="bytes")
    format: str | None = None
    uuid: str | None = None
    thumbnail_url: str | None = None
    thumbnail_width: int | None = Field(default=None, ge=0, le=MAX_INT)
    thumbnail_height: int | None = Field(default=None, ge=0, le=MAX_INT)
    thumbnail_size: int | None = Field(default=None, ge=0, le=MAX_INT)
    thumbnail_format: str | None = None
    thumbnail_uuid: str | None = None


class Location(_Element):
    """A point on the map."""

    type: Literal["location"] = "location"
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    description: str = ""


class Face(_Element):
    """An emoticon: an index into the app's face set, plus optional data."""

    type: Literal["face"] = "face"
    index: int = Field(ge=0, le=MAX_INT)
    data: str = ""


class Custom(_Element):
    """App-defined content; ``data`` is opaque to imbridge (often JSON)."""

    type: Literal["custom"] = "custom"
    data: str
    description: str = Field(default="", description="push text")
    ext: str = ""
    sound: str = ""


Element = Annotated[Text | Image | File | Sound | Video | Location | Face | Custom, Field(discriminator="type")]
"""Any content element; pydantic picks the class from ``type``."""
