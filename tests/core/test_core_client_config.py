"""Provider registry, settings (explicit, environment, .env), secret hygiene and capability gating."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from imbridge import (
    AsyncIMClient,
    AuthenticationError,
    CapabilityMap,
    ConfigurationError,
    Conversation,
    IMClient,
    NotFoundError,
    Operation,
    Support,
    UnsupportedOperationError,
)
from imbridge.capabilities import Capability
from imbridge.config import LocalSettings
from imbridge.providers import canonical_name, load_provider_class
from imbridge.providers.local.provider import LocalProvider
from imbridge.testing import FakeClock


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No IMBRIDGE_* variable from the outside, and a cwd with no .env file."""
    for name in list(os.environ):
        if name.startswith("IMBRIDGE_"):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def fake_secret() -> str:
    return "test-" + secrets.token_hex(16)


# -- registry ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("typo", "meant"), [("tencnet", "tencent"), ("wukon", "wukong"), ("locl", "local")])
def test_unknown_provider_suggests_the_closest(typo: str, meant: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        IMClient(typo)
    assert f"Did you mean {meant!r}" in str(info.value)
    with pytest.raises(ConfigurationError) as async_info:
        AsyncIMClient(typo)
    assert f"Did you mean {meant!r}" in str(async_info.value)


def test_unrelated_name_lists_known_providers() -> None:
    with pytest.raises(ConfigurationError) as info:
        IMClient("zzzzzzzz")
    text = str(info.value)
    assert "Did you mean" not in text
    assert "local" in text and "tencent" in text and "wukong" in text


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("wukongim", "wukong"), ("WuKongIM", "wukong"), ("wukong", "wukong"), ("tencent-im", "tencent"),
     ("tim", "tencent"), ("sqlite", "local"), (" Local ", "local")],
)  # fmt: skip
def test_aliases(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


def test_alias_builds_the_provider(tmp_path: Path) -> None:
    with IMClient("sqlite", database=":memory:") as im:
        assert im.provider_name == "local"
    assert load_provider_class("local") is LocalProvider


# -- settings ------------------------------------------------------------------------------------


def test_from_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "from-env.db"
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "local")
    monkeypatch.setenv("IMBRIDGE_LOCAL_DATABASE", str(database))
    with IMClient.from_env() as im:
        assert im.provider_name == "local"
        assert im.describe()["database"] == str(database)
        im.users.register(["alice"])
    assert database.exists()
    with IMClient("local", database=str(database)) as im:
        assert im.users.get_profiles(["alice"])[0].user_id == "alice"


def test_from_env_reads_dotenv(clean_env: Path, tmp_path: Path) -> None:
    database = tmp_path / "dotenv.db"
    (clean_env / ".env").write_text(f"IMBRIDGE_PROVIDER=local\nIMBRIDGE_LOCAL_DATABASE={database}\n")
    with IMClient.from_env() as im:
        assert im.provider_name == "local"
        im.users.register(["bob"])
    assert database.exists()


async def test_async_from_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "sqlite")
    monkeypatch.setenv("IMBRIDGE_LOCAL_DATABASE", str(tmp_path / "async-env.db"))
    clock = FakeClock()
    async with AsyncIMClient.from_env(clock=clock) as im:
        assert im.provider_name == "local"
        await im.users.register(["alice", "bob"])
        sent = await im.messages.send(sender="alice", to=Conversation.user("bob"), content="hi")
        assert sent.time == clock.now()


def test_from_env_unknown_provider(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "tencnet")
    with pytest.raises(ConfigurationError, match="Did you mean 'tencent'"):
        IMClient.from_env()


def test_invalid_settings_do_not_echo_secrets() -> None:
    secret_number = 987654321123
    with pytest.raises(ConfigurationError) as info:
        IMClient("local", database=":memory:", token_secret=secret_number, bogus="x")
    text = f"{info.value} {info.value!r} {info.value.args}"
    assert str(secret_number) not in text
    assert "token_secret" in text and "bogus" in text  # it names what is wrong
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_dotenv_shared_with_other_settings(clean_env: Path, tmp_path: Path) -> None:
    """A .env also holds the selection, other providers' settings and the app's own variables."""
    database = tmp_path / "shared-dotenv.db"
    (clean_env / ".env").write_text(
        "IMBRIDGE_PROVIDER=local\n"
        f"IMBRIDGE_LOCAL_DATABASE={database}\n"
        "IMBRIDGE_TENCENT_SDK_APP_ID=1400000000\n"
        "IMBRIDGE_WUKONG_BASE_URL=http://127.0.0.1:5001\n"
        "DATABASE_URL=postgres://app@localhost/app\n"
    )
    with IMClient.from_env() as im:
        assert im.describe()["database"] == str(database)
        im.users.register(["carol"])
    assert database.exists()


def test_environment_wins_over_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (clean_env / ".env").write_text(f"IMBRIDGE_LOCAL_DATABASE={tmp_path / 'dotenv.db'}\n")
    monkeypatch.setenv("IMBRIDGE_LOCAL_DATABASE", ":memory:")
    with IMClient.from_env() as im:
        assert im.describe()["database"] == ":memory:"


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        IMClient("local", database=":memory:", timeout=0)


def test_settings_either_on_provider_or_client() -> None:
    provider = LocalProvider(LocalSettings(database=":memory:"))
    with pytest.raises(ConfigurationError):
        IMClient(provider, database=":memory:")
    provider.close()


# -- secrets never leave ---------------------------------------------------------------------------


def test_no_secret_in_reprs_or_describe() -> None:
    key = fake_secret()
    with IMClient("local", database=":memory:", token_secret=key) as im:
        im.users.register(["alice"])
        creds = im.users.login_credentials("alice")
        token = creds.token.get_secret_value()
        settings = im._provider.settings
        try:
            im._provider.authenticate(token + "x")
        except AuthenticationError as error:
            refused = error
        else:  # pragma: no cover - a tampered token must be refused
            pytest.fail("tampered token accepted")
        shown = [
            repr(im), str(im), repr(settings), str(settings), repr(creds), str(creds), creds.model_dump_json(),
            repr(im._provider), repr(refused), str(refused), repr(im.describe()), str(im.describe()),
            repr(im.capabilities),
        ]  # fmt: skip
        for text in shown:
            assert key not in text
            assert token not in text
        described = im.describe()
        assert described["token_secret"] == "**********"
        assert described["provider"] == "local" and described["database"] == ":memory:"


async def test_no_secret_in_async_client_repr() -> None:
    key = fake_secret()
    async with AsyncIMClient("local", database=":memory:", token_secret=key) as im:
        assert key not in repr(im) and key not in str(im.describe())
        assert im.describe()["token_secret"] == "**********"


def test_describe_without_secret_shows_it_unset() -> None:
    with IMClient("local", database=":memory:") as im:
        assert im.describe()["token_secret"] is None


# -- capabilities --------------------------------------------------------------------------------


def test_local_capabilities_are_all_native() -> None:
    with IMClient("local", database=":memory:") as im:
        capabilities = im.capabilities
    assert isinstance(capabilities, CapabilityMap)
    assert set(capabilities) == set(Operation) and len(capabilities) == len(Operation)
    for operation in Operation:
        capability = capabilities[operation]
        assert capability.support is Support.NATIVE and capability.available
        assert capabilities[operation.value] == capability  # string keys work too


def test_capability_map_replace_and_completeness() -> None:
    native = CapabilityMap("x", dict.fromkeys(Operation, Support.NATIVE))
    narrowed = native.replace(Operation.MESSAGES_REVOKE, Support.UNSUPPORTED, "no revoke here")
    assert narrowed[Operation.MESSAGES_REVOKE] == Capability(
        operation=Operation.MESSAGES_REVOKE, support=Support.UNSUPPORTED, notes="no revoke here"
    )
    assert not narrowed[Operation.MESSAGES_REVOKE].available
    assert native[Operation.MESSAGES_REVOKE].support is Support.NATIVE  # the original is unchanged
    assert all(narrowed[op] == native[op] for op in Operation if op is not Operation.MESSAGES_REVOKE)
    table = narrowed.as_table()
    assert len(table) == len(Operation)
    assert {"operation": "messages.revoke", "support": "unsupported", "notes": "no revoke here"} in table
    incomplete = {op: Support.NATIVE for op in Operation if op is not Operation.GROUPS_MUTED}
    with pytest.raises(ValueError, match=r"groups\.muted"):
        CapabilityMap("x", incomplete)


class NoSendProvider(LocalProvider):
    """A real provider with a narrower capability map: sends and registration are declared UNSUPPORTED."""

    @property
    def capabilities(self) -> CapabilityMap:
        return (
            super()
            .capabilities.replace(Operation.MESSAGES_SEND, Support.UNSUPPORTED, "this test provider does not send")
            .replace(Operation.USERS_REGISTER, Support.UNSUPPORTED)
        )


def test_unsupported_operation_is_refused_before_touching_the_database(tmp_path: Path) -> None:
    database = str(tmp_path / "gated.db")
    with IMClient("local", database=database) as setup:
        setup.users.register(["alice", "bob"])
    with IMClient(NoSendProvider(LocalSettings(database=database))) as im:
        assert im.capabilities[Operation.MESSAGES_SEND].support is Support.UNSUPPORTED
        with pytest.raises(UnsupportedOperationError) as info:
            im.messages.send(sender="alice", to=Conversation.user("bob"), content="hi")
        assert info.value.operation == "messages.send" and info.value.provider == "local"
        assert "does not send" in str(info.value)
        with pytest.raises(UnsupportedOperationError):
            im.users.register(["carol"])
        # Other operations still work on the same client.
        assert im.messages.history(Conversation.user("bob"), viewer="alice").items == []
    with IMClient("local", database=database) as check:
        assert check.messages.history(Conversation.user("bob"), viewer="alice").items == []
        with pytest.raises(NotFoundError):
            check.users.get_profiles(["carol"])


async def test_unsupported_operation_async(tmp_path: Path) -> None:
    database = str(tmp_path / "gated-async.db")
    async with AsyncIMClient(NoSendProvider(LocalSettings(database=database))) as im:
        with pytest.raises(UnsupportedOperationError):
            await im.messages.send(sender="alice", to=Conversation.user("bob"), content="hi")
        with pytest.raises(UnsupportedOperationError):
            await im.users.register(["carol"])
        with pytest.raises(NotFoundError):  # nothing was registered
            await im.users.get_profiles(["carol"])


def test_client_does_not_own_an_injected_provider(tmp_path: Path) -> None:
    provider = LocalProvider(LocalSettings(database=str(tmp_path / "owned.db")))
    with IMClient(provider) as im:
        im.users.register(["alice"])
    # The client did not close what it did not make: the provider still works.
    with IMClient(provider) as again:
        assert again.users.get_profiles(["alice"])[0].user_id == "alice"
    provider.close()


def test_with_options_shares_the_provider() -> None:
    with IMClient("local", database=":memory:") as im:
        other = im.with_options(timeout=3)
        other.users.register(["alice"])
        assert im.users.get_profiles(["alice"])[0].user_id == "alice"
        assert "timeout=3.0" in repr(other)
        other.close()  # does not close the shared provider
        assert im.users.get_profiles(["alice"])[0].user_id == "alice"
