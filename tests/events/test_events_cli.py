"""``imbridge listen``: a receiver from the environment on loopback, printing each event (and recording)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from events_support import PATH_SECRET
from test_events_docs import _free_port
from test_events_wukong_recorded import RECORDING


def test_listen_prints_events_refuses_forgeries_and_records(tmp_path: Path) -> None:
    port = _free_port()
    record = tmp_path / "requests.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMBRIDGE_")}
    env |= {"IMBRIDGE_PROVIDER": "wukong", "IMBRIDGE_WUKONG_WEBHOOK_SECRET": PATH_SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "imbridge.cli", "--json", "listen", "--port", str(port), "--record", str(record)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/hook/{PATH_SECRET}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(f"http://127.0.0.1:{port}/probe", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        # The first msg.notify: the c2c send's msg.offline may arrive before it (two queues on the server).
        first = next(item for item in RECORDING["requests"] if item["query"]["event"] == "msg.notify")
        assert httpx.post(url, params=first["query"], content=first["body"].encode()).status_code == 200
        assert httpx.post(url, params=first["query"], content=first["body"].encode()).status_code == 200  # a retry
        forged = httpx.post(f"http://127.0.0.1:{port}/hook/guess", params=first["query"], content=first["body"])
        assert forged.status_code == 404
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    events = [json.loads(line) for line in out.splitlines()]
    assert [event["kind"] for event in events] == ["message.created"]  # the retry was not printed again
    assert events[0]["message"]["elements"] == [{"type": "text", "text": "hello from imbridge"}]
    assert "wrong_path_secret" in err and PATH_SECRET not in err
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r["path"] for r in recorded] == ["/probe", f"/hook/{PATH_SECRET}", f"/hook/{PATH_SECRET}", "/hook/guess"]
