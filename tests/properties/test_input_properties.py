"""Property-based tests on inputs: what cannot be valid is refused before any I/O with InvalidRequestError,
and what is valid survives its round trips (message references, cursors, content through each provider's
wire mapping)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imbridge import Conversation, IMClient, Text
from imbridge._cursor import decode_cursor, encode_cursor
from imbridge.errors import InvalidRequestError
from imbridge.models import MessageRef
from imbridge.models._validation import MAX_ID_BYTES
from imbridge.models.conversation import ConversationKind
from imbridge.providers.tencent import mapping as tencent_mapping
from imbridge.providers.tencent import wire as tencent_wire
from imbridge.providers.wukong import mapping as wukong_mapping
from imbridge.retry import RetryPolicy
from imbridge.testing import FakeClock

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ----------------------------------------------------------------------------------

valid_ids = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S"], exclude_characters="@#&/\\"),
    min_size=1,
    max_size=20,
).filter(lambda s: s not in (".", ".."))
invalid_ids = st.one_of(
    st.just(""),
    valid_ids.map(lambda s: f" {s}"),  # surrounding space
    st.tuples(valid_ids, valid_ids).map(lambda p: f"{p[0]} {p[1]}"),  # inner space
    st.tuples(valid_ids, st.sampled_from(["\n", "\t", "\x00", "\x1b", "\u2028"])).map("".join),  # control chars
    st.text(alphabet="x", min_size=MAX_ID_BYTES + 1, max_size=MAX_ID_BYTES + 40),  # too long
    st.sampled_from([".", ".."]),  # dot segments: URL normalisation removes them from a path
    st.tuples(valid_ids, st.sampled_from(["/", "\\"]), valid_ids).map("".join),  # path separators
    st.integers(),  # not a string
    st.none(),
)


class Recorder:
    """A MockTransport handler that counts every request that reached it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(500)


@pytest.fixture(params=["tencent", "wukong"], scope="module")
def recorded(request: pytest.FixtureRequest) -> Iterator[tuple[IMClient, Recorder]]:
    recorder = Recorder()
    settings_: dict[str, Any] = (
        {"sdk_app_id": 1400000001, "secret_key": secrets.token_hex(16), "base_url": "http://tencent.test"}
        if request.param == "tencent"
        else {"base_url": "http://wukong.test", "manager_token": secrets.token_hex(8), "store": ":memory:"}
    )
    with IMClient(
        request.param,
        http_client=httpx.Client(transport=httpx.MockTransport(recorder)),
        retry=RetryPolicy.none(),
        clock=FakeClock(),
        **settings_,
    ) as im:
        yield im, recorder


def _refused(call: Callable[[], object], recorder: Recorder) -> None:
    before = len(recorder.requests)
    with pytest.raises(InvalidRequestError):
        call()
    assert len(recorder.requests) == before, "an invalid input reached the network"


# -- invalid input never reaches the network --------------------------------------------------------


@PROPERTY_SETTINGS
@given(bad=invalid_ids)
def test_invalid_ids_are_refused_before_io(recorded: tuple[IMClient, Recorder], bad: Any) -> None:
    im, recorder = recorded
    _refused(lambda: im.messages.send(bad, Conversation.user("bob"), "hi"), recorder)
    _refused(lambda: im.messages.send("alice", Conversation.user(bad), "hi"), recorder)
    if isinstance(bad, str):  # a Conversation built without its factory carries the id unchecked: still refused
        unchecked = Conversation(kind=ConversationKind.USER, id=bad)
        _refused(lambda: im.messages.send("alice", unchecked, "hi"), recorder)
        _refused(lambda: im.messages.history(unchecked, viewer="alice"), recorder)
    _refused(lambda: im.users.register(["alice", bad]), recorder)
    _refused(lambda: im.groups.get(bad), recorder)
    _refused(lambda: im.groups.add_members("g1", [bad]), recorder)
    _refused(lambda: im.messages.history(Conversation.user("bob"), viewer=bad), recorder)
    _refused(lambda: im.messages.send_batch("alice", ["bob", bad], "hi"), recorder)


@PROPERTY_SETTINGS
@given(limit=st.one_of(st.integers(max_value=0), st.integers(min_value=201), st.floats(), st.booleans(), st.text()))
def test_invalid_history_limits_are_refused_before_io(recorded: tuple[IMClient, Recorder], limit: Any) -> None:
    im, recorder = recorded
    _refused(lambda: im.messages.history(Conversation.user("bob"), viewer="alice", limit=limit), recorder)


@PROPERTY_SETTINGS
@given(cursor=st.one_of(st.text(min_size=1), st.binary().map(lambda b: b.hex() or "x")))
def test_foreign_or_corrupt_cursors_are_refused_before_io(recorded: tuple[IMClient, Recorder], cursor: str) -> None:
    im, recorder = recorded
    _refused(lambda: im.messages.history(Conversation.user("bob"), viewer="alice", cursor=cursor), recorder)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@PROPERTY_SETTINGS
@given(position=st.dictionaries(st.sampled_from(["d", "t", "k", "seq", "s", "n", "id"]), json_values, max_size=4))
def test_cursors_of_the_right_provider_with_wrong_contents_are_refused_before_io(
    recorded: tuple[IMClient, Recorder], position: dict[str, Any]
) -> None:
    """A cursor that decodes, and names this provider, but holds positions of the wrong type or range."""
    im, recorder = recorded
    cursor = encode_cursor(im.provider_name, position)
    before = len(recorder.requests)
    try:
        im.messages.history(Conversation.user("bob"), viewer="alice", cursor=cursor)
    except InvalidRequestError:
        assert len(recorder.requests) == before
    except Exception as error:  # the recorder answers 500: reaching it is fine for a well-formed position
        assert len(recorder.requests) > before, f"{type(error).__name__} before any I/O: {error}"


@PROPERTY_SETTINGS
@given(
    text=st.one_of(
        st.just(""),
        st.just([]),
        st.integers(),
        st.binary(),
        st.dictionaries(st.text(), st.text(), min_size=1),
        st.lists(st.integers(), min_size=1, max_size=2),
        st.lists(st.just(""), min_size=1, max_size=2),
    )
)
def test_invalid_content_is_refused_before_io(recorded: tuple[IMClient, Recorder], text: Any) -> None:
    im, recorder = recorded
    _refused(lambda: im.messages.send("alice", Conversation.user("bob"), text), recorder)


@PROPERTY_SETTINGS
@given(text=st.text(min_size=1))
def test_message_references_that_are_not_ours_are_refused_before_io(
    recorded: tuple[IMClient, Recorder], text: str
) -> None:
    im, recorder = recorded
    _refused(lambda: im.messages.revoke(text), recorder)


# -- valid input round-trips -----------------------------------------------------------------------

refs = st.builds(
    MessageRef,
    provider=st.sampled_from(["tencent", "wukong", "local"]),
    conversation=st.one_of(valid_ids.map(Conversation.user), valid_ids.map(Conversation.group)),
    sender=valid_ids,
    key=st.text(min_size=1, max_size=40),
    seq=st.none() | st.integers(min_value=0, max_value=2**63),
    extra=st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3),
)


@PROPERTY_SETTINGS
@given(ref=refs)
def test_message_refs_round_trip_through_their_string(ref: MessageRef) -> None:
    text = str(ref)
    assert MessageRef.parse(text) == ref
    assert text.isascii() and " " not in text  # storable in any app database column


@PROPERTY_SETTINGS
@given(ref=refs, cut=st.integers(min_value=1, max_value=30))
def test_truncated_message_refs_are_invalid_requests(ref: MessageRef, cut: int) -> None:
    # Either a (lucky) reference or InvalidRequestError: nothing else may escape.
    with contextlib.suppress(InvalidRequestError):
        MessageRef.parse(str(ref)[:-cut])


@PROPERTY_SETTINGS
@given(provider=st.sampled_from(["tencent", "wukong", "local"]), position=st.dictionaries(st.text(), json_values))
def test_cursors_round_trip(provider: str, position: dict[str, Any]) -> None:
    position.pop("p", None)
    assert decode_cursor(provider, encode_cursor(provider, position)) == position


texts = st.text(min_size=1, max_size=300).filter(lambda s: not s.isspace())  # whitespace-only is refused


@PROPERTY_SETTINGS
@given(text=texts)
def test_text_round_trips_through_the_tencent_wire(text: str) -> None:
    wire_element = tencent_mapping.element_to_wire(Text(text))
    assert tencent_mapping.element_from_wire(tencent_wire.MsgElement.model_validate(wire_element)) == Text(text)


@PROPERTY_SETTINGS
@given(text=texts, metadata=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=10), max_size=2))
def test_text_round_trips_through_the_wukong_payload(text: str, metadata: dict[str, str]) -> None:
    payload = wukong_mapping.encode_payload([Text(text)], metadata)
    encoded = wukong_mapping.to_base64(payload)
    decoded = wukong_mapping.decode_payload(encoded)
    assert wukong_mapping.payload_to_elements(decoded, encoded) == [Text(text)]
    assert wukong_mapping.payload_metadata(decoded) == metadata


@PROPERTY_SETTINGS
@given(text=texts)
def test_text_round_trips_through_the_local_provider(text: str) -> None:
    with IMClient("local", database=":memory:") as im:
        im.users.register(["alice", "bob"])
        im.messages.send("alice", Conversation.user("bob"), text)
        [message] = im.messages.history(Conversation.user("bob"), viewer="alice").items
    assert message.elements == [Text(text)]
