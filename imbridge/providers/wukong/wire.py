"""WuKongIM v2.2.5 wire shapes, as the server sends and accepts them (no imbridge semantics here).

Facts verified on a real v2.2.5 server are cited by section of ``/work/wk/FACTS.md`` in
``docs/providers/wukong.md``; the shapes below are what those requests returned.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imbridge.models.device import DeviceKind

PERSON = 1
"""Channel type of a one-to-one chat (stored under the fake id ``a@b``)."""
GROUP = 2
"""Channel type of a group (members are the channel's subscribers)."""

SYSTEM_UID = "____system"
"""The built-in system account; messages from it read back with ``from_uid == ""``."""

# WuKongIM reason codes (WuKongIMGoProto ``ReasonCode``, iota order), seen as HTTP 200 {"status": N}.
REASON_AUTH_FAIL = 2
REASON_SUBSCRIBER_NOT_EXIST = 3
REASON_IN_BLACKLIST = 4
REASON_CHANNEL_NOT_EXIST = 5
REASON_NOT_ALLOW_SEND = 11
REASON_CONNECT_KICK = 12
REASON_NOT_IN_WHITELIST = 13
REASON_SYSTEM_ERROR = 15
REASON_CHANNEL_ID_ERROR = 16
REASON_BAN = 19
REASON_RATE_LIMIT = 22
REASON_NOT_SUPPORT_CHANNEL_TYPE = 23
REASON_DISBAND = 24
REASON_SEND_BAN = 25

#: WuKongIM ``device_flag`` of each device kind: WuKongIMGoProto v1.2.3 ``common.go`` (``APP`` 0, ``WEB`` 1,
#: ``PC`` 2; ``SYSTEM`` 99 is the server's), the module v2.2.5 builds with (go.mod:7).
DEVICE_FLAGS: dict[DeviceKind, int] = {DeviceKind.APP: 0, DeviceKind.WEB: 1, DeviceKind.DESKTOP: 2}
DEVICE_KINDS: dict[int, DeviceKind] = {flag: kind for kind, flag in DEVICE_FLAGS.items()}
#: ``SYSTEM``: the flag imbridge's own JSON-RPC sending connections log in with (jsonrpc.py), never a user's app; its
#: connections are left out of presence and of online/offline events.
SYSTEM_DEVICE_FLAG = 99
#: ``device_flag`` -1 in ``POST /user/device_quit``: every device (api/user.go:80-84 quits APP, WEB and PC).
ALL_DEVICES = -1

CMD_SUFFIX = "____cmd"
"""A ``sync_once`` message is stored in the channel's command twin ``<id>____cmd`` (options.go:426, 1454-1458;
message.go:256), looked up there and never in the channel's own history."""

FORBIDDEN_ID_CHARS = "@#&/"
"""``@#&`` are refused by some routes and silently stored by others (FACTS §11); ``/`` would break the
``/cluster/channels/{id}/{type}/…`` paths. imbridge refuses all four in ids up front."""


def fake_channel_id(from_uid: str, to_uid: str) -> str:
    """The id WuKongIM stores a one-to-one chat under (``GetFakeChannelIDWith``, CRC32-IEEE ordered)."""
    if zlib.crc32(from_uid.encode()) > zlib.crc32(to_uid.encode()):
        return f"{from_uid}@{to_uid}"
    return f"{to_uid}@{from_uid}"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class MessageHeader(_Wire):
    no_persist: int = 0
    red_dot: int = 0
    sync_once: int = 0


class MessageResp(_Wire):
    """``MessageResp``: what history, lookups and webhooks return for one message.

    ``channel_id`` of a person message is the *recipient* (not the viewer's peer); ``from_uid`` is
    ``""`` for the system account; ``payload`` is standard base64.
    """

    header: MessageHeader = Field(default_factory=MessageHeader)
    setting: int = 0
    message_id: int
    message_idstr: str = ""
    client_msg_no: str = ""
    message_seq: int = 0
    from_uid: str = ""
    channel_id: str = ""
    channel_type: int = 0
    topic: str = ""
    expire: int = 0
    timestamp: int = 0
    payload: str = ""


@dataclass(slots=True)
class SendResult:
    """``data`` of ``POST /message/send``: no ``message_seq`` (the message is not stored yet).

    A plain class read by hand rather than a model: it is read once per send, the hottest path.
    """

    message_id: int
    client_msg_no: str

    @classmethod
    def read(cls, data: Any) -> SendResult | None:
        """The result ``data`` holds, or None when it is not of this shape."""
        if type(data) is dict:
            message_id, client_msg_no = data.get("message_id"), data.get("client_msg_no")
            if type(message_id) is int and type(client_msg_no) is str:
                return cls(message_id, client_msg_no)
        return None


class SyncResult(_Wire):
    """``POST /channel/messagesync`` and ``POST /messages``: messages always ascending by seq."""

    start_message_seq: int = 0
    end_message_seq: int = 0
    more: int = 0
    messages: list[MessageResp] = Field(default_factory=list)


class ConversationResp(_Wire):
    """One element of ``POST /conversation/sync`` and ``/conversation/syncByChannels``
    (``syncUserConversationResp``, internal/api/conversation_model.go:44-55 at v2.2.5-20260422).

    ``channel_id`` is the peer's uid for a one-to-one chat (not the fake id); ``unread`` is
    ``last_msg_seq`` minus the later of the read position and the user's own newest message
    (conversation.go:526-548); ``recents`` are the newest ``msg_count`` messages, newest first.
    """

    channel_id: str
    channel_type: int
    unread: int = 0
    timestamp: int = 0
    last_msg_seq: int = 0
    last_client_msg_no: str = ""
    offset_msg_seq: int = 0
    readed_to_msg_seq: int = 0
    version: int = 0
    recents: list[MessageResp] | None = None


class SendBatchResult(_Wire):
    """``POST /message/sendbatch``: parallel arrays; only synchronous failures (bad uids) are listed."""

    fail_uids: list[str] = Field(default_factory=list)
    reason: list[str] = Field(default_factory=list)


class ClusterChannel(_Wire):
    """One element of ``GET /cluster/channels?channel_id=&channel_type=``.

    Only ``ban`` and ``disband`` can be read back; an unknown channel is a zero element with
    ``channel_id == ""``; the counts are always 0 on this path (FACTS §3).
    """

    channel_id: str = ""
    channel_type: int = 0
    ban: int = 0
    disband: int = 0
    created_at: int = 0
    subscriber_count: int = 0


class ClusterChannels(_Wire):
    """``GET /cluster/channels``: one (possibly zero) element for a channel_id, or a page of channels newest
    first by ``created_at`` with ``more`` (pkg/cluster/cluster/api_channel.go:21-227)."""

    data: list[ClusterChannel] = Field(default_factory=list)
    more: int = 0


class OnlineConnection(_Wire):
    """One element of ``POST /user/onlinestatus``: one per live connection, offline users absent
    (``OnlinestatusResp``, api/user.go:245-259)."""

    uid: str
    device_flag: int = 0
    online: int = 0


class ChannelFlags(BaseModel):
    """The five flags ``/channel`` and ``/channel/info`` write. Every write overwrites all of them, an
    omitted one becoming 0, so imbridge always sends the complete set."""

    model_config = ConfigDict(frozen=True)

    large: int = 0
    ban: int = 0
    disband: int = 0
    send_ban: int = 0
    allow_stranger: int = 0

    def body(self, channel_id: str, channel_type: int = GROUP) -> dict[str, Any]:
        return {"channel_id": channel_id, "channel_type": channel_type, **self.model_dump()}


FLAG_NAMES = tuple(ChannelFlags.model_fields)
