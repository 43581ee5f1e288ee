"""Give freed memory back to the operating system after each audited test (glibc only).

An audit allocates and frees large blocks all run long: one image's activations (75 MB for an
R50-FPN at 800×1088), autograd buffers of the per-box gradients, the figures of a failing case. With
the long-lived records of finished tests interleaved between them, glibc's heap keeps the freed
space mapped (fragmentation), and the resident size climbs with the number of images although
nothing is retained. ``malloc_trim(0)`` returns the free pages at the top of the heap and every
whole free page inside it. Measured in ``benchmarks/bench_memory.py --compare-trim``.

Off with ``CAMAUDIT_MALLOC_TRIM=0``; a no-op where the C library is not glibc (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time
from collections.abc import Callable
from functools import cache

ENV = "CAMAUDIT_MALLOC_TRIM"
"""Environment variable: ``0`` turns trimming off (for before / after measurements)."""

MIN_INTERVAL_S = 0.5
"""At most one trim per this many seconds: a trim walks the heap, a few ms on a large one."""

_last = 0.0


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux") or os.environ.get(ENV, "1") == "0":
        return None
    try:  # glibc's soname first: find_library runs `ldconfig -p` in a subprocess (a fork of this process)
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            return None
    try:
        trim = libc.malloc_trim
    except AttributeError:  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def give_back_memory(force: bool = False) -> bool:
    """Return free heap pages to the OS (``malloc_trim(0)``), at most every :data:`MIN_INTERVAL_S`
    unless ``force``. Returns whether a trim ran."""
    global _last
    trim = _malloc_trim()
    now = time.monotonic()
    if trim is None or (not force and now - _last < MIN_INTERVAL_S):
        return False
    _last = now
    trim(0)
    return True
