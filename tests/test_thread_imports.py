"""Threads that import imbridge modules while pytest runs never make CPython 3.11 parse in two threads at once
(issue 13, point 21).

A fresh ``.ci/run`` on Debian's Python 3.11.2 once failed with ``SystemError: AST constructor recursion depth
mismatch``: pytest rewrote (``ast.parse``) every ``imbridge.*`` module imported during the session, because
the distribution is an entry-point plugin, and CPython 3.11 keeps the AST constructor's recursion count per
interpreter, so two threads parsing at once (an emulator or client thread importing a module lazily, and the
main thread) can corrupt it (python/cpython#106905; both 3.11.2 and 3.11.7 reproduce it with threads and a
gc callback). The plugin now leaves the library to the normal import system, which parses nothing into
Python AST objects.
"""

from __future__ import annotations

import importlib

import pytest
from _pytest.assertion.rewrite import AssertionRewritingHook

#: Library modules a test session imports after start-up, some of them lazily and in threads (a provider is
#: loaded by name when a client is built, emulators serve requests on threads).
LATE_MODULES = [
    "imbridge.providers.wukong.provider", "imbridge.providers.tencent.provider", "imbridge.providers.local.provider",
    "imbridge.emulators.wukong", "imbridge.emulators.tencent", "imbridge.emulators._tencent_seed",
    "imbridge.migration.pipeline", "imbridge.migration.verify", "imbridge.migration.mirror", "imbridge.cli",
    "imbridge.providers.tencent.webhooks", "imbridge.providers.wukong.webhooks", "imbridge.demo",
]  # fmt: skip


def test_library_modules_are_not_rewritten_by_pytest() -> None:
    for name in LATE_MODULES:
        module = importlib.import_module(name)
        assert not isinstance(module.__loader__, AssertionRewritingHook), f"{name} was parsed by pytest"


STRESS = '''
import difflib, gc, importlib, random, sys, tempfile, threading

MODULES = {modules!r}
ROUNDS = {rounds}


def test_threads_import_while_the_main_thread_imports():
    def churn(phase, info):  # Python code in every collection: the thread switches the CPython bug needs
        a = [str(random.randint(0, 9)) for _ in range(60)]
        list(difflib.unified_diff(a, sorted(a)))

    gc.callbacks.append(churn)
    sys.setswitchinterval(1e-6)
    errors = []

    def load(names):
        for name in names:
            try:
                importlib.import_module(name)
            except SystemError as error:
                errors.append(repr(error))

    from _pytest.assertion.rewrite import AssertionRewritingHook

    for _ in range(ROUNDS):
        sys.pycache_prefix = tempfile.mkdtemp()  # nothing compiled to reuse: every import compiles anew
        for name in MODULES:
            sys.modules.pop(name, None)
        threads = [threading.Thread(target=load, args=(MODULES[i::6],)) for i in range(6)]
        for thread in threads:
            thread.start()
        load(list(reversed(MODULES)))
        for thread in threads:
            thread.join()
        assert errors == []
        assert [n for n in MODULES if isinstance(sys.modules[n].__loader__, AssertionRewritingHook)] == []
    gc.callbacks.remove(churn)
'''


def test_threads_importing_imbridge_during_a_session(pytester: pytest.Pytester) -> None:
    """The pattern of the failure, repeated in a fresh interpreter with nothing compiled to reuse: six threads
    and the main thread import imbridge modules at once, with a gc callback forcing thread switches."""
    pytester.makepyfile(test_stress=STRESS.format(modules=LATE_MODULES, rounds=5))
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    assert result.ret == 0, result.stdout.str()[-3000:] + result.stderr.str()[-3000:]
    result.assert_outcomes(passed=1)
