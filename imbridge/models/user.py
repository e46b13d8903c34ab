"""User profiles and the credentials a client SDK logs in with."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from imbridge.models.device import DeviceKind


class Gender(StrEnum):
    UNKNOWN = "unknown"
    FEMALE = "female"
    MALE = "male"


class Profile(BaseModel):
    """A user's profile: the standard fields every provider maps, plus app-defined ``custom`` keys."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    nickname: str | None = None
    avatar_url: str | None = None
    gender: Gender | None = None
    signature: str | None = None
    custom: dict[str, str] = Field(default_factory=dict)
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class LoginCredentials(BaseModel):
    """What a client SDK needs to log in as ``user_id``: a UserSig (Tencent) or a token (WuKongIM, local).

    ``token`` is a secret: it is masked in reprs and logs; read it with ``token.get_secret_value()``.
    ``extra`` carries the non-secret companions (sdk_app_id, device_flag, ...). ``device`` is the kind of
    client the credentials were issued for, or None when they log in on any kind (a Tencent UserSig).
    """

    model_config = ConfigDict(frozen=True)

    user_id: str
    token: SecretStr
    expires_at: datetime
    extra: dict[str, Any] = Field(default_factory=dict)
    provider: str
    device: DeviceKind | None = None
