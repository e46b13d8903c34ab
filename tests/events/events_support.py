"""Helpers for the event tests: the official Tencent examples, independently signed queries, receivers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from imbridge.events import EventReceiver

OFFICIAL = Path(__file__).parent.parent / "fixtures" / "tencent" / "official"
WUKONG_FIXTURES = Path(__file__).parent.parent / "fixtures" / "wukong" / "webhooks"

#: The official Sign example (overview page /1047/34354): token, RequestTime, Sign as printed.
TOKEN, REQUEST_TIME = "xxxxyyyy", 1669872112
SIGN = "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"
APP = 888888  # the SdkAppid of the overview page's raw request example
PATH_SECRET = "wk-hook-secret-0123456789abcdef"


def official(command: str) -> dict[str, Any]:
    return json.loads((OFFICIAL / f"webhook_{command}.json").read_text(encoding="utf-8"))


def official_body(command: str, index: int = 0) -> bytes:
    return json.dumps(official(command)["request_examples"][index]["body"], ensure_ascii=False).encode()


def signed_query(command: str, *, token: str = TOKEN, at: int = REQUEST_TIME, app: int = APP,
                 platform: str = "RESTAPI") -> dict[str, str]:  # fmt: skip
    """The query Tencent appends, signed here with hashlib (not with the code under test)."""
    sign = hashlib.sha256(f"{token}{at}".encode()).hexdigest()
    return {"SdkAppid": str(app), "CallbackCommand": command, "contenttype": "json", "ClientIP": "127.0.0.1",
            "OptPlatform": platform, "Sign": sign, "RequestTime": str(at)}  # fmt: skip


def tencent_receiver(now: float = REQUEST_TIME, **options: Any) -> EventReceiver:
    return EventReceiver("tencent", **{"sdk_app_id": APP, "callback_token": TOKEN, "clock": lambda: now, **options})


def wukong_receiver(**options: Any) -> EventReceiver:
    return EventReceiver("wukong", **{"path_secret": PATH_SECRET, **options})
