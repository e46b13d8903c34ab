"""Settings of an event receiver, read by ``EventReceiver.from_env()`` (``.env`` honoured).

``IMBRIDGE_PROVIDER`` picks the provider, as for ``IMClient.from_env()``; what proves a request genuine
is read from that provider's prefix; the rest (deduplication, limits, allowlist) from ``IMBRIDGE_EVENTS_*``.
A receiver needs no API credential: a webhook process is not given the client's secret key.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from imbridge.events.dedupe import DEFAULT_MAX_ENTRIES
from imbridge.providers.base import ProviderSettings

__all__ = ["LocalEventSettings", "ReceiverSettings", "TencentEventSettings", "WukongEventSettings"]


class ReceiverSettings(ProviderSettings):
    """``IMBRIDGE_EVENTS_*``: what every receiver shares."""

    model_config = SettingsConfigDict(env_prefix="IMBRIDGE_EVENTS_")

    dedupe_seconds: float = Field(default=3600.0, gt=0)
    """How long an event's id is remembered: a re-delivery inside this window is not handed on again."""
    dedupe_store: str = "memory"
    """``memory`` (this process only), or a database shared by every worker (``sqlite:///path``, a file path, or
    ``postgresql://...`` for several hosts)."""
    dedupe_max_entries: int = Field(default=DEFAULT_MAX_ENTRIES, ge=1)
    """Bound of the in-memory store."""
    allow_from: str = ""
    """Comma-separated addresses or networks (``10.0.0.0/8``) requests may come from; empty allows any."""
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=64, ge=8, le=512)
    max_decompressed_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_age: float = Field(default=60.0, gt=0)
    """Seconds a signed request's time may differ from now (Tencent ``RequestTime``, local deliveries)."""
    insecure_skip_verification: bool = False
    """Accept requests nothing proves genuine (no token or secret configured). Never in production."""


class TencentEventSettings(ProviderSettings):
    """``IMBRIDGE_TENCENT_*`` a receiver reads: the app and the callback token (not the secret key)."""

    model_config = SettingsConfigDict(env_prefix="IMBRIDGE_TENCENT_")

    sdk_app_id: int = Field(gt=0)
    callback_token: SecretStr | None = None
    """The authentication token set with the callback URL in the console (``Sign = sha256(token + RequestTime)``)."""


class WukongEventSettings(ProviderSettings):
    """``IMBRIDGE_WUKONG_*`` a receiver reads."""

    model_config = SettingsConfigDict(env_prefix="IMBRIDGE_WUKONG_")

    webhook_secret: SecretStr | None = None
    """The last path segment of ``webhook.httpAddr`` (WuKongIM signs nothing; this is what authenticates it)."""


class LocalEventSettings(ProviderSettings):
    """``IMBRIDGE_LOCAL_*`` a receiver reads."""

    model_config = SettingsConfigDict(env_prefix="IMBRIDGE_LOCAL_")

    events_secret: SecretStr | None = None
    """HMAC key of the local provider's deliveries; a random one is made per receiver when unset."""
