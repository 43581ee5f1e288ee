"""Map maths on the calling thread: :func:`one_thread`.

A map's maths after the forward (EigenCAM's principal component of a few hundred channels on a
40 × 40 grid, a resample to the image's pixels) is made of many small tensor operations. Run on
torch's intra-op pool, each one wakes the pool's threads, which then spin waiting for more work:
on the ``shapes`` detector an EigenCAM check cost 19 ms of CPU per image with 2 threads on a
loaded 2-core machine against 3 ms on one thread, for no gain in wall time. The model's own
forwards and backwards (detection, per-box gradients, the extra forwards of D-RISE or AblationCAM)
keep the user's thread count; only the maths on their results runs here. A pool splits sums and
products differently from one thread, which may move float32 results in their last bits: on 100
shapes scenes at 2 threads (282 maps each) the EigenCAM maps were equal to those computed on the
pool, the EigenGradCAM maps within 2.4e-7 (maps scaled to a maximum of 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with torch's intra-op thread count at 1; the count before is restored on exit
    (also when the block raises). A no-op where it already is 1."""
    import torch

    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
