"""users.*: register, profiles, login credentials, on the local provider (sync and async)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest

from imbridge import AuthenticationError, Gender, LoginCredentials, NotFoundError, Profile
from imbridge.testing import FakeClock


def test_register_new_and_existing(im: Any) -> None:
    first = im.users.register(["alice", "bob"])
    assert first.ok
    assert [(item.target, item.ok, item.detail) for item in first.items] == [("alice", True, ""), ("bob", True, "")]

    again = im.users.register(["bob", "carol"])
    assert again.ok
    assert again.succeeded == ["bob", "carol"]
    details = {item.target: item.detail for item in again.items}
    assert details == {"bob": "already registered", "carol": ""}


def test_profiles_standard_and_custom_fields(people: Any) -> None:
    empty = people.users.get_profiles(["alice"])
    assert empty == [Profile(user_id="alice", provider="local", raw=empty[0].raw)]
    assert empty[0].nickname is None and empty[0].custom == {}

    people.users.set_profile(
        "alice", nickname="Alice", avatar_url="https://example.com/a.png", gender=Gender.FEMALE,
        signature="hi there", custom={"level": "3", "city": "Zürich"},
    )  # fmt: skip
    people.users.set_profile("bob", gender="male")
    alice, bob = people.users.get_profiles(["alice", "bob"])
    assert (alice.user_id, alice.nickname, alice.avatar_url, alice.gender, alice.signature) == (
        "alice", "Alice", "https://example.com/a.png", Gender.FEMALE, "hi there",
    )  # fmt: skip
    assert alice.custom == {"level": "3", "city": "Zürich"}
    assert alice.provider == "local"
    assert (bob.user_id, bob.gender, bob.nickname) == ("bob", Gender.MALE, None)


def test_profiles_in_the_order_asked(people: Any) -> None:
    people.users.set_profile("carol", nickname="C")
    people.users.set_profile("alice", nickname="A")
    assert [p.nickname for p in people.users.get_profiles(["carol", "alice", "bob"])] == ["C", "A", None]


def test_set_profile_merges(people: Any) -> None:
    people.users.set_profile("alice", nickname="Alice", signature="first", custom={"a": "1", "b": "2"})
    people.users.set_profile("alice", signature="second", custom={"b": "20", "c": "30"})
    (alice,) = people.users.get_profiles(["alice"])
    assert alice.nickname == "Alice"  # untouched field kept
    assert alice.signature == "second"
    assert alice.custom == {"a": "1", "b": "20", "c": "30"}


def test_unknown_users(people: Any) -> None:
    with pytest.raises(NotFoundError) as info:
        people.users.get_profiles(["alice", "zed", "yan"])
    assert "yan" in str(info.value) and "zed" in str(info.value)
    assert info.value.provider == "local"
    with pytest.raises(NotFoundError):
        people.users.set_profile("zed", nickname="Z")
    with pytest.raises(NotFoundError):
        people.users.login_credentials("zed")


def test_login_credentials_are_a_jwt_the_provider_accepts(people: Any, clock: FakeClock) -> None:
    creds = people.users.login_credentials("alice", ttl=timedelta(hours=2))
    assert isinstance(creds, LoginCredentials)
    assert creds.user_id == "alice" and creds.provider == "local"
    assert creds.expires_at == clock.now() + timedelta(hours=2)
    token = creds.token.get_secret_value()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 7200

    provider = people._provider
    assert provider.authenticate(token) == "alice"
    # Still valid one second before expiry, refused at and after it.
    clock.advance(timedelta(hours=2) - timedelta(seconds=1))
    assert provider.authenticate(token) == "alice"
    clock.advance(1)
    with pytest.raises(AuthenticationError):
        provider.authenticate(token)


def test_login_ttl_in_seconds(people: Any, clock: FakeClock) -> None:
    creds = people.users.login_credentials("bob", ttl=300)
    assert creds.expires_at == clock.now() + timedelta(seconds=300)


def test_forged_and_tampered_tokens_are_refused(people: Any, clock: FakeClock) -> None:
    provider = people._provider
    now = int(clock.now().timestamp())
    claims = {"sub": "alice", "iss": "imbridge-local", "iat": now, "exp": now + 3600}
    forged = jwt.encode(claims, "another-key-" + "x" * 40, algorithm="HS256")
    with pytest.raises(AuthenticationError) as info:
        provider.authenticate(forged)
    assert forged not in str(info.value) and forged not in repr(info.value)

    genuine = people.users.login_credentials("alice").token.get_secret_value()
    header, _, signature = genuine.split(".")
    other_claims = jwt.encode({**claims, "sub": "bob"}, "k" * 32, algorithm="HS256").split(".")[1]
    with pytest.raises(AuthenticationError):
        provider.authenticate(f"{header}.{other_claims}.{signature}")
    with pytest.raises(AuthenticationError):
        provider.authenticate("not a token")


def test_token_secret_setting_signs_tokens(open_client: Any) -> None:
    key = "test-only-key-" + "0" * 32
    im = open_client(token_secret=key)
    im.users.register(["alice"])
    token = im.users.login_credentials("alice").token.get_secret_value()
    assert jwt.decode(token, key, algorithms=["HS256"], options={"verify_exp": False})["sub"] == "alice"


def test_tokens_signed_right_but_with_bad_times_are_refused(open_client: Any, clock: FakeClock) -> None:
    key = "test-only-key-" + "1" * 32
    im = open_client(token_secret=key)
    provider = im._provider
    provider.store.add_users(["alice"], clock.now().timestamp())  # tokens of accounts that do not exist are refused
    now = int(clock.now().timestamp())
    base = {"sub": "alice", "iss": "imbridge-local"}
    for claims in (
        {**base, "iat": now + 600, "exp": now + 3600},  # issued in the future
        {**base, "iat": now - 7200, "exp": now - 3600},  # long expired
        {**base, "iat": now, "exp": "tomorrow"},  # malformed
        {**base, "exp": now + 3600},  # no iat
        {"sub": "alice", "iss": "someone-else", "iat": now, "exp": now + 3600},  # foreign issuer
    ):
        with pytest.raises(AuthenticationError):
            provider.authenticate(jwt.encode(claims, key, algorithm="HS256"))
    assert provider.authenticate(jwt.encode({**base, "iat": now, "exp": now + 60}, key, algorithm="HS256")) == "alice"
