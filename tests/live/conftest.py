"""The official WuKongIM JS SDK for the live tests: installed once with npm into a cache, with our harness beside it.

The SDK (npm ``wukongimjssdk`` 1.0.4 and ``ws`` 8) goes into a cache directory outside the repository
(``IMBRIDGE_JSSDK_DIR``, default ``~/.cache/imbridge/jssdk``) the first time; the harness scripts of
``tests/live/jssdk/`` are copied there on every run, so the tests always run this checkout's scripts:

* ``client.mjs`` (test_jssdk_login.py): connect, optionally send one message, print statuses, messages, acks;
* ``recv.mjs``: connect as ``--uid/--token/--device`` to ``--addr`` and print every status change, message and
  command; exit 3 when the connect fails or the client is kicked (test_wukong_live_sessions.py, and
  tools/wukong_webhook_fixtures/record.py);
* ``send.mjs``: connect, send one text message, print its SENDACK (record.py);
* ``sdk.mjs`` and ``hooks.mjs``: what they share, and the module hooks Node needs to load the SDK.

Tests that ask for ``sdk_dir`` are skipped, saying why, where ``node``/``npm`` are missing or npm cannot install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("jssdk")
SDK_PACKAGES = ("wukongimjssdk@1.0.4", "ws@8")


@pytest.fixture(scope="session")
def sdk_dir() -> Path:
    """A directory with the SDK in node_modules and this checkout's harness scripts; run ``node <script>`` in it."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the official JS SDK")
    directory = Path(os.environ.get("IMBRIDGE_JSSDK_DIR") or Path.home() / ".cache" / "imbridge" / "jssdk")
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "node_modules" / "wukongimjssdk" / "package.json").exists():
        installed = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(directory), *SDK_PACKAGES],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if installed.returncode != 0:
            pytest.skip(f"npm could not install {' '.join(SDK_PACKAGES)}: {installed.stderr.strip()[-300:]}")
    for script in HARNESS.glob("*.mjs"):
        shutil.copy(script, directory / script.name)
    return directory
