"""Tencent IM -> WuKongIM: a resumable, idempotent, verified migration, and dual-write for the cut-over.

Usage::

    from imbridge.migration import Migration
    migration = Migration(source=tencent_settings, target=wukong_settings, state="migration.db")
    migration.run(users=app_user_ids)   # plans first when nothing is planned, then every phase
    assert migration.verify()["ok"]

``docs/migration.md`` describes the phases, the guarantees and the limits.
"""

from imbridge.migration.mirror import AsyncMirrorClient, MirrorClient, SecondaryFailure
from imbridge.migration.pipeline import NOTES, PHASES, Migration, MigrationOptions, summary_text
from imbridge.migration.progress import make_progress
from imbridge.migration.state import StateDB
from imbridge.migration.verify import verify_text

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
