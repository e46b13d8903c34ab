"""The WuKongIM v2.2.5 provider: every neutral operation, with WuKongIM's gaps closed explicitly.

What WuKongIM does not do, and what imbridge does instead (each stated in the capability map):

* ``/message/send`` answers before the message is checked or stored and never dedupes
  ``client_msg_no``: sends are confirmed by looking ``client_msg_no`` up; a send that failed with an
  unknown outcome is looked up and, if absent, never re-sent (MessageMayHaveLandedError, reconciled later with
  ``messages.find_by_key``): only a connection that never opened is sent again.
* REST sends bypass membership and denylist checks: imbridge refuses group sends from non-members and
  muted members itself (``enforce_policy``), from briefly cached reads.
* No profiles, group names, owners, roles, timed mutes or revocations: those live in imbridge's store
  (the same SQLite code as the ``local`` provider).
* Every channel-info write overwrites all five flags: imbridge always writes the complete set, the
  readable ones (``ban``, ``disband``) read back first.
"""

from __future__ import annotations

from imbridge.capabilities import CapabilityMap, Operation, Support
from imbridge.providers.wukong._core import STORE_HINT
from imbridge.providers.wukong.conversations import WukongConversations
from imbridge.providers.wukong.groups import WukongGroups
from imbridge.providers.wukong.health import WukongHealth
from imbridge.providers.wukong.maintenance import WukongMaintenance
from imbridge.providers.wukong.mapping import NAME
from imbridge.providers.wukong.messages import WukongMessages
from imbridge.providers.wukong.users import WukongUsers


class WukongProvider(WukongConversations, WukongUsers, WukongMessages, WukongGroups, WukongHealth, WukongMaintenance):
    """The operations live by resource: ``users.py``, ``messages.py``, ``groups.py``, ``conversations.py``
    (conversation lists and message lookup); what they share
    (settings, transport hooks, the escape hatch) in ``_core.py``."""

    @property
    def capabilities(self) -> CapabilityMap:
        stored = self.store is not None
        no_store = f"UNSUPPORTED: needs imbridge's store, and none is set. {STORE_HINT}"
        entries: dict[Operation, tuple[Support, str] | Support] = {
            Operation.USERS_REGISTER: (
                Support.NATIVE,
                "POST /user/token with a random token for settings.device_flag (nobody can log in until "
                "login_credentials); users the store already knows are not re-posted, so their tokens stay.",
            ),
            Operation.USERS_GET_PROFILES: (
                (Support.EMULATED, "WuKongIM keeps no profiles: read from imbridge's store.")
                if stored
                else (Support.UNSUPPORTED, no_store)
            ),
            Operation.USERS_SET_PROFILE: (
                (Support.EMULATED, "WuKongIM keeps no profiles: written to imbridge's store only.")
                if stored
                else (Support.UNSUPPORTED, no_store)
            ),
            Operation.USERS_LOGIN_CREDENTIALS: (
                Support.PARTIAL,
                "An HS256 JWT (token_secret) registered with POST /user/token for the device flag of the kind "
                "asked (app 0, web 1, desktop 2; settings.device_flag, 0 unless configured, when none is): a client "
                "connecting as another kind is never answered, so the JS SDK needs device='web'. "
                "WuKongIM compares the token verbatim and never reads its exp claim: expires_at is advisory "
                "(issue a new one, or POST /user/device_quit, to cut a session). Issuing replaces the previous "
                "token of that device flag; device_level 1 kicks that device's live connections.",
            ),
            Operation.MESSAGES_SEND: (
                Support.EMULATED,
                "POST /message/send answers before storing; imbridge confirms with GET /message/byclientmsgno "
                "and a POST /channel/messagesync row at the found seq (a stalled v2.2.5 channel answers the key "
                "of a message its history never lists: MessageMayHaveLandedError) "
                "(returns message_seq; a silent drop by a banned or dismissed group becomes an error; "
                "confirm=False skips it; on the async client, concurrent sends to a channel share one POST "
                "/channel/messagesync of its newest messages per poll, a key looked up alone only if that misses "
                "it). client_msg_no = idempotency_key; the server never deduplicates it, so "
                "only a send whose connection never opened is re-sent: after any other failure it is looked up, "
                "and if absent MessageMayHaveLandedError carries the key (messages.find_by_key reconciles). "
                "Group sends from non-members or muted members are refused by "
                "imbridge (WuKongIM's REST send checks neither) unless enforce_policy=False.",
            ),
            Operation.MESSAGES_SEND_BATCH: (
                Support.PARTIAL,
                "POST /message/sendbatch: no per-recipient message ids or refs, client_msg_no is ignored by the "
                "server, so a batch that failed with an unknown outcome is not re-sent (the error says it may "
                "have landed); failed items are the ids WuKongIM rejects synchronously and, with a store, unknown "
                "users (never sent).",
            ),
            Operation.MESSAGES_HISTORY: (
                Support.NATIVE,
                "POST /channel/messagesync (both directions, opaque cursors). No membership check on the server: "
                "with enforce_policy, imbridge refuses a group read by a non-member (the subscriber list). "
                "Revoked messages are marked from imbridge's revocation records and from revoke notices "
                "(type 1006) stored in the same page by earlier versions; notices are not returned as messages.",
            ),
            Operation.MESSAGES_REVOKE: (
                (
                    Support.EMULATED,
                    "WuKongIM has no revoke: imbridge sends a revoke notice (payload type 1006, header sync_once, "
                    "so it lands in the conversation's command channel, which clients sync as commands, and raises "
                    "no unread count) and records the revocation in its store; imbridge's history shows the message "
                    "revoked, but WuKongIM keeps its content and other readers must honour the notice themselves.",
                )
                if stored
                else (Support.UNSUPPORTED, no_store)
            ),
            Operation.GROUPS_CREATE: (
                Support.EMULATED if stored else Support.PARTIAL,
                "POST /channel with all members (reset=1, all flags written); name, owner, roles, introduction "
                "and notification live in imbridge's store"
                + ("." if stored else " (without a store they are not kept)."),
            ),
            Operation.GROUPS_GET: (
                Support.EMULATED if stored else Support.PARTIAL,
                "ban/disband from GET /cluster/channels, member count from the subscriber list, the rest from "
                "imbridge's store.",
            ),
            Operation.GROUPS_UPDATE: (
                (Support.EMULATED, "WuKongIM channels have no name or profile: kept in imbridge's store.")
                if stored
                else (Support.UNSUPPORTED, no_store)
            ),
            Operation.GROUPS_DISMISS: (
                Support.NATIVE,
                "POST /channel/delete sets disband=1; WuKongIM keeps messages, members and denylist, and a later "
                "create with the same id revives the channel.",
            ),
            Operation.GROUPS_ADD_MEMBERS: (
                Support.NATIVE,
                "POST /channel/subscriber_add; roles in imbridge's store. WuKongIM has no user registry to check "
                "ids against.",
            ),
            Operation.GROUPS_REMOVE_MEMBERS: (Support.NATIVE, "POST /channel/subscriber_remove."),
            Operation.GROUPS_MEMBERS: (
                Support.NATIVE,
                "GET /cluster/channels/{id}/2/subscribers (unordered) with roles and mutes from imbridge's store.",
            ),
            Operation.GROUPS_MUTE: (
                (
                    Support.EMULATED,
                    "Denylist (POST /channel/blacklist_add); WuKongIM has no timed mute, so the expiry is kept in "
                    "imbridge's store and the member is taken off the denylist on the first read or send after it.",
                )
                if stored
                else (Support.UNSUPPORTED, f"timed mutes need imbridge's store, and none is set. {STORE_HINT}")
            ),
            Operation.GROUPS_UNMUTE: (Support.NATIVE, "POST /channel/blacklist_remove."),
            Operation.GROUPS_MUTE_ALL: (
                Support.PARTIAL,
                "POST /channel/info ban=1 with every other flag preserved. WuKongIM's ban drops every send, the "
                "owner's and admins' too, so imbridge refuses all group sends while it is on.",
            ),
            Operation.GROUPS_MUTED: (
                Support.EMULATED,
                "The denylist (GET /cluster/channels/{id}/2/denylist) with expiries from imbridge's store; a "
                "denylisted member with no stored expiry (muted until unmuted, or put there by other means) is "
                "reported muted with no end (muted_until None).",
            ),
        }
        # due work (issue 15)
        entries[Operation.MAINTENANCE_RUN_DUE] = (
            (
                Support.EMULATED,
                "WuKongIM has no timed mute: run_due takes every mute that has ended off the denylist "
                "(POST /channel/blacklist_remove), in every group, with no other call needed; instances sharing "
                "the store take turns through a lease row in it. Run it with `imbridge worker` or "
                "AsyncIMClient(background_maintenance=...); without it, an ended mute is lifted on the group's "
                "next read or send through imbridge.",
            )
            if stored
            else (Support.NATIVE, "Nothing falls due without a store (timed mutes need one).")
        )
        entries.update(self._admin_capabilities(stored, no_store))
        entries.update(self._conversation_capabilities())
        return CapabilityMap(NAME, entries)

    @staticmethod
    def _admin_capabilities(stored: bool, no_store: str) -> dict[Operation, tuple[Support, str] | Support]:
        """Member administration, join policy, presence and sessions, system messages, accounts (issue 17)."""

        def store_kept(note: str) -> tuple[Support, str]:
            return (Support.EMULATED, note) if stored else (Support.UNSUPPORTED, no_store)

        return {
            Operation.USERS_PRESENCE: (
                Support.NATIVE,
                "POST /user/onlinestatus: one entry per live connection with its device_flag (0 app, 1 web, 2 "
                "desktop), offline users absent; unknown users (GET /cluster/users) are NotFoundError. No "
                "'background' state: WuKongIM has no push-only presence.",
            ),
            Operation.USERS_KICK: (
                Support.NATIVE,
                "POST /user/device_quit (device_flag -1 for every device): DISCONNECT with ConnectKick, the socket "
                "closed 2 s later, and the device's token BLANKED, so the old login token never connects again: "
                "issue new login_credentials to let the user back in.",
            ),
            Operation.USERS_EXISTS: (
                Support.NATIVE,
                "GET /cluster/users?uid= per user not already in imbridge's store (a user exists once it has had "
                "a token).",
            ),
            Operation.USERS_DELETE: (
                Support.UNSUPPORTED,
                "WuKongIM v2.2.5 has no API that deletes a user (the /user routes are token, device_quit, "
                "onlinestatus and systemuids, internal/api/user.go:39-51).",
            ),
            Operation.MESSAGES_DELIVERY: (
                Support.PARTIAL,
                "Header flags. online_only (not persisted): no_persist=1, never stored, pushed to connected devices "
                "only, returned unconfirmed (nothing to look up) and never re-sent after an unknown outcome. "
                "persist=False with online_only=False: sync_once=1, a command message kept in the channel's "
                "command twin (<id>____cmd, not in history) and delivered once to each device, also later; it is "
                "confirmed there. unread=False: red_dot=0, which the official SDKs do not count as unread, but "
                "the server's own conversation unread counts still do. update_conversation=False on a persisted "
                "message is UNSUPPORTED (only no_persist skips the conversation update).",
            ),
            Operation.GROUPS_SET_ROLE: store_kept(
                "WuKongIM has no roles: kept in imbridge's store, after checking the user is a subscriber."
            ),
            Operation.GROUPS_TRANSFER_OWNER: store_kept(
                "WuKongIM has no owners: kept in imbridge's store (the previous owner becomes a member), after "
                "checking the new owner is a subscriber."
            ),
            Operation.GROUPS_SET_NAME_CARD: store_kept("WuKongIM has no name cards: kept in imbridge's store."),
            Operation.GROUPS_JOIN_POLICY: store_kept(
                "WuKongIM has no join requests or size limit: join_option is kept in imbridge's store (for the "
                "app's own join flow) and max_members is enforced by imbridge on add_members."
            ),
            Operation.GROUPS_JOINED: (
                (
                    Support.PARTIAL,
                    "WuKongIM cannot list a user's channels: the groups imbridge's store knows the user in, each "
                    "checked against WuKongIM (alive, user still a subscriber); groups the user joined without "
                    "imbridge are missing.",
                )
                if stored
                else (Support.UNSUPPORTED, no_store)
            ),
            Operation.GROUPS_LIST: (
                Support.NATIVE,
                "GET /cluster/channels?channel_type=2, newest first by creation time (kept across flag writes), "
                "paged by offset_created_at; dismissed channels (still listed by WuKongIM) and command twins are "
                "skipped, so a page may hold fewer than limit groups. Names from imbridge's store.",
            ),
            Operation.GROUPS_NOTIFY: (
                Support.EMULATED,
                "As Tencent's group system notification, an online message never stored: no_persist=1 from the "
                "system account with payload type 99 (cmd 'groupSystemNotification', group_id, content), pushed to "
                "the members' connected devices only and handed to the SDKs' command listeners; with to=..., the "
                "subscribers form (sync_once with no_persist, the server's online command channel). Not in history, "
                "not unread, nothing to look up afterwards.",
            ),
        }
