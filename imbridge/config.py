"""Choosing a provider and its settings from the environment (``IMBRIDGE_PROVIDER`` and friends)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Selection(BaseSettings):
    """``IMBRIDGE_PROVIDER``: which provider ``IMClient.from_env()`` builds (``.env`` honoured)."""

    model_config = SettingsConfigDict(
        env_prefix="IMBRIDGE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    provider: str = "local"


# The flat settings class of each built-in provider. They live here, not in the provider packages,
# so that `imbridge doctor` and `IMClient.from_env()` can read settings without importing a provider.

from typing import Annotated, Self  # noqa: E402

from pydantic import Field, SecretStr, field_validator, model_validator  # noqa: E402

from imbridge.errors import IMBridgeError  # noqa: E402
from imbridge.models._validation import MAX_DURATION, check_base_url, check_id  # noqa: E402
from imbridge.providers.base import ProviderSettings  # noqa: E402


def _base_url(value: str | None) -> str | None:
    """An http(s) URL, checked when the settings are built (a ValueError becomes a ConfigurationError that
    names the field)."""
    if value is None:
        return None
    try:
        return check_base_url(value)
    except IMBridgeError as error:
        raise ValueError(error.message) from None


def _base_urls(value: object) -> str:
    """One WuKongIM node URL, or several (a cluster): a list, or a comma-separated string (how
    ``IMBRIDGE_WUKONG_BASE_URL`` lists them). Each is checked like a single URL; kept as one comma-separated
    string, so the settings read the same whatever the number of nodes (``WukongSettings.base_urls`` splits it)."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")] if "," in value else [value]
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        raise ValueError(f"must be a URL or a list of URLs, got {type(value).__name__}")
    if not parts or any(part == "" for part in parts):
        raise ValueError("must name at least one URL, with no empty entry in a list")
    urls = []
    for index, part in enumerate(parts):
        try:
            urls.append(check_base_url(part, "base_url" if len(parts) == 1 else f"base_url[{index}]").rstrip("/"))
        except IMBridgeError as error:
            raise ValueError(error.message) from None
    if len(set(urls)) != len(urls):
        raise ValueError("lists a node twice")
    return ",".join(urls) if len(urls) > 1 else str(parts[0])


def _printable_secret(value: SecretStr | None) -> SecretStr | None:
    """A secret that travels in a header must not hold control characters (a newline would split it)."""
    if value is not None and not value.get_secret_value().isprintable():
        raise ValueError("must not contain control characters or line breaks")
    return value


PositiveRate = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class LocalSettings(ProviderSettings):
    """``IMBRIDGE_LOCAL_*``: the embedded SQLite provider."""

    model_config = SettingsConfigDict(env_prefix="IMBRIDGE_LOCAL_")

    database: str = "imbridge.db"
    """A file path, ``sqlite:///path``, ``:memory:``, or ``postgresql://user:password@host/db`` (several
    processes on several hosts; needs ``pip install 'imbridge-client[postgres]'``)."""
    token_secret: SecretStr | None = None
    """HMAC key for login tokens. When unset, a random key is made once and kept in the database."""


class TencentSettings(ProviderSettings):
    """``IMBRIDGE_TENCENT_*``: Tencent Cloud IM (REST API v4)."""

    model_config = SettingsConfigDict(env_prefix="IMBRIDGE_TENCENT_")

    sdk_app_id: int = Field(gt=0, le=2**32 - 1)
    secret_key: SecretStr
    admin: str = "administrator"
    """An App admin account: every REST call is made as this identifier."""
    region: str = "china"
    """china, singapore, seoul, tokyo, frankfurt, mumbai, silicon_valley (usa), jakarta."""
    base_url: str | None = None
    """Overrides ``region`` (an emulator, a proxy, the backup domain)."""
    usersig_ttl: int = Field(default=7 * 86400, ge=300, le=int(MAX_DURATION.total_seconds()))
    """Seconds the admin UserSig is valid; it is renewed before it expires."""
    rate_limits: dict[str, PositiveRate] = Field(default_factory=dict)
    """Calls per second by command (``sendmsg``), overriding the documented defaults.
    For ``batchsendmsg`` the unit is recipient-messages per second (the documented 12,000/min = 200/s)."""
    group_type: str = "Public"
    """``Type`` of groups imbridge creates. Public supports muting; Private (Work) groups do not."""
    profile_custom_keys: list[str] = Field(default_factory=list)
    """Custom profile keys (``Tag_Profile_Custom_<key>``) to read: Tencent returns only the tags asked for."""

    _check_base_url = field_validator("base_url")(_base_url)

    @field_validator("admin")
    @classmethod
    def _check_admin(cls, value: str) -> str:
        try:
            return check_id(value, "admin")
        except IMBridgeError as error:
            raise ValueError(error.message) from None


class WukongSettings(ProviderSettings):
    """``IMBRIDGE_WUKONG_*``: a self-hosted WuKongIM v2 server, or the nodes of a WuKongIM cluster."""

    model_config = SettingsConfigDict(env_prefix="IMBRIDGE_WUKONG_")

    base_url: str = "http://127.0.0.1:5001"
    """The server's HTTP API, or the HTTP API of every node of a cluster: a list, or comma-separated
    (``http://n1:5001,http://n2:5001``). Requests go to the nodes in turn; a node that refuses connections or
    times out is left out for ``node_cooldown`` seconds (docs/deployment.md)."""
    node_cooldown: float = Field(default=10.0, gt=0, le=3600, allow_inf_nan=False)
    """Seconds a node that refused a connection or timed out stays out of rotation (several nodes only)."""
    confirm_replicated: bool | None = None
    """Confirm a send only once the message is stored on a majority of its channel's replicas (WuKongIM's
    ``/cluster/channels/{id}/{type}/replicas``), so that it survives the loss of a node. None (the default): on
    when ``base_url`` lists several nodes."""
    manager_token: SecretStr | None = None
    """The server's ``managerToken``, sent as the ``token`` header."""
    store: str = ""
    """Where imbridge keeps what WuKongIM does not (profiles, group names and roles, timed mutes,
    revocations): ``sqlite:///path`` (or a path) for app instances on one host, ``postgresql://…`` for
    instances on several hosts. Empty (the default): none, and the operations that need it are
    UNSUPPORTED (the capability notes and ``imbridge doctor`` say so). Never guessed: a file in the working
    directory would give each directory, and each host, a store of its own."""
    token_secret: SecretStr | None = None
    """HMAC key for the login tokens imbridge issues; kept in the store when unset."""
    device_flag: int = Field(default=0, ge=0, le=255)
    """Device flag of login tokens issued without ``device=``: 0 app (iOS/Android SDKs), 1 web (the JS SDK), 2 PC.
    A client connecting with another flag is never answered; pass ``device="web"`` for the JS SDK."""
    device_level: int = Field(default=1, ge=0, le=1)
    """Device level of issued login tokens: 1 master (kicks that device flag's live connections), 0 slave."""
    confirm_sends: bool = True
    """Look each sent message up until it is stored, to return its seq and surface silent rejections."""
    jsonrpc_url: str | None = None
    """The node's WebSocket listener (its ``wsAddr``, e.g. ``ws://127.0.0.1:5200``). Set: messages are sent over
    WuKongIM's JSON-RPC WebSocket, whose node answers a send only once the message is stored, so it is confirmed
    with no reads (about twice the rate of unconfirmed HTTP sends on a real v2.2.5; docs/providers/wukong.md,
    "Sending over JSON-RPC"). Unset (the default): ``POST /message/send``, confirmed by reading back. One node
    only, for now."""
    enforce_policy: bool = True
    """Refuse sends from non-members and muted members, as the other providers do."""
    policy_cache_seconds: float = Field(default=2.0, ge=0, le=86_400, allow_inf_nan=False)

    _check_base_url = field_validator("base_url", mode="before")(_base_urls)
    _check_manager_token = field_validator("manager_token")(_printable_secret)

    @field_validator("jsonrpc_url")
    @classmethod
    def _check_jsonrpc_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_base_url(value, "jsonrpc_url", schemes=("ws", "wss"))
        except IMBridgeError as error:
            raise ValueError(error.message) from None

    @model_validator(mode="after")
    def _one_node_for_jsonrpc(self) -> Self:
        # Measured on one node only: on a cluster, which node answers a send and what its answer proves about the
        # replicas is not known yet (replicated confirmation reads the replicas, over HTTP).
        if self.jsonrpc_url is not None and self.replicated_confirmation:
            raise ValueError("jsonrpc_url works with one node and without confirm_replicated, for now")
        return self

    @property
    def base_urls(self) -> list[str]:
        """Every node's URL, without a trailing slash (one for a single server)."""
        return [url.rstrip("/") for url in self.base_url.split(",")]

    @property
    def replicated_confirmation(self) -> bool:
        """Whether sends are confirmed on a majority of replicas (``confirm_replicated``, else several nodes)."""
        # Asked on every confirmed send: a comma means several nodes (base_urls), without building the list.
        return self.confirm_replicated if self.confirm_replicated is not None else "," in self.base_url


SETTINGS_CLASSES: dict[str, type[ProviderSettings]] = {
    "local": LocalSettings,
    "tencent": TencentSettings,
    "wukong": WukongSettings,
}
