"""The process's memory over a long audit: freed memory back to the OS, long-lived objects out of the collector's way.

**Freed blocks kept for the next image** (:func:`keep_freed_blocks`, glibc only). By default glibc
serves each block above a moving threshold (128 kB at first, raised to the largest block freed so
far, up to 32 MB) with its own ``mmap`` and unmaps it when freed, and gives a freed top of the heap
back to the OS at once; the next image's forward then faults the same pages in again, zero-filled.
A bare detection loop over 300 ``shapes`` scenes took 2,600 page faults per scene and spent 2.1 s
of its 12.5 s in the kernel; where the threshold had settled decided whether an audit run took
1,200 or 2,400 per scene. In a session with audit tests the plugin fixes both thresholds
(``mallopt``: blocks below :data:`MMAP_THRESHOLD` come from the heap, and nothing is trimmed when it
is freed), so one forward's buffers serve the next; its own throttled trim (below) still gives the
free pages back. On 300 shapes scenes a run's page faults went from 2,200 to 760 per scene and its
forwards from 27.1 to 24.7 ms each (``benchmarks/bench_whole_run.py --compare-heap``).

**Freed memory back to the OS** (:func:`give_back_memory`, glibc only).

An audit allocates and frees large blocks all run long: one image's activations (75 MB for an
R50-FPN at 800×1088), autograd buffers of the per-box gradients, the figures of a failing case. With
the long-lived records of finished tests interleaved between them, glibc's heap keeps the freed
space mapped (fragmentation), and the resident size climbs with the number of images although
nothing is retained. ``malloc_trim`` returns every whole free page inside the heap and the free top
above :data:`KEEP_TOP` (its pad): that much of the top, what the next image's forward allocates
first, stays mapped. With the fixed thresholds, a trim that gave the whole top back
(``malloc_trim(0)``, after every R50 test) had the next forward fault it in again: 40 R50 images
(report on, ``benchmarks/bench_memory.py``'s ``r50-eigencam``) took 90–100 s against 86–98 s with
glibc's defaults in five alternating pairs; keeping 64 MB, 91.0 and 97.7 s against 100.1 and 101.1 s,
peak and growth within the targets. Measured in ``benchmarks/bench_memory.py --compare-trim``.

Both off with ``CAMAUDIT_MALLOC_TRIM=0`` (glibc's defaults stay); no-ops where the C library is not
glibc (macOS, musl, Windows).

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
"""Environment variable: ``0`` leaves glibc's heap alone: no fixed thresholds, no trims (for before /
after measurements)."""

MIN_INTERVAL_S = 0.5
"""At most one trim per this many seconds: a trim walks the heap, a few ms on a large one."""

MMAP_THRESHOLD = 32 * 1024 * 1024
"""Blocks below this size come from the heap, not from an ``mmap`` of their own (glibc's largest
dynamic threshold; an R50's 75 MB activations are still mapped and unmapped whole)."""

TRIM_THRESHOLD = 1024 * 1024 * 1024
"""A freed top of the heap below this size stays mapped for the next block (the trim after a test
gives it back)."""

KEEP_TOP = 64 * 1024 * 1024
"""A trim leaves this much of a free top of the heap mapped (``malloc_trim``'s pad): what the next
forward allocates first. Small against a run's resident size (0.8 GB for the ``shapes`` detector, 2 GB
for an R50), so the resident size after a test moves by at most this much."""

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h

_last = 0.0

FREEZE_ENV = "CAMAUDIT_GC_FREEZE"
"""Environment variable: ``0`` turns :func:`freeze_long_lived` off (for before / after measurements)."""

_frozen = False
"""Whether the objects now frozen were frozen here (then :func:`thaw` gives them back)."""

_exit_freeze_registered = False


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``malloc_trim``) and heap management is on, else ``None``."""
    if not sys.platform.startswith("linux") or os.environ.get(ENV, "1") == "0":
        return None
    try:  # glibc's soname first: find_library runs `ldconfig -p` in a subprocess (a fork of this process)
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            return None
    return libc if hasattr(libc, "malloc_trim") else None  # musl has no malloc_trim


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    libc = _glibc()
    if libc is None:
        return None
    trim = libc.malloc_trim
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def keep_freed_blocks() -> bool:
    """Fix glibc's ``mmap`` and trim thresholds (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`) so
    that a forward's freed buffers serve the next one instead of being unmapped and faulted in
    again; call it once the session's CAM engine exists. Returns whether both were set (not with
    ``CAMAUDIT_MALLOC_TRIM=0``, nor off glibc). The setting lasts for the process."""
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def give_back_memory(force: bool = False) -> bool:
    """Return free heap pages to the OS (``malloc_trim``, keeping :data:`KEEP_TOP` of a free top), at
    most every :data:`MIN_INTERVAL_S` unless ``force``. Returns whether a trim ran."""
    global _last
    trim = _malloc_trim()
    now = time.monotonic()
    if trim is None or (not force and now - _last < MIN_INTERVAL_S):
        return False
    _last = now
    trim(KEEP_TOP)
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
