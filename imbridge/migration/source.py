"""Reading everything out of Tencent IM, oldest first, a page at a time (memory stays flat).

The neutral API covers profiles, groups, members and mutes; the export commands it does not model go
through the provider's escape hatch (``im.provider.call``), with the same auth, pacing and retries:
``get_appid_group_list``, ``group_msg_get_simple``, ``admin_getroammsg`` and ``recentcontact/get_list``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

from imbridge._flow import Flow, Request
from imbridge.client import AsyncIMClient
from imbridge.errors import ConfigurationError
from imbridge.models import Conversation, Message
from imbridge.providers.tencent import mapping, paging, wire

T = TypeVar("T")

GROUP_SERVICE = "group_open_http_svc"
GROUP_PAGE = 20
ROAM_PAGE = 100
#: A one-to-one window narrower than this is read page after page instead of being split further.
MIN_WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class GroupSeqs:
    """The retained MsgSeq range of a group: ``first`` (oldest still readable) to ``last``; 0 when empty."""

    first: int
    last: int


class TencentSource:
    """The export side of a migration, over an ``AsyncIMClient`` of the ``tencent`` provider."""

    def __init__(self, client: AsyncIMClient) -> None:
        if client.provider_name != "tencent":
            raise ConfigurationError(f"the migration source must be Tencent IM, not {client.provider_name!r}")
        self.client = client
        self.app_id: int = client.provider.tencent.sdk_app_id

    async def _call(self, service: str, command: str, body: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = await self.client.provider.call(service, command, body)
        return reply

    # -- discovery --------------------------------------------------------------------------------

    async def group_ids(self) -> list[str]:
        """Every group of the app (``get_appid_group_list``, paced at its 1 call/s)."""
        ids: list[str] = []
        next_index = 0
        while True:
            body: dict[str, Any] = {"Limit": 10_000}
            if next_index:
                body["Next"] = next_index
            reply = await self._call(GROUP_SERVICE, "get_appid_group_list", body)
            ids.extend(str(item["GroupId"]) for item in reply.get("GroupIdList") or [])
            next_index = int(reply.get("Next") or 0)
            if not next_index:
                return ids

    async def recent_contacts(self, user_id: str) -> tuple[list[str], list[str]]:
        """(one-to-one peers, groups) in ``user_id``'s recent contacts (``recentcontact/get_list``)."""
        peers: list[str] = []
        groups: list[str] = []
        body: dict[str, Any] = {"From_Account": user_id, "TimeStamp": 0, "StartIndex": 0, "TopTimeStamp": 0,
                                "TopStartIndex": 0, "AssistFlags": 7}  # fmt: skip
        for _ in range(1000):  # a guard: every page moves StartIndex on
            reply = await self._call("recentcontact", "get_list", body)
            for session in reply.get("SessionItem") or []:
                if session.get("Type") == 1 and session.get("To_Account"):
                    peers.append(str(session["To_Account"]))
                elif session.get("Type") == 2 and session.get("GroupId"):
                    groups.append(str(session["GroupId"]))
            if reply.get("CompleteFlag", 1) == 1 or not reply.get("SessionItem"):
                break
            body.update(
                {name: reply.get(name, 0) for name in ("TimeStamp", "StartIndex", "TopTimeStamp", "TopStartIndex")}
            )
        return peers, groups

    # -- group history ----------------------------------------------------------------------------

    async def _simple(self, group_id: str, count: int, seq: int | None) -> list[wire.GroupMsg]:
        body: dict[str, Any] = {"GroupId": group_id, "ReqMsgNumber": count, "WithRecalledMsg": 1}
        if seq is not None:
            body["ReqMsgSeq"] = seq
        reply = await self._call(GROUP_SERVICE, "group_msg_get_simple", body)
        return wire.GroupMsgGetSimpleResponse.model_validate(reply).messages()

    @staticmethod
    def _retained(message: wire.GroupMsg) -> bool:
        return message.IsPlaceMsg != mapping.PLACEHOLDER_EXPIRED

    async def group_seqs(self, group_id: str) -> GroupSeqs:
        """The group's newest MsgSeq, and the oldest one still inside the retention window, found by
        bisection (a probe at ``s`` returns the newest retained message at or below ``s``)."""
        top = await self._simple(group_id, 1, None)
        last = max((m.MsgSeq for m in top), default=0)
        if last == 0:
            return GroupSeqs(0, 0)
        if not any(self._retained(m) for m in top):
            return GroupSeqs(last + 1, last)  # everything has expired
        low, high = 1, last  # invariant: the oldest retained seq is in [low, high]
        while low < high:
            middle = (low + high) // 2
            probe = [
                m.MsgSeq for m in await self._simple(group_id, 1, middle) if m.MsgSeq <= middle and self._retained(m)
            ]
            if probe:
                high = max(probe)  # the newest retained at or below `middle`: the oldest is no higher
            else:
                low = middle + 1
        return GroupSeqs(low, last)

    async def _run(self, flow: Flow[T]) -> T:
        """Drive one of the provider's sans-IO flows with ``provider.call`` (same auth, pacing, retries)."""
        try:
            request = next(flow)
            while True:
                if not isinstance(request, Request):
                    raise TypeError(f"the export reader runs single requests, not {type(request).__name__}")
                _, service, command = request.path.strip("/").split("/")
                request = flow.send(await self._call(service, command, request.json or {}))
        except StopIteration as done:
            result: T = done.value
            return result

    @staticmethod
    def _request(service: str, command: str, body: dict[str, Any]) -> Request:
        return Request("POST", f"v4/{service}/{command}", json=body, api=command)

    async def group_window(self, group_id: str, low: int, high: int) -> paging.Window:
        """Every message of seqs ``low..high``, a cut window completed (``paging.group_window``)."""
        return await self._run(paging.group_window(self._request, group_id, low, high))

    async def group_messages(self, group_id: str, after_seq: int, last_seq: int) -> AsyncIterator[Message]:
        """Group messages with ``after_seq < MsgSeq <= last_seq``, oldest first, a window of 20 at a time
        (a cut window is completed by :meth:`group_window`); expired placeholders and system messages are
        left out (verify accounts for them from its own count of every seq)."""
        start = after_seq + 1
        while start <= last_seq:
            end = min(start + GROUP_PAGE - 1, last_seq)
            found = (await self.group_window(group_id, start, end)).messages
            for seq in sorted(found):
                item = found[seq]
                if self._retained(item) and not item.IsSystemMsg:
                    yield mapping.group_message_from_wire(item, group_id)
            start = end + 1

    # -- one-to-one history -----------------------------------------------------------------------

    async def _roam(
        self, operator: str, peer: str, low: int, high: int, last_key: str | None
    ) -> wire.GetRoamMsgResponse:
        body: dict[str, Any] = {"Operator_Account": operator, "Peer_Account": peer, "MaxCnt": ROAM_PAGE,
                                "MinTime": low, "MaxTime": high}  # fmt: skip
        if last_key:
            body["LastMsgKey"] = last_key
        return wire.GetRoamMsgResponse.model_validate(await self._call("openim", "admin_getroammsg", body))

    async def c2c_messages(self, a: str, b: str, low: int, high: int) -> AsyncIterator[Message]:
        """The pair's messages with ``low <= MsgTimeStamp <= high``, oldest first, read as ``a`` sees them.

        ``admin_getroammsg`` only walks backward, so the time range is split in halves until a window fits
        one page (or is under a minute, then read page after page): memory holds one window, never the
        whole conversation."""
        conversation = Conversation.user(b)
        stack = [(low, high)]
        while stack:
            lo, hi = stack.pop()
            if lo > hi:
                continue
            page = await self._roam(a, b, lo, hi, None)
            window = list(page.MsgList)
            if page.Complete == 0 and page.MsgList:
                if hi - lo >= MIN_WINDOW_SECONDS:
                    middle = (lo + hi) // 2
                    stack += [(middle + 1, hi), (lo, middle)]  # the older half is popped first
                    continue
                while page.Complete == 0 and page.MsgList:
                    oldest = min(page.MsgList, key=lambda m: (m.MsgTimeStamp, m.MsgSeq, m.MsgKey))
                    page = await self._roam(a, b, lo, oldest.MsgTimeStamp, page.LastMsgKey or oldest.MsgKey)
                    window.extend(page.MsgList)
            unique = {m.MsgKey: m for m in window}
            for item in sorted(unique.values(), key=lambda m: (m.MsgTimeStamp, m.MsgSeq, m.MsgKey)):
                yield mapping.c2c_message_from_wire(item, conversation)
