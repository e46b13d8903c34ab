"""Small pieces of the migration: target ids, message keys, channel keys, progress output, journal encoding."""

from __future__ import annotations

import io
import itertools
import json
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imbridge.errors import ConfigurationError
from imbridge.migration import Migration, MigrationOptions, ids
from imbridge.migration.mirror import decode, encode
from imbridge.migration.progress import make_progress
from imbridge.migration.state import IdCollisionError, StateDB
from imbridge.models import Conversation, Image, MessageRef, Text
from imbridge.testing import FakeClock


def test_target_ids_are_safe_stable_and_distinct() -> None:
    assert ids.target_id("alice") == "alice"
    assert ids.target_id("alice", "p_") == "p_alice"
    tgs = ids.target_id("@TGS#AB12")
    assert tgs == "~40TGS~23AB12" == ids.target_id("@TGS#AB12")
    assert ids.target_id("a@b") != ids.target_id("a#b") != ids.target_id("a_b")
    # the collision of the hash-suffix scheme (issue 13, point 4): an id that looks like another's mapping
    assert ids.target_id("alice@corp") != ids.target_id("alice_corp_244e5e")
    assert ids.target_id("alice@corp") != ids.target_id("alice~40corp")
    assert ids.target_id(".") != ids.target_id("..") and "." not in (ids.target_id("."), ids.target_id(".."))
    assert ids.source_id(ids.target_id("\ud800x")) == "\ud800x"  # a lone surrogate (JSON allows one)


#: What WuKongIM and URL paths cannot take in an id (wire.FORBIDDEN_ID_CHARS plus path-changing characters).
UNSAFE_FOR_TARGET = set("@#&/?%\\")


@settings(max_examples=400, deadline=None)
@given(st.text(), st.text(), st.sampled_from(["", "p_", "demo1a2b3c_"]))
def test_target_id_is_injective_reversible_and_safe(a: str, b: str, prefix: str) -> None:
    ta, tb = ids.target_id(a, prefix), ids.target_id(b, prefix)
    assert (ta == tb) == (a == b)
    assert ids.source_id(ta, prefix) == a
    body = ta[len(prefix) :]
    assert not UNSAFE_FOR_TARGET & set(body)
    assert all(ch.isprintable() and not ch.isspace() for ch in body)
    assert body not in (".", "..")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="@#&_~.a1 ", max_size=8), max_size=30, unique=True))
def test_target_ids_of_lookalike_ids_never_collide(sources: list[str]) -> None:
    # ids built from the characters the mapping rewrites and those it writes: the likeliest to collide
    assert len({ids.target_id(s) for s in sources}) == len(sources)


def test_state_refuses_a_mapping_that_would_share_a_target_id(tmp_path: Path) -> None:
    state = StateDB(str(tmp_path / "state.db"))
    # an earlier imbridge mapped alice@corp with its hash suffix; alice_corp_244e5e is itself a safe id
    state.map_ids("user", [("alice@corp", "alice_corp_244e5e")])
    with pytest.raises(IdCollisionError) as raised:
        state.map_ids("user", [("bob", "bob"), ("alice_corp_244e5e", ids.target_id("alice_corp_244e5e"))])
    assert raised.value.collisions == {"alice_corp_244e5e": ["alice@corp", "alice_corp_244e5e"]}
    assert state.mapped("user") == {"alice@corp": "alice_corp_244e5e"}  # nothing written
    assert state.collisions("group") == {}
    state.close()


def test_message_keys_depend_on_the_whole_source_identity() -> None:
    key = ids.group_message_key(1400000000, "g1", 7)
    assert key == ids.group_message_key(1400000000, "g1", 7) and len(key) == 40
    assert len({key, ids.group_message_key(1400000001, "g1", 7), ids.group_message_key(1400000000, "g2", 7),
                ids.group_message_key(1400000000, "g1", 8)}) == 4  # fmt: skip
    c2c = ids.c2c_message_key(1, "a", "b", "1_2_3")
    assert c2c != ids.c2c_message_key(1, "b", "a", "1_2_3")


def test_channel_keys_round_trip_and_ignore_pair_order() -> None:
    assert ids.pair_channel("b|x", "a") == ids.pair_channel("a", "b|x")
    assert ids.split_channel(ids.pair_channel("b|x", "a")) == ("c2c", "a", "b|x")
    assert ids.split_channel(ids.group_channel("@TGS#1")) == ("group", "@TGS#1", "")


@pytest.mark.parametrize("mode", ["plain", "json", "rich", "none"])
def test_progress_modes(mode: str) -> None:
    out = io.StringIO()
    progress = make_progress(mode, out, interval=0)
    task = progress.task("history", 10)
    task.advance(4)
    task.add_total(2)
    task.finish()
    progress.close()
    text = out.getvalue()
    if mode == "json":
        last = json.loads(text.splitlines()[-1])
        assert (last["event"], last["phase"], last["done"], last["total"]) == ("done", "history", 4, 12)
    elif mode == "plain":
        assert text.splitlines()[-1].startswith("history: 4/12")
    elif mode == "rich":
        assert "history" in text
    else:
        assert text == ""
    with pytest.raises(ValueError):
        make_progress("fancy", out)


def test_eta_follows_the_work_smoothly_through_bursts_and_a_stall() -> None:
    # 20,000 messages at 200/s on average, arriving in page-sized bursts, with a 5 s stall at t=20 s.
    clock = FakeClock()
    out = io.StringIO()
    progress = make_progress("json", out, interval=1.0, clock=clock.monotonic)
    task = progress.task("messages", 20_000, estimated=True)
    done, t = 0, 0.0
    while done < 20_000:
        step = 0.5 if t < 20 or t >= 25 else 5.0  # a page of 100 every half second; one page after 5 s
        clock.advance(step)
        t += step
        done += 100
        task.advance(100)
    task.finish()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(line["total"] == 20_000 and line["total_estimated"] for line in lines)
    etas = [(line["eta_seconds"], (20_000 - line["done"]) / 200) for line in lines if line["event"] == "progress"]
    assert len(etas) > 50
    for eta, remaining in etas:  # within a factor 1.5 of the truth at 200/s, the stall included
        assert eta is not None and remaining / 1.5 - 1 <= eta <= remaining * 1.5 + 1, (eta, remaining)
    swings = [abs(b[0] - a[0]) for a, b in itertools.pairwise(etas)]
    assert max(swings) < 40  # no jump: the stall moves the ETA by a fraction of the remaining ~90 s


def test_a_task_of_uneven_items_shows_no_eta_of_its_own() -> None:
    clock = FakeClock()
    out = io.StringIO()
    task = make_progress("plain", out, interval=0, clock=clock.monotonic).task("channels", 300, eta=False)
    for _ in range(10):
        clock.advance(1)
        task.advance()
    assert out.getvalue() and "ETA" not in out.getvalue()


def test_journal_encoding_round_trips() -> None:
    ref = MessageRef(provider="wukong", conversation=Conversation.group("g"), sender="a", key="9")
    value = [Conversation.user("bob"), [Text("hi"), Image(url="https://x/y.png", width=2)], timedelta(seconds=90),
             {"ref": ref, "n": 1}]  # fmt: skip
    assert decode(json.loads(json.dumps(encode(value)))) == value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6) | st.sampled_from(["$td", "$conv", "$ref", "$el", "$map"]), inner,
                      max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_journal_encoding_round_trips_any_json_even_what_looks_like_its_own_tags(value: Any) -> None:
    stored = json.loads(json.dumps(encode({"metadata": value, "n": [value]})))
    assert decode(stored) == {"metadata": value, "n": [value]}


def test_journal_encoding_keeps_metadata_shaped_like_a_tag() -> None:
    metadata = {"$td": 5, "$conv": "user:x", "deep": [{"$ref": "not a ref"}, {"$el": 1, "other": 2}]}
    assert decode(json.loads(json.dumps(encode(metadata)))) == metadata


def test_options_given_again_keep_what_the_plan_fixed(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    state = StateDB(path)
    state.set_meta("options", {**asdict(MigrationOptions(id_prefix="p_", since=100.0)), "as_of": 1_700_000_000.0})
    state.close()
    again = Migration({}, {}, path, MigrationOptions(workers=2))  # e.g. `run --workers 2` after `plan`
    assert (again.options.workers, again.options.id_prefix, again.options.as_of, again.options.since) == (
        2, "p_", 1_700_000_000.0, 100.0)  # fmt: skip
    again.close()
    with pytest.raises(ConfigurationError, match="id_prefix"):
        Migration({}, {}, path, MigrationOptions(id_prefix="q_"))
    with pytest.raises(ConfigurationError, match="cannot start target ids"):
        MigrationOptions(id_prefix="a@")
