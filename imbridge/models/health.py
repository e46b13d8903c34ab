"""What ``im.health()`` found: can this client reach its server, and does the server accept its credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Health(BaseModel):
    """The answer of one cheap authenticated call to the provider's server (see ``im.health()``).

    ``reachable`` is False when no answer came back (refused, reset, timed out, not HTTP). ``authenticated``
    is True when the server accepted the credentials, False when it refused them, and None when the answer
    said neither (the server was unreachable, or failed before it looked at them). ``ok`` is both.
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    reachable: bool
    authenticated: bool | None
    server_version: str | None = Field(
        default=None, description="as the server reports it (WuKongIM /varz); None where the vendor exposes none"
    )
    latency_ms: float | None = Field(default=None, description="round trip of the check call; None if none returned")
    message: str = Field(description="one line for people: what was checked and what it found")
    warnings: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict, description="what else the check read; never a secret")
    checked_at: datetime

    @property
    def ok(self) -> bool:
        """Reachable, and the credentials were accepted."""
        return self.reachable and self.authenticated is True

    def __str__(self) -> str:
        state = "ok" if self.ok else ("unreachable" if not self.reachable else "NOT authenticated")
        if self.reachable and self.authenticated is None:
            state = "reachable, authentication unknown"
        parts = [f"{self.provider}: {state}"]
        if self.server_version:
            parts.append(f"server {self.server_version}")
        if self.latency_ms is not None:
            parts.append(f"{self.latency_ms:.1f} ms")
        return f"{', '.join(parts)} — {self.message}"
