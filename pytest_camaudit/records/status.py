"""A case's status, the gates' state names and the run's shared defaults."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

SCORE_THRESHOLD = 0.5
"""The detection score a run judges at unless ``--camaudit-score-threshold`` says otherwise."""

GateStateName = Literal["judged", "incomplete", "deferred"]
"""Whether a run's gates (and discovery) were judged: ``judged``, ``incomplete`` (not every collected case
ran) or ``deferred`` (a shard: judged in the merge)."""


class Status(str, Enum):
    """A test's or a case's status, in the order the report shows its cards (most urgent first).

    A ``str`` (its value) wherever it is written: run files, JUnit properties, the report's badges.
    ``xfailed`` and ``xpassed`` are pytest's expected failures that failed and passed (a strict
    ``xfail`` that passed is ``failed``, as pytest reports it).
    """

    ERROR = "error"
    FAILED = "failed"
    XPASSED = "xpassed"
    XFAILED = "xfailed"
    SKIPPED = "skipped"
    PASSED = "passed"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def order(self) -> int:
        """The card's place in the report: 0 for ``error`` up to 5 for ``passed``."""
        return _STATUS_ORDER.index(self)

    @property
    def passing(self) -> bool:
        """``passed`` or ``xpassed``: counted as passing and left out of the report without report-all."""
        return self in (Status.PASSED, Status.XPASSED)

    @property
    def failing(self) -> bool:
        """``failed`` or ``error``: what fails a test and a run."""
        return self in (Status.FAILED, Status.ERROR)

    @classmethod
    def of(cls, outcome: object, error: object = None) -> Status:
        """The status of a record with this ``outcome`` and ``error`` (``error``: whatever made it
        unusable; an unknown outcome is an error too)."""
        if error is not None:
            return cls.ERROR
        try:
            return cls(str(outcome))
        except ValueError:
            return cls.ERROR


_STATUS_ORDER = tuple(Status)


def report_status(report: Any) -> Status:
    """The status of a ``pytest.TestReport`` (or anything with ``when``, ``outcome`` and maybe
    ``wasxfail``): a failed setup or teardown is an ``error``, a skipped one ``skipped``."""
    if hasattr(report, "wasxfail") and report.outcome in ("skipped", "passed"):
        return Status.XFAILED if report.outcome == "skipped" else Status.XPASSED
    if report.when != "call":
        return Status.ERROR if report.outcome == "failed" else Status.SKIPPED
    return Status.of(report.outcome)
