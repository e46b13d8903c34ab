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

    @property
    def capabilities(self) -> CapabilityMap:
        n, p = Support.NATIVE, Support.PARTIAL
        return CapabilityMap(
            NAME,
            {
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
                                                "expired placeholders are skipped"),
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
                Operation.GROUPS_ADD_MEMBERS: (n, "add_group_member (100 per request); admins are then set with "
                                                  "modify_group_member_info"),
                Operation.GROUPS_REMOVE_MEMBERS: (p, "delete_group_member reports nothing per member: imbridge reads "
                                                     "the member list first to report non-members and the owner"),
                Operation.GROUPS_MEMBERS: (n, "get_group_member_info paged 200 at a time with Limit/Offset, 100 at a "
                                              "time with Next for Community groups (the documented caps)"),
                Operation.GROUPS_MUTE: (n, "forbid_send_msg MuteTime in seconds (at most 4294967295), 500 accounts "
                                           "per request; not for Private (Work) groups"),
                Operation.GROUPS_UNMUTE: (n, "forbid_send_msg MuteTime 0"),
                Operation.GROUPS_MUTE_ALL: (n, "modify_group_base_info MuteAllMember On/Off"),
                Operation.GROUPS_MUTED: (n, "get_group_muted_account, roles from the member list"),
                # due work (issue 15)
                Operation.MAINTENANCE_RUN_DUE: (n, "nothing falls due: Tencent ends timed mutes itself"),
                **self._conversation_capabilities(),
            },
        )  # fmt: skip
