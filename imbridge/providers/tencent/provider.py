"""TencentProvider: the neutral operations over Tencent Cloud IM REST API v4.

Every call is ``POST https://{host}/v4/{service}/{command}?sdkappid=&identifier=&usersig=&random=&contenttype=json``
with a JSON body. HTTP is 200 even for errors: ``decode`` reads ``ErrorCode`` and raises the mapped error.
"""

from __future__ import annotations

from imbridge.capabilities import CapabilityMap, Operation, Support
from imbridge.providers.tencent.conversations import TencentConversations
from imbridge.providers.tencent.groups import TencentGroups
from imbridge.providers.tencent.health import TencentHealth
from imbridge.providers.tencent.maintenance import TencentMaintenance
from imbridge.providers.tencent.mapping import NAME
from imbridge.providers.tencent.messages import TencentMessages
from imbridge.providers.tencent.users import TencentUsers


class TencentProvider(TencentUsers, TencentMessages, TencentGroups, TencentHealth, TencentMaintenance,
                      TencentConversations):  # fmt: skip
    """The operations live by resource: ``users.py``, ``messages.py``, ``groups.py``, ``conversations.py``
    (conversation lists, unread counts and message lookup); what they share
    (settings, signing, the envelope and its errors, the escape hatch) in ``_core.py``."""

    asks_app_before_send = True  # C2C.CallbackBeforeSendMsg / Group.CallbackBeforeSendMsg (/1047/34364, 34374)

    @property
    def capabilities(self) -> CapabilityMap:
        n, p = Support.NATIVE, Support.PARTIAL
        return CapabilityMap(
            NAME,
            {
                **self._admin_capabilities(),
                Operation.USERS_REGISTER: (n, "multiaccount_import, 100 per request; an existing account is not "
                                              "reported as such (Tencent does not say)"),
                Operation.USERS_GET_PROFILES: (p, "portrait_get; custom keys are read only for the keys listed in "
                                                  "settings.profile_custom_keys and those this client has set (Tencent "
                                                  "returns only tags asked for)"),
                Operation.USERS_SET_PROFILE: (n, "portrait_set; custom keys must first be created in the console"),
                Operation.USERS_LOGIN_CREDENTIALS: (n, "a UserSig signed locally; the account is not checked; it "
                                                       "names no platform, so it logs in on any device kind"),
                Operation.MESSAGES_SEND: (n, "sendmsg / send_group_msg; MsgRandom/Random derived from the "
                                             "idempotency key, so retries are deduplicated by the server (C2C 120 s, "
                                             "group 5 min); an OK answer with MsgDropReason raises RateLimitError; "
                                             "sendmsg does not check blocklists or mutes; 40 msgs/s per group is "
                                             "not paced client-side. Tencent limits (refused before the network, "
                                             "other providers have none): the message body (MsgBody JSON) at most "
                                             "12 KB, user ids at most 32 bytes"),
                Operation.MESSAGES_SEND_BATCH: (n, "batchsendmsg, 500 recipients per request (a larger batch is sent "
                                                   "in chunks of 500, each with its own MsgRandom: Tencent's C2C "
                                                   "dedupe key has no recipient), paced at 12,000 "
                                                   "recipient-messages/min; triggers no webhooks"),
                Operation.MESSAGES_HISTORY: (p, "only within the roaming retention (7/30/90 days by edition). C2C "
                                                "reads backward natively; FORWARD re-reads backward from now down to "
                                                "the cursor on every page (cost grows with what remains). Group "
                                                "history reads windows of 20 seqs between 1 and NextMsgSeq-1 (one "
                                                "get_group_info on the first page); a window Tencent cuts short "
                                                "(IsFinished 0) is asked again for its missing part; FORWARD walks "
                                                "up from seq 1, expired seqs included. Group system messages and "
                                                "expired placeholders are skipped. A group read starts with "
                                                "get_role_in_group: only members read"),
                Operation.MESSAGES_REVOKE: (n, "admin_msgwithdraw (no time limit) / group_msg_recall (within "
                                               "retention); revoking twice succeeds"),
                Operation.GROUPS_CREATE: (n, "create_group with Type from settings.group_type (Public by default: "
                                             "Private/Work groups cannot mute members); members beyond 100 are added "
                                             "afterwards. Tencent limits, refused before the network (other "
                                             "providers have none): name 30, introduction 240, notification 300, "
                                             "face URL 100 UTF-8 bytes; custom group ids printable ASCII, at most "
                                             "48 bytes, not starting with @TGS#"),
                Operation.GROUPS_GET: (n, "get_group_info asking exactly the base-info fields imbridge reads "
                                          "(a ResponseFilter returns only what it names)"),
                Operation.GROUPS_UPDATE: (n, "modify_group_base_info; the same text limits as create"),
                Operation.GROUPS_DISMISS: n,
                Operation.GROUPS_ADD_MEMBERS: (n, "add_group_member (100 per request); new admins are then set with "
                                                  "modify_group_member_info, an existing member keeps its role; "
                                                  "Result 3 (approval asked) is a pending item, not a failure; a "
                                                  "full group (10014) refuses the whole request"),
                Operation.GROUPS_REMOVE_MEMBERS: (p, "delete_group_member reports nothing per member: imbridge reads "
                                                     "the member list first to report non-members and the owner"),
                Operation.GROUPS_MEMBERS: (n, "get_group_member_info paged 200 at a time with Limit/Offset, 100 at a "
                                              "time with Next for Community groups (the documented caps)"),
                Operation.GROUPS_MUTE: (n, "forbid_send_msg MuteTime in seconds, 500 accounts per request, after "
                                           "get_role_in_group (a non-member is NotFound: forbid_send_msg would "
                                           "answer OK); 4294967295 (permanent) for a mute without an end, read "
                                           "back as no end (a mute end at or past 4294967295: the docs do not say "
                                           "how Tencent reports it); not for Private (Work) groups"),
                Operation.GROUPS_UNMUTE: (n, "forbid_send_msg MuteTime 0, after get_role_in_group"),
                Operation.GROUPS_MUTE_ALL: (n, "modify_group_base_info MuteAllMember On/Off"),
                Operation.GROUPS_MUTED: (n, "get_group_muted_account, roles from the member list"),
                # due work (issue 15)
                Operation.MAINTENANCE_RUN_DUE: (n, "nothing falls due: Tencent ends timed mutes itself"),
                **self._conversation_capabilities(),
            },
        )  # fmt: skip

    @staticmethod
    def _admin_capabilities() -> dict[Operation, tuple[Support, str] | Support]:
        """Member administration, join policy, presence and sessions, system messages, accounts (issue 17)."""
        n, p = Support.NATIVE, Support.PARTIAL
        return {
            Operation.USERS_PRESENCE: (
                n,
                "openim/query_online_status (500 per request) with IsNeedDetail: "
                "Online, PushOnline (BACKGROUND: reachable by push) or Offline, per "
                "platform (iPhone/Android/iPad app, Web, PC/Mac desktop)",
            ),
            Operation.USERS_KICK: (
                p,
                "im_open_login_svc/kick invalidates the user's login state on every device at "
                "once (device must be None); a newly generated UserSig logs in again",
            ),
            Operation.USERS_EXISTS: (n, "im_open_login_svc/account_check, 100 per request"),
            Operation.USERS_DELETE: (
                p,
                "im_open_login_svc/account_delete, 100 per request; only apps on the Trial "
                "edition may delete accounts (error 71000 otherwise); profile and "
                "relationships are deleted with the account",
            ),
            Operation.MESSAGES_DELIVERY: (
                p,
                "online_only: MsgLifeTime 0 (one-to-one, batch) or OnlineOnlyFlag 1 "
                "(groups): not stored, not counted as unread; unread=False: "
                "SendMsgControl NoUnread; update_conversation=False: NoLastMsg. A "
                "message that is not persisted but delivered later "
                "(persist=False, online_only=False) is UNSUPPORTED",
            ),
            Operation.GROUPS_SET_ROLE: (n, "modify_group_member_info Role Admin/Member"),
            Operation.GROUPS_TRANSFER_OWNER: (
                n,
                "change_group_owner (not for AVChatRoom); the previous owner stays a member",
            ),
            Operation.GROUPS_SET_NAME_CARD: (n, "modify_group_member_info NameCard (at most 50 bytes)"),
            Operation.GROUPS_JOIN_POLICY: (
                n,
                "ApplyJoinOption (FreeAccess, NeedPermission, DisableApply) and "
                "MaxMemberCount/MaxMemberNum with create_group and "
                "modify_group_base_info; not for Community groups (join option) and "
                "bounded by the edition's member limit",
            ),
            Operation.GROUPS_JOINED: (
                n,
                "get_joined_group_list with the base fields and the user's Role/JoinTime, "
                "paged 500 at a time (not-yet-active Work groups included)",
            ),
            Operation.GROUPS_LIST: (
                n,
                "get_appid_group_list (Limit/Next, 1 call/s) then get_group_info 50 at a time; the order is Tencent's",
            ),
            Operation.GROUPS_NOTIFY: (
                p,
                "send_group_system_notification (to everyone, or to up to 50 members per request): an online-only "
                "group system notification (onReceiveRESTCustomData), not a chat message, never stored or roamed. "
                "Tencent has taken this API offline for new apps (the docs point to ordinary group messages); such "
                "apps get Tencent's error",
            ),
        }
