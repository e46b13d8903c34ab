"""Several app instances share one store: four processes, as two "hosts" (two working directories each
holding two of them), send, rename groups, mute, unmute and change members for a bounded time. Then: no
message lost, none stored twice, seqs unique and contiguous per conversation (times never going back),
and every instance reads the same group metadata, members and mutes.

On PostgreSQL (the multi-host setup) and on SQLite (one host). 8 s each by default;
``IMBRIDGE_STORE_SOAK_SECONDS=60`` for the long run. ``IMBRIDGE_STORE_SOAK_WUKONG=1`` also runs it with the
WuKongIM provider against a real server (``IMBRIDGE_WUKONG_BASE_URL``, ``IMBRIDGE_WUKONG_MANAGER_TOKEN``) and
a PostgreSQL store.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from imbridge import Conversation, IMClient
from imbridge.testing.postgres import PostgresServer

WORKER = Path(__file__).with_name("shared_store_worker.py")
SECONDS = float(os.environ.get("IMBRIDGE_STORE_SOAK_SECONDS", "8"))
INSTANCES = 4


def _soak(tmp_path: Path, env: dict[str, str], prefix: str, *, resend: bool, check_times: bool) -> dict[str, int]:
    senders = [f"{prefix}s{n}" for n in range(5)]
    mutees = [f"{prefix}m{n}" for n in range(3)]
    floaters = [f"{prefix}f{n}" for n in range(3)]
    groups = [f"{prefix}g{n}" for n in range(3)]
    full_env = {**os.environ, **env}
    with _client(full_env) as im:
        im.users.register(senders + mutees + floaters + ["owner" + prefix])
        for group_id in groups:
            im.groups.create("start", owner="owner" + prefix, members=senders + mutees, group_id=group_id)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"groups": groups, "senders": senders, "mutees": mutees, "floaters": floaters,
                                "resend": resend}))  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    hosts = [tmp_path / "host-a", tmp_path / "host-b"]
    for host in hosts:
        host.mkdir()
    command = [sys.executable, str(WORKER), "{n}", str(SECONDS), str(spec), str(out)]
    workers = [
        subprocess.Popen([part.format(n=n) for part in command], cwd=hosts[n % 2], env=full_env)
        for n in range(INSTANCES)
    ]
    try:
        deadline = time.monotonic() + SECONDS + 120
        while not all((out / f"done-{n}").exists() for n in range(INSTANCES)):
            assert all(w.poll() in (None, 0) for w in workers), "an instance failed"
            assert time.monotonic() < deadline, "instances did not finish"
            time.sleep(0.1)
        (out / "go").touch()
        assert [w.wait(timeout=120) for w in workers] == [0] * INSTANCES
    finally:
        for worker in workers:
            worker.kill()

    results = [json.loads((out / f"sent-{n}.json").read_text()) for n in range(INSTANCES)]
    sent = [record for result in results for record in result["sent"]]
    by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in sent:
        by_conversation[record["to"]].append(record)
        assert record.get("resent_seq", record["seq"]) == record["seq"], record  # a resend found the original
    checks = Counter[str]()
    with _client(full_env) as im:
        for where, records in by_conversation.items():
            kind, _, ident = where.partition(":")
            viewer = records[0]["sender"] if kind == "user" else senders[0]
            other = next((u for u in ident.split("|") if u != viewer), viewer) if kind == "user" else ident
            conversation = Conversation.group(ident) if kind == "group" else Conversation.user(other)
            history = list(im.messages.iter_history(conversation, viewer=viewer, direction="forward"))
            seqs = [m.seq for m in history]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{where}: seqs not contiguous"
            assert len(set(seqs)) == len(seqs), f"{where}: a seq twice"
            stored = Counter(_text(m) for m in history)
            assert all(count == 1 for count in stored.values()), f"{where}: stored twice {stored.most_common(3)}"
            expected = {r["text"]: r["seq"] for r in records}
            stored_seq = {_text(m): m.seq for m in history}
            assert set(stored_seq) == set(expected), f"{where}: lost {set(expected) - set(stored_seq)}"
            assert stored_seq == expected, f"{where}: a message is not at the seq its send returned"
            if check_times:
                assert all(a.time <= b.time for a, b in itertools.pairwise(history)), f"{where}: time went back"
            checks["conversations"] += 1
            checks["messages"] += len(history)
        parent_view = json.loads(json.dumps(_view(im, groups)))  # as the instances wrote theirs
    views = [json.loads((out / f"view-{n}.json").read_text()) for n in range(INSTANCES)]
    differing = [(n, g, view[g], parent_view[g])
                 for n, view in enumerate(views) for g in groups if view[g] != parent_view[g]]  # fmt: skip
    assert not differing, f"instances read different group state: {differing[:2]}"
    totals = Counter[str]()
    for result in results:
        totals.update(result["counts"])
    figures = {**checks, **totals, "groups_compared": len(groups) * (INSTANCES + 1)}
    print(f"\nshared store soak ({SECONDS:.0f} s, {INSTANCES} instances on 2 hosts): {figures}")
    return figures


def _client(env: dict[str, str]) -> IMClient:
    provider = env["IMBRIDGE_PROVIDER"]
    if provider == "local":
        return IMClient("local", database=env["IMBRIDGE_LOCAL_DATABASE"])
    return IMClient("wukong", base_url=env["IMBRIDGE_WUKONG_BASE_URL"],
                    manager_token=env["IMBRIDGE_WUKONG_MANAGER_TOKEN"], store=env["IMBRIDGE_WUKONG_STORE"])  # fmt: skip


def _view(im: IMClient, groups: list[str]) -> dict[str, Any]:
    sys.path.insert(0, str(WORKER.parent))
    from shared_store_worker import final_view

    return final_view(im, groups)


def _text(message: Any) -> str:
    return "".join(getattr(element, "text", "") for element in message.elements)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_four_instances_on_two_hosts_share_the_local_store(tmp_path: Path, backend: str,
                                                          request: pytest.FixtureRequest) -> None:  # fmt: skip
    if backend == "sqlite":
        url = str(tmp_path / "shared.db")  # one host: both "hosts" open the same file
    else:
        server: PostgresServer = request.getfixturevalue("imbridge_postgres")
        url = server.fresh_database()
    env = {"IMBRIDGE_PROVIDER": "local", "IMBRIDGE_LOCAL_DATABASE": url}
    figures = _soak(tmp_path, env, "", resend=True, check_times=True)
    assert figures["messages"] > 0 and figures["edits"] > 0 and figures["mutes"] > 0


def test_four_wukong_instances_share_a_postgres_store(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if os.environ.get("IMBRIDGE_STORE_SOAK_WUKONG") != "1":
        pytest.skip("live only: set IMBRIDGE_STORE_SOAK_WUKONG=1 with IMBRIDGE_WUKONG_BASE_URL and _MANAGER_TOKEN")
    server: PostgresServer = request.getfixturevalue("imbridge_postgres")
    env = {"IMBRIDGE_PROVIDER": "wukong", "IMBRIDGE_WUKONG_STORE": server.fresh_database(),
           "IMBRIDGE_WUKONG_BASE_URL": os.environ["IMBRIDGE_WUKONG_BASE_URL"],
           "IMBRIDGE_WUKONG_MANAGER_TOKEN": os.environ["IMBRIDGE_WUKONG_MANAGER_TOKEN"]}  # fmt: skip
    # WuKongIM itself does not dedupe client_msg_no, so the instances do not resend by the same key.
    figures = _soak(tmp_path, env, "soak" + secrets.token_hex(3) + "_", resend=False, check_times=False)
    assert figures["messages"] > 0
