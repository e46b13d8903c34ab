"""Groups and their members."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Member(BaseModel):
    """A member of a group. ``muted_until`` is None when the member may speak."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    role: Role = Role.MEMBER
    joined_at: datetime | None = None
    muted_until: datetime | None = None
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    def is_muted(self, now: datetime) -> bool:
        return self.muted_until is not None and self.muted_until > now


class Group(BaseModel):
    """A group's profile. ``mute_all`` means only the owner and admins may speak."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    owner: str | None = None
    introduction: str = ""
    notification: str = ""
    face_url: str = ""
    mute_all: bool = False
    member_count: int | None = None
    created_at: datetime | None = None
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)
