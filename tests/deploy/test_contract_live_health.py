"""The contract suite's live mode checks the server first and stops with one message when it cannot be used."""

from __future__ import annotations

import socket

import pytest


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_live(pytester: pytest.Pytester, provider: str) -> pytest.RunResult:
    # In a subprocess: an in-process run would leave its fresh imports (httpcore's exception classes) behind.
    return pytester.runpytest_subprocess(
        "--pyargs", "imbridge.testing.contract", "--imbridge-provider", provider, "--imbridge-mode", "live",
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function",
    )  # fmt: skip


def test_a_dead_server_stops_the_run_with_one_message(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMBRIDGE_WUKONG_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("IMBRIDGE_WUKONG_MANAGER_TOKEN", "whatever")
    result = _run_live(pytester, "wukong")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert output.count("the wukong server cannot be used") == 1
    assert "unreachable" in output and "IMBRIDGE_WUKONG_*" in output
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) <= 1 and outcomes.get("passed", 0) == 0


def test_refused_credentials_stop_the_run_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from imbridge.emulators import serve
    from imbridge.emulators.wukong import WukongEmulator
    from imbridge.testing.plugin import _require_health

    emulator = WukongEmulator(manager_token="the-right-one")
    with serve(emulator) as server:
        monkeypatch.setenv("IMBRIDGE_WUKONG_BASE_URL", server.url)
        monkeypatch.setenv("IMBRIDGE_WUKONG_MANAGER_TOKEN", "a-wrong-one")
        with pytest.raises(pytest.exit.Exception) as stopped:  # what pytest.exit raises to end the session
            _require_health("wukong")
        monkeypatch.setenv("IMBRIDGE_WUKONG_MANAGER_TOKEN", "the-right-one")
        _require_health("wukong")  # a usable server: the run goes on
    emulator.close()
    assert "NOT authenticated" in str(stopped.value) and stopped.value.returncode == pytest.ExitCode.TESTS_FAILED
