"""Tencent IM -> WuKongIM: a resumable, idempotent, verified migration, and dual-write for the cut-over.

Usage::

    from imbridge.migration import Migration
    migration = Migration(source=tencent_settings, target=wukong_settings, state="migration.db")
    migration.run(users=app_user_ids)   # plans first when nothing is planned, then every phase
    assert migration.verify()["ok"]

``docs/migration.md`` describes the phases, the guarantees and the limits.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imbridge.migration.mirror import AsyncMirrorClient, MirrorClient, SecondaryFailure
    from imbridge.migration.pipeline import NOTES, PHASES, Migration, MigrationOptions, summary_text
    from imbridge.migration.progress import make_progress
    from imbridge.migration.state import StateDB
    from imbridge.migration.verify import verify_text

# The package imports its modules when a name is first asked for (PEP 562), never while it initialises: a
# thread importing imbridge.migration.verify holds verify's import lock and waits for the package's; had the
# package's own initialisation imported verify, a second thread doing that would hold the package's lock and
# wait for verify's, and CPython breaks that deadlock by handing one of them a half-initialised module
# (ImportError "partially initialized module"; tests/test_thread_imports.py found it).
_HOMES = {
    "AsyncMirrorClient": "mirror", "MirrorClient": "mirror", "SecondaryFailure": "mirror",
    "NOTES": "pipeline", "PHASES": "pipeline", "Migration": "pipeline", "MigrationOptions": "pipeline",
    "summary_text": "pipeline", "make_progress": "progress", "StateDB": "state", "verify_text": "verify",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "NOTES",
    "PHASES",
    "AsyncMirrorClient",
    "Migration",
    "MigrationOptions",
    "MirrorClient",
    "SecondaryFailure",
    "StateDB",
    "make_progress",
    "summary_text",
    "verify_text",
]
