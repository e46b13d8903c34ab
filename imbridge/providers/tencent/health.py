"""Tencent health: ``account_check`` of the App admin, the cheapest call that proves the credentials."""

from __future__ import annotations

from typing import Any

from imbridge._flow import Flow
from imbridge._masking import mask_url
from imbridge.models.health import Health
from imbridge.providers._health import Reading, probe
from imbridge.providers.tencent import wire
from imbridge.providers.tencent._core import TencentCore


class TencentHealth(TencentCore):
    def health(self) -> Flow[Health]:
        """``im_open_login_svc/account_check`` for the admin account alone
        (https://www.tencentcloud.com/document/product/1047/34956): read-only, one account, 100 calls/s, and
        signed like every REST call, so a wrong key, app or admin is refused with the UserSig errors
        (70001-70020, 60004/60006) or 60010 (not an App admin) of
        https://www.tencentcloud.com/document/product/1047/34348. Tencent exposes no server version."""
        request = self._req(
            "im_open_login_svc", "account_check",
            wire.AccountCheckRequest(CheckItem=[wire.UserIdItem(UserID=self.tencent.admin)]).body(),
        )  # fmt: skip
        return probe(
            self, request, self._read_account_check, target=f"Tencent IM at {mask_url(self.base_url)}",
            details={"base_url": mask_url(self.base_url), "sdk_app_id": self.tencent.sdk_app_id,
                     "admin": self.tencent.admin},
        )  # fmt: skip

    def _read_account_check(self, reply: Any) -> Reading:
        items = wire.AccountCheckResponse.model_validate(reply).ResultItem
        status = next((item.AccountStatus or "" for item in items if item.UserID == self.tencent.admin), "")
        warnings = []
        if status != "Imported":
            warnings.append(f"account_check reports the admin {self.tencent.admin!r} as {status or 'absent'!r}")
        return Reading(
            f"account_check accepted the admin UserSig of {self.tencent.admin!r} (app {self.tencent.sdk_app_id})",
            warnings=warnings, details={"admin_status": status},
        )  # fmt: skip
