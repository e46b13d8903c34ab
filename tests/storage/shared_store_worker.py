"""One app instance of the shared-store soak (``test_shared_store.py``), run as its own process.

``python shared_store_worker.py WORKER SECONDS SPEC OUT``: the provider and its settings come from the
environment (``IMClient.from_env()``), as an app's would; SPEC (JSON) names the groups and users the
parent created. For SECONDS it sends to groups and one-to-one conversations, renames groups, mutes and
unmutes, adds and removes members, and records every outcome; then it waits until every instance has
finished and reads the final state of each group, for the parent to compare across instances.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from imbridge import Conversation, IMClient, PermissionDeniedError


def main() -> None:
    worker, seconds, spec_path, out = int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    spec: dict[str, Any] = json.loads(spec_path.read_text())
    groups, senders, mutees, floaters = spec["groups"], spec["senders"], spec["mutees"], spec["floaters"]
    rng = random.Random(worker)
    sent: list[dict[str, Any]] = []
    counts = {"refused": 0, "resent": 0, "edits": 0, "mutes": 0, "unmutes": 0, "adds": 0, "removes": 0}
    with IMClient.from_env() as im:
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
            action = rng.choices(["group", "direct", "edit", "mute", "unmute", "member"], [6, 3, 1, 1, 1, 1])[0]
            group = rng.choice(groups)
            if action in ("group", "direct"):
                sender = rng.choice(senders + mutees if action == "group" else senders)
                if action == "group":
                    target = Conversation.group(group)
                else:
                    target = Conversation.user(rng.choice([s for s in senders if s != sender]))
                text, key = f"w{worker}-{n}", f"w{worker}-{n}"
                try:
                    result = im.messages.send(sender, target, text, idempotency_key=key)
                except PermissionDeniedError:
                    counts["refused"] += 1  # a muted member: refused, nothing stored
                    continue
                where = f"group:{group}" if target.is_group else "user:" + "|".join(sorted((sender, target.id)))
                record = {"sender": sender, "to": where, "text": text, "seq": result.seq, "ref": str(result.ref)}
                if spec["resend"] and sender in senders and rng.random() < 0.1:  # a retry: the dedupe key holds
                    again = im.messages.send(sender, target, text, idempotency_key=key)
                    record["resent_seq"] = again.seq
                    counts["resent"] += 1
                sent.append(record)
            elif action == "edit":
                im.groups.update(group, name=f"name w{worker}-{n}", introduction=f"intro w{worker}-{n}")
                counts["edits"] += 1
            elif action == "mute":
                im.groups.mute(group, [rng.choice(mutees)], duration=3600)
                counts["mutes"] += 1
            elif action == "unmute":
                im.groups.unmute(group, [rng.choice(mutees)])
                counts["unmutes"] += 1
            else:
                floater = rng.choice(floaters)
                if rng.random() < 0.5:
                    im.groups.add_members(group, [floater])
                    counts["adds"] += 1
                else:
                    im.groups.remove_members(group, [floater])
                    counts["removes"] += 1
        (out / f"sent-{worker}.json").write_text(json.dumps({"sent": sent, "counts": counts}))
        (out / f"done-{worker}").touch()
        go = out / "go"
        while not go.exists():  # every instance has stopped writing: now read the final state
            time.sleep(0.05)
        (out / f"view-{worker}.json").write_text(json.dumps(final_view(im, groups)))


def final_view(im: IMClient, groups: list[str]) -> dict[str, Any]:
    """What this instance reads about each group once all writes are over."""
    view: dict[str, Any] = {}
    for group_id in groups:
        group = im.groups.get(group_id)
        view[group_id] = {
            "name": group.name, "introduction": group.introduction, "owner": group.owner,
            "members": sorted((m.user_id, str(m.role)) for m in im.groups.members(group_id)),
            "muted": sorted(m.user_id for m in im.groups.muted(group_id)),
        }  # fmt: skip
    return view


if __name__ == "__main__":
    main()
