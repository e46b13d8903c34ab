"""Dual-write for the cut-over: ``MirrorClient(primary, secondary)`` and ``AsyncMirrorClient``.

Same resources and method names as ``IMClient``. Reads go to the primary only. Every write goes to the
primary first (its result is what the caller gets) and then to the secondary, with ids translated as the
migration translates them (same prefix, same escape; an id the state database already maps keeps its
mapping) and, for sends, the secondary's idempotency key derived from the primary's message id exactly as
the migration derives it: a message that is both mirrored and later migrated is stored once.

Once the primary has stored a write, nothing about the secondary is raised to the caller (a caller that
retries would write the primary twice): whatever the secondary raised, an ``IMBridgeError`` or anything
else, the translated call is journaled in the state database, logged, and handed to ``on_secondary_error``
as the exception it is. ``imbridge migrate replay-journal`` replays the journal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

from pydantic import BaseModel, TypeAdapter

from imbridge.client import AsyncIMClient, IMClient
from imbridge.errors import IMBridgeError
from imbridge.migration import ids
from imbridge.migration.state import DONE, FAILED, PENDING, JournalEntry, StateDB
from imbridge.models import Conversation, Delivery, Element, Group, MessageRef, SentMessage

log = logging.getLogger("imbridge.migration.mirror")

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
#: Journal entries written by this version: ``{"v": 2, "args": [...], "kwargs": {...}}`` in the envelope below.
JOURNAL_VERSION = 2
MAX_ERRORS_LISTED = 50


# -- journal encoding: the secondary's call, as JSON, in an envelope -------------------------------------
#
# Every JSON object in the encoding is a one-key tag: ``{"$map": {...}}`` wraps the caller's own mappings,
# ``{"$td": seconds}``, ``{"$conv": ...}``, ``{"$ref": ...}``, ``{"$el": ...}``, ``{"$delivery": ...}`` carry
# imbridge's types. A caller's mapping is only ever found inside ``$map``, whose keys are never read as tags, so
# any JSON the caller gave (metadata ``{"$td": 5}`` included) comes back as it was.


class JournalEncodingError(IMBridgeError):
    """A value that the journal cannot keep (not JSON, nor one of imbridge's argument types)."""


def encode(value: Any) -> Any:
    """The journal's JSON for a secondary call's argument; :func:`decode` gives it back unchanged."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Delivery):
        return {"$delivery": value.model_dump()}
    if isinstance(value, Conversation):
        return {"$conv": str(value)}
    if isinstance(value, MessageRef):
        return {"$ref": str(value)}
    if isinstance(value, timedelta):
        return {"$td": value.total_seconds()}
    if isinstance(value, Enum):
        return encode(value.value)  # roles: the calls take their string values
    if isinstance(value, BaseModel):
        return {"$el": value.model_dump(mode="json")}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        keys = [k for k in value if not isinstance(k, str)]
        if keys:
            raise JournalEncodingError(f"a mapping key that JSON cannot keep as it is: {keys[0]!r}")
        return {"$map": {k: encode(v) for k, v in value.items()}}
    raise JournalEncodingError(f"a {type(value).__name__} cannot be journaled (not JSON, not an imbridge type)")


def decode(value: Any) -> Any:
    """The value :func:`encode` was given. Raises ``ValueError`` on anything it did not write."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise ValueError(f"not a journal tag: an object with keys {sorted(value)[:5]}")
    ((tag, inner),) = value.items()
    if tag == "$map" and isinstance(inner, dict):
        return {k: decode(v) for k, v in inner.items()}
    if tag == "$conv" and isinstance(inner, str):
        return _conversation(inner)
    if tag == "$ref" and isinstance(inner, str):
        return MessageRef.parse(inner)
    if tag == "$td" and isinstance(inner, int | float) and not isinstance(inner, bool):
        return timedelta(seconds=inner)
    if tag == "$el" and isinstance(inner, dict):
        return _ELEMENT.validate_python(inner)
    if tag == "$delivery" and isinstance(inner, dict):
        return Delivery(**inner)
    raise ValueError(f"not a journal tag: {tag!r}")


def _conversation(text: str) -> Conversation:
    kind, _, ident = text.partition(":")
    return Conversation.group(ident) if kind == "group" else Conversation.user(ident)


def _decode_v1(value: Any) -> Any:
    """Entries journaled before the envelope (no ``"v"``): tags were looked for in every mapping."""
    if isinstance(value, list):
        return [_decode_v1(v) for v in value]
    if isinstance(value, dict):
        if "$conv" in value:
            return _conversation(str(value["$conv"]))
        if "$ref" in value:
            return MessageRef.parse(value["$ref"])
        if "$td" in value:
            return timedelta(seconds=float(value["$td"]))
        if "$el" in value:
            return _ELEMENT.validate_python(value["$el"])
        return {k: _decode_v1(v) for k, v in value.items()}
    return value


# -- translation: the primary's call and result -> the secondary's call -----------------------------------


class _Translator:
    """Maps a write on the primary to the same write on the secondary (ids, keys, origin metadata)."""

    def __init__(self, primary_provider: str, app_id: int | None, prefix: str, state: StateDB) -> None:
        self.primary_provider, self.app_id, self.prefix, self.state = primary_provider, app_id, prefix, state

    def _mapped(self, kind: str, source_id: str) -> str:
        # An id the migration already mapped keeps that mapping (a state file from an earlier version).
        return self.state.mapped_one(kind, source_id) or ids.target_id(source_id, self.prefix)

    def uid(self, user_id: str) -> str:
        return self._mapped("user", user_id)

    def gid(self, group_id: str) -> str:
        return self._mapped("group", group_id)

    def conv(self, conversation: Conversation) -> Conversation:
        if conversation.is_group:
            return Conversation.group(self.gid(conversation.id))
        return Conversation.user(self.uid(conversation.id))

    def secondary_ref(self, ref: MessageRef) -> MessageRef | None:
        secondary = self.state.mirror_ref(str(ref))
        return MessageRef.parse(secondary) if secondary else None

    def remember(self, primary_ref: str, secondary: Any) -> None:
        if isinstance(secondary, SentMessage):
            self.state.remember_ref(primary_ref, str(secondary.ref))

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
            return None  # revoke: resolved by _Mirror.plan (needs the secondary's own ref)
        group_id = result.id if method == "create" and isinstance(result, Group) else bound.get("group_id")
        if method == "create":
            return (bound["name"], uid(bound["owner"])), {
                "members": [uid(u) for u in bound.get("members") or ()],
                "admins": [uid(u) for u in bound.get("admins") or ()],
                "group_id": self.gid(str(group_id)), "introduction": bound.get("introduction", ""),
                "notification": bound.get("notification", ""), "face_url": bound.get("face_url", ""),
            }  # fmt: skip
        gid = self.gid(str(group_id))
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


# -- what the sync and async clients share --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecondaryFailure:
    """A write the primary stored and the secondary did not: what ``on_secondary_error`` is given."""

    resource: str
    method: str
    error: BaseException
    """What was raised, as it was raised: an ``IMBridgeError`` when the secondary refused the call or could
    not be reached; anything else is a defect (in imbridge or in the arguments), logged with its traceback."""
    journal_id: int | None
    """The journal entry that keeps the call for ``replay_journal`` (None only when journaling failed too)."""
    replayable: bool
    """False when the call could not be translated or encoded: its entry keeps what is known, marked failed."""


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1000]


@dataclass(slots=True)
class _Step:
    """The secondary's call, translated."""

    resource: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    primary_ref: str | None = None

    def entry(self) -> dict[str, Any]:
        """The journal entry that replays this call without the primary."""
        if self.resource == "messages" and self.method == "revoke":
            return {"v": JOURNAL_VERSION, "revoke": self.primary_ref}
        entry: dict[str, Any] = {"v": JOURNAL_VERSION, "args": encode(list(self.args)), "kwargs": encode(self.kwargs)}
        if self.primary_ref is not None:
            entry["primary_ref"] = self.primary_ref
        return entry


class _Mirror:
    """Translation, journaling and reporting; the clients only call the secondary (sync or awaited)."""

    def __init__(
        self, primary: IMClient | AsyncIMClient, state: str | StateDB, id_prefix: str | None,
        on_error: Callable[[SecondaryFailure], None] | None,
    ) -> None:  # fmt: skip
        self.state = state if isinstance(state, StateDB) else StateDB(state)
        self.translate = _make_translator(primary, self.state, id_prefix)
        self.on_error = on_error

    def plan(self, resource: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
             result: Any) -> _Step | None:  # fmt: skip
        """The secondary's call, or None: nothing to mirror, or it could not be made (then journaled)."""
        try:
            if resource == "messages" and method == "revoke":
                ref = _bind(resource, method, args, kwargs)["ref"]
                ref = MessageRef.parse(ref) if isinstance(ref, str) else ref
                step = _Step(resource, method, (), {}, str(ref))
                mapped = self.translate.secondary_ref(ref)
                if mapped is None:
                    self.failed(step, LookupError(f"no secondary message is known for {ref}"))
                    return None
                step.args = (mapped,)
                return step
            translated = self.translate.call(resource, method, args, kwargs, result)
        except Exception as error:  # a defect: kept (not replayable) and reported, never raised after the primary
            self._untranslated(resource, method, args, kwargs, error)
            return None
        if translated is None:
            return None
        primary_ref = str(result.ref) if method == "send" and isinstance(result, SentMessage) else None
        return _Step(resource, method, translated[0], translated[1], primary_ref)

    def succeeded(self, step: _Step, done: Any) -> None:
        if step.method == "send" and step.primary_ref is not None:
            self.translate.remember(step.primary_ref, done)

    def failed(self, step: _Step, error: BaseException) -> None:
        """Journal the call and report ``error``; re-raises what is not an ``Exception`` (an interrupt or a
        cancellation: the call is kept first, since it may or may not have reached the secondary)."""
        replayable, reason = True, _describe(error)
        try:
            entry = step.entry()
        except JournalEncodingError as encoding:
            replayable, reason = False, f"{reason}; cannot be replayed: {encoding.message}"
            entry = {"v": JOURNAL_VERSION, "unencodable": repr((step.args, step.kwargs))[:4000]}
        self._record(step.resource, step.method, entry, reason, replayable, error)
        if not isinstance(error, Exception):
            raise error

    def _untranslated(self, resource: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                      error: Exception) -> None:  # fmt: skip
        entry = {"v": JOURNAL_VERSION, "untranslated": repr((args, kwargs))[:4000]}
        reason = f"{_describe(error)}; the call could not be translated for the secondary"
        self._record(resource, method, entry, reason, False, error)

    def _record(self, resource: str, method: str, entry: dict[str, Any], reason: str, replayable: bool,
                error: BaseException) -> None:  # fmt: skip
        journal_id: int | None = None
        try:
            journal_id = self.state.journal_add(resource, method, entry, reason, PENDING if replayable else FAILED)
        except Exception:
            log.critical("secondary %s.%s failed and could not be journaled (%s)", resource, method, reason,
                         exc_info=True)  # fmt: skip
        if isinstance(error, IMBridgeError | LookupError) and replayable:
            log.warning("secondary %s.%s failed, journaled as #%s: %s", resource, method, journal_id, reason)
        else:
            log.error("secondary %s.%s failed, journaled as #%s: %s", resource, method, journal_id, reason,
                      exc_info=error)  # fmt: skip
        if self.on_error is not None and isinstance(error, Exception):
            self.on_error(SecondaryFailure(resource, method, error, journal_id, replayable))


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
    the state database ``state`` (the migration's, so ids are translated with the migration's prefix).

    ``on_secondary_error`` is called with a :class:`SecondaryFailure` each time the secondary fails after the
    primary stored a write (the failure is also logged on ``imbridge.migration.mirror``); it is never raised.
    """

    def __init__(
        self, primary: IMClient, secondary: IMClient, state: str | StateDB, *, id_prefix: str | None = None,
        on_secondary_error: Callable[[SecondaryFailure], None] | None = None,
    ) -> None:  # fmt: skip
        self.primary, self.secondary = primary, secondary
        self._mirror = _Mirror(primary, state, id_prefix, on_secondary_error)
        self.state = self._mirror.state
        self.users, self.messages, self.groups = (_Resource(self, n) for n in ("users", "messages", "groups"))
        self.capabilities = primary.capabilities

    def _write(self, resource: str, method: str, call: Callable[..., Any], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Any:  # fmt: skip
        result = call(*args, **kwargs)
        step = self._mirror.plan(resource, method, args, kwargs, result)
        if step is not None:
            try:
                done = getattr(getattr(self.secondary, resource), method)(*step.args, **step.kwargs)
            except BaseException as error:  # the primary has it: journaled and reported, never raised
                self._mirror.failed(step, error)
            else:
                self._mirror.succeeded(step, done)
        return result

    def close(self) -> None:
        self.state.close()

    def __enter__(self) -> MirrorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMirrorClient:
    """:class:`MirrorClient` over two ``AsyncIMClient``: the same names, awaited."""

    def __init__(
        self, primary: AsyncIMClient, secondary: AsyncIMClient, state: str | StateDB, *, id_prefix: str | None = None,
        on_secondary_error: Callable[[SecondaryFailure], None] | None = None,
    ) -> None:  # fmt: skip
        self.primary, self.secondary = primary, secondary
        self._mirror = _Mirror(primary, state, id_prefix, on_secondary_error)
        self.state = self._mirror.state
        self.users, self.messages, self.groups = (_Resource(self, n) for n in ("users", "messages", "groups"))
        self.capabilities = primary.capabilities

    async def _write(self, resource: str, method: str, call: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:  # fmt: skip
        result = await call(*args, **kwargs)
        step = self._mirror.plan(resource, method, args, kwargs, result)
        if step is not None:
            try:
                done = await getattr(getattr(self.secondary, resource), method)(*step.args, **step.kwargs)
            except BaseException as error:  # the primary has it: journaled and reported, never raised
                self._mirror.failed(step, error)
            else:
                self._mirror.succeeded(step, done)
        return result

    async def aclose(self) -> None:
        self.state.close()

    async def __aenter__(self) -> AsyncMirrorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# -- replay -----------------------------------------------------------------------------------------------


def _replay_call(entry: JournalEntry, secondary: AsyncIMClient) -> tuple[Callable[..., Awaitable[Any]], Any]:
    """(the secondary's method, the entry's arguments); raises on an entry that can never be replayed."""
    if entry.resource not in WRITES or entry.method not in WRITES[entry.resource]:
        raise ValueError(f"{entry.resource}.{entry.method} is not a write the mirror journals")
    if not isinstance(entry.args, dict):
        raise ValueError("the stored entry is not readable JSON")
    method = getattr(getattr(secondary, entry.resource), entry.method)
    if "untranslated" in entry.args or "unencodable" in entry.args:
        raise ValueError(f"journaled as not replayable ({entry.error})")
    if entry.resource == "messages" and entry.method == "revoke":
        return method, str(entry.args.get("revoke") or entry.args["primary_ref"])
    if entry.args.get("v") == JOURNAL_VERSION:
        args, kwargs = decode(entry.args["args"]), decode(entry.args["kwargs"])
    elif "v" not in entry.args:  # journaled before the envelope
        args, kwargs = _decode_v1(entry.args.get("args", [])), _decode_v1(entry.args.get("kwargs", {}))
    else:
        raise ValueError(f"journal format {entry.args.get('v')!r} is newer than this imbridge")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ValueError("the stored call has no argument list")
    return method, (args, kwargs)


async def replay_journal(state: StateDB, secondary: AsyncIMClient, primary_provider: str = "tencent") -> dict[str, Any]:
    """Replay every pending journal entry on the secondary, oldest first. Sends keep their idempotency key,
    so a replay of a call that did land after all stores nothing twice.

    An entry that fails with an ``IMBridgeError`` stays pending (replayed next time); one that cannot be
    decoded, or that the secondary rejects with anything else, is marked failed with the reason and kept
    (``StateDB.journal("failed")``). Either way the replay goes on with the next entry."""
    translate = _Translator(primary_provider, None, "", state)
    replayed = retry = abandoned = 0
    errors: list[str] = []

    def note(entry: JournalEntry, error: BaseException, status: str) -> None:
        what = "will be retried" if status == PENDING else "marked failed, not retried"
        state.journal_mark(entry.id, status, _describe(error))
        if len(errors) < MAX_ERRORS_LISTED:
            errors.append(f"#{entry.id} {entry.resource}.{entry.method} ({what}): {_describe(error)}")

    for entry in state.journal():
        try:
            method, call = _replay_call(entry, secondary)
        except Exception as error:
            note(entry, error, FAILED)
            abandoned += 1
            continue
        try:
            if isinstance(call, str):  # a revoke: the secondary's ref is known once its send was mirrored
                mapped = translate.secondary_ref(MessageRef.parse(call))
                if mapped is None:
                    raise LookupError(f"no secondary message is known for {call}")
                await method(mapped)
            else:
                done = await method(*call[0], **call[1])
                if entry.method == "send" and entry.args.get("primary_ref"):
                    translate.remember(str(entry.args["primary_ref"]), done)
        except (IMBridgeError, LookupError) as error:
            note(entry, error, PENDING)
            retry += 1
        except Exception as error:
            note(entry, error, FAILED)
            abandoned += 1
        else:
            state.journal_mark(entry.id, DONE)
            replayed += 1
    return {"replayed": replayed, "failed": retry + abandoned, "pending": retry, "not_replayable": abandoned,
            "errors": errors}  # fmt: skip
