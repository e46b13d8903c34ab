"""The official error-code page, row by row, against imbridge's Tencent error table.

``error_codes.json`` is the page's "Server Error Codes" section transcribed verbatim (see its ``source``). The
test does not compare the table with itself: it reads each row's official description and checks the class
and the retry decision the description implies (admin permission, does not exist, try again, frequency,
internal error), so a row mapped against its documented meaning fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from imbridge.errors import NotFoundError, PermissionDeniedError, RateLimitError, ServiceUnavailableError
from imbridge.providers.tencent.mapping import ERROR_TABLE, error_for, rule_for

PAGE = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "tencent" / "official" / "error_codes.json").read_text("utf-8")
)
ROWS: list[dict[str, Any]] = [row for section in PAGE["sections"] for row in section["rows"]]
CODED = [row for row in ROWS if "code" in row]
#: Rows whose "try again" asks for a change first: the same request again would fail the same way.
TRY_AGAIN_AFTER_A_CHANGE = {
    80002: "Reduce the packet size and try again.",
    10003: "Check the API name and try again.",
}
#: "Does not exist" rows about something other than a user, group or message: a credential (an
#: AuthenticationError) or a name in the request (an InvalidRequestError), not a missing resource.
NOT_A_MISSING_RESOURCE = {
    70016: "the public key does not exist",
    40009: "The tag of the profile field does not exist.",
}


def test_the_fixture_is_the_whole_server_section() -> None:
    assert PAGE["source"]["url"] == "https://www.tencentcloud.com/document/product/1047/34348"
    titles = [section["title"] for section in PAGE["sections"]]
    assert titles == [
        "Common backend error codes", "Account error codes", "Profile error codes", "Relationship chain error codes",
        "Error codes for recent contacts", "Message error codes", "Group error codes", "Operations data error codes",
    ]  # fmt: skip
    assert len(CODED) == 193 and len({row["code"] for row in CODED}) == 193
    assert {s["title"] for s in PAGE["excluded_sections"]} == {"Access layer error codes", "Resource file error codes"}


@pytest.mark.parametrize("row", CODED, ids=lambda row: str(row["code"]))
def test_every_row_is_mapped_as_its_description_says(row: dict[str, Any]) -> None:
    code, text = row["code"], row["description"].lower()
    assert code in ERROR_TABLE, f"{code} ({row['description']}) is not in the error table"
    error = error_for(code, "info")
    assert error.native_code == code
    if "admin permission" in text or "admin account" in text:
        assert isinstance(error, PermissionDeniedError)
    if re.search(r"does not exist|is not registered", text) and code not in NOT_A_MISSING_RESOURCE:
        assert isinstance(error, NotFoundError)
    if ("try again" in text or "timed out" in text) and code not in TRY_AGAIN_AFTER_A_CHANGE:
        assert error.retryable, "the page says to try again"
    if re.search(r"frequen|too many requests", text):
        assert isinstance(error, RateLimitError)
    if "internal" in text and "error" in text:
        assert isinstance(error, ServiceUnavailableError) and error.retryable


def test_try_again_after_a_change_rows_are_quoted_from_the_page() -> None:
    for code, quote in TRY_AGAIN_AFTER_A_CHANGE.items():
        (row,) = [row for row in CODED if row["code"] == code]
        assert quote in row["description"] and not error_for(code).retryable
    for code, quote in NOT_A_MISSING_RESOURCE.items():
        (row,) = [row for row in CODED if row["code"] == code]
        assert quote in row["description"] and not isinstance(error_for(code), NotFoundError)


def test_the_issue_14_codes() -> None:
    for code in (90009, 40004, 60010, 70403, 30004, 50003):
        assert isinstance(error_for(code), PermissionDeniedError), code
    for code in (50001, 30003):
        assert isinstance(error_for(code), NotFoundError), code
    assert type(error_for(20008)).__name__ == "InvalidRequestError"


def test_webhook_reject_range_row() -> None:
    (row,) = [row for row in ROWS if "range" in row]
    low, high = row["range"]
    for code in (low, (low + high) // 2, high):
        rule = rule_for(code)
        assert rule is not None and rule.kind is PermissionDeniedError
    assert rule_for(high + 1) is None
