"""A type checker sees imbridge as the README installs it (issue 13, point 20).

``pip install -e .`` used to install an import-hook finder (setuptools' default for a flat layout), which
type checkers never run: mypy, outside the repository, reported "Cannot find implementation or library stub
for module named imbridge". pyproject's ``package-dir`` makes the editable install a plain path entry, so
the package and its ``py.typed`` are found.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import imbridge

ROOT = Path(__file__).resolve().parents[2]
USE = '''\
from imbridge import Conversation, IMClient

with IMClient("local", database=":memory:") as im:
    sent = im.messages.send("alice", Conversation.user("bob"), "hi")
    reveal_type(sent.ref)
    wrong: int = sent.seq or "not an int"
'''


def test_mypy_outside_the_repository_sees_imbridge_and_its_types(tmp_path: Path) -> None:
    assert Path(imbridge.__file__).resolve().is_relative_to(ROOT), "the tests run against this checkout"
    (tmp_path / "use.py").write_text(USE, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / ".mypy_cache"), "--no-error-summary",
         "--hide-error-context", "use.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert "Cannot find implementation or library stub" not in out, out
    assert 'Revealed type is "imbridge.models.message.MessageRef"' in out, out
    # The types are real: the deliberate mistake is found (it would pass silently were imbridge Any).
    assert 'use.py:6: error: Incompatible types in assignment' in out, out


def test_the_editable_install_is_a_path_entry_not_an_import_hook() -> None:
    """What makes the test above pass on an editable install: no .pth of this project runs code."""
    site = Path(sysconfig.get_paths()["purelib"])
    entries = [line for pth in site.glob("__editable__*imbridge*.pth") for line in pth.read_text().splitlines()]
    if not entries:  # a regular install: the package is in site-packages itself
        assert (site / "imbridge" / "py.typed").exists()
        return
    assert all(not line.startswith("import ") for line in entries), entries
    assert str(ROOT) in entries
