"""The process's memory over a long audit: freed memory back to the OS, long-lived objects out of the collector's way.

**Freed memory back to the OS** (:func:`give_back_memory`, glibc only).

An audit allocates and frees large blocks all run long: one image's activations (75 MB for an
R50-FPN at 800×1088), autograd buffers of the per-box gradients, the figures of a failing case. With
the long-lived records of finished tests interleaved between them, glibc's heap keeps the freed
space mapped (fragmentation), and the resident size climbs with the number of images although
nothing is retained. ``malloc_trim(0)`` returns the free pages at the top of the heap and every
whole free page inside it. Measured in ``benchmarks/bench_memory.py --compare-trim``.

Off with ``CAMAUDIT_MALLOC_TRIM=0``; a no-op where the C library is not glibc (macOS, musl, Windows).

**Long-lived objects frozen** (:func:`freeze_long_lived`). An audit session's objects live until
its end: pytest's collected tests, then torch's and torchvision's modules and the model (~400,000
objects with the ``shapes`` detector). Yet every full collection of Python's cyclic garbage
collector walks them all again: the detector's import alone runs eight, which took 0.7 s of a
300-scene run instead of 0.3 s; the two ``gc.collect()`` pytest runs when the session ends took 0.3 s,
and the interpreter's own last collection at exit 0.6 s. They are moved out of its reach with
:func:`gc.freeze` when collection ends (an audit session's tests) and again once the session's
CAM engine exists (the model) — no collection first: that alone walks them all, 0.2 s;
:func:`thaw` gives them back when the session is cleaned up, after pytest's own collections, so
an in-process session (pytester's) leaves nothing pinned and garbage that was frozen is collected
then; and they are frozen again at exit (:func:`atexit`), where objects still alive need no
collection: Python does not promise their finalizers then. Measured in
``benchmarks/bench_whole_run.py --compare-freeze``. Off with ``CAMAUDIT_GC_FREEZE=0``; nothing is
frozen where something else already froze objects.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import gc
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

FREEZE_ENV = "CAMAUDIT_GC_FREEZE"
"""Environment variable: ``0`` turns :func:`freeze_long_lived` off (for before / after measurements)."""

_frozen = False
"""Whether the objects now frozen were frozen here (then :func:`thaw` gives them back)."""

_exit_freeze_registered = False


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


def freeze_long_lived() -> bool:
    """Move every object alive now out of the cyclic collector's reach (:func:`gc.freeze`) until
    :func:`thaw`; call it when the session's long-lived objects exist (its detector loaded).
    Returns whether it froze: not with ``CAMAUDIT_GC_FREEZE=0``, nor where objects are already
    frozen by someone else (their freeze is theirs to manage)."""
    global _frozen, _exit_freeze_registered
    if os.environ.get(FREEZE_ENV, "1") == "0" or (gc.get_freeze_count() and not _frozen):
        return False
    gc.freeze()
    _frozen = True
    if not _exit_freeze_registered:
        atexit.register(_freeze_at_exit)
        _exit_freeze_registered = True
    return True


def thaw() -> None:
    """Give what :func:`freeze_long_lived` froze back to the collector (a no-op otherwise)."""
    global _frozen
    if _frozen:
        gc.unfreeze()
        _frozen = False


def _freeze_at_exit() -> None:
    """At exit: the interpreter's last collection would walk every object still alive."""
    if os.environ.get(FREEZE_ENV, "1") != "0" and not gc.get_freeze_count():
        gc.freeze()
