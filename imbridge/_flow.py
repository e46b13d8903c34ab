"""The sans-IO vocabulary between providers and the executor.

A provider operation is a generator (a *flow*): it yields :class:`Request` (or :class:`Sleep`, :class:`Call`…) and
receives the decoded reply, or has the typed error thrown into it, and finally returns its result. The
executor (``_exec.py``) drives the same flow with a sync or an async HTTP client, so multi-step
operations (paging, lookup-before-retry, emulated features) are written once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any, TypeVar

import orjson

T = TypeVar("T")

#: A shared, immutable empty mapping: the default of every request's params and headers (a fresh dict
#: per request is garbage on the hot path).
EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(slots=True)
class Request:
    """One HTTP request as a provider describes it, before auth and base URL are applied.

    ``api`` names the endpoint for pacing and logs. ``cost`` is what the call spends of that API's
    rate (Tencent's batchsendmsg counts recipients). ``replay_safe`` is False when re-sending after an
    unknown outcome could duplicate an effect (WuKongIM sends): the executor then leaves that
    decision to the flow, which can look the effect up first.
    """

    method: str
    path: str
    json: Any = None
    params: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    headers: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    api: str = ""
    cost: int = 1
    replay_safe: bool = True
    #: The base URL of the cluster node this request must go to (a read of one node's own state), or None
    #: for any node the provider's NodePool picks. Ignored by providers with one server.
    node: str | None = None

    def label(self) -> str:
        return self.api or self.path


@dataclass(slots=True)
class Sleep:
    """Ask the driver to wait (a flow polling for a result it has reason to expect)."""

    seconds: float


@dataclass(slots=True)
class Gather:
    """Send several requests: concurrently on the async driver (bounded by the client's
    ``bulk_concurrency``), one after another on the sync one. The flow receives, in order, each
    request's decoded reply or the imbridge error it ended with (returned, not thrown), so a bulk
    operation reports every item. Flows yield windows of a few requests, never the whole input: that
    keeps memory flat and gives back-pressure."""

    requests: list[Request]


@dataclass(slots=True)
class Join:
    """Ask to share one request with concurrent flows (coalescing; issue 19).

    ``group`` names what can be combined (one WuKongIM channel's confirmations), ``item`` is this flow's part,
    and ``combine(items)`` returns the one request for a list of items and a function that splits its decoded
    reply into one answer per item, in order. The async driver keeps at most one such request in flight per
    group: the Joins that arrive meanwhile wait and share the next one, so a burst of concurrent flows costs a
    few requests instead of one each. The flow receives its answer, or has the request's error thrown into it.
    ``combine`` may return no request when what the group's earlier requests showed answers every item: ``split``
    is then called with None.

    The sync driver has no concurrent flows to share with: it answers :data:`NOT_JOINED` at once, and the flow
    makes its own requests as it would without coalescing.
    """

    group: Any
    item: Any
    combine: Callable[[list[Any]], tuple[Request | None, Callable[[Any], list[Any]]]]
    wait: float = 0.0
    """Seconds the async driver may keep this item for the group's later requests while ``split`` answers
    :data:`KEEP_WAITING` for it (a message not stored yet); past them, the flow receives None. The driver reads
    again at once while new items join, else after a pause that doubles from 1 ms up to 50 ms."""


class _NotJoined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_JOINED"


NOT_JOINED: Any = _NotJoined()
"""What the sync driver answers to a :class:`Join`: do it alone."""


class _KeepWaiting:
    __slots__ = ()

    def __repr__(self) -> str:
        return "KEEP_WAITING"


KEEP_WAITING: Any = _KeepWaiting()
"""What a :class:`Join`'s ``split`` answers for an item its request did not settle: ask again for it later."""


@dataclass(slots=True)
class Call:
    """One JSON-RPC 2.0 request over a WebSocket the driver keeps open (WuKongIM's ``send``, which its node answers
    only once the message is stored: the answer is the confirmation).

    Connections are kept per ``(url, identity)``. Each is opened with what ``login()`` returns for it (a JSON-RPC
    request object without its id), whose answer ``check_login`` reads: it raises the typed error of a refused
    login, and is given None when the server closed the connection without answering. Notifications the server
    pushes meanwhile go to ``on_notice``, which returns the frame to answer with (an acknowledgement), or None.

    The flow receives the answer object (with ``result`` or ``error``), or has thrown into it a TransportError:
    ``may_have_landed=False`` when the request was never written (no connection, a failed login; the driver
    retries those as its RetryPolicy allows), True when it was written and the connection was lost or no answer
    came within the client's timeout.
    """

    url: str
    identity: str
    login: Callable[[], Mapping[str, Any]]
    check_login: Callable[[Any], None]
    on_notice: Callable[[Any], Mapping[str, Any] | None]
    method: str
    params: Mapping[str, Any]
    api: str = ""
    #: A request the driver makes (as any other, with its retries) before opening each new connection: what the
    #: login needs (WuKongIM: the token it logs in with). Its failure fails the call as never written.
    setup: Request | None = None


@dataclass(slots=True)
class HTTPRequest:
    """A request ready for the wire: absolute URL, auth applied, body encoded."""

    method: str
    url: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    content: bytes | None


@dataclass(slots=True)
class Response:
    """An HTTP response as the drivers hand it to providers."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return decode_json(self.content)

    def retry_after(self) -> timedelta | None:
        """The ``Retry-After`` header as a duration (seconds or an HTTP date), or None if absent or invalid.

        Whatever the server (or a proxy) sends, this is a timedelta between 0 and MAX_RETRY_AFTER: ``1e15``,
        ``inf`` or ``1e300`` seconds mean "not soon" and read as that maximum (a timedelta cannot hold them),
        ``nan`` is invalid. How long a call actually waits is the RetryPolicy's to decide."""
        value = next((v for k, v in self.headers.items() if k.lower() == "retry-after"), None)
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            if math.isnan(seconds):
                return None
            return timedelta(seconds=min(max(seconds, 0.0), MAX_RETRY_AFTER.total_seconds()))
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return min(max(moment - datetime.now(UTC), timedelta(0)), MAX_RETRY_AFTER)


MAX_RETRY_AFTER = timedelta(days=365)
"""The longest Retry-After read from a response; anything longer (or infinite) reads as this."""

Instruction = Request | Sleep | Gather | Join | Call
Flow = Generator[Instruction, Any, T]
"""A provider operation: yields instructions, receives decoded replies, returns T."""


encode_json: Callable[[Any], bytes] = orjson.dumps
"""Compact UTF-8 JSON, the encoding every provider accepts.

orjson: on a send it does the work of ``json.dumps`` in a twentieth of the time, and JSON is done twice per
send (payload, then body) on the hot path the async-speed benchmark measures. orjson's own function, not a
wrapper: a Python frame less for each of the three JSON steps of a send (issue 19)."""

decode_json: Callable[[bytes | str], Any] = orjson.loads
"""Parse JSON (orjson, for the same reasons); raises ValueError on anything that is not JSON."""


def windows(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (the unit a flow hands to one Gather)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def immediate(compute: Callable[[], T]) -> Flow[T]:
    """A flow that needs no I/O (the local provider): it computes its result when first advanced."""
    return compute()
    yield  # pragma: no cover - unreachable; makes this function a generator
