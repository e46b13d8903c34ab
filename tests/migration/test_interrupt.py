"""Real child processes stopped by signals: SIGINT and SIGTERM stop cleanly (what was saved, the command that
resumes; no traceback), a plan killed midway resumes instead of starting over, and a target that restarted
empty is noticed by the next run and filled again.

The emulators are served on loopback (the WuKongIM one in its own process where it must die and come back
empty); the migration runs as ``python -m imbridge.cli migrate ...``, as a user runs it.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from migration_support import CLI, World, cli_env, wait_for_state

from imbridge.emulators import EmulatorReply, EmulatorRequest, serve
from imbridge.emulators.wukong import WukongEmulator

#: The history reads paced so that a run of the small seed lasts long enough to be stopped in its middle.
SLOW_HISTORY = {"admin_getroammsg": 8, "group_msg_get_simple": 8}


class Recorder:
    """The Tencent emulator, noting each request's command and body."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, Any]] = []

    def handle(self, request: EmulatorRequest) -> EmulatorReply:
        self.calls.append((request.path.rsplit("/", 1)[-1], request.json()))
        return self.inner.handle(request)


def resume_command(stderr: str) -> list[str]:
    """The command after 'Resume with:', as this test runs the CLI (``imbridge`` -> ``python -m imbridge.cli``)."""
    line = next(line for line in stderr.splitlines() if line.startswith("Resume with: "))
    words = line.removeprefix("Resume with: ").split()
    assert words[:2] == ["imbridge", "migrate"], line
    return [*CLI, *words[2:]]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_run_cleanly_and_says_how_to_resume(tmp_path: Path, stop: signal.Signals) -> None:
    world = World.make(tmp_path)
    users = tmp_path / "users.txt"
    users.write_text("\n".join(world.users()) + "\n")
    state = str(tmp_path / "state.db")
    try:
        with serve(world.tencent) as tencent, serve(world.wukong) as wukong:
            env = cli_env(world, tencent.url, wukong.url)
            plan = subprocess.run([*CLI, "plan", "--state", state, "--users", str(users), "--progress", "none"],
                                  env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
            assert plan.returncode == 0, plan.stderr
            env = cli_env(world, tencent.url, wukong.url, SLOW_HISTORY)
            # SIGINT as a terminal's Ctrl-C: a suite started in the background by a non-interactive shell has it
            # ignored (POSIX), the child would inherit that, and Python would never turn it into KeyboardInterrupt
            # (a fresh-clone CI run started that way failed here; tests/cli does the same for its worker).
            run = subprocess.Popen([*CLI, "run", "--state", state, "--progress", "plain"], env=env,
                                   cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
            copied = wait_for_state(state, "SELECT SUM(migrated) FROM checkpoints", 20)
            run.send_signal(stop)
            _, err = run.communicate(timeout=60)
            assert run.returncode == 128 + stop, (run.returncode, err)
            assert "Traceback" not in err, err
            name = signal.Signals(stop).name
            assert f"imbridge: stopped by {name}. Saved in {state}" in err, err
            assert f"Resume with: imbridge migrate run --state {state}" in err, err
            saved = wait_for_state(state, "SELECT SUM(migrated) FROM checkpoints", copied, timeout=1)
            assert f"({saved} messages copied)" in err  # what it says is what the state file holds

            resumed = subprocess.run(resume_command(err), env=cli_env(world, tencent.url, wukong.url),
                                     cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
            assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        expected = world.expected()
        actual = world.actual(list(expected))
        assert not [ch for ch, got in actual.items() if max(Counter(got).values(), default=1) > 1], "duplicates"
        assert actual == expected
    finally:
        world.close()


def test_a_plan_killed_midway_resumes_where_it_stopped(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    users = tmp_path / "users.txt"
    users.write_text("\n".join(world.users()) + "\n")
    state = str(tmp_path / "state.db")
    recorder = Recorder(world.tencent)
    try:
        with serve(recorder) as tencent, serve(world.wukong) as wukong:
            env = cli_env(world, tencent.url, wukong.url, {"get_list": 4})  # recent contacts, slowly
            plan = [*CLI, "plan", "--state", state, "--progress", "none", "--concurrency", "2"]
            first = subprocess.Popen([*plan, "--users", str(users)], env=env, cwd=tmp_path,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
            read = wait_for_state(state, "SELECT COUNT(*) FROM items WHERE phase = 'plan:users' AND status = 'done'", 6)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            before = len(recorder.calls)
            contacts_before = Counter(body["From_Account"] for command, body in recorder.calls if command == "get_list")

            second = subprocess.run(plan, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert second.returncode == 0, second.stderr  # no --users: the listed users were saved
        again = recorder.calls[before:]
        contacts_after = Counter(body["From_Account"] for command, body in again if command == "get_list")
        assert not [c for c, _ in again if c == "get_appid_group_list"]  # the group list was not read again
        assert not [c for c, _ in again if c == "get_group_info"]  # nor any group
        # contacts read before the kill are not read again (at most the 2 in flight when it landed)
        assert len(set(contacts_before) & set(contacts_after)) <= 2
        assert sum(contacts_before.values()) >= read
        assert set(contacts_before) | set(contacts_after) == set(world.users())
    finally:
        world.close()


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def wukong_process(port: int, store: Path) -> Iterator[str]:
    """``imbridge emulate wukong`` in its own process (killed, not stopped, when the block ends)."""
    command = [sys.executable, "-m", "imbridge.cli", "emulate", "wukong", "--port", str(port), "--store", str(store)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "listening on" in first, first + (process.stderr.read() if process.stderr else "")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


def test_a_target_that_restarted_empty_is_noticed_and_filled_again(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    users = tmp_path / "users.txt"
    users.write_text("\n".join(world.users()) + "\n")
    state = str(tmp_path / "state.db")
    port = free_port()
    run = [*CLI, "run", "--state", state, "--progress", "none"]
    try:
        with serve(world.tencent) as tencent:
            with wukong_process(port, tmp_path / "wukong-before.db") as wukong:
                env = cli_env(world, tencent.url, wukong)
                first = subprocess.run([*run, "--users", str(users)], env=env, capture_output=True, text=True,
                                       timeout=120)  # fmt: skip
                assert first.returncode == 0, first.stderr
            time.sleep(0.2)
            with wukong_process(port, tmp_path / "wukong-after.db"):  # same address, nothing stored
                second = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
                assert second.returncode == 0, second.stdout + second.stderr
                assert "were missing and were queued to be copied again" in second.stdout, second.stdout
                verify = subprocess.run([*CLI, "verify", "--state", state, "--progress", "none"], env=env,
                                        capture_output=True, text=True, timeout=120)  # fmt: skip
                assert verify.returncode == 0, verify.stdout + verify.stderr
        # what the restarted server holds, read from its own store after it stopped
        world.wukong.close()
        world.wukong = WukongEmulator(store=str(tmp_path / "wukong-after.db"))
        expected = world.expected()
        assert world.actual(list(expected)) == expected
    finally:
        world.close()
