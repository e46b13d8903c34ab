"""Issue 13, point 14: within a conversation of the local provider, message times never go backwards as
seqs go up, with writers in several threads and several processes (before: 7,541 inversions in 71,895
messages). The time is now taken in the transaction that allocates the seq, and never earlier than the
conversation's last time.

The writers' clock pauses a little after each reading, as a descheduled process does between reading the
clock and storing the message: that makes the race happen on every run instead of now and then.
"""

from __future__ import annotations

import itertools
import multiprocessing
import random
import threading
import time
from datetime import UTC, datetime

from imbridge import Conversation, IMClient
from imbridge._clock import SystemClock

SENDS = 60


class PausingClock(SystemClock):
    def now(self) -> datetime:
        moment = datetime.now(UTC)
        time.sleep(random.uniform(0, 0.002))
        return moment


def _setup(url: str) -> None:
    with IMClient("local", database=url) as im:
        im.users.register(["alice", "bob"])
        im.groups.create("T", owner="alice", members=["bob"], group_id="g")


def _send(url: str, sender: str, count: int) -> None:
    with IMClient("local", database=url, clock=PausingClock()) as im:
        for n in range(count):
            im.messages.send(sender, Conversation.group("g"), f"{sender} {n}")
            im.messages.send(sender, Conversation.user("bob" if sender == "alice" else "alice"), f"{sender} {n}")


def _inversions(url: str, expected: int) -> list[tuple[int, float, float]]:
    found: list[tuple[int, float, float]] = []
    with IMClient("local", database=url) as im:
        for conversation in (Conversation.group("g"), Conversation.user("bob")):
            messages = list(im.messages.iter_history(conversation, viewer="alice", direction="forward"))
            assert [m.seq for m in messages] == list(range(1, expected + 1))
            found += [(b.seq, a.time.timestamp(), b.time.timestamp())
                      for a, b in itertools.pairwise(messages) if b.time < a.time]  # fmt: skip
    return found


def test_times_follow_seqs_with_writer_threads(store_url: str) -> None:
    _setup(store_url)
    with IMClient("local", database=store_url, clock=PausingClock()) as im:

        def send(sender: str) -> None:
            for n in range(SENDS):
                im.messages.send(sender, Conversation.group("g"), f"{sender} {n}")
                im.messages.send(sender, Conversation.user("bob" if sender == "alice" else "alice"), f"{n}")

        threads = [threading.Thread(target=send, args=(sender,)) for sender in ("alice", "bob", "alice", "bob")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert _inversions(store_url, 4 * SENDS) == []


def test_times_follow_seqs_with_writer_processes(store_url: str) -> None:
    _setup(store_url)
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_send, args=(store_url, s, SENDS)) for s in ("alice", "bob", "alice", "bob")]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert _inversions(store_url, 4 * SENDS) == []
