"""The plugin gives freed heap memory back to the OS after each audited test (glibc's malloc_trim)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
