"""Migration throughput and memory: ``python benchmarks/migration.py`` (one command).

For each size (10,000 and 100,000 messages by default) it seeds a Tencent IM emulator, serves it and a
WuKongIM emulator on 127.0.0.1 from this process, and runs the migration in a child process, which reports
its messages/s and its own peak RSS (``VmHWM``). In the same run, another child posts the same sends
(the migrated payloads and senders, read back from the target beforehand, untimed) to the same target with
plain ``httpx`` and the same concurrency: the target's raw ingest rate, the ceiling the migration works under.
Memory must stay flat: the larger run's peak below 1.3x the smaller's.

``--wukong-url`` (and ``IMBRIDGE_WUKONG_MANAGER_TOKEN``) migrates into a real WuKongIM instead (fresh id
prefix per run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

WORKERS = 8


def _size(messages: int) -> Any:
    from imbridge.emulators._tencent_seed import SeedSize

    return SeedSize(users=200, groups=20, messages=messages, days=5, members=(8, 40), contacts=5, group_share=0.7)


def _seed(emulator: Any, messages: int) -> dict[str, int]:
    seeded: dict[str, int] = emulator.seed(_size(messages))
    return seeded


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: Linux carries that across fork+exec,
    so a child would report the parent's size at fork (here, the parent holds the seeded emulators)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


# -- children ---------------------------------------------------------------------------------------------


def child_migrate(args: argparse.Namespace) -> None:
    from imbridge.migration import Migration, MigrationOptions

    users = Path(args.users).read_text().split()
    started = time.monotonic()
    migration = Migration(
        json.loads(args.source), json.loads(args.target), args.state,
        MigrationOptions(workers=WORKERS, id_prefix=args.prefix),
    )  # fmt: skip
    status = migration.run(users)
    elapsed = time.monotonic() - started
    timings = migration.state.get_meta("timings")
    migration.close()
    print(json.dumps({
        "complete": status["complete"], "messages": status["messages_migrated"], "seconds": elapsed,
        "history_seconds": timings["history"]["seconds"],
        "peak_rss_mb": _peak_rss_mb(),
    }))  # fmt: skip


async def _raw(args: argparse.Namespace) -> dict[str, Any]:
    """Read the migrated sends back (untimed), then post them again to fresh channels, timed."""
    from imbridge.migration.ids import split_channel, target_id
    from imbridge.migration.state import StateDB

    state = StateDB(args.state)
    headers = {"Content-Type": "application/json"}
    if args.token:
        headers["token"] = args.token
    sends: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=30) as client:
        for channel in state.keys("history"):
            kind, a, b = split_channel(channel)
            channel_id = target_id(a if kind == "group" else b, args.prefix)
            body = {"login_uid": target_id(a, args.prefix), "channel_id": channel_id,
                    "channel_type": 2 if kind == "group" else 1, "start_message_seq": 1, "end_message_seq": 0,
                    "limit": 10000, "pull_mode": 1}  # fmt: skip
            reply = (await client.post("/channel/messagesync", json=body)).json()
            for row in reply.get("messages") or []:
                sends.append({"header": {"red_dot": 1}, "client_msg_no": secrets.token_hex(16),
                              "from_uid": row["from_uid"], "channel_id": f"raw{args.run}_{channel_id[:40]}",
                              "channel_type": 2, "payload": row["payload"]})  # fmt: skip
        queue = iter(sends)
        started = time.monotonic()

        async def worker() -> None:
            for body in queue:
                response = await client.post("/message/send", content=json.dumps(body).encode())
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        elapsed = time.monotonic() - started
    return {"posts": len(sends), "seconds": elapsed, "posts_per_second": len(sends) / elapsed if elapsed else 0}


def child_raw(args: argparse.Namespace) -> None:
    print(json.dumps(asyncio.run(_raw(args))))


# -- parent -----------------------------------------------------------------------------------------------


def _child(*argv: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_size(messages: int, wukong_url: str | None, token: str) -> dict[str, Any]:
    from imbridge.emulators import serve
    from imbridge.emulators.tencent import TencentEmulator
    from imbridge.emulators.wukong import WukongEmulator

    work = Path(tempfile.mkdtemp(prefix=f"imbridge-bench-{messages}-"))
    key = secrets.token_hex(32)
    # The benchmark measures the migration, not Tencent's quotas: the emulator's limits are lifted and the
    # client paces at 1,000/s per command instead of the documented 200/s.
    tencent = TencentEmulator(secret_key=key, store=str(work / "tencent.db"), rate_limits={"*": 100_000.0})
    seeded = _seed(tencent, messages)
    users = work / "users.txt"
    users.write_text("\n".join(uid for uid in tencent.store.user_ids() if uid != tencent.admin))
    wukong = None if wukong_url else WukongEmulator(store=str(work / "wukong.db"))
    prefix = f"b{secrets.token_hex(3)}_" if wukong_url else ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMBRIDGE_")}
    with serve(tencent) as source_server:
        server = serve(wukong) if wukong is not None else None
        target_url = wukong_url or server.__enter__().url  # type: ignore[union-attr]
        try:
            paced = dict.fromkeys(("group_msg_get_simple", "admin_getroammsg", "get_list"), 1000)
            source = {"sdk_app_id": tencent.sdk_app_id, "secret_key": key, "base_url": source_server.url,
                      "rate_limits": paced}  # fmt: skip
            target = {"base_url": target_url, "store": str(work / "imbridge-wukong.db")}
            if token:
                target["manager_token"] = token
            state = str(work / "state.db")
            migrated = _child("--child-migrate", "--source", json.dumps(source), "--target", json.dumps(target),
                              "--state", state, "--users", str(users), "--prefix", prefix, env=env)  # fmt: skip
            raw = _child("--child-raw", "--url", target_url, "--state", state, "--prefix", prefix,
                         "--token", token, "--run", secrets.token_hex(2), env=env)  # fmt: skip
        finally:
            if server is not None:
                server.__exit__(None, None, None)
    tencent.close()
    if wukong is not None:
        wukong.close()
    shutil.rmtree(work, ignore_errors=True)
    return {"size": messages, "seeded": seeded, "migration": migrated, "raw_ingest": raw,
            "messages_per_second": migrated["messages"] / migrated["history_seconds"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--wukong-url", help="a real WuKongIM (default: an emulator served by this process)")
    parser.add_argument("--json", action="store_true")
    for name in ("--child-migrate", "--child-raw"):
        parser.add_argument(name, action="store_true", help=argparse.SUPPRESS)
    for name in ("--source", "--target", "--state", "--users", "--prefix", "--url", "--token", "--run"):
        parser.add_argument(name, default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_migrate:
        return child_migrate(args)
    if args.child_raw:
        return child_raw(args)
    token = os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN", "") if args.wukong_url else ""
    results = [run_size(int(n), args.wukong_url, token) for n in args.sizes.split(",")]
    machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
               "processor": platform.processor() or platform.machine()}  # fmt: skip
    summary = {"machine": machine, "target": args.wukong_url or "WuKongIM emulator (loopback)", "runs": results}
    if len(results) >= 2:
        small, large = results[0]["migration"]["peak_rss_mb"], results[-1]["migration"]["peak_rss_mb"]
        summary["memory_ratio"] = round(large / small, 3)
        summary["memory_flat"] = large < 1.3 * small
    if args.json:
        print(json.dumps(summary, indent=2))
        return None
    print(f"machine: {machine}; target: {summary['target']}")
    print(f"{'messages':>9} {'migrated':>9} {'msg/s':>8} {'wall s':>7} {'peak RSS MB':>12} {'raw posts/s':>12}")
    for r in results:
        m = r["migration"]
        print(f"{r['size']:>9} {m['messages']:>9} {r['messages_per_second']:>8.0f} {m['seconds']:>7.1f} "
              f"{m['peak_rss_mb']:>12.1f} {r['raw_ingest']['posts_per_second']:>12.0f}")  # fmt: skip
    if "memory_ratio" in summary:
        print(f"peak RSS ratio large/small: {summary['memory_ratio']} (flat: {summary['memory_flat']})")
    return None


if __name__ == "__main__":
    main()
