"""The contract suite's pytest plugin (registered through the ``pytest11`` entry point).

Run the suite against a provider::

    pytest --pyargs imbridge.testing.contract --imbridge-provider wukong --imbridge-mode live

Options:

``--imbridge-provider``  ``local``, ``tencent``, ``wukong`` (repeatable), or ``module:Class`` for a provider of
                         your own; ``name@mode`` gives that target its own mode. Default ``local``.
``--imbridge-mode``      ``live`` (settings from the same environment variables as ``IMClient.from_env()``),
                         ``record`` (live, and every HTTP exchange saved to the cassette directory, secrets
                         replaced by placeholders), ``replay`` (from cassettes, network blocked) or
                         ``emulator`` (against imbridge's in-process emulator of the vendor's API). ``local``
                         always runs live on a fresh SQLite file.
``--imbridge-cassettes`` the cassette directory (default ``cassettes/`` under the pytest rootdir).

``local@postgres`` runs the ``local`` provider on a PostgreSQL database (from the ``imbridge_postgres``
fixture: a throwaway cluster, see :mod:`imbridge.testing.postgres`) instead of a fresh SQLite file per test.

Live and record runs create their own users and groups under a per-run prefix and dismiss their groups
afterwards (accounts cannot be deleted on Tencent's paid editions nor on WuKongIM, so they stay).
A recording keeps its prefix and start times per test module (``<cassettes>/<provider>/<module>/contract-run.json``),
so one module can be recorded again (``-k`` or a module path) without invalidating the others' cassettes.
Live and record runs check the server's health first and stop at once, with one message, if it cannot be used.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import os
import secrets
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from imbridge._clock import Clock, SystemClock
from imbridge.capabilities import Operation, Support
from imbridge.client import AsyncIMClient, IMClient, build_provider
from imbridge.errors import IMBridgeError, UnsupportedOperationError
from imbridge.events import EventReceiver
from imbridge.providers import canonical_name
from imbridge.providers.base import Provider
from imbridge.testing import cassettes, postgres
from imbridge.testing.clock import ShiftedClock
from imbridge.testing.events import TENCENT_TEST_TOKEN, EventChannel, WebhookServer, with_path
from imbridge.testing.postgres import PostgresServer

MODES = ("live", "record", "replay", "emulator")
#: Stores the local provider can be run on as ``local@<store>`` (SQLite is its default).
STORES = ("postgres",)

#: In ``emulator`` mode the provider talks, in process, to imbridge's emulator of its vendor's API.
EMULATORS = {
    "tencent": "imbridge.emulators.tencent:TencentEmulator",
    "wukong": "imbridge.emulators.wukong:WukongEmulator",
}

#: Settings used in replay mode: what the recordings were made with, minus every secret.
REPLAY_SETTINGS: dict[str, dict[str, Any]] = {
    "wukong": {"base_url": "http://127.0.0.1:5001", "manager_token": cassettes.PLACEHOLDER},
    "tencent": {
        "sdk_app_id": 1400000000,
        # The sample key printed in Tencent's own documentation and libraries: public, not a secret.
        "secret_key": "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e",
        "admin": "administrator",
        "base_url": "http://127.0.0.1:9000",
        # Tencent returns only the profile tags asked for: the custom key the suite writes.
        "profile_custom_keys": ["Level"],
    },
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("imbridge", "imbridge contract suite")
    group.addoption("--imbridge-provider", action="append", default=[], help="provider to test (repeatable)")
    group.addoption("--imbridge-mode", choices=MODES, default="live", help="live (default), record, replay, emulator")
    group.addoption("--imbridge-cassettes", default=None, help="cassette directory (default: <rootdir>/cassettes)")
    parser.addini("imbridge_providers", "providers the contract suite runs against by default", type="linelist")
    parser.addini("imbridge_mode", "default --imbridge-mode for providers that speak HTTP", default="")


#: What of imbridge pytest rewrites: the helpers meant to run inside a test session (their asserts explain
#: themselves). Not the library.
REWRITTEN = "imbridge.testing"


def pytest_configure(config: pytest.Config) -> None:
    """Keep pytest's assertion rewriting off imbridge's library modules.

    pytest marks the whole distribution of an entry-point plugin for rewriting: every ``imbridge.*`` module
    imported during the session would be parsed by pytest (``ast.parse``), in whichever thread imports it.
    Emulator servers, fault proxies and clients built in threads import modules lazily (a provider is loaded
    by name), and CPython 3.11 corrupts a shared counter when two threads build AST objects at once
    ("SystemError: AST constructor recursion depth mismatch", python/cpython#106905: seen in this suite on
    Debian's 3.11.2). Library modules hold no test asserts, so they are imported as usual instead: only the
    main thread, collecting test files, ever parses for rewriting.
    """
    hook = config.pluginmanager.rewrite_hook
    marked = getattr(hook, "_must_rewrite", None)  # pytest's own set (no public way to take a mark back)
    if isinstance(marked, set) and "imbridge" in marked:
        marked.discard("imbridge")
        marked.add(REWRITTEN)
        cache = getattr(hook, "_marked_for_rewrite_cache", None)
        if isinstance(cache, dict):
            cache.clear()


def _providers(config: pytest.Config) -> list[str]:
    chosen: list[str] = config.getoption("--imbridge-provider") or list(config.getini("imbridge_providers"))
    return chosen or ["local"]


def _mode(config: pytest.Config) -> str:
    explicit = config.getoption("--imbridge-mode")
    configured = str(config.getini("imbridge_mode") or "")
    if explicit != "live" or not configured:
        return str(explicit)
    if configured not in MODES:
        raise pytest.UsageError(f"imbridge_mode must be one of {MODES}, got {configured!r}")
    return configured


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "contract" in metafunc.fixturenames:
        metafunc.parametrize("contract_target", _providers(metafunc.config), indirect=True, scope="session")


@dataclass
class ContractRun:
    """One provider under test: how to build its clients, the id prefix, and what to clean up."""

    target: str
    name: str
    mode: str
    prefix: str
    cassette_dir: Path | None
    workdir: Path
    provider_class: type[Provider] | None = None
    run_file: Path | None = None
    param: str = ""
    """The target as given (``wukong@replay``); test names are keyed with ``name`` in its place."""
    database: str = ""
    """``local`` on a shared database (``local@postgres``) rather than a fresh SQLite file per test."""

    def test_name(self, node_name: str) -> str:
        return node_name.replace(self.param, self.name) if self.param else node_name

    modules: dict[str, tuple[str, Path | None]] = field(default_factory=dict)
    """The id prefix and run file of each test module seen (see ``for_module``)."""

    def for_module(self, module: str) -> tuple[str, Path | None]:
        """The id prefix and the run file of one test module. A recording writes one run file per module
        (``<cassettes>/<provider>/<module>/contract-run.json``, beside that module's cassettes), so recording one
        module leaves every other module's cassettes valid; a module recorded before there were such files
        replays with the provider's ``contract-run.json``."""
        if module not in self.modules:
            own = self.cassette_dir / module / "contract-run.json" if self.cassette_dir is not None else None
            if own is None:
                found: tuple[str, Path | None] = (self.prefix, None)
            elif self.mode == "record":
                prefix = "c" + secrets.token_hex(3)
                own.parent.mkdir(parents=True, exist_ok=True)
                own.write_text(json.dumps({"prefix": prefix, "started": {}}, indent=1) + "\n")
                found = (prefix, own)
            elif own.exists():
                found = (json.loads(own.read_text())["prefix"], own)
            elif self.run_file is not None and self.run_file.exists():
                found = (self.prefix, self.run_file)
            else:
                pytest.fail(f"no recorded contract run of {module} for {self.name} (record it with the record mode)")
            self.modules[module] = found
        return self.modules[module]

    def clock_for(self, test: str, run_file: Path | None = None) -> Clock:
        """The clock a test runs on: real, or in replay the time at which that test was recorded (answers
        carry absolute times, which would otherwise all lie in the past)."""
        run_file = run_file or self.run_file
        if run_file is None or self.mode not in ("record", "replay"):
            return SystemClock()
        document = json.loads(run_file.read_text())
        started: dict[str, float] = document.setdefault("started", {})
        now = SystemClock().now().timestamp()
        if self.mode == "record":
            started[test] = round(now, 3)
            run_file.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
            return SystemClock()
        return ShiftedClock(started[test] - now) if test in started else SystemClock()

    def prefix_for(self, test: str) -> str:
        """The id prefix of one test: the run's, or in replay the one it was recorded with (a recording of some
        tests only keeps the others' cassettes and prefixes, and gives the new ones a prefix of their own)."""
        if self.run_file is None or self.mode != "replay":
            return self.prefix
        document = json.loads(self.run_file.read_text())
        return str(document.get("prefixes", {}).get(test, document["prefix"]))


@pytest.fixture(scope="session")
def contract_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ContractRun:
    target: str = request.param
    target, _, chosen_mode = target.partition("@")  # "wukong@replay": a mode for this target alone
    store = ""
    if chosen_mode in STORES:  # "local@postgres": the embedded provider on another store, always live
        store, chosen_mode = chosen_mode, ""
    if chosen_mode and chosen_mode not in MODES:
        raise pytest.UsageError(f"unknown mode {chosen_mode!r} in {request.param!r}; modes: {', '.join(MODES)}")
    mode = chosen_mode or _mode(request.config)
    provider_class: type[Provider] | None = None
    if ":" in target:
        module_name, _, attribute = target.partition(":")
        provider_class = getattr(importlib.import_module(module_name), attribute)
        name = provider_class.name
    else:
        name = canonical_name(target)
    if name == "local" or provider_class is not None:
        mode = "live"  # an embedded or in-process provider has nothing to record
    if store and name != "local":
        raise pytest.UsageError(f"{request.param!r}: only the local provider takes a store ({', '.join(STORES)})")
    database = ""
    if store == "postgres":
        database = request.getfixturevalue("imbridge_postgres").fresh_database()
    if mode in ("live", "record") and provider_class is None and name != "local":
        _require_health(name)  # before a recording overwrites anything
    root = Path(request.config.getoption("--imbridge-cassettes") or Path(str(request.config.rootpath)) / "cassettes")
    cassette_dir = root / name if mode in ("record", "replay") else None
    run_file = cassette_dir / "contract-run.json" if cassette_dir else None
    if mode == "replay" and run_file is not None and run_file.exists():
        prefix = json.loads(run_file.read_text())["prefix"]  # of the modules recorded before per-module runs
    else:
        prefix = "c" + secrets.token_hex(3)  # a recording writes a run file per module (ContractRun.for_module)
    workdir = tmp_path_factory.mktemp(f"contract-{name}")
    return ContractRun(
        target, name, mode, prefix, cassette_dir, workdir, provider_class, run_file=run_file, param=request.param,
        database=database,
    )  # fmt: skip


@pytest.fixture(scope="session")
def imbridge_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (a throwaway cluster unless ``IMBRIDGE_TEST_POSTGRES_URL`` names
    one); ``.fresh_database()`` gives a new database's URL. Fails, never skips silently, when there is no
    PostgreSQL, unless ``IMBRIDGE_TEST_POSTGRES=0`` says to skip."""
    if os.environ.get(postgres.OPT_OUT) == "0":
        pytest.skip(f"PostgreSQL tests skipped on request ({postgres.OPT_OUT}=0)")
    try:
        server = postgres.postgres_server()
    except postgres.PostgresUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.close()


def _require_health(name: str) -> None:
    """Stop the whole run with one message when the server cannot be used, rather than fail every test.

    ``pytest.exit``: a dead server or refused credentials say nothing about the provider's behaviour, and
    each test failing on them would bury the one line that matters."""
    try:
        provider = build_provider(name, from_env=True)
    except IMBridgeError as error:
        pytest.exit(f"imbridge contract suite: cannot build the {name} provider from the environment: {error}", 2)
    try:
        with IMClient(provider) as client:
            health = client.health(timeout=10)
    finally:
        provider.close()
    if not health.ok:
        prefix = f"IMBRIDGE_{name.upper()}_"
        pytest.exit(
            f"imbridge contract suite: the {name} server cannot be used ({health}); nothing was run. "
            f"Check {prefix}* in the environment (or .env), then run again.",
            returncode=pytest.ExitCode.TESTS_FAILED,
        )


@dataclass
class Contract:
    """What a contract test uses: clients for the provider under test, ids, capability checks."""

    run: ContractRun
    test_key: str
    sync_client: IMClient
    make_async: Callable[[], AsyncIMClient]
    requests_sent: list[str] = field(default_factory=list)
    clock: Clock = field(default_factory=SystemClock)
    events: EventChannel | None = None
    """Inbound events of this test (None until a test asks for them with ``contract.inbound``)."""
    #: "behaviour" when the test checked the behaviour, "unsupported" when it checked the refusal.
    outcome: str = "behaviour"
    _groups: list[str] = field(default_factory=list)
    prefix: str = ""
    """The id prefix of this test's module in this run (``ContractRun.for_module``)."""

    def now(self) -> datetime:
        """The time of this test's world (in replay, the recording's time)."""
        return self.clock.now()

    @property
    def im(self) -> IMClient:
        return self.sync_client

    @property
    def provider(self) -> str:
        return self.run.name

    def uid(self, name: str) -> str:
        """A user id unique to this run and test (short enough for Tencent's 32-byte limit)."""
        return f"{self.prefix}{self.test_key}{name}"[:32]

    def gid(self, name: str) -> str:
        return f"{self.prefix}{self.test_key}{name}"[:40]

    @property
    def inbound(self) -> EventChannel:
        """The receiver of this provider's events and what reached it (see ``imbridge.testing.events``)."""
        if self.events is None:
            pytest.skip(self._events_unavailable or "no inbound events for this target")
        return self.events

    _events_unavailable: str = ""

    def users(self, *names: str) -> list[str]:
        """Register users for this test and return their ids."""
        ids = [self.uid(name) for name in names]
        result = self.im.users.register(ids)
        assert result.ok, result.failed
        return ids

    def track_group(self, group_id: str) -> str:
        self._groups.append(group_id)
        return group_id

    def supports(self, operation: Operation) -> bool:
        return self.im.capabilities[operation].support is not Support.UNSUPPORTED

    def expect_unsupported(self, call: Callable[[], object]) -> None:
        """For an UNSUPPORTED operation: the call raises UnsupportedOperationError and sends nothing."""
        before = len(self.requests_sent)
        with pytest.raises(UnsupportedOperationError):
            call()
        assert len(self.requests_sent) == before
        self.outcome = "unsupported"

    def cleanup(self) -> None:
        for group_id in self._groups:
            with contextlib.suppress(IMBridgeError):  # already dismissed by the test, or never created
                self.im.groups.dismiss(group_id)


def _settings(run: ContractRun) -> dict[str, Any] | None:
    if run.name == "local":
        return {"database": str(run.workdir / "contract.db")}
    if run.mode in ("replay", "emulator"):
        base = dict(REPLAY_SETTINGS.get(run.name, {}))
        if run.name == "wukong":
            base["store"] = str(run.workdir / "wukong-store.db")
        return base
    return None  # live and record: from the environment


def _emulator(run: ContractRun, **callbacks: Any) -> Any:
    if run.mode != "emulator":
        return None
    if run.name not in EMULATORS:
        raise pytest.UsageError(f"there is no emulator of {run.name}")
    module_name, _, attribute = EMULATORS[run.name].partition(":")
    emulator_class = getattr(importlib.import_module(module_name), attribute)
    return emulator_class.for_client(_settings(run) or {}, **callbacks)


#: The path secret of WuKongIM webhooks in emulator and replay runs (a test value, not a deployment's).
TEST_PATH_SECRET = "contract-webhook-path-secret-0123"
_WEBHOOK_SERVER: list[WebhookServer] = []


def _webhook_server() -> WebhookServer | None:
    """The loopback server live runs receive the vendor's webhooks on (``IMBRIDGE_CONTRACT_WEBHOOK_PORT``)."""
    if not _WEBHOOK_SERVER:
        port = os.environ.get("IMBRIDGE_CONTRACT_WEBHOOK_PORT")
        if not port:
            return None
        _WEBHOOK_SERVER.append(WebhookServer(int(port)))
    return _WEBHOOK_SERVER[0]


def _events_channel(
    run: ContractRun, module: str, test_name: str, clock: Clock
) -> tuple[EventChannel | None, dict[str, Any], str]:
    """The channel of a test, the emulator options that feed it, and why there is none (when there is none)."""
    now: Callable[[], float] = lambda: clock.now().timestamp()  # noqa: E731
    live = run.mode in ("live", "record") and run.name != "local"
    recording = run.cassette_dir / module / f"{test_name}.events.json" if run.cassette_dir else None
    if run.name == "local" or run.provider_class is not None:
        secret = secrets.token_urlsafe(24)
        receiver = EventReceiver("local", secret=secret, clock=now)
        return EventChannel(receiver, provider="local", secret=secret, clock=now), {}, ""
    if run.name == "tencent":
        receiver = EventReceiver("tencent", sdk_app_id=int((_settings(run) or {}).get("sdk_app_id", 0) or
                                 os.environ.get("IMBRIDGE_TENCENT_SDK_APP_ID", "1400000000")),
                                 callback_token=TENCENT_TEST_TOKEN, clock=now)  # fmt: skip
        secret = TENCENT_TEST_TOKEN
    elif run.name == "wukong":
        secret = os.environ.get("IMBRIDGE_WUKONG_WEBHOOK_SECRET", "") if live else TEST_PATH_SECRET
        if not secret:
            return None, {}, "live WuKongIM events need IMBRIDGE_WUKONG_WEBHOOK_SECRET (the path secret)"
        receiver = EventReceiver("wukong", path_secret=secret, clock=now)
    else:
        return None, {}, f"no inbound events for {run.name}"
    if live and _webhook_server() is None:
        return None, {}, "live events need IMBRIDGE_CONTRACT_WEBHOOK_PORT (where the server's webhooks arrive)"
    channel = EventChannel(
        receiver, provider=run.name, secret=secret, clock=now, live=live,
        recording=recording if run.mode == "record" else None,
        replaying=recording if run.mode == "replay" else None,
    )  # fmt: skip
    options: dict[str, Any] = {}
    if run.mode == "emulator":
        if run.name == "tencent":
            options = {"callback": channel.deliver, "callback_token": TENCENT_TEST_TOKEN}
        else:
            options = {"webhook": with_path(f"/hook/{secret}", channel.deliver), "webhook_retry_delay": 0.05}
    return channel, options, ""


def _provider(run: ContractRun, test_key: str, clock: Clock, store: Path | None = None) -> Provider:
    """``store``: the WuKongIM store of a module recorded on its own (another recording's world and clock)."""
    settings = _settings(run)
    if store is not None and settings is not None and run.name == "wukong":
        settings["store"] = str(store)
    if run.provider_class is not None:
        config = run.provider_class.settings_class.model_validate({"database": str(run.workdir / f"{test_key}.db")})
        return run.provider_class(config, clock=clock)
    if run.name == "local" and settings is not None:
        # On PostgreSQL the tests share the run's database: their ids are unique to the run and the test.
        settings["database"] = run.database or str(run.workdir / f"{test_key}.db")
    if settings is None:
        provider = build_provider(run.name, from_env=True, clock=clock)
        if getattr(provider.settings, "store", None) == "":
            # A WuKongIM run without IMBRIDGE_WUKONG_STORE: a store of the run's own, so that what WuKongIM
            # does not keep (names, roles, timed mutes) is tested rather than refused.
            own = store or run.workdir / "wukong-store.db"
            settings = {**provider.settings.model_dump(), "store": str(own)}
            provider.close()
            return type(provider)(type(provider.settings).model_validate(settings), clock=clock)
        return provider
    return build_provider(run.name, settings, clock=clock)


@pytest.fixture
def contract(contract_target: ContractRun, request: pytest.FixtureRequest) -> Iterator[Contract]:
    import httpx

    run = contract_target
    # From the module and test names (not the node id, which depends on where pytest runs), so that a
    # replay anywhere uses the ids of the recording.
    module = request.node.module.__name__.rsplit(".", 1)[-1]
    test_name = run.test_name(request.node.name)
    test_key = format(zlib.crc32(f"{module}::{test_name}".encode()) & 0xFFFFFF, "06x") + "-"
    sent: list[str] = []

    def count(http_request: httpx.Request) -> None:
        sent.append(f"{http_request.method} {http_request.url.path}")

    recorder = cassettes.recorder(run.cassette_dir, run.mode) if run.cassette_dir else None
    cassette_name = f"{module}/{test_name}.yaml"
    context = recorder.use_cassette(cassette_name) if recorder else None
    if context is not None:
        context.__enter__()
    prefix, run_file = run.for_module(module)
    if run_file is not None and run_file == run.run_file:
        # A module replayed from the provider's shared run file: its tests recorded one by one (-k) carry
        # prefixes of their own there.
        prefix = run.prefix_for(f"{module}/{test_name}")
    clock = run.clock_for(f"{module}/{test_name}", run_file)
    # A module recorded on its own lives in its recording's time: its WuKongIM store is its own too, or the
    # mutes other modules stored at their recordings' times would fall due in it (and in its maintenance runs).
    own_store = run.workdir / f"wukong-store-{module}.db" if run_file is not None and run_file != run.run_file else None
    provider = _provider(run, test_key.rstrip("-"), clock, own_store)
    if run.mode in ("record", "replay"):
        # Ids the client picks must be the same when replayed as when recorded.
        generated = itertools.count(1)
        provider.new_group_id = lambda: f"{prefix}{test_key}auto{next(generated)}"  # type: ignore[method-assign]
    channel, callbacks, no_events = _events_channel(run, module, test_name, clock)
    emulator = _emulator(run, **callbacks)
    if channel is not None and run.name == "local":
        provider.events.attach(channel.deliver, channel.secret)  # type: ignore[attr-defined]
    if channel is not None and emulator is not None:
        channel.drain_with(emulator.drain_callbacks)
    server = _webhook_server() if channel is not None and channel.live else None
    transport = emulator.transport() if emulator is not None else None
    http_client = httpx.Client(transport=transport, event_hooks={"request": [count]})
    client = IMClient(provider, http_client=http_client, clock=clock)

    def make_async() -> AsyncIMClient:
        if transport is None:
            return AsyncIMClient(provider, clock=clock)
        return AsyncIMClient(provider, http_client=httpx.AsyncClient(transport=transport), clock=clock)

    contract = Contract(run, test_key, client, make_async, sent, clock=clock, prefix=prefix, events=channel)
    contract._events_unavailable = no_events
    serving = server.serving(channel) if server is not None and channel is not None else contextlib.nullcontext()
    try:
        with serving:
            yield contract
            if channel is not None:
                channel.settle()  # late deliveries land in the recording too
                channel.save()
        # Read by `python -m imbridge.testing.semantics` to tell what each provider's run proved.
        request.node.user_properties.append(("imbridge_provider", run.name))
        request.node.user_properties.append(("imbridge_outcome", contract.outcome))
    finally:
        try:
            contract.cleanup()
        finally:
            client.close()
            http_client.close()
            provider.close()
            if emulator is not None:
                emulator.close()
            if context is not None:
                context.__exit__(None, None, None)
