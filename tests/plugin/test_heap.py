"""The plugin manages the process's memory: glibc's heap thresholds fixed and freed memory given back
after audited tests (malloc_trim), long-lived objects frozen out of the garbage collector's walks."""

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


RSS = """
import gc

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
"""


def _printed_by(script: str) -> list[int]:
    """The integers ``script`` prints, run in a fresh interpreter with ``gc`` and ``rss()`` (MB) defined."""
    out = subprocess.run([sys.executable, "-c", RSS + textwrap.dedent(script)], capture_output=True, text=True, check=True).stdout
    return [int(v) for v in out.split()]


@glibc
def test_a_trim_runs_and_is_throttled():
    assert heap.give_back_memory(force=True) is True
    assert heap.give_back_memory() is False  # within MIN_INTERVAL_S of the last one


@glibc
def test_glibc_takes_both_thresholds():
    assert heap.keep_freed_blocks() is True  # mallopt returns 0 for a value it refuses


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
        assert heap.keep_freed_blocks() is False
    finally:
        monkeypatch.delenv(heap.ENV)
        heap._malloc_trim.cache_clear()


@glibc
def test_freed_blocks_pinned_under_a_live_one_go_back_to_the_os():
    # 2,000 blocks of 64 KB (below glibc's mmap threshold: they live on the heap); all but the
    # last are freed, which keeps the heap's top in place, so without a trim their pages stay resident
    before, after = _printed_by(
        """
        from pytest_camaudit.plugin.heap import give_back_memory

        blocks = [bytearray(b"x" * 65_536) for _ in range(2_000)]
        pin = blocks[-1]
        del blocks
        gc.collect()
        before = rss()
        give_back_memory(force=True)
        print(before, rss())
        """
    )
    assert before - after >= 80, (before, after)  # of the ~125 MB freed, most comes back


CHURNED = """
import resource


def test_audited(camaudit):
    # 100 MB in 100 kB blocks (below every mmap threshold: they live on the heap), allocated,
    # touched and freed: a freed top of the heap above the trim threshold goes back to the OS at
    # once, and the next round faults the same pages in again
    def churn():
        blocks = [bytearray(100_000) for _ in range(1_000)]
        del blocks

    churn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        churn()
    print("PAGE FAULTS", resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@glibc
def test_an_audit_session_keeps_freed_blocks_for_the_next_forward(pytester, monkeypatch):
    pytester.makepyfile(CHURNED)

    def faults() -> int:
        result = pytester.runpytest_subprocess("--camaudit-device=cpu", "-s")
        result.assert_outcomes(passed=1)
        return int(next(line for line in result.outlines if "PAGE FAULTS" in line).split()[-1])

    kept = faults()
    monkeypatch.setenv(heap.ENV, "0")  # glibc's defaults: each round's 100 MB unmapped and faulted in again
    default = faults()
    assert default > 50_000 and kept < default // 10, (kept, default)


@glibc
def test_a_trim_keeps_a_free_top_of_the_heap_for_the_next_forward_and_gives_back_the_rest():
    # with the session's thresholds, 1 MB blocks live on the heap and a freed top stays mapped;
    # 300 MB of them freed at the top: a trim keeps KEEP_TOP of it (the next forward's first
    # blocks) and gives the rest back
    base, before, after, keep = _printed_by(
        """
        from pytest_camaudit.plugin.heap import KEEP_TOP, give_back_memory, keep_freed_blocks

        assert keep_freed_blocks()
        base = rss()
        blocks = [bytearray(b"x" * 1_000_000) for _ in range(300)]
        del blocks
        gc.collect()
        before = rss()
        give_back_memory(force=True)
        print(base, before, rss(), KEEP_TOP // 2**20)
        """
    )
    assert before - base >= 280, (base, before)  # freed, not trimmed at once: the trim threshold holds it
    assert after - base >= 32, (base, after)  # a free top stays mapped for the next forward: it is not faulted in again
    assert keep - 16 <= after - base <= keep + 16, (base, after, keep)  # KEEP_TOP of it, no more: the rest went back


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
