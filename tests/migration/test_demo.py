"""``imbridge demo`` (the migration part): nothing left on disk, and a closing hint that works as printed."""

from __future__ import annotations

import re
import shlex
import tempfile
from pathlib import Path

import pytest

from imbridge.cli import main
from imbridge.migration.demo import run_migration_demo


def test_the_demo_leaves_nothing_behind_and_its_closing_hint_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the demo's temporary files go
    monkeypatch.delenv("IMBRIDGE_WUKONG_BASE_URL", raising=False)

    assert run_migration_demo(progress="none", seed="small") == 0
    out = capsys.readouterr().out
    assert list(scratch.iterdir()) == []
    closing = out[out.index("Demo finished") :]
    assert "migrate run" not in closing and "migrate verify" not in closing  # the emulators are gone

    state = tmp_path / "kept" / "demo.db"
    state.parent.mkdir()
    assert run_migration_demo(state=str(state), progress="none", seed="small") == 0
    out = capsys.readouterr().out
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in state.parent.iterdir()) == ["demo.db"]
    closing = out[out.index("Demo finished") :]
    commands = re.findall(r"`(imbridge migrate [^`]*)`", closing)
    assert commands and "migrate run" not in closing
    for command in commands:  # each command the demo suggests for this migration works as printed
        assert main(shlex.split(command)[1:]) == 0, command
    assert "zero mismatches" in capsys.readouterr().out
