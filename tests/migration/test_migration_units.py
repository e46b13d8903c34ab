"""Small pieces of the migration: target ids, message keys, channel keys, progress output, journal encoding."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from imbridge.migration import ids
from imbridge.migration.mirror import decode, encode
from imbridge.migration.progress import make_progress
from imbridge.models import Conversation, Image, MessageRef, Text


def test_target_ids_are_safe_stable_and_distinct() -> None:
    assert ids.target_id("alice") == "alice"
    assert ids.target_id("alice", "p_") == "p_alice"
    tgs = ids.target_id("@TGS#AB12")
    assert tgs.startswith("_TGS_AB12_") and not set("@#&") & set(tgs)
    assert tgs == ids.target_id("@TGS#AB12")
    assert ids.target_id("a@b") != ids.target_id("a#b") != ids.target_id("a_b")


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


def test_journal_encoding_round_trips() -> None:
    ref = MessageRef(provider="wukong", conversation=Conversation.group("g"), sender="a", key="9")
    value = [Conversation.user("bob"), [Text("hi"), Image(url="https://x/y.png", width=2)], timedelta(seconds=90),
             {"ref": ref, "n": 1}]  # fmt: skip
    assert decode(json.loads(json.dumps(encode(value)))) == value
