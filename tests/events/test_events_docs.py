"""The receiver example of docs/events.md, run as written under uvicorn: against Tencent's official callback
examples (signed now with the page's token) and against what a real WuKongIM server posted."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from events_support import PATH_SECRET, official_body
from test_events_wukong_recorded import RECORDING, SENT

from imbridge.models import MessageRef

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def example() -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- example: receiver_app.py -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the example is gone from docs/events.md"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    app = tmp_path / "receiver_app.py"
    app.write_text(example(), encoding="utf-8")
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMBRIDGE_")}
    process = subprocess.Popen([sys.executable, str(app)], cwd=tmp_path, env={**clean, **env, "PORT": str(port)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the example did not start"
                time.sleep(0.1)
        lines: list[str] = []
        yield url, lines
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
        lines.extend(out.splitlines())


def test_the_example_on_tencent_official_callbacks(tmp_path: Path) -> None:
    env = {"IMBRIDGE_PROVIDER": "tencent", "IMBRIDGE_TENCENT_SDK_APP_ID": "888888",
           "IMBRIDGE_TENCENT_CALLBACK_TOKEN": "xxxxyyyy"}  # the token of the overview page's Sign example  # fmt: skip
    with running(tmp_path, env) as (url, lines):
        def post(command: str, body: bytes) -> httpx.Response:
            at = str(int(time.time()))
            sign = hashlib.sha256(f"xxxxyyyy{at}".encode()).hexdigest()
            query = {"SdkAppid": "888888", "CallbackCommand": command, "contenttype": "json", "ClientIP": "1.2.3.4",
                     "OptPlatform": "RESTAPI", "Sign": sign, "RequestTime": at}  # fmt: skip
            return httpx.post(url + "/webhooks/im", params=query, content=body)

        sent = post("C2C.CallbackAfterSendMsg", official_body("C2C.CallbackAfterSendMsg"))
        assert sent.status_code == 200 and sent.json()["ErrorCode"] == 0
        assert post("C2C.CallbackAfterMsgWithDraw", official_body("C2C.CallbackAfterMsgWithDraw")).status_code == 200
        spam = official_body("C2C.CallbackBeforeSendMsg").replace(b"red packet", b"cheap spam")
        refused = post("C2C.CallbackBeforeSendMsg", spam).json()
        assert refused == {"ActionStatus": "OK", "ErrorInfo": "no spam here", "ErrorCode": 120001}
        allowed = post("C2C.CallbackBeforeSendMsg", official_body("C2C.CallbackBeforeSendMsg")).json()
        assert allowed["ErrorCode"] == 0
        assert httpx.post(url + "/webhooks/im", params={"SdkAppid": "888888"}, content=b"{}").status_code == 401
        assert httpx.get(url + "/elsewhere").status_code == 404
    created = [line for line in lines if line.startswith("created ")]
    assert len(created) == 1 and created[0].endswith(" jared red packet")
    assert "revoked 48374_2837546_1557481126" in lines


def test_the_example_unchanged_on_a_real_wukong_servers_webhooks(tmp_path: Path) -> None:
    env = {"IMBRIDGE_PROVIDER": "wukong", "IMBRIDGE_WUKONG_WEBHOOK_SECRET": PATH_SECRET}
    with running(tmp_path, env) as (url, lines):
        for item in RECORDING["requests"]:
            reply = httpx.post(url + f"/webhooks/im/{PATH_SECRET}", params=item["query"], content=item["body"].encode(),
                               headers={"content-type": item["content_type"]})  # fmt: skip
            assert reply.status_code == 200
        assert httpx.post(url + "/webhooks/im/guess", params={"event": "msg.notify"}, content=b"[]").status_code == 404
    created = {line.split()[1]: line for line in lines if line.startswith("created ")}
    assert created[SENT["imbridge_c2c"]].endswith("hello from imbridge")
    js = [line for line in created.values() if line.endswith("hi carol, from the js sdk")]
    assert len(js) == 1
    assert f"revoked {MessageRef.parse(SENT['imbridge_revoked']).key}" in lines
