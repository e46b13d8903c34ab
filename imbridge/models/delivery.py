"""How a message is delivered: stored or not, to whom, counted as unread or not.

Each provider maps it to its own switches (the capability ``messages.delivery`` says how, and what it
cannot do):

* Tencent: ``MsgLifeTime`` 0 (one-to-one and batch) or ``OnlineOnlyFlag`` 1 (groups) for an online-only
  message, ``SendMsgControl`` ``NoUnread``/``NoLastMsg``.
* WuKongIM: header ``no_persist`` (not stored, pushed to connected devices only), ``sync_once`` (a command
  message: kept out of the conversation's history, delivered once to each device, also later),
  ``red_dot`` (what the official SDKs count as unread).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from imbridge.errors import InvalidRequestError


class Delivery(BaseModel):
    """Delivery options of a send. The defaults are an ordinary message.

    * ``persist``: kept in the conversation's history (``messages.history`` returns it).
    * ``online_only``: delivered only to devices connected now; never pushed or synced later.
    * ``unread``: counts towards the recipients' unread count.
    * ``update_conversation``: becomes the last message of the recipients' conversation lists.

    What is left unset follows from what is set: ``Delivery(online_only=True)`` is not persisted, and
    ``Delivery(persist=False)`` is online-only unless ``online_only=False`` is given (a command message
    that reaches offline devices later but stays out of history). A message that is not persisted never
    counts as unread and never becomes a conversation's last message (Tencent: an online-only message
    "is neither roamed nor counted as unread", web.sdk.qcloud.com SendMessageOptions ``onlineUserOnly``;
    WuKongIM: ``no_persist`` messages skip the conversation update, manager_conversation.go:67).
    """

    model_config = ConfigDict(frozen=True)

    persist: bool = True
    online_only: bool = False
    unread: bool = True
    update_conversation: bool = True

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name in ("persist", "online_only", "unread", "update_conversation"):
            if name in data and not isinstance(data[name], bool):
                raise InvalidRequestError(f"Delivery.{name} must be True or False, got {data[name]!r}")
        given = dict(data)
        online_only = given.get("online_only")
        persist = given.get("persist")
        if persist is None:
            persist = not online_only if online_only is not None else True
        if online_only is None:
            online_only = not persist
        if persist and online_only:
            raise InvalidRequestError("an online-only message is never stored: persist=True contradicts online_only")
        if not persist:
            for name in ("unread", "update_conversation"):
                if given.get(name) is True:
                    raise InvalidRequestError(
                        f"a message that is not persisted cannot set {name}=True (it is neither counted as "
                        "unread nor a conversation's last message)"
                    )
                given[name] = False
        given.update(persist=persist, online_only=online_only)
        return given

    @property
    def is_default(self) -> bool:
        """True for an ordinary message (every provider sends it without any delivery switch)."""
        return self.persist and not self.online_only and self.unread and self.update_conversation

    @property
    def command(self) -> bool:
        """Not persisted but delivered later too: a command/signal message."""
        return not self.persist and not self.online_only
