"""Migration throughput and memory, one worker against four: ``python benchmarks/migration.py`` (one command).

For each size (50,000 and 200,000 messages by default) it seeds a Tencent IM emulator into a SQLite file,
then serves it, and a fresh WuKongIM emulator per run, **each in a process of its own** on 127.0.0.1 (the
emulators are single-threaded Python behind one lock: sharing one process, they were the ceiling of a
single worker already). Then, in the same session and against the same source:

1. ``1 worker``: ``Migration.run`` in a child process (``workers=1``: the worker runs in that process);
2. ``4 workers``: the same with ``workers=4`` (four worker processes sharing the state database); once
   a third of the messages are copied, one worker process is SIGKILLed and not restarted: the others
   take its channels over. Then ``verify`` compares source and target and must find zero mismatches.

Printed per run: messages copied, messages/s over the history phase (first worker start to last worker
end), the whole run's wall time, and each worker's peak RSS (``VmHWM``, recorded by the worker in the
state database; the killed one's as of its last heartbeat). Per-worker memory must be flat in message
count: the largest size's peak below 1.3x the smallest's, worker for worker.

Also printed: the CPU seconds each emulator process used during the run (a single-threaded emulator near
one CPU second per wall second is the ceiling). Concurrency per worker is the default (8 channels at
once). The emulators' quotas are lifted and the
client paces at 1,000/s per export command.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZE_USERS, SIZE_GROUPS = 200, 20
KILL_AT = 1 / 3


def _size(messages: int) -> Any:
    from imbridge.emulators._tencent_seed import SeedSize

    return SeedSize(users=SIZE_USERS, groups=SIZE_GROUPS, messages=messages, days=5, members=(8, 40), contacts=5,
                    group_share=0.7)  # fmt: skip


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- children ---------------------------------------------------------------------------------------------


def child_emulator() -> None:
    """Serve one emulator until killed: ``{"kind", "store", "secret_key"}`` pickled on stdin; prints its URL."""
    from imbridge.emulators._base import LoopbackServer
    from imbridge.emulators.tencent import TencentEmulator
    from imbridge.emulators.wukong import WukongEmulator

    spec = pickle.loads(sys.stdin.buffer.read())
    emulator: Any
    if spec["kind"] == "tencent":
        emulator = TencentEmulator(secret_key=spec["secret_key"], store=spec["store"], rate_limits={"*": 100_000.0})
    else:
        emulator = WukongEmulator(store=spec["store"])
    server = LoopbackServer(emulator)
    # a killed worker's connections are reset mid-request: expected here, not worth a traceback each
    server._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    print(server.url, flush=True)
    server.serve_forever()


def child_migrate() -> None:
    """One migration run (the worker processes it starts report their own peaks in the state database)."""
    from imbridge.migration import Migration, MigrationOptions

    spec = pickle.loads(sys.stdin.buffer.read())
    started = time.monotonic()
    migration = Migration(spec["source"], spec["target"], spec["state"], MigrationOptions(workers=spec["workers"]))
    status = migration.run(spec["users"])
    elapsed = time.monotonic() - started
    history = migration.state.get_meta("timings")["history"]["seconds"]
    result: dict[str, Any] = {"complete": status["complete"], "messages": status["messages_migrated"],
                              "seconds": elapsed, "history_seconds": history, "peak_rss_mb": _peak_rss_mb(),
                              "workers": migration.workers()}  # fmt: skip
    if spec["verify"]:
        verified_at = time.monotonic()
        verify = migration.verify()
        result["verify"] = {"ok": verify["ok"], "mismatch_count": verify.get("mismatch_count"),
                            "source_messages": verify.get("source_messages"),
                            "target_messages": verify.get("target_messages"),
                            "seconds": round(time.monotonic() - verified_at, 1)}  # fmt: skip
    migration.close()
    print(json.dumps(result))


# -- parent -----------------------------------------------------------------------------------------------


def _start(argv: list[str], spec: dict[str, Any], env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, __file__, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               env=env)  # fmt: skip
    assert process.stdin is not None
    process.stdin.write(pickle.dumps(spec))
    process.stdin.close()
    process.stdin = None  # communicate() must not flush it again
    return process


def _serve(kind: str, store: str, key: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    process = _start(["--child-emulator"], {"kind": kind, "store": store, "secret_key": key}, env)
    assert process.stdout is not None
    return process, process.stdout.readline().decode().strip()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kill_one_worker(state: str, total: int, process: subprocess.Popen[bytes]) -> dict[str, Any] | None:
    """Once a third of the messages are copied, SIGKILL one worker process holding a history claim."""
    from imbridge.migration.state import StateDB

    while process.poll() is None:
        time.sleep(0.5)
        try:
            db = StateDB(state)
        except Exception:
            continue
        try:
            done = sum(db.totals())
            if done < total * KILL_AT:
                continue
            with db.db.read() as c:
                row = c.exec_driver_sql(
                    "SELECT worker, key FROM claims WHERE phase = 'history' AND worker <> '' ORDER BY key LIMIT 1"
                ).first()
            if row is None:
                continue
            os.kill(int(row[0].split(":")[1]), signal.SIGKILL)
            return {"worker": row[0], "channel": row[1], "messages_done_then": done}
        finally:
            db.close()
    return None


def run_size(messages: int, workers: list[int]) -> dict[str, Any]:
    from imbridge.emulators.tencent import TencentEmulator

    work = Path(tempfile.mkdtemp(prefix=f"imbridge-bench-{messages}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMBRIDGE_")}
    key = secrets.token_hex(32)
    seeding = time.monotonic()
    tencent = TencentEmulator(secret_key=key, store=str(work / "tencent.db"), rate_limits={"*": 100_000.0})
    seeded = tencent.seed(_size(messages))
    users = [uid for uid in tencent.store.user_ids() if uid != tencent.admin]
    app_id = tencent.sdk_app_id
    tencent.close()
    seed_seconds = time.monotonic() - seeding
    source_process, source_url = _serve("tencent", str(work / "tencent.db"), key, env)
    runs = []
    try:
        for count in workers:
            target_process, target_url = _serve("wukong", str(work / f"wukong-{count}.db"), "", env)
            try:
                paced = dict.fromkeys(("group_msg_get_simple", "admin_getroammsg", "get_list"), 1000)
                state = str(work / f"state-{count}.db")
                spec = {
                    "source": {"sdk_app_id": app_id, "secret_key": key, "base_url": source_url, "rate_limits": paced},
                    "target": {"base_url": target_url, "store": str(work / f"imbridge-wukong-{count}.db")},
                    "state": state, "workers": count, "users": users, "verify": count > 1,
                }  # fmt: skip
                cpu_before = {"tencent": _cpu_seconds(source_process.pid), "wukong": _cpu_seconds(target_process.pid)}
                process = _start(["--child-migrate"], spec, env)
                killed = _kill_one_worker(state, messages, process) if count > 1 else None
                out, _ = process.communicate()
                cpu = {"tencent": _cpu_seconds(source_process.pid) - cpu_before["tencent"],
                       "wukong": _cpu_seconds(target_process.pid) - cpu_before["wukong"]}  # fmt: skip
                if process.returncode != 0:
                    raise SystemExit(f"migration child failed ({process.returncode})")
                result = json.loads(out.decode().strip().splitlines()[-1])
                result.update(workers_started=count, killed=killed, emulator_cpu_seconds=cpu,
                              messages_per_second=result["messages"] / result["history_seconds"])  # fmt: skip
                runs.append(result)
            finally:
                target_process.kill()
                target_process.wait()
    finally:
        source_process.kill()
        source_process.wait()
    shutil.rmtree(work, ignore_errors=True)
    return {"size": messages, "seeded": seeded, "seed_seconds": round(seed_seconds, 1), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50000,200000")
    parser.add_argument("--workers", default="1,4", help="worker counts compared (the first is the baseline)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child-emulator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-migrate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_emulator:
        return child_emulator()
    if args.child_migrate:
        return child_migrate()
    counts = [int(n) for n in args.workers.split(",")]
    load = os.getloadavg()
    results = [run_size(int(n), counts) for n in args.sizes.split(",")]
    machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
               "processor": platform.processor() or platform.machine(),
               "load_before": [round(x, 2) for x in load],
               "load_after": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    summary: dict[str, Any] = {"machine": machine, "sizes": results}
    for size in results:
        base = size["runs"][0]["messages_per_second"]
        for run in size["runs"]:
            run["ratio_to_first"] = round(run["messages_per_second"] / base, 3)
    if len(results) >= 2:  # per-worker peak RSS, smallest size against largest
        small, large = results[0], results[-1]
        flat = {}
        for a, b in zip(small["runs"], large["runs"], strict=True):
            peaks_a = [w["peak_rss_mb"] for w in a["workers"] if w["peak_rss_mb"]]
            peaks_b = [w["peak_rss_mb"] for w in b["workers"] if w["peak_rss_mb"]]
            ratio = max(peaks_b) / max(peaks_a)
            flat[str(a["workers_started"])] = {"ratio": round(ratio, 3), "flat": ratio < 1.3}
        summary["memory"] = flat
    if args.json:
        print(json.dumps(summary, indent=2))
        return None
    print(f"machine: {machine}")
    print(f"{'messages':>9} {'workers':>7} {'migrated':>9} {'msg/s':>7} {'ratio':>6} {'wall s':>7} "
          f"{'verify':>15} {'emulator CPU s (T/W)':>21}  peak RSS per worker (MB)")  # fmt: skip
    for size in results:
        for run in size["runs"]:
            verify, cpu = run.get("verify"), run["emulator_cpu_seconds"]
            shown = "-" if verify is None else f"{verify['mismatch_count']} mismatches"
            peaks = ", ".join(f"{w['peak_rss_mb']:.1f}{'*' if 'killed' in w['state'] or 'dead' in w['state'] else ''}"
                              for w in run["workers"] if w["peak_rss_mb"])  # fmt: skip
            print(f"{size['size']:>9} {run['workers_started']:>7} {run['messages']:>9} "
                  f"{run['messages_per_second']:>7.0f} {run['ratio_to_first']:>6.2f} {run['seconds']:>7.1f} "
                  f"{shown:>15} {cpu['tencent']:>10.0f}/{cpu['wukong']:<10.0f}  {peaks}")  # fmt: skip
    print("(* the worker killed mid-run, as of its last heartbeat)")
    for workers, memory in (summary.get("memory") or {}).items():
        print(f"peak RSS per worker, largest/smallest size, {workers} worker(s): {memory['ratio']} "
              f"(flat: {memory['flat']})")  # fmt: skip
    return None


if __name__ == "__main__":
    main()
