"""SIGKILL a running migration at random points, again and again, then let it finish: every source message
is in the target exactly once and in order, and ``imbridge migrate verify`` passes.

The emulators are served on loopback by this test process, with file-backed stores; the migration runs as
``python -m imbridge.cli migrate run`` in a subprocess. The source is paced slowly (client-side pacing, as
for Tencent's per-command limits) so that the migration of the small seed takes about 15 seconds and each
kill lands in the middle of real work.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from migration_support import World

from imbridge.emulators import serve

KILLS = 10


def test_sigkill_at_random_points_then_resume_yields_every_message_once(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    seed = int(os.environ.get("IMBRIDGE_KILL_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    users = tmp_path / "users.txt"
    users.write_text("\n".join(world.users()) + "\n")
    state = tmp_path / "state.db"
    try:
        with serve(world.tencent) as tencent, serve(world.wukong) as wukong:
            env = {k: v for k, v in os.environ.items() if not k.startswith("IMBRIDGE_")}
            env.update({
                "IMBRIDGE_TENCENT_SDK_APP_ID": str(world.tencent.sdk_app_id),
                "IMBRIDGE_TENCENT_SECRET_KEY": world.key,
                "IMBRIDGE_TENCENT_BASE_URL": tencent.url,
                "IMBRIDGE_TENCENT_RATE_LIMITS": json.dumps(
                    {"admin_getroammsg": 6, "get_list": 6, "group_msg_get_simple": 6}
                ),
                "IMBRIDGE_WUKONG_BASE_URL": wukong.url,
                "IMBRIDGE_WUKONG_STORE": str(tmp_path / "imbridge-wukong.db"),
            })  # fmt: skip
            base = [sys.executable, "-m", "imbridge.cli", "migrate"]
            run = [*base, "run", "--state", str(state), "--users", str(users), "--progress", "none",
                   "--concurrency", "4"]  # fmt: skip
            kills, runs, outcome = 0, 0, None
            while outcome is None and runs < KILLS + 5:
                runs += 1
                process = subprocess.Popen(run, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE)  # fmt: skip
                if kills < KILLS:
                    try:
                        process.wait(timeout=rng.uniform(0.8, 2.0))
                    except subprocess.TimeoutExpired:
                        process.send_signal(signal.SIGKILL)
                        process.wait()
                        kills += 1
                        continue
                else:
                    process.wait(timeout=120)
                assert process.stderr is not None
                outcome = (process.returncode, process.stderr.read().decode())
            assert kills == KILLS, f"seed {seed}: the migration finished after only {kills} kills"
            assert outcome is not None and outcome[0] == 0, f"seed {seed}: {outcome}"

            expected = world.expected()
            actual = world.actual(list(expected))
            duplicated = {ch: [i for i, n in Counter(ids).items() if n > 1] for ch, ids in actual.items()}
            assert not any(duplicated.values()), f"seed {seed}: duplicates {duplicated}"
            assert actual == expected, f"seed {seed}: target differs from source"

            env.pop("IMBRIDGE_TENCENT_RATE_LIMITS")  # verify reads at the documented limits
            verify = subprocess.run([*base, "verify", "--state", str(state), "--progress", "none"], env=env,
                                    cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
            assert verify.returncode == 0, verify.stdout + verify.stderr
            assert "zero mismatches" in verify.stdout
    finally:
        world.close()
