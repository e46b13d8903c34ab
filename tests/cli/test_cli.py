"""The ``imbridge`` command line (issue 13, points 15 to 18): ``--json`` anywhere and JSON errors, one exit-code
table for every command, no state file created by a typo, secrets never printed, a quiet exit when the
reader of the output goes away, clear usage errors, help for every option, and ``send`` from stdin or a file."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imbridge.capabilities import Operation, Support
from imbridge.cli import ExitCode, build_parser, main
from imbridge.config import LocalSettings
from imbridge.providers.local.provider import LocalProvider

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment of a local provider on a fresh database, and no .env around."""
    for name in list(os.environ):
        if name.startswith("IMBRIDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "local")
    monkeypatch.setenv("IMBRIDGE_LOCAL_DATABASE", str(tmp_path / "cli.db"))
    return tmp_path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _parsers(parser: argparse.ArgumentParser, path: str = "imbridge") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


# -- 15: --json anywhere, errors as JSON ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_is_accepted_before_or_after_the_subcommand(local: Path, capsys: Any, where: str) -> None:
    argv = ["--json", "doctor"] if where == "before" else ["doctor", "--json"]
    code, out, _ = run(argv, capsys)
    assert code == ExitCode.OK
    assert json.loads(out)["settings"]["provider"] == "local"
    code, out, _ = run(["users", "register", "alice", "bob", "--json"], capsys)
    assert code == ExitCode.OK and [item["target"] for item in json.loads(out)] == ["alice", "bob"]


def test_errors_are_json_on_stderr_in_json_mode(local: Path, capsys: Any) -> None:
    code, out, err = run(["send", "--from", "ghost", "--to", "user:bob", "hi", "--json"], capsys)
    assert code == ExitCode.FAILED and out == ""
    error = json.loads(err)["error"]
    assert error["type"] == "NotFoundError" and error["provider"] == "local" and "ghost" in error["message"]
    assert set(error) == {"type", "message", "provider", "code", "exit_code"} and error["exit_code"] == 1
    code, _, err = run(["history", "--json"], capsys)  # a usage error: still JSON
    assert code == ExitCode.USAGE and json.loads(err)["error"]["type"] == "UsageError"
    code, _, err = run(["migrate", "verify", "--state", str(local / "m.db"), "--json"], capsys)  # the docs' example
    assert code == ExitCode.USAGE and json.loads(err)["error"]["type"] == "ConfigurationError"


def test_a_subcommand_added_later_inherits_the_global_options_and_the_error_handling() -> None:
    parser = build_parser()
    for path, sub in _parsers(parser):
        options = {option for action in sub._actions for option in action.option_strings}
        assert {"--json", "--provider"} <= options, path
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    later = commands.add_parser("frobnicate", help="a command another engineer adds")
    later.add_argument("--port", type=int, help="where")
    args = parser.parse_args(["frobnicate", "--port", "1", "--json", "--provider", "wukong"])
    assert args.json is True and args.provider == "wukong"
    with pytest.raises(Exception) as info:  # usage errors reach main()'s handler instead of exiting
        parser.parse_args(["frobnicate", "--port", "x"])
    assert type(info.value).__name__ == "UsageError"


# -- 16: one exit-code table --------------------------------------------------------------------------------


def test_the_readme_table_is_the_exit_codes_every_command_uses() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| Code | Meaning |", 1)[1].split("\n\n", 1)[0]
    assert {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.M)} == {int(code) for code in ExitCode}


def test_exit_codes(local: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["users", "register", "alice", "bob"], capsys)[0] == ExitCode.OK
    assert run(["send", "--from", "alice", "--to", "user:nobody", "hi"], capsys)[0] == ExitCode.FAILED
    assert run(["send", "--from", "alice", "--to", "user:a b", "hi"], capsys)[0] == ExitCode.USAGE
    assert run(["history", "user:bob", "--viewer", "alice", "--limit", "0"], capsys)[0] == ExitCode.USAGE
    assert run(["bogus"], capsys)[0] == ExitCode.USAGE
    # A provider that declares an operation UNSUPPORTED (the local one, told so): refused before any I/O, 3.
    probe = LocalProvider(LocalSettings(database=":memory:"))
    unsupported = probe.capabilities.replace(Operation.GROUPS_CREATE, Support.UNSUPPORTED, "not here")
    probe.close()
    monkeypatch.setattr(LocalProvider, "capabilities", property(lambda _self: unsupported))
    assert run(["groups", "create", "Team", "--owner", "alice"], capsys)[0] == ExitCode.UNSUPPORTED
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "wukong")
    monkeypatch.setenv("IMBRIDGE_WUKONG_BASE_URL", "ftp://x")
    assert run(["doctor"], capsys)[0] == ExitCode.USAGE  # settings that cannot be


@pytest.mark.parametrize("command", ["status", "report", "verify", "replay-journal"])
def test_a_missing_state_file_is_an_error_and_is_not_created(local: Path, capsys: Any, command: str) -> None:
    typo = local / "typo.db"
    code, out, err = run(["migrate", command, "--state", str(typo)], capsys)
    assert code == ExitCode.USAGE and "no migration state" in err and out == ""
    assert not typo.exists()


# -- 17: no secret printed ----------------------------------------------------------------------------------


def test_doctor_masks_credentials_in_a_base_url(local: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMBRIDGE_PROVIDER", "wukong")
    monkeypatch.setenv("IMBRIDGE_WUKONG_BASE_URL", "http://ops:hunter2-secret@127.0.0.1:1")
    monkeypatch.setenv("IMBRIDGE_WUKONG_STORE", "")
    for argv in (["doctor"], ["doctor", "--json"]):
        code, out, err = run(argv, capsys)
        assert code == ExitCode.FAILED  # nothing listens there: not healthy
        assert "hunter2" not in out + err and "127.0.0.1:1" in out


def _emulate(*extra: str, env: dict[str, str] | None = None) -> str:
    """What ``imbridge emulate`` prints before serving, then stop it with Ctrl-C."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IMBRIDGE_")} | (env or {})
    # Ctrl-C must reach it even when this test runs where SIGINT is ignored (a background job inherits that).
    process = subprocess.Popen([sys.executable, "-m", "imbridge.cli", "emulate", *extra, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout is not None
    first = process.stdout.readline()  # the rest of the block is flushed with it, before serving starts
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert process.stderr is not None
    return first + process.stdout.read() + process.stderr.read()


def test_ctrl_c_before_the_emulator_serves_still_stops_it() -> None:
    """A Ctrl-C between the export lines and the serving loop (likely on a loaded machine) used to hang
    ``imbridge emulate`` for ever: stop() waited for a loop that never ran."""
    from imbridge.emulators import LoopbackServer
    from imbridge.emulators.wukong import WukongEmulator

    server = LoopbackServer(WukongEmulator())
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=10)
    assert not stopper.is_alive(), "stop() hangs when serve_forever never ran"


def test_emulate_never_echoes_the_secret_key(tmp_path: Path) -> None:
    key = "d0-not-print-me-" + "7" * 48
    shown = _emulate("tencent", "--secret-key", key)
    assert key not in shown and "export IMBRIDGE_TENCENT_SECRET_KEY=<the value given with --secret-key>" in shown
    shown = _emulate("tencent", env={"IMBRIDGE_TENCENT_SECRET_KEY": key})
    assert key not in shown and "already in your environment" in shown
    generated = _emulate("tencent")
    (path,) = re.findall(r'IMBRIDGE_TENCENT_SECRET_KEY="\$\(cat (\S+)\)"', generated)
    assert oct(Path(path).stat().st_mode & 0o777) == oct(0o600)
    assert Path(path).read_text() not in generated
    token = "manager-" + "9" * 24
    shown = _emulate("wukong", "--manager-token", token)
    assert token not in shown


# -- 18: pipes, usage errors, help, send's text -------------------------------------------------------------


def test_a_closed_pipe_ends_quietly(local: Path) -> None:
    """``imbridge ... | head``: the reader leaves before the output is written; no traceback, exit 0."""
    environment = {k: v for k, v in os.environ.items()}
    for _ in range(3):
        process = subprocess.Popen([sys.executable, "-m", "imbridge.cli", "doctor"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=environment, cwd=local)  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # like `head` exiting
        err = process.stderr.read().decode()
        assert process.wait(timeout=60) == ExitCode.OK
        assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_negative_duration_is_a_clear_usage_error(local: Path, capsys: Any) -> None:
    code, _, err = run(["groups", "mute", "g1", "bob", "--duration", "-5"], capsys)
    assert code == ExitCode.USAGE
    assert "--duration must be a number of at least 1, got '-5'" in err and "timedelta" not in err


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{path}: {action.option_strings or action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert missing == []


def test_send_reads_the_text_from_stdin_or_a_file(local: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["users", "register", "alice", "bob"], capsys)[0] == ExitCode.OK
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin\nsecond line\n"))
    assert run(["send", "--from", "alice", "--to", "user:bob", "-"], capsys)[0] == ExitCode.OK
    (local / "note.txt").write_text("from a file\n", encoding="utf-8")
    assert run(["send", "--from", "alice", "--to", "user:bob", f"@{local / 'note.txt'}"], capsys)[0] == ExitCode.OK
    assert run(["send", "--from", "alice", "--to", "user:bob", "--text-file", str(local / "note.txt")],
               capsys)[0] == ExitCode.OK  # fmt: skip
    assert run(["send", "--from", "alice", "--to", "user:bob", "@@everyone"], capsys)[0] == ExitCode.OK
    assert run(["send", "--from", "alice", "--to", "user:bob", "@/no/such/file"], capsys)[0] == ExitCode.USAGE
    code, out, _ = run(["history", "user:bob", "--viewer", "alice", "--forward", "--json"], capsys)
    assert code == ExitCode.OK
    texts = [item["elements"][0]["text"] for item in json.loads(out)["items"]]
    assert texts == ["from stdin\nsecond line", "from a file", "from a file", "@everyone"]
