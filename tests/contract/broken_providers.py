"""Deliberately broken providers: the contract suite must catch each of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from imbridge._flow import Flow, immediate
from imbridge.models import Message, Page
from imbridge.providers.base import HistoryQuery
from imbridge.providers.local.provider import LocalProvider


class OutOfOrderHistory(LocalProvider):
    """Returns each history page in the wrong order."""

    def history(self, query: HistoryQuery) -> Flow[Page[Message]]:
        page = yield from super().history(query)
        return page.model_copy(update={"items": list(reversed(page.items))})


class NoOpMute(LocalProvider):
    """Accepts mutes and forgets them."""

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta) -> Flow[None]:
        return immediate(lambda: None)
