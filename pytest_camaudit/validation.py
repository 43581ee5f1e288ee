"""The checks for "a number in a range" that options, thresholds, assertions and the merge CLI share.

Callers turn the :class:`ValueError` into what their layer raises: an ``argparse`` usage error for
a command-line option, an :class:`~pytest_camaudit.errors.ExpectationError` for an assertion's
argument. The message is the same everywhere: ``expected a number in [0, 1], got 'nan'``.
"""

from __future__ import annotations

import math


def number_in(value: object, lo: float = 0.0, hi: float = 1.0) -> float:
    """``float(value)`` when it is a finite number in ``[lo, hi]``.

    Raises:
        ValueError: ``expected a number in [lo, hi], got <value>`` (booleans are not numbers).
    """
    problem = ValueError(f"expected a number in [{lo:g}, {hi:g}], got {value!r}")
    if isinstance(value, bool):
        raise problem
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise problem from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise problem
    return x


def whole_number(value: object, lo: int = 1) -> int:
    """``int(value)`` when it is a whole number ≥ ``lo`` (surrounding spaces allowed).

    Raises:
        ValueError: ``expected a whole number >= lo, got <value>``.
    """
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a whole number >= {lo}, got {value!r}") from None
    if n < lo:
        raise ValueError(f"expected a whole number >= {lo}, got {value!r}")
    return n
