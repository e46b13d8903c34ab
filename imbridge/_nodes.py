"""Several equivalent server nodes behind one client: which node the next request goes to.

A provider that talks to a cluster (WuKongIM's nodes each answer every API, forwarding to the node that
owns the data) builds its requests against its first node's URL and hands the executor a :class:`NodePool`.
The executor asks the pool for a node before each request (``route``) and tells it when the node did not
answer (``failed``): a node that refused a connection or timed out leaves the rotation for ``cooldown``
seconds. A request that never left (a refused connection) moves on to the next node at once, within the
same attempt; one that may have been processed is not re-sent here: the executor's retry rules, and the
flows' lookups before a re-send, decide, and their next requests go to another node because the failed one
is cooling down. Decisions only, no I/O: the sync and async drivers share it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from imbridge._flow import HTTPRequest


class NodePool:
    """Round-robin over ``urls`` (base URLs without a trailing slash), skipping nodes that are cooling down.

    When every node is cooling down, the one whose cooldown ends first is tried (a cluster that lost every
    node is still probed, never refused by the client). Safe to share between threads: a lost update of the
    turn counter or of a cooldown only changes which healthy node answers.
    """

    def __init__(self, urls: Sequence[str], *, cooldown: float = 10.0) -> None:
        if not urls:
            raise ValueError("a node pool needs at least one URL")
        self.urls: tuple[str, ...] = tuple(urls)
        self.primary = self.urls[0]
        self.cooldown = cooldown
        self._down_until: dict[str, float] = {}
        self._turn = itertools.count()

    def pick(self, now: float, *, avoid: str | None = None) -> str:
        """The node for the next request: the next healthy one in turn (not ``avoid`` when another is
        healthy), else the one that comes back first."""
        start = next(self._turn)
        count = len(self.urls)
        for offset in range(count):
            node = self.urls[(start + offset) % count]
            if node != avoid and self._down_until.get(node, 0.0) <= now:
                return node
        return min(self.urls, key=lambda url: (url == avoid, self._down_until.get(url, 0.0)))

    def route(self, wire: HTTPRequest, now: float, node: str | None = None) -> str:
        """Point ``wire`` (built against ``primary``) at ``node``, or at the node :meth:`pick` chooses."""
        target = node or self.pick(now)
        if target != self.primary:
            wire.url = target + wire.url[len(self.primary) :]
        return target

    def failed(self, node: str, now: float) -> None:
        """``node`` refused a connection or timed out: out of rotation for ``cooldown`` seconds."""
        self._down_until[node] = now + self.cooldown

    def succeeded(self, node: str) -> None:
        """``node`` answered: back in rotation at once (a probe after every node failed)."""
        if node in self._down_until:
            del self._down_until[node]

    def healthy(self, now: float) -> list[str]:
        """The nodes in rotation now."""
        return [url for url in self.urls if self._down_until.get(url, 0.0) <= now]

    def move(self, wire: HTTPRequest, node: str, now: float) -> str | None:
        """After a connection to ``node`` was refused (nothing sent): take it out of rotation and point ``wire``
        at another healthy node, returning it; None when no other node is healthy (the attempt fails, and
        the executor's retry, after its backoff, tries the node that comes back first)."""
        self.failed(node, now)
        others = [url for url in self.healthy(now) if url != node]
        if not others:
            return None
        target = self.pick(now, avoid=node)
        wire.url = target + wire.url[len(node) :]
        return target

    def __repr__(self) -> str:
        return f"NodePool({len(self.urls)} nodes, cooldown={self.cooldown:g}s)"
