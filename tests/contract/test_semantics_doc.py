"""docs/semantics.md is generated from the capability maps and a contract run; it must not go stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_semantics_doc_is_current() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "imbridge.testing.semantics", "--check", "docs/semantics.md", "--rootdir", str(ROOT)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "is up to date" in result.stdout


def test_semantics_doc_covers_every_provider_and_behaviour() -> None:
    text = (ROOT / "docs" / "semantics.md").read_text(encoding="utf-8")
    assert "| Behaviour | local | wukong | tencent |" in text
    assert "❌" not in text.split("## Behaviours", 1)[1].split("\n", 6)[-1]  # no failed cell in the table
    assert text.count("| `test_") >= 40
