"""``imbridge demo``: a seeded Tencent IM emulator migrated to WuKongIM, verified, and the report printed.

The target is an in-process WuKongIM emulator, or a real WuKongIM when ``IMBRIDGE_WUKONG_BASE_URL`` is set
(``IMBRIDGE_WUKONG_MANAGER_TOKEN`` for its token); on a real server every id gets a fresh prefix, so the
demo never touches data already there. Its files live in a temporary directory removed at the end; only a
state file asked for with ``--state`` is kept.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from imbridge.config import WukongSettings
from imbridge.migration.pipeline import Migration, MigrationOptions, summary_text
from imbridge.migration.progress import make_progress

#: Extra runs when the first one left failed items (a loaded WuKongIM may fail to store a message).
RESUME_PASSES = 2
#: What the demo's time depends on (measured on a 2-core machine; see the README).
DURATION_NOTE = (
    "It takes about a minute: the emulators and the migration share this one Python process, so the time "
    "follows the free CPU (about 35 s on 2 idle cores, 55-80 s beside other work); with a real WuKongIM "
    "target, that server's speed counts too (each message is confirmed by a lookup there: about 135 s "
    "measured against WuKongIM v2.2.5 on the same 2 cores)."
)
EXIT_INTERRUPTED = 130


def run_migration_demo(
    *, state: str | None = None, progress: str = "auto", as_json: bool = False, workers: int = 8, seed: str = "demo"
) -> int:
    """Seed, migrate, verify, report. Returns 0 when verify finds zero mismatches. Nothing is left on disk
    but the state file ``state`` when one is given."""
    say = (lambda _text: None) if as_json else print
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="imbridge-demo-") as scratch:
        try:
            report = _migrate(Path(scratch), state, progress, as_json, workers, seed, say)
        except KeyboardInterrupt:
            say(
                "\nDemo interrupted; its temporary files are removed"
                + (f" (the state file {state} stays)." if state else ".")
            )
            return EXIT_INTERRUPTED
    report["demo_seconds"] = round(time.monotonic() - started, 1)
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    else:
        print()
        print(summary_text(report))
        print(f"Demo finished in {report['demo_seconds']} s.")
        if state:
            print(f"`imbridge migrate report --state {state}` shows this report again. The demo's emulators ran "
                  "inside this process and are gone, so this migration cannot be run or verified again; "
                  "`imbridge demo` starts a new one.")  # fmt: skip
        else:
            print("Nothing is left on disk (the demo worked in a temporary directory, now removed); `imbridge demo "
                  "--state FILE` keeps the migration's state, for `imbridge migrate report --state FILE`.")  # fmt: skip
    verify = report.get("verify") or {}
    return 0 if verify.get("ok") and report.get("complete") else 1


def _migrate(workdir: Path, state: str | None, progress: str, as_json: bool, workers: int, seed: str,
             say: Any) -> dict[str, Any]:  # fmt: skip
    from imbridge.emulators.tencent import TencentEmulator
    from imbridge.emulators.wukong import WukongEmulator

    state_path = state or str(workdir / "migration.db")
    key = secrets.token_hex(32)  # a throwaway key: the emulator and the client share it, nothing else does
    tencent = TencentEmulator(secret_key=key, store=str(workdir / "tencent.db"))
    wukong: WukongEmulator | None = None
    migration: Migration | None = None
    try:
        counts = tencent.seed(seed)
        say(f"Seeded a Tencent IM emulator: {counts['users']} users, {counts['groups']} groups "
            f"({counts['members']} memberships, {counts['mutes']} member mutes, one group muted as a whole), "
            f"{counts['messages']} messages over the last days ({counts['group_messages']} in groups, "
            f"{counts['c2c_messages']} one-to-one, {counts['revoked']} recalled).")  # fmt: skip
        # Tencent has no API that lists accounts: an app migrates the user list it keeps itself.
        app_users = [uid for uid in tencent.store.user_ids() if uid != tencent.admin]
        source: dict[str, Any] = {
            "sdk_app_id": tencent.sdk_app_id, "secret_key": key, "base_url": "http://tencent-emulator.invalid",
            "profile_custom_keys": ["Level"], "http_client": httpx.AsyncClient(transport=tencent.transport()),
        }  # fmt: skip
        real = os.environ.get("IMBRIDGE_WUKONG_BASE_URL")
        options = MigrationOptions(concurrency=workers)
        if real:
            settings = WukongSettings()  # the environment: base URL and manager token
            target: dict[str, Any] = {name: getattr(settings, name) for name in type(settings).model_fields}
            target["store"] = str(workdir / "wukong-store.db")
            options.id_prefix = f"demo{secrets.token_hex(3)}_"
            say(f"Target: the WuKongIM server at {real} (ids prefixed {options.id_prefix!r}).")
        else:
            wukong = WukongEmulator(store=str(workdir / "wukong.db"))
            target = {"base_url": "http://wukong-emulator.invalid", "store": str(workdir / "wukong-store.db"),
                      "http_client": httpx.AsyncClient(transport=wukong.transport())}  # fmt: skip
            say("Target: an in-process WuKongIM v2.2.5 emulator (set IMBRIDGE_WUKONG_BASE_URL for a real server).")
        say(DURATION_NOTE)
        say(f"State database: {state_path}" + ("" if state else " (temporary)"))
        migration = Migration(source, target, state_path, options,
                              progress=make_progress("none" if as_json else progress))  # fmt: skip
        status = migration.run(app_users)
        for _ in range(RESUME_PASSES):
            if status["complete"]:
                break
            # What a user does after a failure: run again. Finished items are skipped, failed channels
            # resume from their checkpoint, and each message is looked up before it is sent again.
            say(f"Not complete ({len(migration.failures())} items failed, e.g. {migration.failures(1)}); "
                "running the migration again to resume.")  # fmt: skip
            status = migration.run()
        migration.verify()
        migration.progress.close()
        return migration.report()
    finally:
        if migration is not None:
            migration.progress.close()
            migration.close()
        tencent.close()
        if wukong is not None:
            wukong.close()
