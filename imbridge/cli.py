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
import re
import secrets
import signal
import sys
import tempfile
import threading
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
from imbridge.models import Conversation, DeviceKind, Message
from imbridge.models.health import Health
from imbridge.models.maintenance import MaintenanceReport
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
    """Stopped by Ctrl-C (SIGINT), as shells report it (128 + the signal's number)."""
    TERMINATED = 143
    """Stopped by SIGTERM (``migrate``, after saving what it did and saying how to resume)."""


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


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


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
        return _masked_text(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


_URL_WITH_USER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s\"'@]*@[^\s\"']*")


def _masked_text(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` in it replaced by ``***``."""
    return _URL_WITH_USER.sub(lambda match: mask_url(match.group(0)), text)


def cmd_doctor(args: argparse.Namespace, out: Output) -> int:
    """Settings, health and capabilities; exit 1 when the server is unreachable or refuses the credentials."""
    with _client(args) as im:
        settings = _masked(im.describe())
        health: Health | None
        try:
            health = im.health(timeout=args.timeout)
        except UnsupportedOperationError:
            health = None  # a third-party provider without a check: nothing to judge
        matrix = im.capabilities.as_table()
        report = _masked({
            "settings": settings,
            "health": health.model_dump(mode="json") if health is not None else None,
            "capabilities": matrix,
        })  # fmt: skip

        def text() -> str:
            lines = ["Settings in effect (secrets masked):"]
            lines += [f"  {key}: {value}" for key, value in settings.items()]
            lines.append(f"Health: {health}" if health is not None else "Health: this provider has no check")
            if health is not None:
                lines += [f"  warning: {warning}" for warning in health.warnings]
                lines += [f"  {key}: {value}" for key, value in health.details.items()]
            lines.append("Capabilities:")
            lines += [f"  {row['operation']:<26} {row['support']:<12} {row['notes']}" for row in matrix]
            return _masked_text("\n".join(lines))  # a URL's password, wherever the health details show one

        out.emit(report, text)
    return EXIT_FAILED if health is not None and not health.ok else EXIT_OK


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
                muted = ""
                if member.muted:
                    muted = f"muted until {member.muted_until.isoformat()}" if member.muted_until else "muted (no end)"
                card = f"[{member.name_card}] " if member.name_card else ""
                rows.append(f"{member.user_id:<24} {member.role.value:<7} {card}{muted}".rstrip())
            return "\n".join(rows)

        out.emit(members, text)
    return EXIT_OK


def cmd_groups_mute(args: argparse.Namespace, out: Output) -> int:
    seconds = None if args.forever else args.duration
    with _client(args) as im:
        im.groups.mute(args.group_id, args.user_ids, timedelta(seconds=seconds) if seconds is not None else None)
        out.emit(
            {"muted": args.user_ids, "seconds": seconds},
            lambda: f"muted {', '.join(args.user_ids)} " + (f"for {seconds} s" if seconds else "until unmuted"),
        )
    return EXIT_OK


def cmd_groups_unmute(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        im.groups.unmute(args.group_id, args.user_ids)
        out.emit({"unmuted": args.user_ids}, lambda: f"unmuted {', '.join(args.user_ids)}")
    return EXIT_OK


def cmd_conversations_list(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        page = im.conversations.list(args.user, limit=args.limit, cursor=args.cursor)

        def text() -> str:
            lines = []
            for summary in page.items:
                flags = "".join(mark for mark, on in (("pinned ", summary.pinned), ("muted ", summary.muted)) if on)
                last = _message_line(summary.last_message) if summary.last_message else "(no message)"
                lines.append(f"{summary.conversation!s:<32} {summary.unread:>4} unread  {flags}{last}")
            lines = lines or ["(no conversations)"]
            if page.next_cursor:
                lines.append(f"next page: --cursor {page.next_cursor}")
            return "\n".join(lines)

        out.emit({"items": page.items, "next_cursor": page.next_cursor}, text)
    return EXIT_OK


def _report_line(report: MaintenanceReport) -> str:
    stamp = report.finished_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not report.ran:
        return f"{stamp} skipped: {report.lease_holder or 'another worker'} holds the lease"
    parts = [f"lifted {len(report.lifted_mutes)} mute(s)"]
    parts += [f"{m.group_id}: {m.user_id} (ended {m.muted_until:%H:%M:%S})" for m in report.lifted_mutes[:10]]
    if report.restored_mutes:
        parts.append(f"kept {len(report.restored_mutes)} muted again meanwhile")
    parts += [f"FAILED {f.group_id} {', '.join(f.user_ids)}: {f.error}" for f in report.failures]
    if report.next_due_at is not None:
        parts.append(f"next due {report.next_due_at:%Y-%m-%dT%H:%M:%SZ}")
    parts += report.notes
    return f"{stamp} " + "; ".join(parts)


def cmd_worker(args: argparse.Namespace, out: Output) -> int:
    """Run due work (``im.maintenance.run_due``) every ``--interval`` seconds until SIGTERM or Ctrl-C."""
    with _client(args) as im:
        if args.once:
            report = im.maintenance.run_due(lease=args.lease)
            out.emit(report, lambda: _report_line(report))
            return EXIT_FAILED if report.failures else EXIT_OK

        def emit(value: BaseModel | dict[str, Any], text: str) -> None:
            line = json.dumps(_jsonable(value), ensure_ascii=False) if out.as_json else text
            print(line, flush=True)

        def on_report(report: MaintenanceReport) -> None:
            if report.did_work or args.verbose:
                emit(report, _report_line(report))

        def on_error(error: IMBridgeError) -> None:
            emit({"error": f"{type(error).__name__}: {error}"}, f"run failed (tried again later): {error}")

        health = im.health()
        if not health.ok:
            emit({"health": health.model_dump(mode="json")}, f"warning: {health} (the worker keeps trying)")
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        emit(
            {"started": im.maintenance.worker, "provider": im.provider_name, "interval": args.interval},
            f"imbridge worker: {im.provider_name}, due work every {args.interval:g} s as {im.maintenance.worker} "
            "(SIGTERM or Ctrl-C stops it)",
        )
        try:
            im.maintenance.run_forever(
                args.interval, stop=stop, on_report=on_report, on_error=on_error, lease=args.lease
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return EXIT_OK


# -- member administration, presence and sessions (issue 17) ------------------------------------------


def cmd_users_presence(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        presence = im.users.presence(args.user_ids)

        def text() -> str:
            rows = []
            for item in presence:
                kinds = ", ".join(sorted(kind.value for kind in item.device_kinds()))
                rows.append(f"{item.user_id:<24} {item.state.value}" + (f" ({kinds})" if kinds else ""))
            return "\n".join(rows)

        out.emit(presence, text)
    return EXIT_OK


def cmd_users_kick(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        im.users.kick(args.user_id, device=args.device)
        where = f"{args.device} devices" if args.device else "every device"
        out.emit({"kicked": args.user_id, "device": args.device}, lambda: f"kicked {args.user_id} off {where}")
    return EXIT_OK


def cmd_groups_role(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        im.groups.set_role(args.group_id, args.user_id, args.role)
        out.emit({"group": args.group_id, "user": args.user_id, "role": args.role},
                 lambda: f"{args.user_id} is now {args.role} of {args.group_id}")  # fmt: skip
    return EXIT_OK


def cmd_groups_transfer(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as im:
        im.groups.transfer_owner(args.group_id, args.user_id)
        out.emit({"group": args.group_id, "owner": args.user_id},
                 lambda: f"{args.user_id} now owns {args.group_id}")  # fmt: skip
    return EXIT_OK


def _add_admin_commands(users: Any, groups: Any) -> None:
    presence = users.add_parser("presence", help="who is online, on which kinds of device")
    presence.add_argument("user_ids", nargs="+", metavar="USER", help="user ids to look up")
    presence.set_defaults(handler=cmd_users_presence)
    kick = users.add_parser("kick", help="end a user's sessions (every device unless --device)")
    kick.add_argument("user_id", metavar="USER", help="the user id whose sessions end")
    kick.add_argument("--device", choices=[kind.value for kind in DeviceKind], help="only sessions of this kind")
    kick.set_defaults(handler=cmd_users_kick)
    role = groups.add_parser("role", help="make a member an admin or a plain member")
    role.add_argument("group_id", help="the group id")
    role.add_argument("user_id", metavar="USER", help="the member")
    role.add_argument("role", choices=["admin", "member"], help="the member's new role")
    role.set_defaults(handler=cmd_groups_role)
    transfer = groups.add_parser("transfer", help="make a member the owner (the old owner stays a member)")
    transfer.add_argument("group_id", help="the group id")
    transfer.add_argument("user_id", metavar="USER", help="the member who becomes the owner")
    transfer.set_defaults(handler=cmd_groups_transfer)


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
        emulator = TencentEmulator(sdk_app_id=app_id, secret_key=key, admin=admin, store=args.store,
                                   callback=args.callback_url, callback_token=args.callback_token)  # fmt: skip
        settings = {"IMBRIDGE_TENCENT_SDK_APP_ID": str(app_id), "IMBRIDGE_TENCENT_ADMIN": admin}
        secret = ("IMBRIDGE_TENCENT_SECRET_KEY", key, key_source, "--secret-key")
    else:
        from imbridge.emulators.wukong import WukongEmulator

        token = args.manager_token or os.environ.get("IMBRIDGE_WUKONG_MANAGER_TOKEN") or ""
        emulator = WukongEmulator(manager_token=token or None, store=args.store, webhook=args.callback_url)
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


def cmd_listen(args: argparse.Namespace, out: Output) -> int:
    """Serve an EventReceiver built from the environment until interrupted, printing each event."""
    from imbridge.events import BaseEvent, EventReceiver
    from imbridge.events.devserver import DevServer

    receiver = EventReceiver.from_env(args.provider)

    @receiver.on()
    def show(event: BaseEvent) -> None:
        line = event.model_dump(mode="json") if out.as_json else None
        print(json.dumps(line, ensure_ascii=False) if line is not None else _event_line(event), flush=True)

    server = DevServer(receiver, host=args.host, port=args.port, record=args.record)
    if not out.as_json:
        print(f"{receiver.provider} event receiver on {server.url} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return EXIT_OK


def _event_line(event: Any) -> str:
    details = {k: v for k, v in event.model_dump(mode="json", exclude={"raw", "provider", "received_at"}).items()
               if v not in (None, [], {}, "")}  # fmt: skip
    kind, event_id = details.pop("kind"), details.pop("event_id")
    message = details.pop("message", None)
    if message is not None:
        details["from"] = message["sender"]
        details["to"] = f"{message['conversation']['kind']}:{message['conversation']['id']}"
        details["content"] = [element.get("text") or element["type"] for element in message["elements"]]
    return f"{kind} {event_id} " + json.dumps(details, ensure_ascii=False)


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

    return run_migration_demo(state=args.state, progress=args.progress, as_json=out.as_json, workers=args.concurrency)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="imbridge", description="One interface over Tencent IM, WuKongIM and local SQLite.")
    parser.set_defaults(json=False, provider=None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    doctor = commands.add_parser(
        "doctor", help="settings in effect (secrets masked), health, capabilities; exit 1 if the server is not ok"
    )
    doctor.add_argument("--timeout", type=_positive, help="seconds for the health check (default: the client's)")
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

    conversations = commands.add_parser("conversations", help="a user's conversations").add_subparsers(
        dest="conversations_command", required=True, metavar="SUBCOMMAND", help="what to do with conversations"
    )
    listing = conversations.add_parser("list", help="one page of a user's conversations, newest activity first")
    listing.add_argument("user", help="whose conversations")
    listing.add_argument("--limit", type=_positive_int("--limit"), default=20,
                         help="conversations on the page (default 20)")
    listing.add_argument("--cursor", help="the 'next page' cursor printed by the previous page")
    listing.set_defaults(handler=cmd_conversations_list)

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
    mute = groups.add_parser("mute", help="stop members from sending, for a while or until unmuted")
    mute.add_argument("group_id", help="the group id")
    mute.add_argument("user_ids", nargs="+", metavar="USER", help="members to mute")
    mute.add_argument("--duration", type=_positive_int("--duration"), default=3600, metavar="SECONDS",
                      help="how long, in seconds (default 3600)")
    mute.add_argument("--forever", action="store_true", help="until unmuted (no --duration)")
    mute.set_defaults(handler=cmd_groups_mute)
    unmute = groups.add_parser("unmute", help="let muted members send again")
    unmute.add_argument("group_id", help="the group id")
    unmute.add_argument("user_ids", nargs="+", metavar="USER", help="members to unmute")
    unmute.set_defaults(handler=cmd_groups_unmute)
    _add_admin_commands(users, groups)

    worker = commands.add_parser(
        "worker",
        help="run due work on the server (e.g. end WuKongIM timed mutes) on a schedule; safe on every instance",
    )
    worker.add_argument("--interval", type=_positive, default=30.0, help="seconds between runs (default 30)")
    worker.add_argument("--lease", type=_positive, default=60.0, help="seconds a run may hold the store's lease")
    worker.add_argument("--once", action="store_true", help="one run, print its report, exit (1 if anything failed)")
    worker.add_argument("--verbose", action="store_true", help="print every run, also those that did nothing")
    worker.set_defaults(handler=cmd_worker)

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
    emulate.add_argument("--callback-url", help="POST the vendor's callbacks (webhooks) to this URL")
    emulate.add_argument("--callback-token", help="tencent: sign callbacks with this token (Sign, RequestTime)")
    emulate.set_defaults(handler=cmd_emulate)

    listen = commands.add_parser(
        "listen", help="receive the provider's webhooks on 127.0.0.1 and print each event (for development)"
    )
    listen.add_argument("--port", type=_port, default=8099, help="default 8099")
    listen.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (loopback only)")
    listen.add_argument("--record", help="also append every request received to this JSON-lines file")
    listen.set_defaults(handler=cmd_listen)

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
    demo.add_argument("--concurrency", type=_positive_int("--concurrency"), default=8, help="channels migrated at once")
    demo.set_defaults(handler=cmd_demo)

    from imbridge.migration.cli import add_parser as add_migrate

    add_migrate(commands)
    return parser


def _error_report(error: BaseException, code: int) -> dict[str, Any]:
    if isinstance(error, IMBridgeError):
        return {"type": type(error).__name__, "message": error.message, "provider": error.provider,
                "code": error.native_code, "exit_code": code}  # fmt: skip
    return {"type": type(error).__name__, "message": str(error), "provider": None, "code": None, "exit_code": code}


def _exit_code(error: BaseException) -> int:  # one mapping for every command: the README's table
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
