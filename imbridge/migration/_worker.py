"""A migration worker process (started by :func:`imbridge.migration.workers.start_processes`): reads its
settings from stdin, runs the phases' claimed work until the run is done, exits 0."""

from __future__ import annotations

import pickle
import signal
import sys


def main() -> int:
    """A worker process: read its payload from stdin, run the phases' claimed work, exit 0 when done."""
    from imbridge.migration.cli import _sigterm_stops_like_sigint
    from imbridge.migration.pipeline import Migration, MigrationOptions

    body = pickle.loads(sys.stdin.buffer.read())
    options = MigrationOptions(**{**body["options"], "workers": 1})
    migration = Migration(body["source"], body["target"], body["state"], options)
    try:
        with _sigterm_stops_like_sigint():
            migration.work(body["phases"])
    except KeyboardInterrupt:
        return 128 + signal.SIGTERM
    finally:
        migration.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
