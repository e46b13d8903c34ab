"""Accounts, profiles and login credentials."""

from __future__ import annotations

from datetime import timedelta

import pytest

from imbridge import InvalidRequestError, NotFoundError, Operation
from imbridge.testing.plugin import Contract


def test_register_new_users(contract: Contract) -> None:
    ids = [contract.uid("a"), contract.uid("b")]
    result = contract.im.users.register(ids)
    assert result.ok
    assert [item.target for item in result.items] == ids


def test_register_is_idempotent(contract: Contract) -> None:
    ids = contract.users("a")
    again = contract.im.users.register(ids)
    assert again.ok and again.succeeded == ids


def test_profile_standard_fields_round_trip(contract: Contract) -> None:
    (alice,) = contract.users("alice")
    if not contract.supports(Operation.USERS_SET_PROFILE):
        contract.expect_unsupported(lambda: contract.im.users.set_profile(alice, nickname="Alice"))
        return
    contract.im.users.set_profile(alice, nickname="Alice", avatar_url="https://example.com/alice.png")
    (profile,) = contract.im.users.get_profiles([alice])
    assert profile.user_id == alice
    assert profile.nickname == "Alice"
    assert profile.avatar_url == "https://example.com/alice.png"
    assert profile.provider == contract.provider


def test_profile_updates_merge(contract: Contract) -> None:
    (bob,) = contract.users("bob")
    if not contract.supports(Operation.USERS_SET_PROFILE):
        contract.expect_unsupported(lambda: contract.im.users.set_profile(bob, nickname="Bob"))
        return
    contract.im.users.set_profile(bob, nickname="Bob")
    contract.im.users.set_profile(bob, signature="hello there")
    (profile,) = contract.im.users.get_profiles([bob])
    assert (profile.nickname, profile.signature) == ("Bob", "hello there")


def test_profile_custom_fields(contract: Contract) -> None:
    (carol,) = contract.users("carol")
    if not contract.supports(Operation.USERS_SET_PROFILE):
        contract.expect_unsupported(lambda: contract.im.users.set_profile(carol, custom={"Level": "3"}))
        return
    contract.im.users.set_profile(carol, custom={"Level": "3"})
    (profile,) = contract.im.users.get_profiles([carol])
    assert profile.custom.get("Level") == "3"


def test_profiles_of_unknown_user_not_found(contract: Contract) -> None:
    if not contract.supports(Operation.USERS_GET_PROFILES):
        contract.expect_unsupported(lambda: contract.im.users.get_profiles([contract.uid("ghost")]))
        return
    with pytest.raises(NotFoundError):
        contract.im.users.get_profiles([contract.uid("ghost")])


def test_login_credentials(contract: Contract) -> None:
    (dave,) = contract.users("dave")
    before = contract.now()
    credentials = contract.im.users.login_credentials(dave, ttl=timedelta(hours=2))
    assert credentials.user_id == dave
    token = credentials.token.get_secret_value()
    assert token and token not in repr(credentials)
    assert before + timedelta(hours=1, minutes=59) <= credentials.expires_at <= before + timedelta(hours=2, minutes=1)
    # Usable by that provider: the provider's own check accepts it for this user.
    assert contract.im.provider.authenticate(token) == dave


def test_invalid_input_refused_before_any_request(contract: Contract) -> None:
    before = len(contract.requests_sent)
    for call in (
        lambda: contract.im.users.register([]),
        lambda: contract.im.users.register("alice"),  # a string, not a list
        lambda: contract.im.users.register(["has space"]),
        lambda: contract.im.users.get_profiles([""]),
        lambda: contract.im.users.login_credentials(contract.uid("x"), ttl=0),
    ):
        with pytest.raises(InvalidRequestError):
            call()
    assert len(contract.requests_sent) == before
