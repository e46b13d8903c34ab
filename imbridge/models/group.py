"""Groups and their members."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class JoinOption(StrEnum):
    """How users who ask to join a group are handled (adding members through imbridge is never held up)."""

    FREE = "free"
    """Anyone may join (Tencent ``FreeAccess``)."""
    APPROVAL = "approval"
    """An owner or admin approves each request (Tencent ``NeedPermission``)."""
    CLOSED = "closed"
    """Nobody may ask to join (Tencent ``DisableApply``)."""


class Member(BaseModel):
    """A member of a group.

    ``muted`` says whether the member may not speak; ``muted_until`` is when that ends, None for a mute
    without an end (lifted only by ``unmute``). A Member built with only ``muted_until`` is muted.
    """

    model_config = ConfigDict(frozen=True)

    user_id: str
    role: Role = Role.MEMBER
    joined_at: datetime | None = None
    muted: bool = False
    muted_until: datetime | None = None
    name_card: str | None = Field(default=None, description="the member's display name in this group")
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _muted_from_until(cls, data: Any) -> Any:
        if isinstance(data, dict) and "muted" not in data and data.get("muted_until") is not None:
            return {**data, "muted": True}
        return data

    def is_muted(self, now: datetime) -> bool:
        return self.muted and (self.muted_until is None or self.muted_until > now)


class Group(BaseModel):
    """A group's profile. ``mute_all`` means only the owner and admins may speak.

    ``join_option`` and ``max_members`` are None where the provider has no value for the group.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    owner: str | None = None
    introduction: str = ""
    notification: str = ""
    face_url: str = ""
    mute_all: bool = False
    member_count: int | None = None
    join_option: JoinOption | None = None
    max_members: int | None = None
    created_at: datetime | None = None
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class JoinedGroup(BaseModel):
    """A group a user belongs to, with that user's place in it (``groups.joined``)."""

    model_config = ConfigDict(frozen=True)

    group: Group
    role: Role = Role.MEMBER
    joined_at: datetime | None = None
    provider: str
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)
