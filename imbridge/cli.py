"""The ``imbridge`` command.

Settings come from the environment exactly as ``IMClient.from_env()`` reads them (``IMBRIDGE_PROVIDER``
and ``IMBRIDGE_<PROVIDER>_*``, ``.env`` honoured); ``--provider`` overrides the provider's name.

Every command, and every subcommand added later through ``add_parser``, accepts the global options
(``--json``, ``--provider``) anywhere on its command line, and goes through one error handler: in JSON mode
an error is a JSON object on stderr (type, message, provider, code, exit_code). Exit codes (the README's
table): see :class:`ExitCode`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel

from imbridge._masking import mask_url
from imbridge.client import IMClient
from imbridge.errors import (
    ConfigurationError,
    IMBridgeError,
    InvalidRequestError,
    UnsupportedOperationError,
)
from imbridge.models import Conversation, Message
from imbridge.providers.base import Direction


class ExitCode(IntEnum):
    """What every ``imbridge`` command exits with."""

    OK = 0
    """It did what was asked."""
    FAILED = 1
    """The provider or the network failed, or a batch or a migration run finished with failed items."""
    USAGE = 2
    """Bad usage: an unknown option, an invalid argument or input, invalid settings, a missing state file."""
    UNSUPPORTED = 3
    """The provider does not support the operation (nothing was sent)."""
    MISMATCH = 4
    """A verification ran and found differences (``migrate verify``, ``migrate report`` after such a verify)."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT), as shells report it."""


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNSUPPORTED = ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.UNSUPPORTED
EXIT_MISMATCH, EXIT_INTERRUPTED = ExitCode.MISMATCH, ExitCode.INTERRUPTED


class UsageError(Exception):
    """The command line cannot be run as given (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """Every parser of the command line. Each one, subcommands included (``add_parser`` builds them with
    this class), takes the global options wherever they appear, and reports usage errors to :func:`main`
    instead of exiting, so that they come out in the chosen format with the exit code of the table."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SUPPRESS: a subcommand that is not given the option leaves the value its parent parsed.
        self.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                          help="print JSON: results on stdout, errors on stderr (anywhere on the command line)")
        self.add_argument("--provider", default=argparse.SUPPRESS, metavar="NAME",
                          help="provider name: local, tencent or wukong (default: IMBRIDGE_PROVIDER, else local)")

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def _positive_int(what: str, *, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, got {text!r}") from None
        if value < 1 or (maximum is not None and value > maximum):
            bound = f"from 1 to {maximum:,}" if maximum is not None else "of at least 1"
            raise argparse.ArgumentTypeError(f"{what} must be a number {bound}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, got {text!r}")
    return value


def _conversation(text: str) -> Conversation:
    kind, sep, ident = text.partition(":")
    if not sep or kind not in ("user", "group"):
        raise argparse.ArgumentTypeError(f"expected user:<id> or group:<id>, got {text!r}")
    try:
        return Conversation.user(ident) if kind == "user" else Conversation.group(ident)
    except InvalidRequestError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude={"raw"})
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _message_line(message: Message) -> str:
    stamp = message.time.strftime("%Y-%m-%d %H:%M:%S")
    if message.revoked:
        body = "(revoked)"
    else:
        body = " ".join(getattr(el, "text", None) or f"[{el.type}]" for el in message.elements)
    seq = f"#{message.seq} " if message.seq is not None else ""
    return f"{seq}{stamp} {message.sender}: {body}"


class Output:
    """Prints results as text for people or as JSON for programs (``--json``)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, value: Any, text: Callable[[], str]) -> None:
        print(json.dumps(_jsonable(value), ensure_ascii=False, indent=2) if self.as_json else text())


def _client(args: argparse.Namespace) -> IMClient:
    provider = getattr(args, "provider", None)
    if provider:
        os.environ["IMBRIDGE_PROVIDER"] = provider
    return IMClient.from_env()


def _masked(value: Any) -> Any:
    """Settings as doctor shows them: the password of any ``scheme://user:password@host`` URL replaced."""
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


def cmd_doctor(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        settings = _masked(im.describe())
        try:
            reachability = im.health()
        except IMBridgeError as error:
            reachability = f"unreachable: {error}"
        reachability = " ".join(mask_url(word) for word in reachability.split(" "))
        matrix = im.capabilities.as_table()
        report = {"settings": settings, "reachability": reachability, "capabilities": matrix}

        def text() -> str:
            lines = ["Settings in effect (secrets masked):"]
            lines += [f"  {key}: {value}" for key, value in settings.items()]
            lines += [f"Reachability: {reachability}", "Capabilities:"]
            lines += [f"  {row['operation']:<26} {row['support']:<12} {row['notes']}" for row in matrix]
            return "\n".join(lines)

        out.emit(report, text)
    return EXIT_OK


def _read_text(source: str) -> str:
    """The text of a file, or of standard input for ``-``, without one trailing newline."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the text from {source!r}: {exc}") from None
    return text[:-1] if text.endswith("\n") else text


def _message_text(args: argparse.Namespace) -> str:
    """``send``'s text: the words given, ``-`` (standard input), a single ``@path`` (a file; ``@@x`` is the
    text ``@x``), or ``--text-file``."""
    words: list[str] = args.text
    if args.text_file is not None:
        if words:
            raise UsageError("give the text either as arguments or with --text-file, not both")
        return _read_text(args.text_file)
    if not words:
        raise UsageError("no text: give it as arguments, '-' for standard input, '@path' or --text-file")
    if words == ["-"]:
        return _read_text("-")
    if len(words) == 1 and words[0].startswith("@"):
        return words[0][1:] if words[0].startswith("@@") else _read_text(words[0][1:])
    return " ".join(words)


def cmd_send(args: argparse.Namespace, out: Output) -> int:
    text = _message_text(args)
    with _client(args) as im:
        sent = im.messages.send(args.sender, args.to, text)
        out.emit(sent, lambda: f"sent {sent.ref} (seq {sent.seq})")
    return EXIT_OK


def cmd_history(args: argparse.Namespace, out: Output) -> int:
    direction = Direction.FORWARD if args.forward else Direction.BACKWARD
    with _client(args) as im:
        page = im.messages.history(
            args.conversation, args.viewer, limit=args.limit, cursor=args.cursor, direction=direction
        )

        def text() -> str:
            lines = [_message_line(message) for message in page.items] or ["(no messages)"]
            if page.next_cursor:
                lines.append(f"next page: --cursor {page.next_cursor}")
            return "\n".join(lines)

        out.emit({"items": page.items, "next_cursor": page.next_cursor}, text)
    return EXIT_OK


def cmd_users_register(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        result = im.users.register(args.user_ids)
        out.emit(result.items, lambda: "\n".join(f"{i.target}: {'ok' if i.ok else i.detail}" for i in result.items))
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_groups_create(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        group = im.groups.create(args.name, args.owner, args.members, group_id=args.group_id)
        out.emit(group, lambda: f"created group {group.id} ({group.name}), owner {group.owner}")
    return EXIT_OK


def cmd_groups_members(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        members = im.groups.members(args.group_id)

        def text() -> str:
            rows = []
            for member in members:
                muted = f"muted until {member.muted_until.isoformat()}" if member.muted_until else ""
                rows.append(f"{member.user_id:<24} {member.role.value:<7} {muted}")
            return "\n".join(rows)

        out.emit(members, text)
    return EXIT_OK


def cmd_groups_mute(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        im.groups.mute(args.group_id, args.user_ids, timedelta(seconds=args.duration))  # --duration: positive
        out.emit(
            {"muted": args.user_ids, "seconds": args.duration},
            lambda: f"muted {', '.join(args.user_ids)} for {args.duration} s",
        )
    return EXIT_OK


def cmd_groups_unmute(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        im.groups.unmute(args.group_id, args.user_ids)
        out.emit({"unmuted": args.user_ids}, lambda: f"unmuted {', '.join(args.user_ids)}")
    return EXIT_OK


def cmd_emulate(args: argparse.Namespace, out: Output) -> int:
    """Serve an emulator on 127.0.0.1 until interrupted, after printing how to point a client at it."""
    from imbridge.emulators import LoopbackServer

    emulator: Any
    secret: tuple[str, str, str, str] | None = None  # (variable, value, where it came from, option)
    if args.vendor == "tencent":
        from imbridge.emulators.tencent import TencentEmulator

        key_source = "--secret-key" if args.secret_key else "environment"
        key = args.secret_key or os.environ.get("IMBRIDGE_TENCENT_SECRET_KEY") or ""
        if not key:
            key, key_source = secrets.token_hex(32), "generated"
        app_id = args.sdk_app_id or int(os.environ.get("IMBRIDGE_TENCENT_SDK_APP_ID") or 1400000000)
        admin = args.admin or os.environ.get("IMBRIDGE_TENCENT_ADMIN") or "administrator"
        emulator = TencentEmulator(sdk_app_id=app_id, secret_key=key, admin=admin, store=args.store)
        settings = {"IMBRIDGE_TENCENT_SDK_APP_ID": str(app_id), "IMBRIDGE_TENCENT_ADMIN": admin}
        secret = ("IMBRIDGE_TENCENT_SECRET_KEY", key, key_source, "--secret-key")
    else:
        from imbridge.emulators.wukong import WukongEmulator

        token = args.manager_token or os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN") or ""
        emulator = WukongEmulator(manager_token=token or None, store=args.store)
        settings = {}
        if token:
            where = "--manager-token" if args.manager_token else "environment"
            secret = ("IMBRIDGE_WUKONG_MANAGER_TOKEN", token, where, "--manager-token")
    seeded = emulator.seed(args.seed) if args.seed else {}
    server = LoopbackServer(emulator, args.port)
    settings = {"IMBRIDGE_PROVIDER": args.vendor, f"IMBRIDGE_{args.vendor.upper()}_BASE_URL": server.url, **settings}
    # The secret is never printed: already known to the caller, or kept in a file only they can read.
    secret_note, secret_file = "", None
    if secret is not None:
        variable, value, source, option = secret
        if source == "generated":
            folder = Path(tempfile.mkdtemp(prefix="imbridge-emulator-"))
            secret_file = folder / variable.lower()
            secret_file.touch(mode=0o600)
            secret_file.write_text(value, encoding="utf-8")
            settings[variable] = f'"$(cat {secret_file})"'
        elif source == "environment":
            secret_note = f"{variable}: the value already in your environment"
        else:
            settings[variable] = f"<the value given with {option}>"

    def text() -> str:
        lines = [f"{args.vendor} emulator listening on {server.url} (Ctrl-C stops it)"]
        if seeded:
            lines.append("seeded: " + ", ".join(f"{count} {what}" for what, count in seeded.items()))
        lines.append("point a client at it with:")
        lines += [f"  export {name}={value}" for name, value in settings.items()]
        if secret_note:
            lines.append(f"  ({secret_note})")
        return "\n".join(lines)

    report = {"url": server.url, "seeded": seeded, "environment": settings,
              "secret_file": str(secret_file) if secret_file else None}  # fmt: skip
    out.emit(report, text)
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, out: Output) -> int:
    """The tour of the neutral API on the embedded provider, then the migration demo (either alone by flag)."""
    from imbridge.demo import run_local_tour

    if not args.migration_only:
        if not out.as_json:
            print("== Part 1: the neutral API on the embedded provider ==")
        code = run_local_tour(database=args.database, as_json=out.as_json)
        if code != EXIT_OK or args.tour:
            return code
        if not out.as_json:
            print("\n== Part 2: migrating a Tencent IM app to WuKongIM ==")
    from imbridge.migration.demo import run_migration_demo

    return run_migration_demo(state=args.state, progress=args.progress, as_json=out.as_json, workers=args.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="imbridge", description="One interface over Tencent IM, WuKongIM and local SQLite.")
    parser.set_defaults(json=False, provider=None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    doctor = commands.add_parser("doctor", help="settings in effect (secrets masked), reachability, capabilities")
    doctor.set_defaults(handler=cmd_doctor)

    send = commands.add_parser("send", help="send a text message")
    send.add_argument("--from", dest="sender", required=True, metavar="USER", help="the user id that sends")
    send.add_argument("--to", required=True, type=_conversation, metavar="CONVERSATION",
                      help="user:<id> or group:<id>")
    send.add_argument("text", nargs="*", help="the text (words joined by spaces); '-' reads standard input, a "
                      "single '@path' reads a file ('@@x' sends '@x')")
    send.add_argument("--text-file", metavar="PATH", help="read the text from this file ('-': standard input)")
    send.set_defaults(handler=cmd_send)

    history = commands.add_parser("history", help="one page of a conversation's history")
    history.add_argument("conversation", type=_conversation, help="user:<id> or group:<id>")
    history.add_argument("--viewer", required=True, metavar="USER",
                         help="whose view of the conversation (a member, for a group)")
    history.add_argument("--limit", type=_positive_int("--limit", maximum=200), default=20,
                         help="messages on the page, 1 to 200 (default 20)")
    history.add_argument("--cursor", help="the 'next page' cursor printed by the previous page")
    history.add_argument("--forward", action="store_true", help="oldest first (default: newest first)")
    history.set_defaults(handler=cmd_history)

    users = commands.add_parser("users", help="accounts").add_subparsers(
        dest="users_command", required=True, metavar="SUBCOMMAND", help="what to do with accounts"
    )
    register = users.add_parser("register", help="create accounts (existing ones are left as they are)")
    register.add_argument("user_ids", nargs="+", metavar="USER", help="user ids to register")
    register.set_defaults(handler=cmd_users_register)

    groups = commands.add_parser("groups", help="groups and members").add_subparsers(
        dest="groups_command", required=True, metavar="SUBCOMMAND", help="what to do with groups"
    )
    create = groups.add_parser("create", help="create a group")
    create.add_argument("name", help="the group's name")
    create.add_argument("--owner", required=True, metavar="USER", help="the user id that owns the group")
    create.add_argument("--member", dest="members", action="append", default=[], metavar="USER",
                        help="a first member (repeatable)")
    create.add_argument("--id", dest="group_id", help="the group id to use (default: the provider picks one)")
    create.set_defaults(handler=cmd_groups_create)
    members = groups.add_parser("members", help="members with their roles and mutes")
    members.add_argument("group_id", help="the group id")
    members.set_defaults(handler=cmd_groups_members)
    mute = groups.add_parser("mute", help="stop members from sending for a while")
    mute.add_argument("group_id", help="the group id")
    mute.add_argument("user_ids", nargs="+", metavar="USER", help="members to mute")
    mute.add_argument("--duration", type=_positive_int("--duration"), default=3600, metavar="SECONDS",
                      help="how long, in seconds (default 3600)")
    mute.set_defaults(handler=cmd_groups_mute)
    unmute = groups.add_parser("unmute", help="let muted members send again")
    unmute.add_argument("group_id", help="the group id")
    unmute.add_argument("user_ids", nargs="+", metavar="USER", help="members to unmute")
    unmute.set_defaults(handler=cmd_groups_unmute)

    emulate = commands.add_parser("emulate", help="serve an emulator of a vendor's REST API on 127.0.0.1")
    emulate.add_argument("vendor", choices=["tencent", "wukong"], help="whose API to emulate")
    emulate.add_argument("--port", type=_port, default=0, help="default: a free port")
    emulate.add_argument("--seed", choices=["small", "demo"], help="fill it with a realistic dataset")
    emulate.add_argument("--store", default=":memory:", help="SQLite file for the emulator's state")
    emulate.add_argument("--sdk-app-id", type=_positive_int("--sdk-app-id"),
                         help="tencent: default IMBRIDGE_TENCENT_SDK_APP_ID or 1400000000")
    emulate.add_argument("--secret-key", help="tencent: default IMBRIDGE_TENCENT_SECRET_KEY or a random key "
                         "(never printed: a generated one is written to a file only you can read)")
    emulate.add_argument("--admin", help="tencent: default IMBRIDGE_TENCENT_ADMIN or administrator")
    emulate.add_argument("--manager-token", help="wukong: require this token (default IMBRIDGE_WUKONG_MANAGER_TOKEN)")
    emulate.set_defaults(handler=cmd_emulate)

    demo = commands.add_parser(
        "demo", help="a tour of the neutral API on local, then a Tencent IM -> WuKongIM migration, verified"
    )
    only = demo.add_mutually_exclusive_group()
    only.add_argument("--tour", action="store_true", help="only the tour of the neutral API on the local provider")
    only.add_argument("--migration-only", action="store_true", help="only the migration demo")
    demo.add_argument("--database", default=":memory:", help="--tour: SQLite file to keep its data (default: memory)")
    demo.add_argument("--state", help="migration state database (default: a temporary directory)")
    demo.add_argument("--progress", choices=["auto", "rich", "plain", "json", "none"], default="auto",
                      help="how progress is shown (default: rich bars on a terminal, plain lines otherwise)")
    demo.add_argument("--workers", type=_positive_int("--workers"), default=8, help="channels migrated at once")
    demo.set_defaults(handler=cmd_demo)

    from imbridge.migration.cli import add_parser as add_migrate

    add_migrate(commands)
    return parser


def _error_report(error: BaseException, code: int) -> dict[str, Any]:
    if isinstance(error, IMBridgeError):
        return {"type": type(error).__name__, "message": error.message, "provider": error.provider,
                "code": error.native_code, "exit_code": code}  # fmt: skip
    return {"type": type(error).__name__, "message": str(error), "provider": None, "code": None, "exit_code": code}


def _exit_code(error: BaseException) -> int:
    if isinstance(error, UsageError | ConfigurationError | InvalidRequestError):
        return ExitCode.USAGE
    if isinstance(error, UnsupportedOperationError):
        return ExitCode.UNSUPPORTED
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.FAILED


def _fail(error: BaseException, as_json: bool) -> int:
    """Report ``error`` on stderr, as JSON in JSON mode, and give its exit code."""
    code = _exit_code(error)
    if as_json:
        print(json.dumps({"error": _error_report(error, code)}, ensure_ascii=False, default=str), file=sys.stderr)
    elif isinstance(error, UsageError):
        print(f"imbridge: {error}", file=sys.stderr)
    elif isinstance(error, UnsupportedOperationError):
        print(f"imbridge: unsupported: {error}", file=sys.stderr)
    elif isinstance(error, ConfigurationError | InvalidRequestError):
        print(f"imbridge: {error}", file=sys.stderr)
    elif isinstance(error, KeyboardInterrupt):
        print("imbridge: interrupted", file=sys.stderr)
    else:
        print(f"imbridge: {type(error).__name__}: {error}", file=sys.stderr)
    return int(code)


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` is on the command line (before a ``--``): known even when parsing fails."""
    options = list(argv)[: list(argv).index("--")] if "--" in argv else argv
    return "--json" in options


def _silence_stdout() -> None:
    """After the reader of our output went away (``| head``): send what is left to /dev/null, so that
    Python's flush at exit does not complain either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (captured output)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code follows :class:`ExitCode` for every command."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(arguments)
    try:
        try:
            args = build_parser().parse_args(arguments)
            as_json = bool(args.json)
            handler: Callable[[argparse.Namespace, Output], int] = args.handler
            code = int(handler(args, Output(as_json)))
            sys.stdout.flush()
            return code
        except (UsageError, IMBridgeError, KeyboardInterrupt) as error:
            return _fail(error, as_json)
    except BrokenPipeError:
        _silence_stdout()
        return int(ExitCode.OK)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
