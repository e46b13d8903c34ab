"""Issue 14: each point reproduced over httpx.MockTransport with answers shaped as the official docs define them.

The fake servers here are written from the documentation's text (quoted at each one), not from imbridge's emulator:
- group_msg_get_simple (https://cloud.tencent.com/document/api/269/2738): ``IsFinished`` 1 = the requested
  window came back whole, 0 = cut short ("消息长度太长或者区间太大"), 2 = cut and all its messages expired;
- get_group_member_info (https://cloud.tencent.com/document/product/269/1617): ``Limit`` at most 200 with
  ``Offset``; Community groups page only with ``Next`` and at most 100;
- get_group_info (https://cloud.tencent.com/document/api/269/1616): with a ResponseFilter, unnamed fields do not
  come back;
- sendmsg/batchsendmsg dedupe (https://cloud.tencent.com/document/product/269/2282): sender, MsgSeq, MsgRandom
  and the content's CRC32, for 120 s; no recipient.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import httpx
import pytest
from tencent_support import Sent, fail, make_client, official, ok

from imbridge import AsyncIMClient, Conversation, Image, Text
from imbridge.errors import InvalidRequestError
from imbridge.migration.source import TencentSource
from imbridge.providers.tencent.mapping import GROUP_BASE_FIELDS, element_from_wire, element_to_wire
from imbridge.providers.tencent.wire import MsgElement
from imbridge.retry import RetryPolicy

# -- 1. group history: IsFinished as documented ------------------------------------------------------


def _message(seq: int, *, expired: bool = False) -> dict[str, Any]:
    body = [] if expired else [{"MsgType": "TIMTextElem", "MsgContent": {"Text": f"message {seq} " + "x" * 200}}]
    return {"From_Account": "alice", "IsPlaceMsg": 1 if expired else 0, "MsgPriority": 2, "MsgRandom": seq,
            "MsgSeq": seq, "MsgTimeStamp": 1_700_000_000 + seq, "MsgBody": body}  # fmt: skip


class HistoryServer:
    """``newest`` messages; each answer holds at most ``fits`` of them (the "too long" cut), from the newest end of
    the window or, with ``cut_old_end=False``, from its oldest end; seqs up to ``expired_up_to`` have expired."""

    def __init__(self, newest: int, fits: int = 20, *, cut_from_top: bool = True, expired_up_to: int = 0) -> None:
        self.newest, self.fits, self.cut_from_top, self.expired_up_to = newest, fits, cut_from_top, expired_up_to
        self.windows: list[tuple[int, int]] = []

    def __call__(self, sent: Sent) -> dict[str, Any]:
        if sent.command == "get_role_in_group":  # the reader's membership, asked when a read starts
            return ok(UserIdList=[{"Member_Account": uid, "Role": "Member"} for uid in sent.body["User_Account"]])
        if sent.command == "get_group_info":
            assert sent.body["ResponseFilter"] == {"GroupBaseInfoFilter": ["NextMsgSeq"]}
            return ok(GroupInfo=[{"GroupId": "g", "ErrorCode": 0, "ErrorInfo": "", "NextMsgSeq": self.newest + 1}])
        assert sent.command == "group_msg_get_simple"
        number = sent.body["ReqMsgNumber"]
        top = min(sent.body.get("ReqMsgSeq", self.newest), self.newest)
        window = list(range(top, max(top - number, 0), -1))  # newest first
        self.windows.append((window[-1] if window else 0, top))
        shown = window[: min(self.fits, 20)] if self.cut_from_top else window[-min(self.fits, 20) :]
        cut = len(shown) < len(window)
        expired = all(seq <= self.expired_up_to for seq in window)
        finished = (2 if expired else 0) if cut else 1
        items = [_message(seq, expired=seq <= self.expired_up_to) for seq in shown]
        return ok(GroupId="g", IsFinished=finished, RspMsgList=items)


@pytest.mark.parametrize("direction", ["backward", "forward"])
def test_history_goes_on_past_a_window_that_came_back_whole(direction: str) -> None:
    server = HistoryServer(newest=50)
    im, _ = make_client(server)
    seqs = [m.seq for m in im.messages.iter_history(Conversation.group("g"), "alice", direction=direction)]
    assert seqs == (list(range(50, 0, -1)) if direction == "backward" else list(range(1, 51)))


@pytest.mark.parametrize("cut_from_top", [True, False], ids=["cut-old-end", "cut-new-end"])
@pytest.mark.parametrize("direction", ["backward", "forward"])
def test_a_cut_window_is_asked_again_for_its_missing_part(direction: str, cut_from_top: bool) -> None:
    server = HistoryServer(newest=47, fits=3, cut_from_top=cut_from_top)
    im, http = make_client(server)
    seqs = [m.seq for m in im.messages.iter_history(Conversation.group("g"), "alice", page_size=9, direction=direction)]
    assert seqs == (list(range(47, 0, -1)) if direction == "backward" else list(range(1, 48)))
    assert all(s.body["ReqMsgNumber"] <= 20 for s in http.sent if s.command == "group_msg_get_simple")
    # Each seq was asked for until it came back: no window is re-read after it is complete.
    assert sum(len(range(low, top + 1)) for low, top in server.windows) < 3 * 47


def test_history_ends_where_the_rest_has_expired() -> None:
    server = HistoryServer(newest=45, fits=20, expired_up_to=10)
    im, _ = make_client(server)
    page = im.messages.history(Conversation.group("g"), "alice", limit=100)
    assert [m.seq for m in page.items] == list(range(45, 10, -1)) and page.next_cursor is None


def test_the_docs_own_sample_window_does_not_end_history() -> None:
    # The doc asks for 2 messages at seq 7803321 and answers IsFinished 1: older messages may still exist.
    sample = official("group_msg_get_simple")
    assert sample["request_examples"][1]["body"]["ReqMsgSeq"] == 7803321
    assert sample["response_examples"][0]["body"]["IsFinished"] == 1
    server = HistoryServer(newest=7803321)
    im, _ = make_client(server)
    page = im.messages.history(Conversation.group("g"), "alice", limit=2)
    assert [m.seq for m in page.items] == [7803321, 7803320] and page.next_cursor is not None
    more = im.messages.history(Conversation.group("g"), "alice", limit=2, cursor=page.next_cursor)
    assert [m.seq for m in more.items] == [7803319, 7803318]


async def test_the_migration_reader_reads_cut_windows_whole() -> None:
    server = HistoryServer(newest=44, fits=4)

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        sent = Sent(path=path, params={}, body=json.loads(request.content), at=0.0)
        return httpx.Response(200, json=server(sent))

    client = AsyncIMClient("tencent", sdk_app_id=1400000001, secret_key="imbridge-test-key-not-a-secret",
                           base_url="http://tencent.test",
                           http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))  # fmt: skip
    async with client:
        source = TencentSource(client)
        seqs = [m.seq async for m in source.group_messages("g", 0, 44)]
    assert seqs == list(range(1, 45))


# -- 3. member paging within the documented caps -----------------------------------------------------


class MemberServer:
    """get_group_member_info as documented: Offset paging with Limit <= 200, Next paging (Community only) with
    Limit <= 100; a request past the caps gets 10004."""

    def __init__(self, count: int, *, muted: tuple[str, ...] = ()) -> None:
        self.members = [{"Member_Account": f"u{i:05d}", "Role": "Owner" if i == 0 else "Member", "JoinTime": 1,
                         "MuteUntil": 0} for i in range(count)]  # fmt: skip
        self.muted = muted
        self.deleted: list[str] = []

    def __call__(self, sent: Sent) -> dict[str, Any]:
        body = sent.body
        if sent.command == "get_group_muted_account":
            return ok(GroupId=body["GroupId"], MutedAccountList=[
                {"Member_Account": uid, "MutedUntil": 4_000_000_000} for uid in self.muted])  # fmt: skip
        if sent.command == "delete_group_member":
            self.deleted += body["MemberToDel_Account"]
            return ok()
        assert sent.command == "get_group_member_info"
        community = body["GroupId"].startswith("@TGS#_")
        limit = body.get("Limit")
        if community:
            if "Offset" in body or "Next" not in body or (limit or 101) > 100:
                return fail(10004, "Community groups page with Next, Limit at most 100")
            start = int(body["Next"] or 0)
            page = self.members[start : start + limit]
            after = start + len(page)
            cursor = str(after) if after < len(self.members) else ""
            return ok(MemberNum=len(self.members), MemberList=page, Next=cursor)
        if "Next" in body or (limit is not None and limit > 200):
            return fail(10004, "Limit is at most 200")
        start = body.get("Offset", 0)
        return ok(MemberNum=len(self.members), MemberList=self.members[start : start + (limit or len(self.members))])


@pytest.mark.parametrize("group_id", ["@TGS#2J4SZEAEL", "@TGS#_@TGS#cAVQXXXXXX"], ids=["offset", "next"])
def test_members_of_a_group_of_thousands(group_id: str) -> None:
    server = MemberServer(2_345, muted=("u02300",))
    im, http = make_client(server)
    members = im.groups.members(group_id)
    assert [m.user_id for m in members] == [f"u{i:05d}" for i in range(2_345)]
    limits = {s.body["Limit"] for s in http.sent if s.command == "get_group_member_info"}
    assert limits == ({100} if group_id.startswith("@TGS#_") else {200})
    # The same paging serves muted() and remove_members(): a member far past the first page is found.
    assert [m.user_id for m in im.groups.muted(group_id)] == ["u02300"]
    result = im.groups.remove_members(group_id, ["u02000", "nobody"])
    assert [item.ok for item in result.items] == [True, False] and server.deleted == ["u02000"]


def test_the_docs_community_paging_example_is_what_is_sent() -> None:
    fixture = official("get_group_member_info")
    (example,) = [e["body"] for e in fixture["request_examples"] if "Next" in e["body"]]
    im, http = make_client(MemberServer(3))
    im.groups.members(example["GroupId"])
    first = http.sent[0].body
    assert {k: first[k] for k in example} == example  # {"GroupId", "Limit": 100, "Next": ""}


# -- 4. get_group_info asks for what it maps ----------------------------------------------------------


def test_get_group_asks_for_every_field_it_maps_and_gets_them_under_the_filter() -> None:
    full = official("get_group_info")["response_examples"][0]["body"]["GroupInfo"][0]

    def respond(sent: Sent) -> Any:
        wanted = sent.body["ResponseFilter"]
        assert set(wanted) == {"GroupBaseInfoFilter"}, "no member list: members() pages it"
        named = set(wanted["GroupBaseInfoFilter"])
        # "如果设置了过滤器,没有在过滤器中指明的字段将不被拉取"
        kept = {k: v for k, v in full.items() if k in named or k in ("GroupId", "ErrorCode", "ErrorInfo")}
        return ok(GroupInfo=[kept])

    im, http = make_client(respond)
    group = im.groups.get("@TGS#2J4SZEAEL")
    assert http.sent[0].body["ResponseFilter"]["GroupBaseInfoFilter"] == list(GROUP_BASE_FIELDS)
    assert (group.name, group.owner, group.introduction, group.notification) == (
        "MyFirstGroup", "leckie", "TestGroup", "TestGroup")  # fmt: skip
    assert group.member_count == 2 and group.mute_all and group.face_url == "http://this.is.face.url"
    assert group.created_at is not None and int(group.created_at.timestamp()) == 1426976500


# -- 5. documented limits, refused before the network ----------------------------------------------


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda im: im.groups.create(name="群" * 11, owner="alice"), "group name is at most 30 bytes"),
        (lambda im: im.groups.create(name="ok", owner="alice", introduction="x" * 241), "at most 240 bytes"),
        (lambda im: im.groups.update("g", notification="é" * 151), "group notification is at most 300 bytes"),
        (lambda im: im.groups.update("g", face_url="http://" + "x" * 94), "group face URL is at most 100 bytes"),
        (lambda im: im.groups.create(name="ok", owner="alice", group_id="g" * 49), "custom group id is at most 48"),
        (lambda im: im.groups.create(name="ok", owner="alice", group_id="@TGS#mine"), "do not start with @TGS#"),
        (lambda im: im.messages.send("a" * 33, Conversation.user("bob"), "hi"), "user id is at most 32 bytes"),
        (lambda im: im.messages.send("alice", Conversation.user("bob"), "x" * 12_300), "at most 12,288 bytes"),
        (lambda im: im.messages.send("alice", Conversation.group("g"), "x" * 12_300), "at most 12,288 bytes"),
        (lambda im: im.groups.mute("g", ["b" * 40], duration=60), "user id is at most 32 bytes"),
    ],
)  # fmt: skip
def test_documented_limits_are_refused_before_the_network(call: Any, named: str) -> None:
    im, http = make_client(lambda sent: pytest.fail(f"no request expected, got {sent.command}"))
    with pytest.raises(InvalidRequestError) as caught:
        call(im)
    assert named in str(caught.value) and http.sent == []


def test_texts_at_the_limit_pass() -> None:
    answers = {"create_group": ok(GroupId="g"), "get_group_info": ok(GroupInfo=[{"GroupId": "g", "Name": "x"}])}
    im, http = make_client(lambda sent: answers[sent.command])
    im.groups.create(name="群" * 10, owner="alice", introduction="x" * 240, face_url="u" * 100, group_id="g" * 48)
    assert http.sent[0].body["Name"] == "群" * 10


def test_the_capability_notes_say_other_providers_have_no_such_limits() -> None:
    im, _ = make_client(lambda sent: ok())
    notes = im.capabilities["groups.create"].notes
    assert "30" in notes and "240" in notes and "other providers have none" in notes


# -- 7. image elements -------------------------------------------------------------------------------


def test_image_elements_carry_the_three_documented_entries() -> None:
    sample = next(e["body"] for e in official("msg_elements")["elements"] if e["body"]["MsgType"] == "TIMImageElem")
    image = Image(url="https://cdn/x.jpg", width=2448, height=3264, size=1853095, format="jpg",
                  thumbnail_url="https://cdn/x-198.jpg")  # fmt: skip
    wire = element_to_wire(image)
    infos = wire["MsgContent"]["ImageInfoArray"]
    assert [i["Type"] for i in infos] == [i["Type"] for i in sample["MsgContent"]["ImageInfoArray"]] == [1, 2, 3]
    assert all(set(i) == set(sample["MsgContent"]["ImageInfoArray"][0]) for i in infos)
    assert infos[0]["URL"] == infos[1]["URL"] == image.url and infos[2]["URL"] == image.thumbnail_url
    assert element_from_wire(MsgElement.model_validate(wire)).model_copy(update={"uuid": None}) == image
    plain = Image(url="https://cdn/y.png")
    assert [i["URL"] for i in element_to_wire(plain)["MsgContent"]["ImageInfoArray"]] == [plain.url] * 3
    back = element_from_wire(MsgElement.model_validate(element_to_wire(plain)))
    assert isinstance(back, Image) and (back.url, back.thumbnail_url) == (plain.url, None)


# -- 8. batch chunks and the dedupe key --------------------------------------------------------------


def test_each_batch_chunk_survives_the_documented_dedupe_and_keeps_its_numbers_on_retry() -> None:
    seen: dict[str, int] = {}
    delivered: list[str] = []
    attempts: dict[int, list[int]] = {}
    failed_once: set[int] = set()

    def respond(sent: Sent) -> Any:
        body = sent.body
        chunk = int(body["To_Account"][0][1:]) // 500
        attempts.setdefault(chunk, []).append(body["MsgRandom"])
        if chunk == 1 and chunk not in failed_once:
            failed_once.add(chunk)
            return httpx.Response(502, text="bad gateway")  # the first attempt of chunk 1 is lost on the way
        crc = zlib.crc32(json.dumps(body["MsgBody"], sort_keys=True).encode())
        key = f"{body['From_Account']}:{body['MsgSeq']}:{body['MsgRandom']}:{crc}"  # no recipient in it
        if key in seen:
            return ok(MsgKey="duplicate")  # deduplicated: nobody in this request gets it
        seen[key] = chunk
        delivered.extend(body["To_Account"])
        return ok(MsgKey=f"{body['MsgSeq']}_{body['MsgRandom']}_1")

    recipients = [f"u{i:05d}" for i in range(1_234)]
    im, _ = make_client(respond, retry=RetryPolicy(max_attempts=3, initial_backoff=0, max_backoff=0))
    result = im.messages.send_batch("system", recipients, [Text("notice")], idempotency_key="notice-1")
    assert result.ok and sorted(delivered) == recipients
    assert len({numbers[0] for numbers in attempts.values()}) == 3, "one MsgRandom per chunk"
    assert attempts[1][0] == attempts[1][1], "a retried chunk keeps its MsgRandom"
    # The same key later gives the same numbers (idempotent), chunk by chunk.
    again: dict[int, list[int]] = attempts.copy()
    attempts.clear()
    im.messages.send_batch("system", recipients, [Text("notice")], idempotency_key="notice-1")
    assert {c: a[0] for c, a in attempts.items()} == {c: a[0] for c, a in again.items()}
