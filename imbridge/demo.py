"""``imbridge demo``: a short tour of the neutral API on the embedded provider, needing no account."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from imbridge.client import IMClient
from imbridge.errors import PermissionDeniedError
from imbridge.models import Conversation, Custom, Image, Location, Message, Text


def _describe(message: Message) -> str:
    if message.revoked:
        return "(revoked)"
    parts = []
    for element in message.elements:
        if isinstance(element, Text):
            parts.append(element.text)
        else:
            parts.append(f"[{element.type}]")
    return " ".join(parts)


def run_local_tour(database: str = ":memory:", *, as_json: bool = False) -> int:
    """Group chat, a mute, a refused send, a revoke and paged history on ``local``. Returns an exit code."""
    events: list[dict[str, Any]] = []

    def say(kind: str, text: str, **data: Any) -> None:
        events.append({"event": kind, "text": text, **data})
        if not as_json:
            print(text)

    with IMClient("local", database=database) as im:
        say("start", f"imbridge demo on the embedded provider (database: {database})")
        im.users.register(["alice", "bob", "carol"])
        im.users.set_profile("alice", nickname="Alice", custom={"team": "core"})
        team = im.groups.create("Team", owner="alice", members=["bob", "carol"], admins=["bob"])
        roles = ", ".join(f"{m.user_id} ({m.role.value})" for m in im.groups.members(team.id))
        say("group", f"created group {team.id!r} '{team.name}': {roles}", group=team.id)

        chat = Conversation.group(team.id)
        script: list[tuple[str, Any]] = [
            ("alice", "Welcome to the team!"),
            ("bob", "Thanks, glad to be here."),
            (
                "carol",
                [Text("Where do we meet?"), Location(latitude=31.2304, longitude=121.4737, description="Shanghai")],
            ),
            ("alice", [Image(url="https://example.com/office.png", width=800, height=600)]),
            ("carol", "I will spam this chat now"),
            ("bob", [Custom(data=json.dumps({"kind": "poll", "question": "Lunch at noon?"}), description="poll")]),
        ]
        sent = [im.messages.send(sender, chat, content) for sender, content in script]
        say("sent", f"{len(sent)} messages sent to the group (seq {sent[0].seq}..{sent[-1].seq})")

        im.groups.mute(team.id, ["carol"], timedelta(hours=1))
        muted = im.groups.muted(team.id)
        until = muted[0].muted_until.isoformat(timespec="seconds") if muted and muted[0].muted_until else "?"
        say("mute", f"carol is muted until {until}")
        try:
            im.messages.send("carol", chat, "Can anyone hear me?")
            say("error", "UNEXPECTED: a muted member could send")
            return 1
        except PermissionDeniedError as error:
            say("refused", f"carol's send was refused: {error}")

        spam = sent[4]
        im.messages.revoke(str(spam.ref))  # the string form is what an app stores
        say("revoke", f"alice revoked message #{spam.seq} by its stored reference")

        say("history", "history, newest first, 2 per page:")
        cursor: str | None = None
        page_number = 0
        while True:
            page = im.messages.history(chat, viewer="alice", limit=2, cursor=cursor)
            page_number += 1
            for message in page.items:
                line = f"  page {page_number}  #{message.seq} {message.sender}: {_describe(message)}"
                say("message", line, seq=message.seq, sender=message.sender, revoked=message.revoked)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

        im.groups.unmute(team.id, ["carol"])
        after = im.messages.send("carol", chat, "Sorry about that.")
        say("unmute", f"carol unmuted and sent #{after.seq}")
        say("done", "demo complete")
    if as_json:
        print(json.dumps(events, ensure_ascii=False, indent=2))
    return 0
