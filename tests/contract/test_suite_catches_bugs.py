"""The contract suite is only worth running if it fails on a provider that misbehaves."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _run_suite(pytester: pytest.Pytester, provider: str, *selection: str) -> pytest.RunResult:
    pytester.syspathinsert(HERE)
    return pytester.runpytest_inprocess(
        "--pyargs", "imbridge.testing.contract", "--imbridge-provider", provider, "-k", " or ".join(selection),
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function",
    )  # fmt: skip


def test_suite_passes_on_the_reference_provider(pytester: pytest.Pytester) -> None:
    result = _run_suite(pytester, "local", "history", "mute")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes["passed"] >= 10


def test_suite_fails_on_out_of_order_history(pytester: pytest.Pytester) -> None:
    result = _run_suite(pytester, "broken_providers:OutOfOrderHistory", "history")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] >= 3
    result.stdout.fnmatch_lines(["*FAILED*test_history_backward_is_newest_first*"])


def test_suite_fails_on_a_mute_that_does_nothing(pytester: pytest.Pytester) -> None:
    result = _run_suite(pytester, "broken_providers:NoOpMute", "mute")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] >= 3
    result.stdout.fnmatch_lines(["*FAILED*test_muted_member_send_refused*"])
