"""The audited case a test holds: :class:`AuditCase`, with every assertion as a method.

``camaudit.audit(image)`` returns one. Each method *is* the function of :mod:`.assertions`,
:mod:`.metric_assertions` or :mod:`.sanity` of the same name, bound to the case as its first
argument (the functions type that argument as :class:`~.casebase.CaseBase`: the state and what a
case becomes at the end of the test), so a signature, a default and a docstring live in one place.
"""

from __future__ import annotations

from . import assertions, metric_assertions, sanity
from .casebase import DISPLAY_SCORE_FLOOR, CaseBase, Target

__all__ = ["DISPLAY_SCORE_FLOOR", "AuditCase", "Target"]


class AuditCase(CaseBase):
    """One image under audit inside a test: ``case.assert_…`` (see :class:`~.casebase.CaseBase` for its state).

    Each ``assert_…`` method is the module function of the same name with the case as its first argument:
    ``case.assert_cam_mass(det, 0.4)`` is ``assert_cam_mass(case, det, 0.4)``.
    """

    assert_detected = assertions.assert_detected
    assert_cam_mass = assertions.assert_cam_mass
    assert_survives_without_context = assertions.assert_survives_without_context
    assert_box_mass = metric_assertions.assert_box_mass
    assert_pointing_game = metric_assertions.assert_pointing_game
    assert_top_k_intersection = metric_assertions.assert_top_k_intersection
    assert_rank_accuracy = metric_assertions.assert_rank_accuracy
    assert_odi = metric_assertions.assert_odi
    assert_compactness = metric_assertions.assert_compactness
    assert_forbidden_mass = metric_assertions.assert_forbidden_mass
    assert_deletion_auc = metric_assertions.assert_deletion_auc
    assert_insertion_auc = metric_assertions.assert_insertion_auc
    assert_cam_changes_with_weights = sanity.assert_cam_changes_with_weights
    assert_cam_changes_with_target = sanity.assert_cam_changes_with_target
