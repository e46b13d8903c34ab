"""Copy the official examples of Tencent IM callback pages into tests/fixtures/tencent/official/.

Reads the Markdown sources of the documentation from a local clone of tencentyun/intlcloud-documents at a
fixed commit (git show <commit>:<path>; no web page is scraped) and writes one JSON fixture per command, in
the format of the fixtures already there. The only edits: `//` comments are removed (string-aware) and
listed in `notes`. Run:

    python tools/tencent_webhook_fixtures/extract.py /path/to/intlcloud-documents/.git
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = "tencentyun/intlcloud-documents"
COMMIT = "02ec31c2626e18091982c1934bd4aded84cf5043"
BASE = "yehe_doc/中间件与通信/即时通信 IM/服务端 API/第三方回调/"
PAGES = {
    "C2C.CallbackBeforeSendMsg": ("单聊消息相关回调/发单聊消息之前回调_intl_en.md", 34364),
    "Group.CallbackBeforeSendMsg": ("群组系统相关回调/群内发言之前回调_intl_en.md", 34374),
    "C2C.CallbackAfterMsgWithDraw": ("单聊消息相关回调/单聊消息撤回后回调_intl_en.md", 43466),
    "Group.CallbackAfterRecallMsg": ("群组系统相关回调/撤回群消息之后回调_intl_en.md", 46979),
    "Group.CallbackAfterCreateGroup": ("群组系统相关回调/创建群组之后回调_intl_en.md", 34369),
    "Group.CallbackAfterGroupDestroyed": ("群组系统相关回调/群组解散之后回调_intl_en.md", 34377),
    "Group.CallbackAfterGroupInfoChanged": ("群组系统相关回调/群组资料变动之后回调_intl_en.md", 34378),
    "Profile.CallbackPortraitSet": ("资料关系链相关回调/更新资料之后回调_intl_en.md", 48733),
}
OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "tencent" / "official"


def strip_comments(block: str) -> tuple[str, list[str]]:
    """Remove // comments outside strings; return the text and the removed comments."""
    out, removed = [], []
    for line in block.splitlines():
        in_string = escaped = False
        cut = None
        for index, char in enumerate(line):
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif line.startswith("//", index):
                cut = index
                break
        if cut is not None:
            removed.append(line[cut:].strip())
            line = line[:cut].rstrip()
        out.append(line)
    return "\n".join(out), removed


def blocks(markdown: str) -> list[tuple[str, str, str]]:
    """(section, caption, code) for each fenced block: the section is the nearest heading naming a request
    or a response, the caption the nearest heading of any level."""
    found, caption, section = [], "", ""
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if stripped.startswith("```"):
            end = index + 1
            while end < len(lines) and not lines[end].strip().startswith("```"):
                end += 1
            found.append((section, caption, "\n".join(lines[index + 1 : end])))
            index = end + 1
            continue
        heading = re.match(r"#+\s*(.+)", stripped)
        if heading:
            caption = heading.group(1).strip()
            if re.search(r"request|response|应答|请求", caption, re.IGNORECASE):
                section = caption
        index += 1
    return found


def page(git_dir: str, path: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{COMMIT}:{path}"], check=True,
                          capture_output=True, text=True).stdout


def examples(markdown: str) -> tuple[str, list[dict[str, object]], list[dict[str, object]], list[str]]:
    url, requests, responses, notes = "", [], [], []
    for section, caption, code in blocks(markdown):
        if code.strip().startswith("https://"):
            url = code.strip()
            continue
        text, removed = strip_comments(code)
        body = json.loads(text)
        kind = "response" if "response" in section.lower() or "应答" in section else "request"
        title = caption if caption == section else f"{section}: {caption}"
        (responses if kind == "response" else requests).append({"title": title, "body": body})
        if removed:
            notes.append(f"[{caption}] removed // comments (JSON has no comments): " + " | ".join(removed))
    return url, requests, responses, notes


def main(git_dir: str) -> None:
    for command, (path, page_id) in PAGES.items():
        url, requests, responses, notes = examples(page(git_dir, BASE + path))
        fixture: dict[str, object] = {
            "callback_command": command,
            "source": {"repo": REPO, "commit": COMMIT, "file": BASE + path,
                       "url": f"https://www.tencentcloud.com/document/product/1047/{page_id}"},
            "query_string_example": url,
            "request_examples": requests,
            "response_examples": responses,
        }
        fixture["notes"] = "Fixes applied to make the doc examples parse as JSON: " + " || ".join(notes)
        target = OUT / f"webhook_{command}.json"
        target.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"{target.name}: {len(requests)} request / {len(responses)} response examples")


if __name__ == "__main__":
    main(sys.argv[1])
