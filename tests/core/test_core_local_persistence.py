"""The local provider's database: data survives a restart; two processes share one file safely."""

from __future__ import annotations

import multiprocessing
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from imbridge import Conversation, Custom, IMClient, Role, Text
from imbridge.testing import FakeClock

TEAM = Conversation.group("team")
BOB = Conversation.user("bob")


def test_data_survives_reopening(open_client: Any, tmp_path: Path, clock: FakeClock) -> None:
    database = str(tmp_path / "nested" / "im.db")  # parent folders are created
    im = open_client(database=database)
    im.users.register(["alice", "bob", "carol"])
    im.users.set_profile("alice", nickname="Alice", custom={"tier": "gold"})
    im.groups.create(name="Team", owner="alice", members=["carol"], admins=["bob"], group_id="team")
    im.groups.mute("team", ["carol"], duration=timedelta(hours=1))
    im.groups.mute_all("team", True)
    sent = [im.messages.send(sender="alice", to=TEAM, content=f"g{i}") for i in range(3)]
    im.messages.send(sender="alice", to=BOB, content=[Text("dm"), Custom(data="{}")], idempotency_key="k1")
    im.messages.revoke(sent[1].ref)
    token = im.users.login_credentials("bob").token.get_secret_value()
    im.close()

    again = open_client(database=database)
    assert again.users.register(["alice"]).items[0].detail == "already registered"
    (alice,) = again.users.get_profiles(["alice"])
    assert (alice.nickname, alice.custom) == ("Alice", {"tier": "gold"})
    group = again.groups.get("team")
    assert group.name == "Team" and group.mute_all
    assert {m.user_id: m.role for m in again.groups.members("team")} == {
        "alice": Role.OWNER, "bob": Role.ADMIN, "carol": Role.MEMBER,
    }  # fmt: skip
    assert [(m.user_id, m.muted_until) for m in again.groups.muted("team")] == [
        ("carol", clock.now() + timedelta(hours=1))
    ]
    history = again.messages.history(TEAM, viewer="bob").items
    assert [(m.seq, m.revoked) for m in history] == [(3, False), (2, True), (1, False)]
    assert history[1].elements == []
    # The idempotency key is remembered across a restart, and seqs continue where they stopped.
    dup = again.messages.send(sender="alice", to=BOB, content="dm", idempotency_key="k1")
    assert dup.seq == 1
    assert again.messages.send(sender="alice", to=TEAM, content="g3").seq == 4
    # The generated token key is kept in the database: tokens issued before the restart still verify.
    assert again._provider.authenticate(token) == "bob"


def test_sqlite_url_form(open_client: Any, tmp_path: Path) -> None:
    path = tmp_path / "url.db"
    im = open_client(database=f"sqlite:///{path}")
    im.users.register(["alice"])
    im.close()
    assert path.exists()
    assert open_client(database=str(path)).users.get_profiles(["alice"])[0].user_id == "alice"


# -- two processes, one file ---------------------------------------------------------------------

SENDS_PER_PROCESS = 200


def _send_many(database: str, sender: str, count: int, start: Any, errors: Any) -> None:
    """Runs in a child process: wait for the other one, then send ``count`` group messages."""
    try:
        with IMClient("local", database=database) as im:
            start.wait(timeout=30)
            for i in range(count):
                im.messages.send(sender=sender, to=TEAM, content=f"{sender}-{i}")
    except BaseException:
        errors.put(f"{sender}: {traceback.format_exc()}")
        raise


def test_two_processes_write_one_database(tmp_path: Path) -> None:
    database = str(tmp_path / "shared.db")
    with IMClient("local", database=database) as im:
        im.users.register(["p1", "p2", "reader"])
        im.groups.create(name="Team", owner="reader", members=["p1", "p2"], group_id="team")

    context = multiprocessing.get_context("spawn")  # fresh interpreters: nothing inherited from this one
    start = context.Barrier(2)
    errors = context.Queue()
    workers = [
        context.Process(target=_send_many, args=(database, sender, SENDS_PER_PROCESS, start, errors))
        for sender in ("p1", "p2")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert not problems, "\n".join(problems)
    assert [worker.exitcode for worker in workers] == [0, 0]

    with IMClient("local", database=database) as im:
        messages = list(im.messages.iter_history(TEAM, viewer="reader", page_size=200, direction="forward"))
    total = 2 * SENDS_PER_PROCESS
    assert [m.seq for m in messages] == list(range(1, total + 1))
    texts = [m.elements[0].text for m in messages]
    assert sorted(texts) == sorted(f"{s}-{i}" for s in ("p1", "p2") for i in range(SENDS_PER_PROCESS))
    for sender in ("p1", "p2"):  # each process's messages are stored in the order it sent them
        own = [t for t in texts if t.startswith(sender + "-")]
        assert own == [f"{sender}-{i}" for i in range(SENDS_PER_PROCESS)]
    assert len({m.ref.key for m in messages}) == total
