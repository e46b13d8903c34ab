"""The embedded provider: every operation NATIVE on a SQLite database. Also imbridge's reference semantics.

Rules it enforces, as the hosted providers do: senders and recipients must be registered; a group
send needs a member who is not muted (and, while the group is muted as a whole, the owner or an
admin); unknown groups, users and messages raise NotFoundError.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from pydantic import SecretStr, TypeAdapter

from imbridge._clock import Clock
from imbridge._cursor import decode_cursor, encode_cursor
from imbridge._flow import Flow, immediate
from imbridge.capabilities import CapabilityMap, Operation, Support
from imbridge.config import LocalSettings
from imbridge.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from imbridge.models import (
    BatchItem,
    BatchResult,
    Conversation,
    Group,
    LoginCredentials,
    Member,
    Message,
    MessageRef,
    Page,
    Profile,
    Role,
    SentMessage,
)
from imbridge.models.content import Element
from imbridge.providers import _login_tokens as login_tokens
from imbridge.providers.base import (
    BatchDraft,
    Direction,
    GroupSpec,
    GroupUpdate,
    HistoryQuery,
    OutgoingMessage,
    ProfileUpdate,
    Provider,
    ProviderSettings,
)
from imbridge.providers.local import events as local_events
from imbridge.providers.local.store import (
    GroupRow,
    MemberRow,
    MessageRow,
    Store,
    conversation_key,
    profile_fields,
    profile_from_fields,
)

T = TypeVar("T")

NAME = "local"
_ISSUER = "imbridge-local"
_ELEMENTS = TypeAdapter(list[Element])


def _ts(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


class LocalProvider(Provider):
    name = NAME
    settings_class = LocalSettings
    uses_http = False

    def __init__(self, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        super().__init__(settings, clock=clock)
        assert isinstance(settings, LocalSettings)
        self.store = Store(settings.database)
        self._token_key = login_tokens.signing_key(settings.token_secret, self.store, "token_secret")
        self.events = local_events.EventPublisher(self._now)
        """Where this provider's events go: attach a receiver with ``EventReceiver("local").attach(client)``."""

    @property
    def capabilities(self) -> CapabilityMap:
        return CapabilityMap(NAME, {operation: Support.NATIVE for operation in Operation})

    def close(self) -> None:
        self.store.close()

    def health(self) -> Flow[str]:
        return self._run(
            lambda: f"SQLite database {self.store.path!r} open, schema {self.store.meta('schema_version')}"
        )

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _run(self, compute: Callable[[], T]) -> Flow[T]:
        return immediate(compute)

    def _publish(self, build: Callable[[dict[str, Any]], list[Any]]) -> None:
        """Hand the events of a committed write to the attached receivers (built only when one is attached)."""
        if self.events.active:
            now = self.clock.now()
            self.events.publish(build({"provider": NAME, "received_at": now, "occurred_at": now}))

    # -- checks -------------------------------------------------------------------------------

    def _require_users(self, user_ids: Sequence[str], operation: str) -> None:
        missing = sorted(set(user_ids) - self.store.existing_users(user_ids))
        if missing:
            raise NotFoundError(f"unknown users: {', '.join(missing)}", provider=NAME, operation=operation)

    def _require_group(self, group_id: str, operation: str) -> GroupRow:
        group = self.store.group(group_id)
        if group is None:
            raise NotFoundError(f"unknown group {group_id!r}", provider=NAME, operation=operation)
        return group

    def _check_may_send(self, group: GroupRow, sender: str) -> None:
        operation = Operation.MESSAGES_SEND.value
        member = self.store.member(group.id, sender)
        if member is None:
            raise PermissionDeniedError(
                f"{sender!r} is not a member of group {group.id!r}", provider=NAME, operation=operation
            )
        if member.muted_until is not None and member.muted_until > self._now():
            raise PermissionDeniedError(
                f"{sender!r} is muted in group {group.id!r}", provider=NAME, operation=operation
            )
        if group.mute_all and member.role == Role.MEMBER.value:
            raise PermissionDeniedError(
                f"group {group.id!r} is muted; only the owner and admins may send", provider=NAME, operation=operation
            )

    # -- users --------------------------------------------------------------------------------

    def register_users(self, user_ids: Sequence[str]) -> Flow[BatchResult]:
        def compute() -> BatchResult:
            created = self.store.add_users(user_ids, self._now())
            items = [
                BatchItem(target=uid, ok=True, detail="" if new else "already registered")
                for uid, new in created.items()
            ]
            return BatchResult(items=items, provider=NAME)

        return self._run(compute)

    def get_profiles(self, user_ids: Sequence[str]) -> Flow[list[Profile]]:
        def compute() -> list[Profile]:
            self._require_users(user_ids, Operation.USERS_GET_PROFILES.value)
            return [self._profile(uid) for uid in user_ids]

        return self._run(compute)

    def _profile(self, user_id: str) -> Profile:
        fields = self.store.profile(user_id)
        return profile_from_fields(user_id, fields, provider=NAME, raw={"fields": fields})

    def set_profile(self, user_id: str, update: ProfileUpdate) -> Flow[None]:
        def compute() -> None:
            self._require_users([user_id], Operation.USERS_SET_PROFILE.value)
            fields = profile_fields(update)
            self.store.set_profile_fields(user_id, fields)
            custom_prefix = "custom:"
            self._publish(lambda common: [local_events.ProfileUpdated(
                **common, event_id=f"local:profile:{user_id}:{uuid.uuid4().hex}", user_id=user_id,
                changes={k: v for k, v in fields.items() if not k.startswith(custom_prefix)},
                custom={k[len(custom_prefix):]: v for k, v in fields.items() if k.startswith(custom_prefix)},
            )])  # fmt: skip

        return self._run(compute)

    def login_credentials(self, user_id: str, ttl: timedelta) -> Flow[LoginCredentials]:
        def compute() -> LoginCredentials:
            self._require_users([user_id], Operation.USERS_LOGIN_CREDENTIALS.value)
            issued = self.clock.now()
            expires = issued + ttl
            token = login_tokens.issue(
                self._token_key, user_id=user_id, issuer=_ISSUER,
                issued=int(issued.timestamp()), expires=int(expires.timestamp()),
            )  # fmt: skip
            return LoginCredentials(
                user_id=user_id, token=SecretStr(token), expires_at=_ts(int(expires.timestamp())),
                extra={"algorithm": "HS256", "issuer": _ISSUER}, provider=NAME,
            )  # fmt: skip

        return self._run(compute)

    def authenticate(self, token: str) -> str:
        """The user a login token was issued to; AuthenticationError if forged, foreign or expired."""
        return login_tokens.verify(token, self._token_key, issuer=_ISSUER, now=self._now(), provider=NAME)

    # -- messages -----------------------------------------------------------------------------

    def _conversation_key(self, sender_or_viewer: str, conversation: Conversation) -> str:
        if conversation.is_group:
            return conversation_key("group", conversation.id)
        return conversation_key("user", sender_or_viewer, conversation.id)

    def send_message(self, message: OutgoingMessage) -> Flow[SentMessage]:
        def compute() -> SentMessage:
            operation = Operation.MESSAGES_SEND.value
            self._require_users([message.sender], operation)
            if message.to.is_group:
                self._check_may_send(self._require_group(message.to.id, operation), message.sender)
            else:
                self._require_users([message.to.id], operation)
            row, new = self._append(
                message.sender, message.to, message.elements, message.metadata, message.idempotency_key
            )
            if new:
                self._publish(lambda common: [self._created(row, message.sender, message.to, common)])
            return SentMessage(
                ref=self._ref(row, message.sender, message.to),
                time=_ts(row.time),
                seq=row.seq,
                provider=NAME,
                raw={"key": row.key},
            )

        return self._run(compute)

    def _append(
        self, sender: str, to: Conversation, elements: Sequence[Element], metadata: Any, dedupe: str
    ) -> tuple[MessageRow, bool]:
        return self.store.append_message(
            self._conversation_key(sender, to),
            key=uuid.uuid4().hex,
            sender=sender,
            elements=[element.model_dump(mode="json") for element in elements],
            metadata=dict(metadata),
            time=self._now(),
            # Scoped to the sender: another sender reusing the key is a different message, not a replay.
            # (A space cannot occur in a checked id, so the pair is unambiguous.)
            dedupe=f"{sender} {dedupe}",
        )

    def _created_list(self, row: MessageRow, sender: str, to: Conversation, common: dict[str, Any]) -> list[Any]:
        return [self._created(row, sender, to, common)]

    def _created(self, row: MessageRow, sender: str, to: Conversation, common: dict[str, Any]) -> Any:
        message = self._message(row, to, sender)
        return local_events.MessageCreated(**common | {"occurred_at": message.time}, event_id=f"local:msg:{row.key}",
                                           message=message, raw=message.raw)  # fmt: skip

    def _ref(self, row: MessageRow, sender: str, to: Conversation) -> MessageRef:
        return MessageRef(provider=NAME, conversation=to, sender=sender, key=row.key, seq=row.seq)

    def send_batch(self, batch: BatchDraft) -> Flow[BatchResult]:
        def compute() -> BatchResult:
            self._require_users([batch.sender], Operation.MESSAGES_SEND_BATCH.value)
            known = self.store.existing_users(batch.recipients)
            items = []
            for recipient in batch.recipients:
                if recipient not in known:
                    error = NotFoundError(
                        f"unknown user {recipient!r}", provider=NAME, operation=Operation.MESSAGES_SEND_BATCH.value
                    )
                    items.append(BatchItem(target=recipient, ok=False, error=error, detail=error.message))
                    continue
                to = Conversation.user(recipient)
                row, new = self._append(batch.sender, to, batch.elements, batch.metadata, batch.idempotency_key)
                if new:
                    self._publish(partial(self._created_list, row, batch.sender, to))
                items.append(BatchItem(target=recipient, ok=True, ref=self._ref(row, batch.sender, to)))
            return BatchResult(items=items, provider=NAME)

        return self._run(compute)

    def history(self, query: HistoryQuery) -> Flow[Page[Message]]:
        def compute() -> Page[Message]:
            operation = Operation.MESSAGES_HISTORY.value
            self._require_users([query.viewer], operation)
            if query.conversation.is_group:
                self._require_group(query.conversation.id, operation)
            else:
                self._require_users([query.conversation.id], operation)
            key = self._conversation_key(query.viewer, query.conversation)
            direction = query.direction
            bound: int | None = None
            if query.cursor is not None:
                position = decode_cursor(NAME, query.cursor)
                if position.get("d") != direction.value or not isinstance(position.get("s"), int):
                    raise InvalidRequestError(
                        "history cursor does not fit this query's direction", provider=NAME, operation=operation
                    )
                bound = position["s"]
            backward = direction is Direction.BACKWARD
            rows = self.store.messages(
                key,
                before=bound if backward else None,
                after=None if backward else bound,
                limit=query.limit + 1,
                descending=backward,
            )
            more = len(rows) > query.limit
            rows = rows[: query.limit]
            next_cursor = encode_cursor(NAME, {"d": direction.value, "s": rows[-1].seq}) if more and rows else None
            return Page(
                items=[self._message(row, query.conversation, query.viewer) for row in rows],
                next_cursor=next_cursor,
                provider=NAME,
            )

        return self._run(compute)

    def _message(self, row: MessageRow, conversation: Conversation, viewer: str) -> Message:
        if not conversation.is_group and row.sender != viewer:
            # One-to-one: the conversation as the sender sees it, so the ref revokes what was sent.
            ref_conversation = Conversation.user(viewer)
        else:
            ref_conversation = conversation
        return Message(
            ref=MessageRef(provider=NAME, conversation=ref_conversation, sender=row.sender, key=row.key, seq=row.seq),
            sender=row.sender,
            conversation=conversation,
            elements=_ELEMENTS.validate_python(row.elements),
            time=_ts(row.time),
            seq=row.seq,
            revoked=row.revoked,
            metadata=row.metadata,
            provider=NAME,
            raw={"conversation": row.conversation, "key": row.key},
        )

    def revoke(self, ref: MessageRef) -> Flow[None]:
        def compute() -> None:
            if ref.provider != NAME:
                raise InvalidRequestError(
                    f"a {ref.provider} message reference cannot be revoked on {NAME}", provider=NAME
                )
            revoked = self.store.revoke_message(ref.key)
            if revoked is None:
                raise NotFoundError("no such message", provider=NAME, operation=Operation.MESSAGES_REVOKE.value)
            if revoked:
                self._publish(lambda common: [local_events.MessageRevoked(
                    **common, event_id=f"local:revoke:{ref.key}", conversation=ref.conversation, key=ref.key,
                    seq=ref.seq, sender=ref.sender, revoked_by=ref.sender, ref=ref,
                )])  # fmt: skip

        return self._run(compute)

    # -- groups -------------------------------------------------------------------------------

    def _group(self, row: GroupRow) -> Group:
        return Group(
            id=row.id, name=row.name, owner=row.owner, introduction=row.introduction, notification=row.notification,
            face_url=row.face_url, mute_all=row.mute_all, member_count=row.member_count,
            created_at=_ts(row.created_at), provider=NAME,
        )  # fmt: skip

    def create_group(self, spec: GroupSpec) -> Flow[Group]:
        def compute() -> Group:
            operation = Operation.GROUPS_CREATE.value
            self._require_users([spec.owner, *spec.members, *spec.admins], operation)
            group_id = spec.group_id or self.new_group_id()
            roles = {uid: Role.MEMBER.value for uid in spec.members}
            roles.update({uid: Role.ADMIN.value for uid in spec.admins})
            roles[spec.owner] = Role.OWNER.value
            created = self.store.create_group(
                group_id, name=spec.name, owner=spec.owner, introduction=spec.introduction,
                notification=spec.notification, face_url=spec.face_url, now=self._now(), members=list(roles.items()),
            )  # fmt: skip
            if not created:
                raise ConflictError(f"group {group_id!r} already exists", provider=NAME, operation=operation)
            group = self._group(self._require_group(group_id, operation))
            self._publish(lambda common: [local_events.GroupCreated(
                **common, event_id=f"local:group.created:{group_id}:{uuid.uuid4().hex}",
                group_id=group_id, name=spec.name, owner=spec.owner,
                members=[uid for uid in roles if uid != spec.owner],
            )])  # fmt: skip
            return group

        return self._run(compute)

    def get_group(self, group_id: str) -> Flow[Group]:
        return self._run(lambda: self._group(self._require_group(group_id, Operation.GROUPS_GET.value)))

    def update_group(self, group_id: str, update: GroupUpdate) -> Flow[Group]:
        def compute() -> Group:
            fields = {
                name: value
                for name, value in (
                    ("name", update.name), ("introduction", update.introduction),
                    ("notification", update.notification), ("face_url", update.face_url),
                )
                if value is not None
            }  # fmt: skip
            if not self.store.update_group(group_id, fields):
                raise NotFoundError(
                    f"unknown group {group_id!r}", provider=NAME, operation=Operation.GROUPS_UPDATE.value
                )
            if fields:
                self._publish(lambda common: [local_events.GroupUpdated(
                    **common, event_id=f"local:group.updated:{group_id}:{uuid.uuid4().hex}", group_id=group_id,
                    changes={name: str(value) for name, value in fields.items()},
                )])  # fmt: skip
            return self._group(self._require_group(group_id, Operation.GROUPS_UPDATE.value))

        return self._run(compute)

    def dismiss_group(self, group_id: str) -> Flow[None]:
        def compute() -> None:
            if not self.store.dismiss_group(group_id, self._now()):
                raise NotFoundError(
                    f"unknown group {group_id!r}", provider=NAME, operation=Operation.GROUPS_DISMISS.value
                )
            self._publish(lambda common: [local_events.GroupDismissed(
                **common, event_id=f"local:group.dismissed:{group_id}:{uuid.uuid4().hex}", group_id=group_id,
            )])  # fmt: skip

        return self._run(compute)

    def add_members(self, group_id: str, user_ids: Sequence[str], role: Role) -> Flow[BatchResult]:
        def compute() -> BatchResult:
            operation = Operation.GROUPS_ADD_MEMBERS.value
            self._require_group(group_id, operation)
            if role is Role.OWNER:
                raise InvalidRequestError(
                    "a group has one owner; members are added as admin or member", provider=NAME, operation=operation
                )
            known = self.store.existing_users(user_ids)
            added = self.store.add_members(
                group_id, [(uid, role.value) for uid in user_ids if uid in known], self._now()
            )
            self._publish(lambda common: [
                local_events.MemberJoined(**common, event_id=f"local:join:{group_id}:{uid}:{uuid.uuid4().hex}",
                                          group_id=group_id, user_id=uid, how="added")
                for uid in user_ids if added.get(uid)
            ])  # fmt: skip
            items = []
            for uid in user_ids:
                if uid not in known:
                    error = NotFoundError(f"unknown user {uid!r}", provider=NAME, operation=operation)
                    items.append(BatchItem(target=uid, ok=False, error=error, detail=error.message))
                else:
                    items.append(BatchItem(target=uid, ok=True, detail="" if added[uid] else "already a member"))
            return BatchResult(items=items, provider=NAME)

        return self._run(compute)

    def remove_members(self, group_id: str, user_ids: Sequence[str]) -> Flow[BatchResult]:
        def compute() -> BatchResult:
            operation = Operation.GROUPS_REMOVE_MEMBERS.value
            group = self._require_group(group_id, operation)
            removable = [uid for uid in user_ids if uid != group.owner]
            removed = self.store.remove_members(group_id, removable)
            self._publish(lambda common: [
                local_events.MemberLeft(**common, event_id=f"local:exit:{group_id}:{uid}:{uuid.uuid4().hex}",
                                        group_id=group_id, user_id=uid, how="removed")
                for uid in removable if removed.get(uid)
            ])  # fmt: skip
            items = []
            for uid in user_ids:
                if uid == group.owner:
                    error: PermissionDeniedError | NotFoundError = PermissionDeniedError(
                        "the owner cannot be removed", provider=NAME, operation=operation
                    )
                elif not removed[uid]:
                    error = NotFoundError(f"{uid!r} is not a member", provider=NAME, operation=operation)
                else:
                    items.append(BatchItem(target=uid, ok=True))
                    continue
                items.append(BatchItem(target=uid, ok=False, error=error, detail=error.message))
            return BatchResult(items=items, provider=NAME)

        return self._run(compute)

    def _member(self, row: MemberRow) -> Member:
        muted = row.muted_until if row.muted_until is not None and row.muted_until > self._now() else None
        return Member(
            user_id=row.user_id, role=Role(row.role), joined_at=_ts(row.joined_at),
            muted_until=_ts(muted) if muted is not None else None, provider=NAME,
        )  # fmt: skip

    def list_members(self, group_id: str) -> Flow[list[Member]]:
        def compute() -> list[Member]:
            self._require_group(group_id, Operation.GROUPS_MEMBERS.value)
            return [self._member(row) for row in self.store.members(group_id)]

        return self._run(compute)

    def _require_members(self, group_id: str, user_ids: Sequence[str], operation: str) -> None:
        self._require_group(group_id, operation)
        outsiders = [uid for uid in user_ids if self.store.member(group_id, uid) is None]
        if outsiders:
            raise NotFoundError(
                f"not members of {group_id!r}: {', '.join(outsiders)}", provider=NAME, operation=operation
            )

    def mute(self, group_id: str, user_ids: Sequence[str], duration: timedelta) -> Flow[None]:
        def compute() -> None:
            self._require_members(group_id, user_ids, Operation.GROUPS_MUTE.value)
            self.store.set_mutes(group_id, user_ids, self._now() + duration.total_seconds())

        return self._run(compute)

    def unmute(self, group_id: str, user_ids: Sequence[str]) -> Flow[None]:
        def compute() -> None:
            self._require_members(group_id, user_ids, Operation.GROUPS_UNMUTE.value)
            self.store.set_mutes(group_id, user_ids, None)

        return self._run(compute)

    def mute_all(self, group_id: str, enabled: bool) -> Flow[None]:
        def compute() -> None:
            if not self.store.update_group(group_id, {"mute_all": int(enabled)}):
                raise NotFoundError(
                    f"unknown group {group_id!r}", provider=NAME, operation=Operation.GROUPS_MUTE_ALL.value
                )

        return self._run(compute)

    def muted(self, group_id: str) -> Flow[list[Member]]:
        def compute() -> list[Member]:
            self._require_group(group_id, Operation.GROUPS_MUTED.value)
            in_force = self.store.mutes(group_id, self._now())
            return [self._member(row) for row in self.store.members(group_id) if row.user_id in in_force]

        return self._run(compute)
