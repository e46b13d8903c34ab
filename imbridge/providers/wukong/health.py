"""WuKongIM health: ``GET /varz`` with the manager token, and the server's version against the proven line."""

from __future__ import annotations

import logging
import re
from typing import Any

from imbridge._flow import Flow
from imbridge._masking import mask_url
from imbridge.models.health import Health
from imbridge.providers._health import Reading, probe
from imbridge.providers.wukong._core import WukongCore

logger = logging.getLogger("imbridge")

#: The release imbridge's WuKongIM behaviour was proven on (cassettes, differential, contract suite).
PROVEN_VERSION = "v2.2.5-20260422"
PROVEN_LINE = (2, 2)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.")

#: The /varz fields worth showing (internal/api/varz.go ``Varz``); the rest are load counters.
_SHOWN = ("server_id", "commit", "uptime", "connections", "tcp_addr", "ws_addr", "api_url", "manager_token_on")


def version_warnings(version: str) -> list[str]:
    """Why ``version`` (as /varz reports it) may not behave as imbridge expects; empty for the v2.2 line."""
    if not version:
        return [
            "WuKongIM reports no version (a build without the release ldflags, main.go:20-27): "
            f"imbridge was proven on {PROVEN_VERSION}"
        ]
    match = _VERSION.match(version)
    if match is None or (int(match[1]), int(match[2])) != PROVEN_LINE:
        return [
            f"WuKongIM {version} is not the v{PROVEN_LINE[0]}.{PROVEN_LINE[1]}.x line imbridge was proven on "
            f"({PROVEN_VERSION}): its REST answers may differ"
        ]
    return []


class WukongHealth(WukongCore):
    def health(self) -> Flow[Health]:
        """``GET /varz``: cheap (a snapshot of counters, internal/api/varz.go:41-76) and behind the manager-token
        check like every route (internal/api/server_http.go:48-60: a wrong or missing token is HTTP 401)."""
        return probe(
            self, self._get("/varz"), self._read_varz, target=f"WuKongIM at {mask_url(self._base_url)}",
            details={"base_url": mask_url(self._base_url), "manager_token_set": bool(self._manager_token)},
        )  # fmt: skip

    def _read_varz(self, reply: Any) -> Reading:
        varz = reply if isinstance(reply, dict) else {}
        if varz.get("server_name") != "WuKongIM" or "version" not in varz:
            return Reading(
                f"{mask_url(self._base_url)}/varz answered, but not as WuKongIM does (no server_name/version)",
                authenticated=None, details={"answer_keys": sorted(varz)[:20]},
            )  # fmt: skip
        version = str(varz.get("version") or "")
        warnings = version_warnings(version)
        if not varz.get("manager_token_on"):
            # The server checks tokens only when it has a managerToken (server_http.go:51-54): anyone who can
            # reach its API can do anything.
            warnings.append("the WuKongIM server has no managerToken: its HTTP API accepts every request")
        for warning in warnings:
            logger.warning("%s", warning)
        details = {name: varz[name] for name in _SHOWN if name in varz}
        return Reading(
            f"GET /varz accepted the manager token: WuKongIM {version or '(no version)'}, node {varz.get('server_id')}",
            server_version=version or None, warnings=warnings, details=details,
        )  # fmt: skip
