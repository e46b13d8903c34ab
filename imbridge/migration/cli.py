"""``imbridge migrate plan|run|verify|status|report|replay-journal``.

Source and target are ordinary imbridge settings: the source from ``IMBRIDGE_TENCENT_*``, the target from
``IMBRIDGE_WUKONG_*`` (``.env`` honoured), each overridable by the ``[source]`` / ``[target]`` tables of a
TOML file given with ``--config``; its ``[options]`` table sets MigrationOptions fields. Keep secrets in the
environment rather than in that file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import sys
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import pydantic

from imbridge.config import TencentSettings, WukongSettings
from imbridge.errors import ConfigurationError
from imbridge.migration.pipeline import PHASES, Migration, MigrationOptions, summary_text
from imbridge.migration.progress import MODES
from imbridge.migration.verify import verify_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MISMATCH = 0, 1, 2, 4  # imbridge.cli.ExitCode, the README's table
#: A command stopped by a signal exits with 128 + its number, as a shell reports it.
EXIT_SIGNALLED = {"SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}

#: Commands that read a migration that exists: they never create a state file (a typo is an error).
READS_STATE = ("verify", "status", "report", "replay-journal")


def add_parser(commands: Any) -> None:
    """Add the ``migrate`` command group to the ``imbridge`` parser."""
    migrate = commands.add_parser("migrate", help="migrate Tencent IM -> WuKongIM (plan, run, verify, ...)")
    sub = migrate.add_subparsers(dest="migrate_command", required=True, metavar="SUBCOMMAND",
                                 help="which step of the migration")  # fmt: skip
    for name, text in (
        ("plan", "discover users, groups and one-to-one conversations; record the plan"),
        ("run", "run the phases (plans first if needed); resumable: run it again after any interruption"),
        ("verify", "compare source and target per group and per one-to-one pair; exit 4 on any difference"),
        ("status", "progress per phase, from the state database"),
        ("report", "the full report (plan, phases, timings, verify, notes)"),
        ("replay-journal", "replay the MirrorClient's journal of failed secondary writes"),
    ):
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--state", default="imbridge-migration.db",
                             help="the state database: a SQLite file (default imbridge-migration.db) or a "
                                  "postgresql://user:password@host/db URL (shared by workers on several hosts)"
                             + ("; it must exist" if name in READS_STATE else ""))  # fmt: skip
        command.add_argument("--config", help="TOML file with [source], [target] and [options] tables")
        command.add_argument("--progress", choices=MODES, default="auto",
                             help="auto: rich bars on a terminal, plain lines otherwise")  # fmt: skip
        if name in ("plan", "run"):
            command.add_argument("--users", help="file of user ids, one per line ('-' reads stdin)")
            command.add_argument("--concurrency", type=int,
                                 help="channels each worker process migrates at once (default 8)")  # fmt: skip
            command.add_argument("--revoked", choices=["revoke", "skip"], help="recalled messages (default revoke)")
            command.add_argument("--id-prefix", help="prefix for every target user and group id")
            command.add_argument("--as-of", help="migrate history up to this time (ISO 8601 or Unix seconds)")
            command.add_argument("--no-discover", action="store_true", help="do not read recent contacts")
            command.add_argument("--uncertain-wait", type=float,
                                 help="seconds before a message whose send may have landed is looked up again "
                                      "and sent only if absent (default 30)")  # fmt: skip
        if name == "run":
            command.add_argument("--phase", dest="phases", action="append", choices=PHASES,
                                 help="run only this phase (repeatable)")  # fmt: skip
            command.add_argument("--workers", type=int,
                                 help="worker processes on this host, sharing the work through the state database "
                                      "(default 1: this process)")  # fmt: skip
            command.add_argument("--join", action="store_true",
                                 help="take part in the run under way on another host (same --state, on "
                                      "PostgreSQL): no plan, no re-check; wait for the plan, then work")  # fmt: skip
            command.add_argument("--lease", type=float,
                                 help="seconds a dead worker's claims last before another takes them over "
                                      "(default 60)")  # fmt: skip
        if name == "verify":
            command.add_argument("--repair", action="store_true",
                                 help="queue again what verify finds missing or wrong, copy it (each message looked "
                                      "up first, so only what the target lacks), then verify again")  # fmt: skip
        command.set_defaults(handler=run_command)


def _read_users(path: str | None) -> list[str]:
    if not path:
        return []
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return datetime.fromisoformat(value).timestamp()


def _settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(source settings, target settings): the environment, then the config file's tables on top."""
    try:
        source = TencentSettings(**config.get("source", {}))
        target = WukongSettings(**config.get("target", {}))
    except pydantic.ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in error.errors())
        raise ConfigurationError(
            f"migration settings incomplete or invalid ({fields}): set IMBRIDGE_TENCENT_* and IMBRIDGE_WUKONG_* "
            "or give them in --config"
        ) from None
    return _fields(source), _fields(target)


def _fields(settings: pydantic.BaseModel) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in type(settings).model_fields}


def _options(args: argparse.Namespace, config: dict[str, Any]) -> MigrationOptions | None:
    values: dict[str, Any] = dict(config.get("options", {}))
    for name in ("workers", "concurrency", "lease", "revoked", "id_prefix", "uncertain_wait"):
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    if getattr(args, "as_of", None):
        values["as_of"] = _time(args.as_of)
    if getattr(args, "no_discover", False):
        values["discover_contacts"] = False
    return MigrationOptions(**values) if values else None


def run_command(args: argparse.Namespace, out: Any) -> int:
    command = args.migrate_command
    if command in READS_STATE and "://" not in args.state and not Path(args.state).is_file():
        # Opening it would create an empty state and report zeros: a mistyped --state must not look fine.
        raise ConfigurationError(
            f"no migration state at {args.state!r}: give the --state of a migration "
            "(`imbridge migrate plan` or `run` creates one)"
        )
    config: dict[str, Any] = {}
    if args.config:
        with open(args.config, "rb") as handle:
            config = tomllib.load(handle)
    if command in ("status", "report"):
        migration = Migration({}, {}, args.state)  # reads the state file only; no client is opened
        try:
            if command == "status":
                status = migration.status()
                out.emit(status, lambda: summary_text({**status, "notes": []}).rsplit("\nNotes:", 1)[0])
                return EXIT_OK
            report = migration.report()
            out.emit(report, lambda: summary_text(report))
            verify = report.get("verify")
            if verify is not None and not verify.get("ok"):
                return EXIT_MISMATCH
            return EXIT_OK if report["complete"] else EXIT_FAILED
        finally:
            migration.close()
    source, target = _settings(config)
    stored = _options(args, config)
    migration = Migration(source, target, args.state, stored, progress="none" if out.as_json else args.progress)
    try:
        with _sigterm_stops_like_sigint() as stopped:
            try:
                return _run(migration, args, out)
            except KeyboardInterrupt:
                migration.progress.close()
                print(_interrupted_text(migration, args, stopped["by"]), file=sys.stderr)
                return EXIT_SIGNALLED[stopped["by"]]
    finally:
        migration.progress.close()
        migration.close()


def _run(migration: Migration, args: argparse.Namespace, out: Any) -> int:
    command = args.migrate_command
    if command == "plan":
        plan = migration.plan(_read_users(args.users))
        out.emit(plan, lambda: "planned: " + ", ".join(f"{k} {v}" for k, v in plan.items() if k != "new_items"))
        return EXIT_OK
    if command == "run" and args.join:
        status = migration.join(args.phases or PHASES)
        migration.progress.close()
        report = migration.report()
        out.emit(report, lambda: summary_text(report))
        return EXIT_OK if status["complete"] else EXIT_FAILED
    if command == "run":
        status = migration.run(_read_users(args.users), args.phases or PHASES)
        migration.progress.close()
        report = migration.report()
        out.emit(report, lambda: summary_text(report))
        return EXIT_OK if status["complete"] else EXIT_FAILED
    if command == "verify" and args.repair:
        repaired = migration.repair()
        migration.progress.close()
        out.emit(repaired, lambda: repair_text(repaired))
        return EXIT_OK if repaired["ok"] else EXIT_MISMATCH
    if command == "verify":
        result = migration.verify()
        migration.progress.close()
        out.emit(result, lambda: verify_text(result))
        return EXIT_OK if result["ok"] else EXIT_MISMATCH
    result = migration.replay_journal()
    out.emit(result, lambda: f"journal: {result['replayed']} replayed, {result['pending']} still failing (retried "
             f"next time), {result['not_replayable']} cannot be replayed (kept, marked failed)"
             + "".join(f"\n  {e}" for e in result["errors"]))  # fmt: skip
    return EXIT_OK if not result["failed"] else EXIT_FAILED


def repair_text(result: dict[str, Any]) -> str:
    head = (f"Repair: {result['mismatches_before']} mismatches found; {result['requeued_groups']} groups and "
            f"{result['requeued_channels']} channels queued again and copied ({result['rounds']} rounds)")  # fmt: skip
    return head + "\n" + verify_text(result["verify"])


@contextlib.contextmanager
def _sigterm_stops_like_sigint() -> Iterator[dict[str, str]]:
    """SIGTERM stops the command the way Ctrl-C does: the running work is cancelled (asyncio's handler),
    each channel writes its checkpoint on the way out, and a KeyboardInterrupt reaches the caller."""
    stopped = {"by": "SIGINT"}

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stopped["by"] = "SIGTERM"
        handler = signal.getsignal(signal.SIGINT)  # asyncio's while a migration runs, else Python's default
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield stopped
        return
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted_text(migration: Migration, args: argparse.Namespace, by: str) -> str:
    """What was saved when a command was stopped, and the command that goes on from there."""
    command = args.migrate_command
    # a PostgreSQL URL is shown with its password masked (stderr may end up in a log)
    again = ["imbridge", "migrate", command, "--state", migration.state.path]
    if args.config:
        again += ["--config", args.config]
    for phase in getattr(args, "phases", None) or ():
        again += ["--phase", phase]
    if command == "verify":
        saved = "verify saves nothing before it ends; nothing was changed"
    elif command == "replay-journal":
        saved = "each replayed entry was marked as it went; the others are still pending"
    else:
        saved = _saved_text(migration)
    return f"imbridge: stopped by {by}. {saved}.\nResume with: {shlex.join(again)}"


def _saved_text(migration: Migration) -> str:
    if not migration.planned():
        groups, users = (migration.state.count(phase, "done") for phase in ("plan:groups", "plan:users"))
        return f"Saved in {migration.state.path}: the plan so far ({groups} groups read, {users} users' contacts read)"
    status = migration.status()
    phases = ", ".join(f"{phase} {counts['done']}/{sum(counts.values())}" for phase, counts in status["phases"].items())
    return (
        f"Saved in {migration.state.path}: the plan, and items done per phase: {phases} "
        f"({status['messages_migrated']} messages copied); a channel stopped midway resumes from its checkpoint"
    )


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)
