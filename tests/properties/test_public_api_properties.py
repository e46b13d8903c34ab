"""Nothing but an IMBridgeError escapes the public API, whatever a caller passes (issue 13, point 7).

Every public operation of IMClient and AsyncIMClient (``public_api.OPERATIONS``), on the local provider and
on both emulators, with arguments drawn from valid and hostile values. Derandomized and bounded so CI stays
fast; a survey of many examples (the figure the issue quotes) runs with::

    IMBRIDGE_API_FUZZ_EXAMPLES=1000 IMBRIDGE_API_FUZZ_SURVEY=/tmp/survey.json \
        .venv/bin/python -m pytest -q tests/properties/test_public_api_properties.py

(``IMBRIDGE_API_FUZZ_SEED=N`` draws other examples than the fixed ones CI runs.)

In survey mode a non-imbridge exception is counted (by operation and exception type) instead of failing
the first example, and the counts are written to the survey file.
"""

from __future__ import annotations

import asyncio
import json
import os
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from public_api import OPERATIONS, TARGETS, World, close_world, invoke, make_world

from imbridge.errors import IMBridgeError

EXAMPLES = int(os.environ.get("IMBRIDGE_API_FUZZ_EXAMPLES", "100"))
SURVEY = os.environ.get("IMBRIDGE_API_FUZZ_SURVEY")
SEED = os.environ.get("IMBRIDGE_API_FUZZ_SEED")  # explore other examples than CI's fixed ones

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=SEED is None,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


class Survey:
    """Counts of calls and of non-imbridge exceptions, by kind (operation, exception type)."""

    def __init__(self) -> None:
        self.calls = 0
        self.escaped = 0
        self.kinds: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def record(self, target: str, operation: str, error: BaseException) -> None:
        self.escaped += 1
        kind = f"{operation}: {type(error).__module__}.{type(error).__qualname__}"
        self.kinds[kind] += 1
        if kind not in self.examples:
            frames = traceback.extract_tb(error.__traceback__)[-1:]
            where = f"{frames[0].filename.rsplit('/', 2)[-1]}:{frames[0].lineno}" if frames else "?"
            self.examples[kind] = f"{target}: {str(error)[:160]!r} at {where}"

    def dump(self, path: str) -> None:
        previous = json.loads(Path(path).read_text()) if Path(path).exists() else {}
        runs = previous.get("runs", [])
        runs.append({"calls": self.calls, "escaped": self.escaped})
        kinds = Counter(previous.get("kinds", {}))
        kinds.update(self.kinds)
        examples = {**self.examples, **previous.get("examples", {})}
        document = {
            "calls": sum(run["calls"] for run in runs),
            "escaped": sum(run["escaped"] for run in runs),
            "distinct_kinds": len(kinds),
            "kinds": dict(kinds.most_common()),
            "examples": examples,
            "runs": runs,
        }
        Path(path).write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[tuple[bool, asyncio.AbstractEventLoop | None]]:
    loop = asyncio.new_event_loop() if request.param else None
    try:
        yield request.param, loop
    finally:
        if loop is not None:
            loop.close()


@pytest.mark.parametrize("target", TARGETS)
def test_public_api_raises_only_imbridge_errors(
    target: str, driver: tuple[bool, asyncio.AbstractEventLoop | None]
) -> None:
    is_async, loop = driver
    survey = Survey()

    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        world: World = make_world(target, is_async, loop)
        try:
            for _ in range(data.draw(st.integers(1, 3), label="calls")):
                operation = data.draw(st.sampled_from(OPERATIONS), label="operation")
                args, kwargs = operation.draw(data, world)
                survey.calls += 1
                try:
                    invoke(world, operation, args, kwargs, loop)
                except IMBridgeError:
                    pass
                except Exception as error:  # the point of the test: anything else is a defect
                    if SURVEY is None:
                        raise AssertionError(
                            f"{operation.name} on {target} ({'async' if is_async else 'sync'}) raised "
                            f"{type(error).__name__}, not an IMBridgeError: {error!r:.300}"
                        ) from error
                    survey.record(target, operation.name, error)
        finally:
            close_world(world)

    if SEED is not None:
        check = seed(int(SEED))(check)
    try:
        check()
    finally:
        if SURVEY is not None:
            survey.dump(SURVEY)
