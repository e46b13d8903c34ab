"""``imbridge worker`` on every app instance at once: two worker processes (two "hosts": separate working
directories) share one store and one WuKongIM server. Each ended mute is taken off the server's denylist
once, by one of them, within the interval; SIGTERM stops each cleanly. On SQLite and on a real PostgreSQL.

The server is imbridge's WuKongIM emulator on 127.0.0.1 (it keeps every request, so the test can count the
lifts); the same worker against the real server is the contract test ``test_maintenance.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from recording_emulator import TOKEN, RecordingEmulator

from imbridge import IMClient
from imbridge.emulators import serve

INTERVAL = 0.5
WORKERS = 2


def _start_workers(tmp_path: Path, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    command = [sys.executable, "-m", "imbridge.cli", "--json", "worker", "--interval", str(INTERVAL)]
    workers = []
    for n in range(WORKERS):
        host = tmp_path / f"host-{n % 2}"
        host.mkdir(exist_ok=True)
        workers.append(subprocess.Popen(command, cwd=host, env=env, stdout=subprocess.PIPE, text=True))
    for worker in workers:  # each has built its client and announced itself
        assert worker.stdout is not None
        assert "started" in json.loads(worker.stdout.readline())
    return workers


def test_workers_on_every_instance_lift_each_mute_once(store_url: str, tmp_path: Path) -> None:
    emulator = RecordingEmulator()
    with serve(emulator) as server:
        env = {**os.environ, "IMBRIDGE_PROVIDER": "wukong", "IMBRIDGE_WUKONG_BASE_URL": server.url,
               "IMBRIDGE_WUKONG_MANAGER_TOKEN": TOKEN, "IMBRIDGE_WUKONG_STORE": store_url}  # fmt: skip
        app = IMClient("wukong", base_url=server.url, manager_token=TOKEN, store=store_url, policy_cache_seconds=0)
        app.users.register(["own", "a", "b", "c"])
        groups = ["g1", "g2", "g3"]
        for group_id in groups:
            app.groups.create("T", owner="own", members=["a", "b", "c"], group_id=group_id)
        workers = _start_workers(tmp_path, env)
        try:
            mutes = {("g1", "a"): 1.0, ("g1", "b"): 1.0, ("g2", "c"): 1.5, ("g3", "a"): 2.0, ("g3", "b"): 2.0}
            started = time.monotonic()
            for (group_id, user_id), seconds in mutes.items():
                app.groups.mute(group_id, [user_id], timedelta(seconds=seconds))
            ended_at: dict[tuple[str, str], float] = {}
            while len(ended_at) < len(mutes) and time.monotonic() - started < 30:
                for group_id in groups:
                    denied = set(emulator.denylist(group_id))
                    for key in mutes:
                        if key[0] == group_id and key[1] not in denied and key not in ended_at:
                            ended_at[key] = time.monotonic() - started
                time.sleep(0.05)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            outputs = [worker.communicate(timeout=30)[0] for worker in workers]
            app.close()
    emulator.close()
    assert [worker.returncode for worker in workers] == [0] * WORKERS  # SIGTERM is a clean stop
    # Every mute ended on the server within the interval of its end (plus this loaded machine's slack).
    for key, seconds in mutes.items():
        assert seconds - 0.2 <= ended_at[key] <= seconds + INTERVAL + 2.0, (key, ended_at[key])
    # Each was lifted once: one blacklist_remove naming it, and one report among all the workers'.
    removed = Counter((channel, uid) for channel, uids in _removes(emulator) for uid in uids)
    assert removed == Counter(list(mutes))
    reports = [json.loads(line) for output in outputs for line in output.splitlines() if line.strip()]
    lifted = Counter((m["group_id"], m["user_id"]) for r in reports for m in r.get("lifted_mutes", []))
    assert lifted == Counter(list(mutes))
    assert not [r for r in reports if r.get("failures") or "error" in r]


def _removes(emulator: Any) -> list[tuple[str, list[str]]]:
    return [
        (body["channel_id"], body["uids"]) for _, path, body in emulator.seen if path == "/channel/blacklist_remove"
    ]
