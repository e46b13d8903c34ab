"""The emulator answers a long raw request sequence exactly as a real WuKongIM v2.2.5 server did.

The expected answers in ``tests/fixtures/wukong/differential.json`` were recorded from a real server on
loopback (see its ``provenance``); ``wukong_differential.py`` holds the steps and the normalization, and
re-records or compares live when a server is at hand.
"""

from __future__ import annotations

import json

import pytest
from wukong_differential import CONVERSATION_FIXTURE, FIXTURE, conversation_steps, differences, run_emulator, steps


@pytest.fixture(scope="module")
def recorded() -> dict[str, object]:
    document: dict[str, object] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return document


def test_fixture_was_recorded_from_the_real_server(recorded: dict[str, object]) -> None:
    provenance = recorded["provenance"]
    assert isinstance(provenance, dict)
    assert provenance["server_version"] == "v2.2.5-20260422"
    assert str(provenance["server_commit"]).startswith("a888f895")
    assert "loopback" in provenance["recorded_from"]


def test_fixture_matches_the_steps(recorded: dict[str, object]) -> None:
    results = recorded["results"]
    assert isinstance(results, list)
    assert [r["step"] for r in results] == [s.name for s in steps()], "steps changed: re-record the fixture"


@pytest.mark.parametrize("delay", [0, 1, 3], ids=lambda d: f"store_delay_requests={d}")
def test_emulator_answers_like_the_real_server(recorded: dict[str, object], delay: int) -> None:
    prefix = recorded["prefix"]
    assert isinstance(prefix, str)
    expected = recorded["results"]
    assert isinstance(expected, list)
    actual = run_emulator(prefix, store_delay_requests=delay)
    assert differences(expected, actual) == []


@pytest.fixture(scope="module")
def recorded_conversations() -> dict[str, object]:
    document: dict[str, object] = json.loads(CONVERSATION_FIXTURE.read_text(encoding="utf-8"))
    return document


def test_conversation_fixture_was_recorded_from_the_real_server(recorded_conversations: dict[str, object]) -> None:
    provenance = recorded_conversations["provenance"]
    assert isinstance(provenance, dict)
    assert provenance["server_version"] == "v2.2.5-20260422" and "loopback" in provenance["recorded_from"]
    results = recorded_conversations["results"]
    assert isinstance(results, list)
    assert [r["step"] for r in results] == [s.name for s in conversation_steps()], "steps changed: re-record"


@pytest.mark.parametrize("delay", [0, 1], ids=lambda d: f"store_delay_requests={d}")
def test_emulator_answers_conversation_routes_like_the_real_server(
    recorded_conversations: dict[str, object], delay: int
) -> None:
    prefix, expected = recorded_conversations["prefix"], recorded_conversations["results"]
    assert isinstance(prefix, str) and isinstance(expected, list)
    actual = run_emulator(prefix, sequence=conversation_steps, store_delay_requests=delay)
    assert differences(expected, actual) == []
