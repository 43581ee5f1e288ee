"""pytest-camaudit: audit object detectors with class-activation maps in your pytest suite.

Importing the package is cheap; the names below load torch and friends on first use::

    from pytest_camaudit import assert_detected, assert_cam_mass, assert_survives_without_context
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "assert_detected": "assertions",
    "assert_cam_mass": "assertions",
    "assert_survives_without_context": "assertions",
    "AuditCase": "auditor",
    "Auditor": "auditor",
    "Detector": "detector",
    "load_detector": "detector",
    "CamEngine": "engine",
    "Detection": "engine",
    "ImageAnalysis": "engine",
    "load_image": "images",
    "box_mass": "metrics",
    "assert_box_mass": "metric_assertions",
    "assert_pointing_game": "metric_assertions",
    "assert_top_k_intersection": "metric_assertions",
    "assert_rank_accuracy": "metric_assertions",
    "assert_odi": "metric_assertions",
    "assert_compactness": "metric_assertions",
    "assert_forbidden_mass": "metric_assertions",
    "assert_deletion_auc": "metric_assertions",
    "assert_insertion_auc": "metric_assertions",
    "assert_cam_changes_with_weights": "sanity",
    "assert_cam_changes_with_target": "sanity",
    "CaseEntry": "cases",
    "load_entries": "cases",
    "CamauditError": "errors",
    "ModelLoadError": "errors",
    "ImageInputError": "errors",
    "ExpectationError": "errors",
    "DetectorRuntimeError": "errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_camaudit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pytest_camaudit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
