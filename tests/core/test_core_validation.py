"""Input that cannot be valid raises InvalidRequestError before anything is stored (sync and async)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pydantic
import pytest

from imbridge import Conversation, InvalidRequestError, NotFoundError, Text

BOB = Conversation.user("bob")
TEAM = Conversation.group("team")

# Each case is a call that must be refused. After all of them the data must be exactly as seeded.
BAD_CALLS: dict[str, Callable[[Any], Any]] = {
    "register: empty list": lambda im: im.users.register([]),
    "register: empty id": lambda im: im.users.register(["eve", ""]),
    "register: id with a space": lambda im: im.users.register(["eve", "mallory smith"]),
    "register: surrounding space": lambda im: im.users.register([" eve"]),
    "register: control character": lambda im: im.users.register(["eve\n"]),
    "register: a string, not a list": lambda im: im.users.register("eve"),
    "register: not a string": lambda im: im.users.register(["eve", 7]),
    "register: duplicates": lambda im: im.users.register(["eve", "eve"]),
    "register: too long": lambda im: im.users.register(["e" * 65]),
    "get_profiles: a string": lambda im: im.users.get_profiles("alice"),
    "set_profile: nothing to change": lambda im: im.users.set_profile("alice"),
    "set_profile: bad gender": lambda im: im.users.set_profile("alice", gender="robot"),
    "set_profile: bad custom key": lambda im: im.users.set_profile("alice", custom={"two words": "x"}),
    "set_profile: empty user id": lambda im: im.users.set_profile("", nickname="x"),
    "login: zero ttl": lambda im: im.users.login_credentials("alice", ttl=0),
    "login: negative ttl": lambda im: im.users.login_credentials("alice", ttl=timedelta(seconds=-5)),
    "send: empty content list": lambda im: im.messages.send(sender="alice", to=BOB, content=[]),
    "send: empty text": lambda im: im.messages.send(sender="alice", to=BOB, content=""),
    "send: not an element": lambda im: im.messages.send(sender="alice", to=BOB, content=[{"text": "hi"}]),
    "send: to a plain string": lambda im: im.messages.send(sender="alice", to="bob", content="hi"),
    "send: empty sender": lambda im: im.messages.send(sender="", to=BOB, content="hi"),
    "send: sender with a space": lambda im: im.messages.send(sender="al ice", to=BOB, content="hi"),
    "send: bad idempotency key": lambda im: im.messages.send(
        sender="alice", to=BOB, content="hi", idempotency_key="has space"
    ),
    "send_batch: recipients as a string": lambda im: im.messages.send_batch(
        sender="alice", recipients="bob", content="hi"
    ),
    "send_batch: no recipients": lambda im: im.messages.send_batch(sender="alice", recipients=[], content="hi"),
    "send_batch: empty content": lambda im: im.messages.send_batch(sender="alice", recipients=["bob"], content=[]),
    "history: limit 0": lambda im: im.messages.history(BOB, viewer="alice", limit=0),
    "history: limit 1000": lambda im: im.messages.history(BOB, viewer="alice", limit=1000),
    "history: limit True": lambda im: im.messages.history(BOB, viewer="alice", limit=True),
    "history: bad direction": lambda im: im.messages.history(BOB, viewer="alice", direction="sideways"),
    "history: empty cursor": lambda im: im.messages.history(BOB, viewer="alice", cursor=""),
    "history: conversation as string": lambda im: im.messages.history("bob", viewer="alice"),
    "history: empty viewer": lambda im: im.messages.history(BOB, viewer=""),
    "revoke: corrupt ref": lambda im: im.messages.revoke("imref1.%%%"),
    "revoke: not a ref": lambda im: im.messages.revoke("hello"),
    "create: empty name": lambda im: im.groups.create(name="  ", owner="alice", group_id="g2"),
    "create: bad group id": lambda im: im.groups.create(name="G", owner="alice", group_id="g 2"),
    "create: members as a string": lambda im: im.groups.create(name="G", owner="alice", members="bob", group_id="g2"),
    "update: nothing to change": lambda im: im.groups.update("team"),
    "update: empty name": lambda im: im.groups.update("team", name=""),
    "add_members: bad role": lambda im: im.groups.add_members("team", ["dave"], role="king"),
    "add_members: as owner": lambda im: im.groups.add_members("team", ["dave"], role="owner"),
    "add_members: empty list": lambda im: im.groups.add_members("team", []),
    "remove_members: a string": lambda im: im.groups.remove_members("team", "carol"),
    "mute: negative duration": lambda im: im.groups.mute("team", ["carol"], duration=timedelta(seconds=-1)),
    "mute: zero duration": lambda im: im.groups.mute("team", ["carol"], duration=0),
    "mute: bool duration": lambda im: im.groups.mute("team", ["carol"], duration=True),
    "mute: a century and more": lambda im: im.groups.mute("team", ["carol"], duration=timedelta(days=365 * 101)),
    "mute_all: not a bool": lambda im: im.groups.mute_all("team", "yes"),
    "group id: empty": lambda im: im.groups.get(""),
}


@pytest.fixture
def seeded(people: Any) -> Any:
    people.groups.create(name="Team", owner="alice", members=["bob", "carol"], group_id="team")
    people.messages.send(sender="alice", to=BOB, content="seed")
    people.messages.send(sender="alice", to=TEAM, content="seed")
    people.users.set_profile("alice", nickname="A")
    return people


def _snapshot(im: Any) -> Any:
    profiles = [p.model_dump() for p in im.users.get_profiles(["alice", "bob", "carol", "dave"])]
    return (
        profiles,
        im.groups.get("team"),
        im.groups.members("team"),
        im.groups.muted("team"),
        [m.model_dump() for m in im.messages.history(BOB, viewer="alice")],
        [m.model_dump() for m in im.messages.history(TEAM, viewer="alice")],
    )


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_invalid_input_is_refused_and_nothing_changes(seeded: Any, case: str) -> None:
    before = _snapshot(seeded)
    with pytest.raises(InvalidRequestError) as info:
        BAD_CALLS[case](seeded)
    assert info.value.message  # says what is wrong
    assert _snapshot(seeded) == before
    with pytest.raises(NotFoundError):  # a refused register created no one
        seeded.users.get_profiles(["eve"])


def test_conversation_constructors_check_ids() -> None:
    for bad in ("", "a b", " x", "x\t"):
        with pytest.raises(InvalidRequestError):
            Conversation.user(bad)
        with pytest.raises(InvalidRequestError):
            Conversation.group(bad)


def test_elements_validate_their_fields() -> None:
    with pytest.raises(InvalidRequestError):  # an IMBridgeError, not pydantic's ValidationError (issue 13.7)
        Text("")
    with pytest.raises(InvalidRequestError):
        Text("x", bogus=1)


def _validated_text(**fields: Any) -> Text:
    """A Text built by pydantic's validation (keyword form: never the positional fast path)."""
    return Text(**fields)


@pytest.mark.parametrize("text", ["hi", "m1", "héllo wörld", "表情😀", " padded ", "a" * 20_000])
def test_a_text_from_a_string_is_the_text_pydantic_validates(text: str) -> None:
    built, validated = Text(text), _validated_text(text=text)
    assert type(built) is Text
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set == {"text"}
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump(exclude_unset=True) == {"text": text}
    assert repr(built) == repr(validated)
    assert hash(built) == hash(validated)
    assert built.__pydantic_extra__ is None and built.__pydantic_private__ is None
    assert Text.model_validate(built.model_dump()) == built
    with pytest.raises(pydantic.ValidationError):  # still frozen
        built.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("text", ["", "\ud800", "a\udc00b"])
def test_a_text_that_pydantic_refuses_is_still_refused(text: str) -> None:
    with pytest.raises(InvalidRequestError):
        Text(text)


def test_a_text_from_a_str_subclass_goes_through_validation() -> None:
    class Loud(str):
        pass

    built = Text(Loud("hi"))
    assert type(built.text) is str and built == Text("hi")


def test_a_checked_id_is_remembered_only_for_the_checks_it_passed() -> None:
    from imbridge.models import _validation

    assert _validation.check_id("alice", "sender") == "alice"
    assert "alice" in _validation._CHECKED_IDS
    assert _validation.check_id("alice", "sender") == "alice"  # remembered
    with pytest.raises(InvalidRequestError):  # a tighter limit is checked, never answered from memory
        _validation.check_id("alice", "key", max_bytes=3)
    for bad in ("al ice", "", "x" * 65, "a/b", ".."):
        with pytest.raises(InvalidRequestError):
            _validation.check_id(bad, "sender")
        assert bad not in _validation._CHECKED_IDS

    class Odd(str):
        def isprintable(self) -> bool:
            return False

    with pytest.raises(InvalidRequestError):  # a subclass is checked by its own methods, remembered or not
        _validation.check_id(Odd("alice"), "sender")


def test_the_memory_of_checked_ids_stays_bounded() -> None:
    from imbridge.models import _validation

    for number in range(_validation._CHECKED_IDS_LIMIT + 10):
        _validation.check_id(f"user{number}", "sender")
    assert len(_validation._CHECKED_IDS) <= _validation._CHECKED_IDS_LIMIT
