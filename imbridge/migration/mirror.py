"""Dual-write for the cut-over: ``MirrorClient(primary, secondary)`` and ``AsyncMirrorClient``.

Same resources and method names as ``IMClient``. Reads go to the primary only. Every write goes to the
primary first (its result is what the caller gets) and then to the secondary, with ids translated as the
migration translates them (same prefix, same unsafe-character rule) and, for sends, the secondary's
idempotency key derived from the primary's message id exactly as the migration derives it: a message that
is both mirrored and later migrated is stored once. When the secondary fails, the call is journaled in
the state database (never raised to the caller); ``imbridge migrate replay-journal`` replays the journal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from enum import Enum
from typing import Any

from pydantic import BaseModel, TypeAdapter

from imbridge.client import AsyncIMClient, IMClient
from imbridge.errors import IMBridgeError
from imbridge.migration import ids
from imbridge.migration.state import DONE, StateDB
from imbridge.models import Conversation, Delivery, Element, Group, MessageRef, SentMessage

_ELEMENT: TypeAdapter[Element] = TypeAdapter(Element)

#: Methods that change state, by resource; everything else is a read and goes to the primary only.
WRITES: dict[str, set[str]] = {
    "users": {"register", "set_profile"},
    "messages": {"send", "send_batch", "revoke"},
    "groups": {"create", "update", "dismiss", "add_members", "remove_members", "mute", "unmute", "mute_all"},
}
# Member administration, sessions and notifications (issue 17): writes too.
WRITES["users"] |= {"kick", "delete"}
WRITES["groups"] |= {"set_role", "transfer_owner", "set_name_card", "notify"}
_REFS_TABLE = "CREATE TABLE IF NOT EXISTS mirror_refs (primary_ref TEXT PRIMARY KEY, secondary_ref TEXT NOT NULL)"


# -- journal encoding: the secondary's call, as JSON ----------------------------------------------------


def encode(value: Any) -> Any:
    if isinstance(value, Delivery):
        return {"$delivery": value.model_dump()}
    if isinstance(value, Conversation):
        return {"$conv": str(value)}
    if isinstance(value, MessageRef):
        return {"$ref": str(value)}
    if isinstance(value, timedelta):
        return {"$td": value.total_seconds()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return {"$el": value.model_dump(mode="json")}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if "$conv" in value:
            kind, _, ident = str(value["$conv"]).partition(":")
            return Conversation.group(ident) if kind == "group" else Conversation.user(ident)
        if "$ref" in value:
            return MessageRef.parse(value["$ref"])
        if "$td" in value:
            return timedelta(seconds=float(value["$td"]))
        if "$el" in value:
            return _ELEMENT.validate_python(value["$el"])
        if "$delivery" in value:
            return Delivery(**value["$delivery"])
        return {k: decode(v) for k, v in value.items()}
    return value


# -- translation: the primary's call and result -> the secondary's call -----------------------------------


class _Translator:
    """Maps a write on the primary to the same write on the secondary (ids, keys, origin metadata)."""

    def __init__(self, primary_provider: str, app_id: int | None, prefix: str, state: StateDB) -> None:
        self.primary_provider, self.app_id, self.prefix, self.state = primary_provider, app_id, prefix, state
        state._db.execute(_REFS_TABLE)

    def uid(self, user_id: str) -> str:
        return ids.target_id(user_id, self.prefix)

    def conv(self, conversation: Conversation) -> Conversation:
        if conversation.is_group:
            return Conversation.group(self.uid(conversation.id))
        return Conversation.user(self.uid(conversation.id))

    def secondary_ref(self, ref: MessageRef) -> MessageRef | None:
        row = self.state._db.execute(
            "SELECT secondary_ref FROM mirror_refs WHERE primary_ref = ?", (str(ref),)
        ).fetchone()
        return MessageRef.parse(row[0]) if row else None

    def remember(self, primary: SentMessage, secondary: Any) -> None:
        if isinstance(secondary, SentMessage):
            self.state._db.execute(
                "INSERT OR REPLACE INTO mirror_refs (primary_ref, secondary_ref) VALUES (?, ?)",
                (str(primary.ref), str(secondary.ref)),
            )

    def send_key(self, sent: SentMessage, sender: str, to: Conversation) -> tuple[str | None, dict[str, Any]]:
        """The secondary's idempotency key and origin metadata, as the migration would make them."""
        if self.primary_provider != "tencent" or self.app_id is None:
            return None, {}
        stamp = int(sent.time.timestamp() if sent.time else time.time())
        if to.is_group and sent.seq is not None:
            key = ids.group_message_key(self.app_id, to.id, sent.seq)
            origin = {"id": sent.seq, "conversation": str(to)}
        elif not to.is_group:
            key = ids.c2c_message_key(self.app_id, sender, to.id, sent.ref.key)
            origin = {"id": sent.ref.key, "conversation": "c2c:" + ",".join(sorted((sender, to.id)))}
        else:
            return None, {}
        return key, {ids.ORIGIN_KEY: {"source": "tencent", "app": self.app_id, "sender": sender, "time": stamp,
                                      "revoked": False, "via": "mirror", **origin}}  # fmt: skip

    def call(
        self, resource: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """The secondary's (args, kwargs), or None when there is nothing to mirror."""
        bound = _bind(resource, method, args, kwargs)
        uid, conv = self.uid, self.conv
        if resource == "users":
            if method in ("register", "delete"):
                return ([uid(u) for u in bound["user_ids"]],), {}
            rest = {k: v for k, v in bound.items() if k != "user_id"}
            return (uid(bound["user_id"]),), rest
        if resource == "messages":
            if method == "send":
                sender, to = bound["sender"], bound["to"]
                key, origin = self.send_key(result, sender, to)
                metadata = {**(bound.get("metadata") or {}), **origin}
                # options are the primary vendor's own fields (OfflinePushInfo...): not for the secondary.
                return (uid(sender), conv(to), bound["content"]), {"idempotency_key": key, "metadata": metadata or None,
                                                                   "delivery": bound.get("delivery")}  # fmt: skip
            if method == "send_batch":
                return (uid(bound["sender"]), [uid(r) for r in bound["recipients"]], bound["content"]), {
                    "metadata": bound.get("metadata")
                }
            return None  # revoke: resolved by the clients (needs the secondary's own ref)
        group_id = result.id if method == "create" and isinstance(result, Group) else bound.get("group_id")
        if method == "create":
            return (bound["name"], uid(bound["owner"])), {
                "members": [uid(u) for u in bound.get("members") or ()],
                "admins": [uid(u) for u in bound.get("admins") or ()],
                "group_id": uid(str(group_id)), "introduction": bound.get("introduction", ""),
                "notification": bound.get("notification", ""), "face_url": bound.get("face_url", ""),
            }  # fmt: skip
        gid = uid(str(group_id))
        if method in ("update",):
            return (gid,), {k: v for k, v in bound.items() if k != "group_id"}
        if method == "dismiss":
            return (gid,), {}
        if method in ("add_members", "remove_members", "mute", "unmute"):
            extra = {k: v for k, v in bound.items() if k not in ("group_id", "user_ids")}
            return (gid, [uid(u) for u in bound["user_ids"]]), extra
        if method == "mute_all":
            return (gid,), {"enabled": bound.get("enabled", True)}
        if method in ("set_role", "transfer_owner", "set_name_card"):
            rest = {k: v for k, v in bound.items() if k not in ("group_id", "user_id")}
            return (gid, uid(bound["user_id"])), rest
        if method == "notify":
            to = bound.get("to")
            return (gid, bound["text"]), {"to": [uid(u) for u in to] if to is not None else None}
        return None


_PARAMS: dict[str, list[str]] = {
    "users.register": ["user_ids"],
    "users.set_profile": ["user_id"],
    "messages.send": ["sender", "to", "content"],
    "messages.send_batch": ["sender", "recipients", "content"],
    "messages.revoke": ["ref"],
    "groups.create": ["name", "owner", "members"],
    "groups.update": ["group_id"],
    "groups.dismiss": ["group_id"],
    "groups.add_members": ["group_id", "user_ids"],
    "groups.remove_members": ["group_id", "user_ids"],
    "groups.mute": ["group_id", "user_ids", "duration"],
    "groups.unmute": ["group_id", "user_ids"],
    "groups.mute_all": ["group_id", "enabled"],
    # issue 17
    "users.kick": ["user_id", "device"],
    "users.delete": ["user_ids"],
    "groups.set_role": ["group_id", "user_id", "role"],
    "groups.transfer_owner": ["group_id", "user_id"],
    "groups.set_name_card": ["group_id", "user_id", "name_card"],
    "groups.notify": ["group_id", "text", "to"],
}


def _bind(resource: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = _PARAMS[f"{resource}.{method}"]
    return {**dict(zip(names, args, strict=False)), **kwargs}


def _make_translator(primary: IMClient | AsyncIMClient, state: StateDB, prefix: str | None) -> _Translator:
    if prefix is None:
        options = state.get_meta("options") or {}
        prefix = str(options.get("id_prefix") or "")
    app_id = getattr(getattr(primary._provider, "tencent", None), "sdk_app_id", None)
    return _Translator(primary.provider_name, app_id, prefix, state)


# -- the clients ------------------------------------------------------------------------------------------


class _Resource:
    """``users``, ``messages`` or ``groups`` of a mirror client: reads go to the primary as they are, writes
    through the owner's ``_write`` (which awaits them on the async client)."""

    def __init__(self, owner: MirrorClient | AsyncMirrorClient, name: str) -> None:
        self._owner, self._name = owner, name

    def __getattr__(self, method: str) -> Any:
        primary = getattr(getattr(self._owner.primary, self._name), method)
        if method not in WRITES[self._name]:
            return primary
        return lambda *args, **kwargs: self._owner._write(self._name, method, primary, args, kwargs)


class MirrorClient:
    """Writes to ``primary`` and ``secondary``, reads from ``primary``; secondary failures are journaled in
    the state database ``state`` (the migration's, so ids are translated with the migration's prefix)."""

    def __init__(self, primary: IMClient, secondary: IMClient, state: str | StateDB, *, id_prefix: str | None = None):
        self.primary, self.secondary = primary, secondary
        self.state = state if isinstance(state, StateDB) else StateDB(state)
        self._translate = _make_translator(primary, self.state, id_prefix)
        self.users, self.messages, self.groups = (_Resource(self, n) for n in ("users", "messages", "groups"))
        self.capabilities = primary.capabilities

    def _write(self, resource: str, method: str, call: Callable[..., Any], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Any:  # fmt: skip
        result = call(*args, **kwargs)
        try:
            if resource == "messages" and method == "revoke":
                ref = _bind(resource, method, args, kwargs)["ref"]
                ref = MessageRef.parse(ref) if isinstance(ref, str) else ref
                mapped = self._translate.secondary_ref(ref)
                if mapped is None:
                    raise LookupError(f"no secondary message is known for {ref}")
                self.secondary.messages.revoke(mapped)
                return result
            translated = self._translate.call(resource, method, args, kwargs, result)
            if translated is not None:
                done = getattr(getattr(self.secondary, resource), method)(*translated[0], **translated[1])
                if method == "send":
                    self._translate.remember(result, done)
        except (IMBridgeError, LookupError) as error:
            self._journal(resource, method, args, kwargs, result, error)
        return result

    def _journal(self, resource: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any,
                 error: BaseException) -> None:  # fmt: skip
        _journal(self._translate, resource, method, args, kwargs, result, error)

    def close(self) -> None:
        self.state.close()

    def __enter__(self) -> MirrorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMirrorClient:
    """:class:`MirrorClient` over two ``AsyncIMClient``: the same names, awaited."""

    def __init__(
        self, primary: AsyncIMClient, secondary: AsyncIMClient, state: str | StateDB, *, id_prefix: str | None = None
    ) -> None:
        self.primary, self.secondary = primary, secondary
        self.state = state if isinstance(state, StateDB) else StateDB(state)
        self._translate = _make_translator(primary, self.state, id_prefix)
        self.users, self.messages, self.groups = (_Resource(self, n) for n in ("users", "messages", "groups"))
        self.capabilities = primary.capabilities

    async def _write(self, resource: str, method: str, call: Callable[..., Any], args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:  # fmt: skip
        result = await call(*args, **kwargs)
        try:
            if resource == "messages" and method == "revoke":
                ref = _bind(resource, method, args, kwargs)["ref"]
                ref = MessageRef.parse(ref) if isinstance(ref, str) else ref
                mapped = self._translate.secondary_ref(ref)
                if mapped is None:
                    raise LookupError(f"no secondary message is known for {ref}")
                await self.secondary.messages.revoke(mapped)
                return result
            translated = self._translate.call(resource, method, args, kwargs, result)
            if translated is not None:
                done = await getattr(getattr(self.secondary, resource), method)(*translated[0], **translated[1])
                if method == "send":
                    self._translate.remember(result, done)
        except (IMBridgeError, LookupError) as error:
            _journal(self._translate, resource, method, args, kwargs, result, error)
        return result

    async def aclose(self) -> None:
        self.state.close()

    async def __aenter__(self) -> AsyncMirrorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _journal(translate: _Translator, resource: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
             result: Any, error: BaseException) -> None:  # fmt: skip
    """Record the secondary's call (already translated, so a replay needs no primary) and why it failed."""
    if resource == "messages" and method == "revoke":
        ref = _bind(resource, method, args, kwargs)["ref"]
        entry = {"primary_ref": str(ref)}
    else:
        translated = translate.call(resource, method, args, kwargs, result)
        entry = {"args": encode(list(translated[0])), "kwargs": encode(translated[1])} if translated else {}
        if method == "send" and isinstance(result, SentMessage):
            entry["primary_ref"] = str(result.ref)
    translate.state.journal_add(resource, method, entry, f"{type(error).__name__}: {error}"[:1000])


async def replay_journal(state: StateDB, secondary: AsyncIMClient, primary_provider: str = "tencent") -> dict[str, Any]:
    """Replay every pending journal entry on the secondary, oldest first. Sends keep their idempotency key,
    so a replay of a call that did land after all stores nothing twice."""
    translate = _Translator(primary_provider, None, "", state)
    replayed = failed = 0
    errors: list[str] = []
    for entry in state.journal():
        method = getattr(getattr(secondary, entry.resource), entry.method)
        try:
            if entry.resource == "messages" and entry.method == "revoke":
                mapped = translate.secondary_ref(MessageRef.parse(entry.args["primary_ref"]))
                if mapped is None:
                    raise LookupError(f"no secondary message is known for {entry.args['primary_ref']}")
                await method(mapped)
            else:
                done = await method(*decode(entry.args.get("args", [])), **decode(entry.args.get("kwargs", {})))
                if entry.method == "send" and "primary_ref" in entry.args and isinstance(done, SentMessage):
                    state._db.execute(
                        "INSERT OR REPLACE INTO mirror_refs (primary_ref, secondary_ref) VALUES (?, ?)",
                        (entry.args["primary_ref"], str(done.ref)),
                    )
            state.journal_mark(entry.id, DONE)
            replayed += 1
        except (IMBridgeError, LookupError) as error:
            state.journal_mark(entry.id, "pending", f"{type(error).__name__}: {error}"[:1000])
            errors.append(f"#{entry.id} {entry.resource}.{entry.method}: {error}")
            failed += 1
    return {"replayed": replayed, "failed": failed, "errors": errors[:50]}
