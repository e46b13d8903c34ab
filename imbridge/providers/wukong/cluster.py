"""WuKongIM clusters: what "confirmed" means there, and the presence workaround.

On one node, a message that ``GET /message/byclientmsgno`` finds is stored. On a cluster it may be stored on
the channel's leader only: WuKongIM answers ``/message/send`` before replicating (internal/api/message.go:
237-297 hands the message to the event bus and returns), and byclientmsgno reads whichever node leads the
channel's slot (internal/api/message.go:781-795). If that leader dies before a follower has the message, the
cluster elects the online replica with the longest log (pkg/cluster/cluster/election_channel.go:125-200) and
the message is gone, its seq later reused: measured, a send confirmed that way and then lost.

So with ``confirm_replicated`` (the default when ``base_url`` lists several nodes) a send is confirmed only
once the message is on a majority of the channel's voting replicas, read from the replicas themselves:

1. ``GET /cluster/channels/{id}/{type}/replicas`` (answered by the slot leader, which asks every online
   replica for its ``last_msg_seq``, leader and term: pkg/cluster/cluster/api_cluster.go:276-405);
2. on the replicas whose ``last_msg_seq`` reached the message's seq, ``GET /cluster/messages?node_id=R&
   message_id=M`` (that node's own store: pkg/cluster/cluster/api_message.go:21-100), the same message at the
   same seq, until a majority of ``replica_max_count`` (``GET /cluster/channels/{id}/{type}/config``, which
   only the slot leader answers: api_cluster.go:123-162) holds it.

A majority survives the loss of any minority of nodes, since the election picks among a quorum of online
replicas the one with the longest log. What remains: two nodes of three lost at once, or a node's storage
losing what it had stored (a disk failure), can still lose it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imbridge._clock import Clock
from imbridge._flow import Flow, Request, Sleep
from imbridge.capabilities import Operation
from imbridge.errors import InvalidRequestError, ProviderError, ServiceUnavailableError, TransportError
from imbridge.models._validation import path_segment
from imbridge.providers.base import ProviderSettings
from imbridge.providers.wukong import mapping, wire
from imbridge.providers.wukong._core import WukongCore
from imbridge.providers.wukong.mapping import NAME

#: Waits (seconds) between reads of the replicas while a message is not yet on a majority: followers fetch
#: from the leader continuously (ms on a healthy cluster); the tail covers a leader change (6-8 s measured).
REPLICATION_DELAYS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 1.0, 2.0, 2.0, 3.0)
_LEARNER = 4  # raft role of a replica that does not vote (pkg/raft/types/types.go:707-718)


#: Channels whose slot leader is remembered (a bound: channel ids are unbounded).
_SLOT_LEADERS_KEPT = 4096


class WukongCluster(WukongCore):
    def __init__(self, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        super().__init__(settings, clock=clock)
        #: The channels' ``replica_max_count`` (one cluster-wide setting, channelReplicaCount), once read.
        self._replica_count: int | None = None
        #: "{channel id}/{type}" -> the URL of the node that leads its slot (and holds its freshest info).
        self._slot_leaders: dict[str, str] = {}
        #: node URL -> the node's cluster id.
        self._node_ids: dict[str, str] = {}

    # -- reads that must see the latest write ------------------------------------------------------

    def _channel(self, group_id: str) -> Flow[wire.ClusterChannel]:
        """On a cluster, a channel's info as its slot leader has it. ``GET /cluster/channels`` asks every node
        and keeps the first answer per channel, the asked node's own first (pkg/cluster/cluster/api_channel.go:
        21-200), and a node that follows the slot applies writes later: measured, a group read through another
        node right after ``mute_all`` or ``dismiss`` still showed the old flags. The slot leader, which every
        write goes through (internal/api/channel.go:81-91), is asked for its own copy (``node_id`` = itself)."""
        if self.nodes is None:
            return (yield from super()._channel(group_id))
        segment = f"{path_segment(group_id, 'group id')}/{wire.GROUP}"
        leader = yield from self._slot_leader(segment)
        node_id = (yield from self._node_id(leader)) if leader is not None else None
        if leader is not None and node_id is not None:
            params = {"channel_id": group_id, "channel_type": str(wire.GROUP), "node_id": node_id}
            request = self._get("/cluster/channels", params)
            request.node = leader
            try:
                data = wire.ClusterChannels.model_validate((yield request)).data
            except (ServiceUnavailableError, TransportError):
                self._slot_leaders.pop(segment, None)  # moved or down: found again next time
            else:
                return data[0] if data else wire.ClusterChannel()
        return (yield from super()._channel(group_id))

    def _slot_leader(self, segment: str) -> Flow[str | None]:
        """The URL of the node that leads this channel's slot: the one that answers its cluster config (the
        others answer "slot leader is not current node", api_cluster.go:150-154); None when none does."""
        known = self._slot_leaders.get(segment)
        if known is not None or self.nodes is None:
            return known
        for node in self.nodes.urls:
            request = self._get(f"/cluster/channels/{segment}/config")
            request.node = node
            try:
                config = yield request
            except (ProviderError, TransportError):
                continue
            count = config.get("replica_max_count") if isinstance(config, dict) else None
            if isinstance(count, int) and count > 0:
                self._replica_count = count
            if len(self._slot_leaders) >= _SLOT_LEADERS_KEPT:
                self._slot_leaders.clear()
            self._slot_leaders[segment] = node
            return node
        return None

    def _node_id(self, node: str) -> Flow[str | None]:
        """The cluster id of the node at ``node`` (``server_id`` of its ``GET /varz``), read once. (Not
        ``/cluster/node``: its node ``status`` field reads as an envelope's reason code.)"""
        known = self._node_ids.get(node)
        if known is None:
            request = self._get("/varz")
            request.node = node
            try:
                varz = yield request
            except (ProviderError, TransportError):
                return None
            server_id = varz.get("server_id") if isinstance(varz, dict) else None
            if not isinstance(server_id, str | int) or not str(server_id).isdigit():
                return None
            known = self._node_ids[node] = str(server_id)
        return known

    def _confirm_replicated(
        self, channel_id: str, channel_type: int, found: wire.MessageResp
    ) -> Flow[wire.MessageResp]:
        """``found`` once it is on a majority of its channel's voting replicas; ServiceUnavailableError when it
        is not within REPLICATION_DELAYS (it may then be lost if the node holding it fails)."""
        op = Operation.MESSAGES_SEND.value
        segment = f"{path_segment(channel_id, 'channel id')}/{channel_type}"
        holders: set[int] = set()
        problem = "its replicas could not be read"
        for delay in REPLICATION_DELAYS:
            if delay:
                yield Sleep(delay)
            try:
                quorum = (yield from self._replica_quorum(segment)) or 0
                replicas = yield self._get(f"/cluster/channels/{segment}/replicas")
                rows = replicas if isinstance(replicas, list) else []  # a shape WuKongIM never sends: none read
                voters = [r for r in rows if isinstance(r, dict) and r.get("role") != _LEARNER and r.get("replica_id")]
                quorum = quorum or len(voters) // 2 + 1
                seq = found.message_seq
                caught_up = [int(r["replica_id"]) for r in voters if int(r.get("last_msg_seq") or 0) >= seq]
                for replica in caught_up:
                    if replica not in holders and (yield from self._holds(replica, found)):
                        holders.add(replica)
                    if len(holders) >= quorum:
                        return found
                problem = f"on {len(holders)} of the {quorum} replicas a majority needs"
            except (ProviderError, TransportError) as error:
                if isinstance(error, InvalidRequestError) and error.http_status != 400:
                    raise
                problem = f"its replicas could not be read ({error.message})"
        raise ServiceUnavailableError(
            f"WuKongIM stored message {found.message_id} ({found.client_msg_no!r}, seq {found.message_seq}) but it is "
            f"{problem} after {sum(REPLICATION_DELAYS):.0f} s: it MAY BE LOST if the node that holds it fails. "
            "Not re-sent; a send with the same idempotency_key looks it up first.",
            provider=NAME, operation=op,
        )  # fmt: skip

    def _holds(self, replica: int, found: wire.MessageResp) -> Flow[bool]:
        """Whether node ``replica``'s own store holds ``found`` at its seq (not another message at that seq)."""
        reply = yield self._get("/cluster/messages", {"node_id": str(replica), "message_id": str(found.message_id)})
        rows = reply.get("data") if isinstance(reply, dict) else None
        return any(
            isinstance(row, dict) and str(row.get("message_id")) == str(found.message_id)
            and int(row.get("message_seq") or 0) == found.message_seq
            for row in rows or []
        )  # fmt: skip

    def _replica_quorum(self, segment: str) -> Flow[int | None]:
        """A majority of the channels' ``replica_max_count``, read once from the cluster config of a channel
        (answered by its slot leader only, api_cluster.go:123-162); None while unknown."""
        if self._replica_count is None:
            yield from self._slot_leader(segment)
        return None if self._replica_count is None else self._replica_count // 2 + 1

    def _unconfirmed_on_cluster(self, result: wire.SendResult, error: ProviderError | TransportError) -> None:
        """On a cluster, a send whose confirming lookups failed is not returned as sent: during a failover it may
        well be lost (measured). Raises the retryable error that says so."""
        if self.config.replicated_confirmation:
            raise ServiceUnavailableError(
                f"WuKongIM accepted message {result.message_id} ({result.client_msg_no!r}) but it could not be "
                f"confirmed ({error.message}): it MAY HAVE LANDED, or been lost in a failover. Not re-sent; a send "
                "with the same idempotency_key looks it up first.",
                provider=NAME, operation=Operation.MESSAGES_SEND.value,
            ) from error  # fmt: skip

    # -- presence on a cluster ------------------------------------------------------------------

    def _presence_per_node(self, user_ids: Sequence[str], defect: ProviderError) -> Flow[list[Any]]:
        """``/user/onlinestatus`` for each uid on the node that leads its slot, which answers from its own
        connections: any other node forwards to it without the manager token and fails (the token defect,
        mapping.cluster_error). Each node is asked in turn; a uid no node answers for raises ``defect``."""
        if self.nodes is None:
            raise defect
        rows: list[Any] = []
        for uid in user_ids:
            for node in self.nodes.urls:
                request = Request("POST", "/user/onlinestatus", json=[uid], api="/user/onlinestatus", node=node)
                try:
                    reply = yield request
                except TransportError:
                    continue
                except ProviderError as error:
                    if mapping.is_token_defect(error) or isinstance(error, ServiceUnavailableError):
                        continue
                    raise
                rows.extend(reply if isinstance(reply, list) else [])
                break
            else:
                raise defect
        return rows
