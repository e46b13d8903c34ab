"""Every public operation of IMClient and AsyncIMClient, with arguments drawn from valid and hostile values.

Used by ``test_public_api_properties.py``: whatever a caller passes, a call returns or raises an
``IMBridgeError``; nothing else escapes. The catalogue below lists each operation once; an argument is
either a value or a ``Lazy`` built inside the guarded call (``Text("")``, ``RetryPolicy(max_attempts=0)``:
what a caller writes in the call's own expression fails there too).

Hostile values are the ones a reviewer tried (issue 13, point 7): durations of 1e20, nan, inf or None, a
ttl of 1e20, metadata and options JSON cannot encode (sets, int keys, 2**70, bytes, NaN), cursors and
references nested deeper than a parser's recursion limit, empty, whitespace-only and huge text, ids with
dot segments, slashes and control characters, bad client options and bad base URLs.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import math
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import strategies as st

from imbridge import (
    AsyncIMClient,
    Conversation,
    Custom,
    Delivery,
    Face,
    File,
    Image,
    IMClient,
    Location,
    MessageRef,
    RetryPolicy,
    Sound,
    Text,
    Video,
)
from imbridge._cursor import encode_cursor
from imbridge.emulators.tencent import TencentEmulator
from imbridge.emulators.wukong import WukongEmulator
from imbridge.testing import FakeClock

TARGETS = ("local", "tencent@emulator", "wukong@emulator")
TENCENT_KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"  # the docs' public sample key


class Lazy:
    """A value built inside the guarded call (its construction is part of what is tested)."""

    def __init__(self, label: str, build: Callable[[], Any]) -> None:
        self.label = label
        self.build = build

    def __repr__(self) -> str:
        return self.label


def resolve(value: Any) -> Any:
    if isinstance(value, Lazy):
        return value.build()
    if isinstance(value, list):
        return [resolve(item) for item in value]
    return value


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


DEEP_JSON = "[" * 100_000 + "]" * 100_000
"""Deeper than any recursive parser's limit."""
DEEP_CURSOR = base64.urlsafe_b64encode(DEEP_JSON.encode()).decode().rstrip("=")
DEEP_REF = "imref1." + DEEP_CURSOR
DEEP_OBJECT_REF = "imref1." + base64.urlsafe_b64encode(
    ('{"provider":"local","conversation":' * 20_000 + "1" + "}" * 20_000).encode()
).decode().rstrip("=")

# -- hostile values ----------------------------------------------------------------------------------

HOSTILE_IDS: list[Any] = [
    "", " ", " alice", "alice ", "a b", ".", "..", "../x", "a/b", "/", "a\\b", "%2e%2e", "%2E", "a?b", "a#b",
    "a%2fb", "a\x00b", "a\nb", "\x7f", "\u2028", "\ud800", "x" * 65, "é" * 40, 2**70, -1, 1.5, math.nan, None, True,
    b"alice", ["alice"], {"id": "alice"},
]  # fmt: skip
HOSTILE_DURATIONS: list[Any] = [
    1e20, -1e20, math.nan, math.inf, -math.inf, None, 0, -5, 0.0, -0.5, 1e-9, True, False, "60", b"60", 2**70,
    10**30, timedelta.max, timedelta.min, timedelta(0), timedelta(days=-1), timedelta(days=36_500 * 2),
    timedelta(microseconds=1), Decimal("NaN"), [60],
]  # fmt: skip
UNENCODABLE: list[Any] = [
    {1, 2}, frozenset({"a"}), 2**70, -(2**70), b"bytes", bytearray(b"x"), math.nan, math.inf, -math.inf,
    object(), Decimal("1.5"), complex(1, 2), _nested(5_000), {"k": _nested(5_000)}, Ellipsis, type,
]  # fmt: skip
HOSTILE_MAPPINGS: list[Any] = [
    {1: "int key"}, {(1, 2): "tuple key"}, {None: "none key"}, {b"k": "bytes key"}, {"k": {1, 2}},
    {"k": 2**70}, {"k": b"x"}, {"k": math.nan}, {"k": math.inf}, {"k": {"deep": _nested(5_000)}},
    {"k": object()}, {"k": Decimal("1")}, {"$td": "x"}, {"": ""}, {"k" * 10_000: "v"}, {"k": "v" * 100_000},
    [], [("k", "v")], "text", 5, b"bytes", {"k": [1, {2, 3}]},
]  # fmt: skip
HOSTILE_TEXTS: list[Any] = [
    "", " ", "   ", "\t\n", "\u3000", "\u200b", "x" * 12_289, "é" * 7_000, "x" * 1_100_000, "\ud800", "\x00",
    None, 5, b"hi", ["hi", ""], [], [None], {"text": "hi"}, ("hi",),
]  # fmt: skip
HOSTILE_INTS: list[Any] = [0, -1, 201, 2**70, -(2**70), True, False, 1.5, math.nan, math.inf, "10", None, b"1"]
HOSTILE_CURSORS: list[Any] = [
    "", " ", "x", "!!!!", DEEP_CURSOR, "A" * 200_000, "\x00", 5, b"cursor", ["c"],
    Lazy("cursor(nested 5000)", lambda: encode_cursor("local", {"d": "backward", "s": _nested(5_000)})),
]  # fmt: skip
HOSTILE_REFS: list[Any] = [
    "", "imref1.", "imref1.!!!!", DEEP_REF, DEEP_OBJECT_REF, "imref1." + "A" * 200_000, 5, None, b"imref1.",
    "imref1." + base64.urlsafe_b64encode(b'{"provider":"local","conversation":{"kind":"user","id":".."},'
                                         b'"sender":"a","key":"1"}').decode().rstrip("="),
    "imref1." + base64.urlsafe_b64encode(b'{"provider":"local","conversation":{"kind":"group","id":"g"},'
                                         b'"sender":"a","key":"1","seq":1e400}').decode().rstrip("="),
]  # fmt: skip
HOSTILE_BASE_URLS: list[Any] = [
    "ftp://x", "not a url", "", " ", "http://", "http:///path", "://x", "http://[::1", "http://127.0.0.1:99999",
    "http://127.0.0.1:1", "file:///etc/passwd", "javascript:alert(1)", "http://user:pass@127.0.0.1:1",
    "http://127.0.0.1:1/\x00", "HTTP://127.0.0.1:1", "http://127.0.0.1:1?x=1", "http://127.0.0.1:1#f", 5, None,
    ["http://127.0.0.1:1"],
]  # fmt: skip
HOSTILE_RETRY_FIELDS: list[dict[str, Any]] = [
    {"max_attempts": 0}, {"max_attempts": -1}, {"max_attempts": 10**6}, {"max_attempts": 1.5},
    {"max_attempts": "3"}, {"max_attempts": None}, {"initial_backoff": -1}, {"initial_backoff": math.nan},
    {"initial_backoff": math.inf}, {"max_backoff": 1e308}, {"max_backoff": math.nan}, {"max_retry_after": -1},
    {"max_retry_after": math.inf}, {"jitter": "yes"}, {"bogus": 1}, {"max_total_wait": -1},
    {"max_total_wait": math.nan},
]  # fmt: skip
HOSTILE_TIMEOUTS: list[Any] = [0, -1, math.nan, math.inf, -math.inf, "10", b"1", 1e-300, 1e308, True, [1], 2**2000]


def hostile_or(valid: st.SearchStrategy[Any], hostile: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly valid values (so calls reach the provider), often a hostile one."""
    return st.one_of(valid, valid, st.sampled_from(hostile))


json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def mappings() -> st.SearchStrategy[Any]:
    valid = st.none() | st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=3)
    return hostile_or(valid, HOSTILE_MAPPINGS)


def durations() -> st.SearchStrategy[Any]:
    valid = st.integers(1, 86_400) | st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=30))
    return hostile_or(valid, HOSTILE_DURATIONS)


ELEMENT_THUNKS: list[Lazy] = [
    Lazy('Text("")', lambda: Text("")),
    Lazy('Text(" ")', lambda: Text(" ")),
    Lazy("Text(None)", lambda: Text(None)),
    Lazy("Text(5)", lambda: Text(5)),  # type: ignore[arg-type]
    Lazy('Text("x"*20000)', lambda: Text("x" * 20_000)),
    Lazy('Image(url="")', lambda: Image(url="")),
    Lazy("Image(width=-1)", lambda: Image(url="https://e.x/a.png", width=-1)),
    Lazy('File(url="u", name="")', lambda: File(url="https://e.x/f", name="")),
    Lazy("Sound(duration=2**70)", lambda: Sound(url="https://e.x/s", duration=2**70)),
    Lazy("Video(duration=-1)", lambda: Video(url="https://e.x/v", duration=-1)),
    Lazy("Location(nan)", lambda: Location(latitude=math.nan, longitude=0)),
    Lazy("Location(1e20)", lambda: Location(latitude=1e20, longitude=0)),
    Lazy("Face(-1)", lambda: Face(index=-1)),
    Lazy("Face(2**70)", lambda: Face(index=2**70)),
    Lazy('Custom(data=b"x")', lambda: Custom(data=b"x")),  # type: ignore[arg-type]
    Lazy("Text(bogus=1)", lambda: Text("hi", bogus=1)),
]
GOOD_ELEMENTS: list[Any] = [
    Text("hello"), Image(url="https://e.x/a.png", width=1, height=1), File(url="https://e.x/f", name="f.txt"),
    Sound(url="https://e.x/s.m4a", duration=3), Video(url="https://e.x/v.mp4", duration=4),
    Location(latitude=1.5, longitude=2.5, description="here"), Face(index=1), Custom(data='{"a":1}'),
]  # fmt: skip


def contents() -> st.SearchStrategy[Any]:
    texts = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
    element = st.sampled_from(GOOD_ELEMENTS) | st.sampled_from(ELEMENT_THUNKS)
    return st.one_of(
        texts, texts, st.sampled_from(HOSTILE_TEXTS), element, st.lists(element | texts, min_size=0, max_size=3)
    )


# -- the world each example runs in ---------------------------------------------------------------------------


@dataclass
class World:
    """A client on one target with three users, a group, a sent message and a history cursor."""

    target: str
    is_async: bool
    im: Any
    users: list[str]
    group: str
    ref: MessageRef | None = None
    cursor: str | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)


def _emulator_settings(name: str) -> dict[str, Any]:
    if name == "tencent":
        return {"sdk_app_id": 1400000000, "secret_key": TENCENT_KEY, "base_url": "http://127.0.0.1:9"}
    return {"base_url": "http://127.0.0.1:9", "manager_token": "t" * 16, "store": ":memory:"}


def make_world(target: str, is_async: bool, loop: asyncio.AbstractEventLoop | None) -> World:
    name = target.partition("@")[0]
    clock = FakeClock(datetime.now(UTC))  # the emulators check UserSig times against the real clock
    closers: list[Callable[[], Any]] = []
    options: dict[str, Any] = {"clock": clock, "retry": RetryPolicy.none(), "timeout": 5}
    if name == "local":
        settings: dict[str, Any] = {"database": ":memory:"}
        http: Any = None
    else:
        settings = _emulator_settings(name)
        emulator: Any = (
            TencentEmulator.for_client(settings)
            if name == "tencent"
            else WukongEmulator(manager_token=settings["manager_token"])
        )
        transport = emulator.transport()
        http = httpx.AsyncClient(transport=transport) if is_async else httpx.Client(transport=transport)
        options["http_client"] = http
    client = (AsyncIMClient if is_async else IMClient)(name, **options, **settings)
    if is_async:
        assert loop is not None
        closers.append(lambda: loop.run_until_complete(client.aclose()))
        if http is not None:
            closers.append(lambda: loop.run_until_complete(http.aclose()))
    else:
        closers.append(client.close)
        if http is not None:
            closers.append(http.close)
    tag = secrets.token_hex(2)
    users = [f"u{tag}a", f"u{tag}b", f"u{tag}c"]
    world = World(target, is_async, client, users, f"g{tag}", closers=closers)

    def run(result: Any) -> Any:
        return loop.run_until_complete(result) if is_async and loop is not None else result

    run(client.users.register(users))
    run(client.groups.create("Team", owner=users[0], members=users[1:], group_id=world.group))
    sent = run(client.messages.send(users[0], Conversation.group(world.group), "hello"))
    world.ref = sent.ref
    run(client.messages.send(users[1], Conversation.group(world.group), "again"))
    page = run(client.messages.history(Conversation.group(world.group), viewer=users[0], limit=1))
    world.cursor = page.next_cursor
    return world


def close_world(world: World) -> None:
    for close in world.closers:
        close()


# -- the catalogue of operations ---------------------------------------------------------------------------


Draw = Callable[[st.DataObject, World], tuple[tuple[Any, ...], dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    name: str
    draw: Draw
    call: Callable[..., Any]


def _ids(world: World) -> st.SearchStrategy[Any]:
    return hostile_or(st.sampled_from(world.users), HOSTILE_IDS)


def _id_lists(world: World) -> st.SearchStrategy[Any]:
    valid = st.lists(st.sampled_from(world.users), min_size=1, max_size=3, unique=True)
    return st.one_of(
        valid, valid, st.lists(_ids(world), max_size=3), st.sampled_from(["alice", b"ab", 5, None, [], {"a"}])
    )


def _group_ids(world: World) -> st.SearchStrategy[Any]:
    return hostile_or(st.just(world.group), HOSTILE_IDS)


def _conversations(world: World) -> st.SearchStrategy[Any]:
    valid = st.sampled_from(
        [Conversation.group(world.group), Conversation.user(world.users[1]), Conversation.user(world.users[0])]
    )
    hostile = st.sampled_from(HOSTILE_IDS).flatmap(
        lambda bad: st.sampled_from(
            [
                Lazy(f"Conversation.user({bad!r})", lambda: Conversation.user(bad)),
                Lazy(f"Conversation.group({bad!r})", lambda: Conversation.group(bad)),
                Lazy(f"Conversation(kind='group', id={bad!r})", lambda: Conversation(kind="group", id=bad)),
            ]
        )
    )
    return st.one_of(valid, valid, hostile, st.sampled_from(["group:g", None, 5, ("group", "g")]))


def _refs(world: World) -> st.SearchStrategy[Any]:
    valid = st.sampled_from([world.ref, str(world.ref)])
    return st.one_of(valid, st.sampled_from(HOSTILE_REFS), st.text(max_size=30))


def _cursors(world: World) -> st.SearchStrategy[Any]:
    """Also cursors of this very provider that decode but hold positions of the wrong type or range."""
    name = world.target.partition("@")[0]
    wrong = st.fixed_dictionaries(
        {"d": st.sampled_from(["backward", "forward", "x"])},
        optional={key: st.sampled_from([[1], {"a": 1}, "7", True, -1, 2**70, None, _nested(50), ["k"], 1.5])
                  for key in ("s", "t", "k", "n")},
    ).map(lambda position: encode_cursor(name, position))  # fmt: skip
    return st.one_of(st.none(), st.just(world.cursor), st.sampled_from(HOSTILE_CURSORS), st.text(max_size=20), wrong)


def _op(name: str, call: Callable[..., Any]) -> Callable[[Draw], Operation]:
    return lambda draw: Operation(name, draw, call)


def _kw(**strategies: Callable[[World], st.SearchStrategy[Any]]) -> Callable[[st.DataObject, World], dict[str, Any]]:
    """Draw each keyword, and leave some out (their default is part of the surface too)."""

    def draw(data: st.DataObject, world: World) -> dict[str, Any]:
        chosen = {}
        for name, strategy in strategies.items():
            if data.draw(st.booleans(), label=f"pass {name}"):
                chosen[name] = data.draw(strategy(world), label=name)
        return chosen

    return draw


Strategy = Callable[[World], st.SearchStrategy[Any]]


def _args(*strategies: Strategy, **keywords: Strategy) -> Draw:
    optional = _kw(**keywords)

    def draw(data: st.DataObject, world: World) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args = tuple(data.draw(strategy(world), label=f"arg{i}") for i, strategy in enumerate(strategies))
        return args, optional(data, world)

    return draw


def _const(strategy: st.SearchStrategy[Any]) -> Callable[[World], st.SearchStrategy[Any]]:
    return lambda _world: strategy


_texts = _const(hostile_or(st.text(max_size=20), HOSTILE_TEXTS))
_bools = _const(st.sampled_from([True, False, None, 1, "yes", b"", math.nan]))


def _client_settings(world: World) -> st.SearchStrategy[dict[str, Any]]:
    name = world.target.partition("@")[0]
    if name == "local":
        return st.fixed_dictionaries(
            {}, optional={"database": st.sampled_from([":memory:", "", "/nonexistent/dir/x.db", "sqlite:///", 5,
                                                       "/", "sqlite:////nonexistent/x.db"]),
                          "token_secret": st.sampled_from(["", "s", 5, None]), "bogus": st.just(1)},
        )  # fmt: skip
    base = _emulator_settings(name)
    extra: dict[str, st.SearchStrategy[Any]] = {"base_url": st.sampled_from(HOSTILE_BASE_URLS)}
    if name == "tencent":
        extra |= {
            "sdk_app_id": st.sampled_from([0, -1, 2**70, "x", None, 1.5]),
            "secret_key": st.sampled_from(["", 5, None]),
            "region": st.sampled_from(["mars", "", 5]),
            "usersig_ttl": st.sampled_from([1e20, 2**70, -1, math.nan]),
            "rate_limits": st.sampled_from([{"sendmsg": 0}, {"sendmsg": math.nan}, {"sendmsg": math.inf},
                                            {"sendmsg": -1}, {1: 2}, "x", {"sendmsg": 1e-300}]),
            "group_type": st.sampled_from(["", "Bogus", 5]),
            "profile_custom_keys": st.sampled_from([["a b"], [5], "x", [""]]),
        }  # fmt: skip
    else:
        extra |= {
            "manager_token": st.sampled_from(["", 5, "x\n"]),
            "store": st.sampled_from(["", "/nonexistent/dir/x.db", 5]),
            "device_flag": st.sampled_from([-1, 256, 2**70, "x"]),
            "policy_cache_seconds": st.sampled_from([math.nan, math.inf, -1, 1e308]),
            "confirm_sends": st.sampled_from(["maybe", 2]),
        }
    return st.fixed_dictionaries({}, optional=extra).map(lambda chosen: {**base, **chosen})


def _build_client(world: World, settings: dict[str, Any], retry: Any, timeout: Any, extra: dict[str, Any]) -> Any:
    """Build a client with these settings and options, ask it for its health, close it (no network beyond
    127.0.0.1: hostile base URLs point nowhere reachable)."""
    name = world.target.partition("@")[0]
    client_class = AsyncIMClient if world.is_async else IMClient
    options = {"clock": FakeClock(datetime.now(UTC)), **extra}
    if retry is not None:
        options["retry"] = resolve(retry)
    if timeout is not None:
        options["timeout"] = timeout
    client = client_class(name, **options, **settings)
    if world.is_async:

        async def use() -> Any:
            try:
                return client.describe(), await client.health()
            finally:
                await client.aclose()

        return use()
    try:
        return client.describe(), client.health()
    finally:
        client.close()


def _retry_policies() -> st.SearchStrategy[Any]:
    hostile = st.sampled_from(HOSTILE_RETRY_FIELDS).map(
        lambda fields: Lazy(f"RetryPolicy(**{fields!r})", lambda: RetryPolicy(**fields))
    )
    return st.one_of(st.none(), st.just(RetryPolicy.none()), hostile, st.sampled_from(["3", 3, {"max_attempts": 2}]))


def _provider_call(world: World) -> st.SearchStrategy[tuple[tuple[Any, ...], dict[str, Any]]]:
    name = world.target.partition("@")[0]
    if name == "tencent":
        args = st.tuples(
            st.sampled_from(["openim", "group_open_http_svc", "../x", "", 5]),
            st.sampled_from(["sendmsg", "get_group_info", "x/../y", "", None]),
            st.one_of(st.none(), st.sampled_from(HOSTILE_MAPPINGS), st.just({"GroupIdList": [world.group]})),
        )
    elif name == "wukong":
        args = st.tuples(
            st.sampled_from(["GET", "POST", "get", "", "TRACE", 5]),
            st.sampled_from(["/cluster/channels", "/../x", "channel/../../x", "", "/x?y=1#z", "\x00", 5]),
            st.one_of(st.none(), st.sampled_from(HOSTILE_MAPPINGS)),
        )
    else:
        args = st.tuples(st.text(max_size=3))
    if name != "wukong":
        return st.tuples(args, st.just({}))
    params = st.one_of(st.just({}), st.sampled_from([{"params": {"a": object()}}, {"params": {1: 2}},
                                                     {"params": "x"}, {"params": {"uid": "\ud800"}}]))  # fmt: skip
    return st.tuples(args, params)


_ASYNC_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "bulk_concurrency": st.sampled_from([0, -1, "8", 1.5, 2**70, None]),
        "max_connections": st.sampled_from([0, -1, "8", 2**70]),
    },
)


def _draw_build(data: st.DataObject, world: World) -> tuple[tuple[Any, ...], dict[str, Any]]:
    settings = data.draw(_client_settings(world), label="settings")
    retry = data.draw(_retry_policies(), label="retry")
    timeout = data.draw(st.none() | st.sampled_from(HOSTILE_TIMEOUTS), label="timeout")
    extra = data.draw(_ASYNC_OPTIONS if world.is_async else st.just({}), label="extra")
    return (settings, retry, timeout, extra), {}


def _devices(world: World) -> st.SearchStrategy[Any]:
    return st.sampled_from([None, "app", "web", "desktop", "toaster", 5, ""])


def _ref_lists(world: World) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(_refs(world), max_size=3), st.sampled_from([None, 5, "imref1.x", b"x"]))


DELIVERIES: list[Any] = [
    None, {"persist": False}, {"online_only": True}, {"unread": "no"}, {"persist": 5}, {"bogus": True}, 5, "x",
    Lazy("Delivery(persist=5)", lambda: Delivery(persist=5)),  # type: ignore[arg-type]
    Lazy("Delivery(online_only=True, persist=True)", lambda: Delivery(online_only=True, persist=True)),
]  # fmt: skip


def _catalogue() -> list[Operation]:
    """Every public operation (the names of DESIGN.md's surface)."""
    ops: list[Operation] = []

    def add(name: str, draw: Draw, call: Callable[..., Any]) -> None:
        ops.append(Operation(name, draw, call))

    # users
    add("users.register", _args(_id_lists), lambda im, ids: im.users.register(ids))
    add("users.get_profiles", _args(_id_lists), lambda im, ids: im.users.get_profiles(ids))
    add(
        "users.set_profile",
        _args(_ids, nickname=_texts, avatar_url=_texts, signature=_texts,
              gender=_const(st.sampled_from(["male", "female", "unknown", "x", 5, None])),
              custom=_const(mappings())),
        lambda im, uid, **kw: im.users.set_profile(uid, **kw),
    )  # fmt: skip
    add(
        "users.login_credentials",
        _args(_ids, ttl=_const(durations())),
        lambda im, uid, **kw: im.users.login_credentials(uid, **kw),
    )
    # messages
    add(
        "messages.send",
        _args(_ids, _conversations, _const(contents()), idempotency_key=_const(hostile_or(st.text(max_size=8),
              HOSTILE_IDS)), metadata=_const(mappings()), options=_const(mappings()), confirm=_bools),
        lambda im, sender, to, content, **kw: im.messages.send(sender, resolve(to), resolve(content), **kw),
    )  # fmt: skip
    add(
        "messages.send_batch",
        _args(_ids, _id_lists, _const(contents()), metadata=_const(mappings()), options=_const(mappings()),
              idempotency_key=_const(hostile_or(st.text(max_size=8), HOSTILE_IDS))),
        lambda im, sender, to, content, **kw: im.messages.send_batch(sender, to, resolve(content), **kw),
    )  # fmt: skip
    history_kw = {
        "limit": _const(hostile_or(st.integers(1, 200), HOSTILE_INTS)),
        "cursor": _cursors,
        "direction": _const(st.sampled_from(["backward", "forward", "sideways", None, 1])),
    }
    add(
        "messages.history",
        _args(_conversations, _ids, **history_kw),
        lambda im, conversation, viewer, **kw: im.messages.history(resolve(conversation), viewer, **kw),
    )
    add(
        "messages.iter_history",
        _args(_conversations, _ids, page_size=_const(hostile_or(st.integers(1, 3), HOSTILE_INTS)),
              direction=history_kw["direction"]),
        lambda im, conversation, viewer, **kw: im.messages.iter_history(resolve(conversation), viewer, **kw),
    )  # fmt: skip
    add("messages.revoke", _args(_refs), lambda im, ref: im.messages.revoke(ref))
    # groups
    add(
        "groups.create",
        _args(_texts, _ids, _id_lists, admins=_id_lists, group_id=_group_ids, introduction=_texts,
              notification=_texts, face_url=_texts),
        lambda im, name, owner, members, **kw: im.groups.create(name, owner, members, **kw),
    )  # fmt: skip
    add("groups.get", _args(_group_ids), lambda im, gid: im.groups.get(gid))
    add(
        "groups.update",
        _args(_group_ids, name=_texts, introduction=_texts, notification=_texts, face_url=_texts),
        lambda im, gid, **kw: im.groups.update(gid, **kw),
    )
    add("groups.dismiss", _args(_group_ids), lambda im, gid: im.groups.dismiss(gid))
    add(
        "groups.add_members",
        _args(_group_ids, _id_lists, role=_const(st.sampled_from(["admin", "member", "owner", "x", None, 5]))),
        lambda im, gid, ids, **kw: im.groups.add_members(gid, ids, **kw),
    )
    add("groups.remove_members", _args(_group_ids, _id_lists), lambda im, gid, ids: im.groups.remove_members(gid, ids))
    add("groups.members", _args(_group_ids), lambda im, gid: im.groups.members(gid))
    add(
        "groups.mute",
        _args(_group_ids, _id_lists, _const(durations())),
        lambda im, gid, ids, duration: im.groups.mute(gid, ids, duration=duration),
    )
    add("groups.unmute", _args(_group_ids, _id_lists), lambda im, gid, ids: im.groups.unmute(gid, ids))
    add("groups.mute_all", _args(_group_ids, _bools), lambda im, gid, enabled: im.groups.mute_all(gid, enabled))
    add("groups.muted", _args(_group_ids), lambda im, gid: im.groups.muted(gid))
    add("users.presence", _args(_id_lists), lambda im, ids: im.users.presence(ids))
    add("users.kick", _args(_ids, device=_devices), lambda im, uid, **kw: im.users.kick(uid, **kw))
    add("users.exists", _args(_id_lists), lambda im, ids: im.users.exists(ids))
    add("users.delete", _args(_id_lists), lambda im, ids: im.users.delete(ids))
    add("messages.get", _args(_refs), lambda im, ref: im.messages.get(ref))
    add("messages.get_many", _args(_ref_lists), lambda im, refs: im.messages.get_many(refs))
    add(
        "messages.find_by_key",
        _args(_ids, _conversations, _const(hostile_or(st.text(max_size=8), HOSTILE_IDS))),
        lambda im, sender, to, key: im.messages.find_by_key(sender, resolve(to), key),
    )
    add(
        "messages.send(delivery)",
        _args(_ids, _conversations, delivery=_const(st.sampled_from(DELIVERIES))),
        lambda im, sender, to, **kw: im.messages.send(sender, resolve(to), "hi", delivery=resolve(kw.get("delivery"))),
    )
    add(
        "groups.set_role",
        _args(_group_ids, _ids, _const(st.sampled_from(["admin", "member", "owner", "x", None, 5]))),
        lambda im, gid, uid, role: im.groups.set_role(gid, uid, role),
    )
    add("groups.transfer_owner", _args(_group_ids, _ids), lambda im, gid, uid: im.groups.transfer_owner(gid, uid))
    add(
        "groups.set_name_card",
        _args(_group_ids, _ids, _texts),
        lambda im, gid, uid, card: im.groups.set_name_card(gid, uid, card),
    )
    add("groups.joined", _args(_ids), lambda im, uid: im.groups.joined(uid))
    add(
        "groups.list",
        _args(limit=_const(hostile_or(st.integers(1, 100), HOSTILE_INTS)), cursor=_cursors),
        lambda im, **kw: im.groups.list(**kw),
    )
    add(
        "groups.notify",
        _args(_group_ids, _texts, to=_const(st.none() | st.sampled_from([[], "bob", [5], None]))),
        lambda im, gid, text, **kw: im.groups.notify(gid, text, **kw),
    )
    add(
        "conversations.list",
        _args(_ids, limit=_const(hostile_or(st.integers(1, 50), HOSTILE_INTS)), cursor=_cursors),
        lambda im, uid, **kw: im.conversations.list(uid, **kw),
    )
    add(
        "conversations.iter",
        _args(_ids, page_size=_const(hostile_or(st.integers(1, 3), HOSTILE_INTS))),
        lambda im, uid, **kw: im.conversations.iter(uid, **kw),
    )
    add(
        "conversations.delete",
        _args(_ids, _conversations),
        lambda im, uid, conversation: im.conversations.delete(uid, resolve(conversation)),
    )
    add(
        "conversations.mark_read",
        _args(_ids, _conversations),
        lambda im, uid, conversation: im.conversations.mark_read(uid, resolve(conversation)),
    )
    add(
        "conversations.set_unread",
        _args(_ids, _conversations, _const(hostile_or(st.integers(0, 100), HOSTILE_INTS))),
        lambda im, uid, conversation, count: im.conversations.set_unread(uid, resolve(conversation), count),
    )
    add(
        "maintenance.run_due",
        _args(lease=_const(durations())),
        lambda im, **kw: im.maintenance.run_due(**kw),
    )
    # the client itself
    add("client.health", _args(), lambda im: im.health())
    add(
        "client.health(timeout)",
        _args(_const(st.sampled_from(HOSTILE_TIMEOUTS) | st.floats(0.1, 5))),
        lambda im, timeout: im.health(timeout=timeout),
    )
    add("client.describe", _args(), lambda im: (im.describe(), repr(im), im.capabilities.as_table()))
    add(
        "client.with_options",
        _args(retry=_const(_retry_policies()), timeout=_const(st.sampled_from(HOSTILE_TIMEOUTS))),
        lambda im, **kw: im.with_options(**{k: resolve(v) for k, v in kw.items()}).health(),
    )
    add(
        "client.provider.call",
        lambda data, world: data.draw(_provider_call(world), label="call"),
        lambda im, *args, **kw: im.provider.call(*args, **kw),
    )
    add(
        "client.build",
        _draw_build,
        lambda im, settings, retry, timeout, extra, *, world: _build_client(world, settings, retry, timeout, extra),
    )
    # models a caller builds
    add(
        "models.RetryPolicy",
        _args(_const(st.sampled_from(HOSTILE_RETRY_FIELDS)), retry_number=_const(st.sampled_from([1, 0, -1, 2**70,
              10**6, math.nan])), retry_after=_const(st.sampled_from([None, timedelta.max, timedelta(days=-1)]))),
        lambda im, fields, **kw: RetryPolicy(**fields).backoff(kw.get("retry_number", 1), kw.get("retry_after")),
    )  # fmt: skip
    add(
        "models.MessageRef.parse",
        _args(_refs),
        lambda im, text: MessageRef.parse(str(text) if isinstance(text, MessageRef) else text),
    )
    add(
        "models.elements",
        _args(_const(st.sampled_from(ELEMENT_THUNKS))),
        lambda im, thunk: resolve(thunk),
    )
    return ops


OPERATIONS = _catalogue()
NEEDS_WORLD = {"client.build"}


def invoke(world: World, operation: Operation, args: tuple[Any, ...], kwargs: dict[str, Any],
           loop: asyncio.AbstractEventLoop | None) -> Any:  # fmt: skip
    """Run one call to completion on the world's client (sync or async), consuming iterators a little."""
    if operation.name in NEEDS_WORLD:
        kwargs = {**kwargs, "world": world}
    result = operation.call(world.im, *args, **kwargs)
    if not world.is_async:
        if isinstance(result, Iterator):
            return [item for _, item in zip(range(5), result, strict=False)]
        return result
    assert loop is not None

    async def finish() -> Any:
        value = result
        if inspect.isasyncgen(value) or hasattr(value, "__anext__"):
            items = []
            async for item in value:
                items.append(item)
                if len(items) >= 5:
                    break
            return items
        if inspect.isawaitable(value):
            return await value
        return value

    return loop.run_until_complete(finish())
