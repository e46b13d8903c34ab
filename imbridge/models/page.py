"""A page of results and the cursor to the next one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """``items`` in the order of travel; ``next_cursor`` is None on the last page.

    Cursors are opaque strings: store them and pass them back to the same call.
    """

    model_config = ConfigDict(frozen=True)

    items: list[T]
    next_cursor: str | None = None
    provider: str

    def __iter__(self) -> Iterator[T]:  # type: ignore[override]  # iterate items, not fields
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None
