"""A bounded memo: values built once and reused, forgotten all at once when it is full."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")
A = TypeVar("A")


class Kept(dict[K, V]):
    """Values built once and reused; everything is forgotten at ``limit`` entries, so it stays small."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def kept(self, key: K, build: Callable[[A], V], argument: A) -> V:
        value = self.get(key)
        if value is None:
            if len(self) >= self.limit:
                self.clear()
            value = self[key] = build(argument)
        return value
