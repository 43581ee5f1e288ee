"""The plugin gives freed heap memory back to the OS after each audited test (glibc's malloc_trim)."""

from __future__ import annotations

import ast
import gc
import subprocess
import sys
import textwrap
import weakref

import pytest

from pytest_camaudit.plugin import heap

glibc = pytest.mark.skipif(heap._malloc_trim() is None, reason="needs glibc's malloc_trim (Linux)")


@glibc
def test_a_trim_runs_and_is_throttled():
    assert heap.give_back_memory(force=True) is True
    assert heap.give_back_memory() is False  # within MIN_INTERVAL_S of the last one


@glibc
def test_finding_malloc_trim_starts_no_process(monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)  # ctypes.util.find_library runs `ldconfig -p`
    heap._malloc_trim.cache_clear()
    try:
        assert heap._malloc_trim() is not None
    finally:
        heap._malloc_trim.cache_clear()


def test_env_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv(heap.ENV, "0")
    heap._malloc_trim.cache_clear()
    try:
        assert heap.give_back_memory(force=True) is False
    finally:
        monkeypatch.delenv(heap.ENV)
        heap._malloc_trim.cache_clear()


@glibc
def test_freed_blocks_pinned_under_a_live_one_go_back_to_the_os():
    # 2,000 blocks of 64 KB (below glibc's mmap threshold: they live on the heap); all but the
    # last are freed, which keeps the heap's top in place, so without a trim their pages stay resident
    script = textwrap.dedent(
        """
        import gc
        from pytest_camaudit.plugin.heap import give_back_memory

        def rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024

        blocks = [bytearray(b"x" * 65_536) for _ in range(2_000)]
        pin = blocks[-1]
        del blocks
        gc.collect()
        before = rss()
        give_back_memory(force=True)
        print(before, rss())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    before, after = int(out[0]), int(out[1])
    assert before - after >= 80, (before, after)  # of the ~125 MB freed, most comes back


@pytest.fixture
def unfrozen():
    """Start and end with nothing frozen by the plugin (another test's session may have left the flag)."""
    heap.thaw()
    assert gc.get_freeze_count() == 0
    yield
    heap.thaw()


def test_thaw_gives_back_what_was_frozen_and_its_garbage_is_collected(unfrozen):
    class Cycle:
        pass

    garbage = Cycle()
    garbage.me = garbage
    ref = weakref.ref(garbage)
    assert heap.freeze_long_lived() is True
    del garbage
    assert gc.get_freeze_count() > 0
    gc.collect()
    assert ref() is not None  # frozen: out of the collector's reach
    heap.thaw()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert ref() is None


def test_freezing_is_off_with_the_switch_and_leaves_anothers_freeze_alone(unfrozen, monkeypatch):
    monkeypatch.setenv(heap.FREEZE_ENV, "0")
    assert heap.freeze_long_lived() is False
    assert gc.get_freeze_count() == 0
    monkeypatch.delenv(heap.FREEZE_ENV)
    gc.freeze()  # someone else's
    try:
        assert heap.freeze_long_lived() is False
        heap.thaw()
        assert gc.get_freeze_count() > 0  # not ours to give back
    finally:
        gc.unfreeze()


AUDITED = """
import gc

def test_audited(camaudit):
    assert gc.get_freeze_count() > 0, "the session's objects are not frozen"
"""


def test_an_in_process_session_leaves_nothing_frozen(pytester, unfrozen):
    pytester.makepyfile(AUDITED)
    pytester.runpytest("--camaudit-device=cpu").assert_outcomes(passed=1)
    assert gc.get_freeze_count() == 0


def test_pytests_own_end_of_session_collections_skip_the_frozen_objects(pytester, monkeypatch):
    # pytest's unraisable-exception plugin runs gc.collect() at unconfigure and in its cleanup;
    # the plugin's thaw is a cleanup registered before it, so it runs after both
    pytester.makeconftest(
        """
        import atexit, gc, sys
        seen = []

        def _record(phase, info):
            if phase == "start" and info["generation"] == 2 and getattr(sys, "_camaudit_session_done", False):
                seen.append(gc.get_freeze_count())

        gc.callbacks.append(_record)

        def pytest_sessionfinish(session):
            sys._camaudit_session_done = True

        atexit.register(lambda: print("FREEZE COUNTS AT END COLLECTIONS", seen[:2], flush=True))
        """
    )
    pytester.makepyfile(AUDITED)
    result = pytester.runpytest_subprocess("--camaudit-device=cpu", "-s")
    result.assert_outcomes(passed=1)
    line = next(out for out in result.outlines if out.startswith("FREEZE COUNTS AT END COLLECTIONS"))
    counts = ast.literal_eval(line.split("COLLECTIONS", 1)[1].strip())
    assert len(counts) == 2 and all(c > 0 for c in counts), line
    monkeypatch.setenv(heap.FREEZE_ENV, "0")
    off = pytester.runpytest_subprocess("--camaudit-device=cpu")
    off.assert_outcomes(failed=1)
    off.stdout.fnmatch_lines(["*the session's objects are not frozen*"])


def test_an_audit_session_freezes_before_its_detector_loads_and_a_plain_one_never(pytester):
    # the collected session is frozen when collection ends, so the detector's import (torch's own
    # thousands of collections) does not walk it; a session without audit tests freezes nothing
    pytester.makeconftest(
        """
        import gc
        import pytest

        @pytest.fixture(scope="session")
        def camaudit_detector():
            assert gc.get_freeze_count() > 0, "not frozen before the detector loads"
            from pytest_camaudit.detectors.loading import load_detector
            return load_detector("shapes", device="cpu")
        """
    )
    pytester.makepyfile(test_audit=AUDITED, test_plain="import gc\n\ndef test_plain():\n    assert gc.get_freeze_count() == 0\n")
    pytester.runpytest_subprocess("test_audit.py").assert_outcomes(passed=1)
    pytester.runpytest_subprocess("test_plain.py").assert_outcomes(passed=1)
