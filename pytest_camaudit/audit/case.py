"""The audited case a test holds: :class:`AuditCase`, with every assertion as a method.

``camaudit.audit(image)`` returns one. Each method is the function of :mod:`.assertions`,
:mod:`.metric_assertions` or :mod:`.sanity` of the same name with the case as first argument
(the state and what a case becomes at the end of the test: :class:`~.casebase.CaseBase`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..datatypes import ContextResult, Curve, Detection
from ..metrics import Region
from .casebase import DISPLAY_SCORE_FLOOR, CaseBase, Target
from .regions import ObjectRegion

__all__ = ["DISPLAY_SCORE_FLOOR", "AuditCase", "Target"]


class AuditCase(CaseBase):
    """One image under audit inside a test: ``case.assert_…`` (see :class:`~.casebase.CaseBase` for its state)."""

    def assert_detected(self, label: str | int, box: Sequence[float] | None = None, *, score_threshold: float | None = None,
                        iou_threshold: float = 0.5) -> Detection:
        """See :func:`pytest_camaudit.audit.assertions.assert_detected`."""
        __tracebackhide__ = True
        from .assertions import assert_detected

        return assert_detected(self, label, box, score_threshold=score_threshold, iou_threshold=iou_threshold)

    def assert_cam_mass(self, target: Target, at_least: float, *, method: str | None = None, region: ObjectRegion | None = None) -> float:
        """See :func:`pytest_camaudit.audit.assertions.assert_cam_mass`."""
        __tracebackhide__ = True
        from .assertions import assert_cam_mass

        return assert_cam_mass(self, target, at_least, method=method, region=region)

    def assert_survives_without_context(self, detection: Detection, max_drop: float = 0.3, *, margin: float = 0.05) -> ContextResult:
        """See :func:`pytest_camaudit.audit.assertions.assert_survives_without_context`."""
        __tracebackhide__ = True
        from .assertions import assert_survives_without_context

        return assert_survives_without_context(self, detection, max_drop, margin=margin)

    def assert_box_mass(self, box: Sequence[float], at_least: float, *, explain: Detection | None = None, method: str | None = None,
                        region: ObjectRegion | None = None) -> float:
        """See :func:`pytest_camaudit.audit.metric_assertions.assert_box_mass`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_box_mass

        return assert_box_mass(self, box, at_least, explain=explain, method=method, region=region)

    def assert_pointing_game(self, target: Target, *, tolerance: float = 0.0, explain: Detection | None = None,
                             method: str | None = None) -> float:
        """See :func:`pytest_camaudit.audit.metric_assertions.assert_pointing_game`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_pointing_game

        return assert_pointing_game(self, target, tolerance=tolerance, explain=explain, method=method)

    def assert_top_k_intersection(self, target: Target, k: float, at_least: float, *, explain: Detection | None = None,
                                  method: str | None = None) -> float:
        """See :func:`pytest_camaudit.audit.metric_assertions.assert_top_k_intersection`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_top_k_intersection

        return assert_top_k_intersection(self, target, k, at_least, explain=explain, method=method)

    def assert_rank_accuracy(self, target: Target, at_least: float, *, explain: Detection | None = None, method: str | None = None) -> float:
        """See :func:`pytest_camaudit.audit.metric_assertions.assert_rank_accuracy`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_rank_accuracy

        return assert_rank_accuracy(self, target, at_least, explain=explain, method=method)

    def assert_odi(self, target: Target, at_most: float, *, others: Sequence[Sequence[float]] | None = None,
                   explain: Detection | None = None, method: str | None = None) -> float:
        """See :func:`pytest_camaudit.audit.metric_assertions.assert_odi`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_odi

        return assert_odi(self, target, at_most, others=others, explain=explain, method=method)

    def assert_compactness(self, at_least: float, *, share: float = 0.9, explain: Detection | None = None, method: str | None = None) -> float:
        """See :func:`pytest_camaudit.audit.metric_assertions.assert_compactness`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_compactness

        return assert_compactness(self, at_least, share=share, explain=explain, method=method)

    def assert_forbidden_mass(self, region: Region, at_most: float, *, explain: Detection | None = None, method: str | None = None,
                              what: str = "the forbidden region") -> float:
        """See :func:`pytest_camaudit.audit.metric_assertions.assert_forbidden_mass`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_forbidden_mass

        return assert_forbidden_mass(self, region, at_most, explain=explain, method=method, what=what)

    def assert_deletion_auc(self, detection: Detection, at_most: float, *, steps: int = 16, method: str | None = None,
                            fill: str = "mean") -> Curve:
        """See :func:`pytest_camaudit.audit.metric_assertions.assert_deletion_auc`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_deletion_auc

        return assert_deletion_auc(self, detection, at_most, steps=steps, method=method, fill=fill)

    def assert_insertion_auc(self, detection: Detection, at_least: float, *, steps: int = 16, method: str | None = None,
                             fill: str = "mean") -> Curve:
        """See :func:`pytest_camaudit.audit.metric_assertions.assert_insertion_auc`."""
        __tracebackhide__ = True
        from .metric_assertions import assert_insertion_auc

        return assert_insertion_auc(self, detection, at_least, steps=steps, method=method, fill=fill)

    def assert_cam_changes_with_weights(self, detection: Detection | None = None, *, at_most: float = 0.5, scope: str = "all",
                                        method: str | None = None, seed: int = 0) -> float:
        """See :func:`pytest_camaudit.audit.sanity.assert_cam_changes_with_weights`."""
        __tracebackhide__ = True
        from .sanity import assert_cam_changes_with_weights

        return assert_cam_changes_with_weights(self, detection, at_most=at_most, scope=scope, method=method, seed=seed)

    def assert_cam_changes_with_target(self, detection: Detection, other: Detection | str | int, *, at_most: float = 0.9,
                                       method: str | None = None) -> float:
        """See :func:`pytest_camaudit.audit.sanity.assert_cam_changes_with_target`."""
        __tracebackhide__ = True
        from .sanity import assert_cam_changes_with_target

        return assert_cam_changes_with_target(self, detection, other, at_most=at_most, method=method)
