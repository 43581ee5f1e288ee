"""pytest-camaudit: audit object detectors with class-activation maps in your pytest suite.

Importing the package is cheap; the names below load torch and friends on first use::

    from pytest_camaudit import assert_detected, assert_cam_mass, assert_survives_without_context

The package is layered; each subpackage's docstring says what it owns and what it may import
(checked by import-linter, ``[tool.importlinter]`` in ``pyproject.toml``)::

    notebook                    explore(image) outside pytest, cases that show themselves, tests from what was seen
    plugin                      pytest hooks, options, fixtures, integrations
    runs                        the run file (--camaudit-json), merging shards, the Markdown summary
    dataset                     COCO-driven cases, per-case checks, baselines, gates
    audit                       Auditor, AuditCase, assertions, metric assertions, sanity checks
    methods                     CAM methods and their registry
    engine                      the one capturing forward, the per-image analysis, alignment
    zoo                         the embedded shapes world and its detectors (registered like a family)
    detectors                   Detector, Family, the registry; one module per family by ecosystem
    datatypes, records, metrics, errors, validation, fileio

``report`` (the only code that draws) depends on ``datatypes`` and ``records`` alone.

Outside pytest (a notebook)::

    from pytest_camaudit import explore
    case = explore("scene.png", model="shapes", method="eigencam", device="cpu")
    case                                  # shows the image, its boxes, the maps its checks used
    print(case.test_source(margin=0.1))   # a pytest test pinning what was measured
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .audit.assertions import assert_cam_mass, assert_detected, assert_survives_without_context
    from .audit.auditor import Auditor
    from .audit.case import AuditCase
    from .audit.metric_assertions import (
        assert_box_mass,
        assert_compactness,
        assert_deletion_auc,
        assert_forbidden_mass,
        assert_insertion_auc,
        assert_odi,
        assert_pointing_game,
        assert_rank_accuracy,
        assert_top_k_intersection,
    )
    from .audit.sanity import assert_cam_changes_with_target, assert_cam_changes_with_weights
    from .dataset.entries import CaseEntry, load_entries
    from .datatypes import CamMap, ContextResult, Curve, Detection, Geometry
    from .detectors.base import Detector, Family
    from .detectors.handles import Handles
    from .detectors.loading import load_detector
    from .engine.analysis import ImageAnalysis
    from .engine.engine import CamEngine
    from .engine.images import LoadedImage, load_image
    from .errors import CamauditError, DatasetError, DetectorRuntimeError, ExpectationError, ImageInputError, ModelLoadError
    from .metrics import box_mass
    from .notebook.api import explore, release_detectors
    from .notebook.display import GateSummary
    from .notebook.shown import NotebookCase, ShownMap

_LAZY = {
    "assert_detected": "audit.assertions",
    "assert_cam_mass": "audit.assertions",
    "assert_survives_without_context": "audit.assertions",
    "AuditCase": "audit.case",
    "Auditor": "audit.auditor",
    "Detector": "detectors.base",
    "Family": "detectors.base",
    "Handles": "detectors.handles",
    "load_detector": "detectors.loading",
    "CamEngine": "engine.engine",
    "ImageAnalysis": "engine.analysis",
    "LoadedImage": "engine.images",
    "load_image": "engine.images",
    "CamMap": "datatypes",
    "ContextResult": "datatypes",
    "Curve": "datatypes",
    "Detection": "datatypes",
    "Geometry": "datatypes",
    "box_mass": "metrics",
    "assert_box_mass": "audit.metric_assertions",
    "assert_pointing_game": "audit.metric_assertions",
    "assert_top_k_intersection": "audit.metric_assertions",
    "assert_rank_accuracy": "audit.metric_assertions",
    "assert_odi": "audit.metric_assertions",
    "assert_compactness": "audit.metric_assertions",
    "assert_forbidden_mass": "audit.metric_assertions",
    "assert_deletion_auc": "audit.metric_assertions",
    "assert_insertion_auc": "audit.metric_assertions",
    "assert_cam_changes_with_weights": "audit.sanity",
    "assert_cam_changes_with_target": "audit.sanity",
    "CaseEntry": "dataset.entries",
    "load_entries": "dataset.entries",
    "CamauditError": "errors",
    "ModelLoadError": "errors",
    "ImageInputError": "errors",
    "ExpectationError": "errors",
    "DetectorRuntimeError": "errors",
    "DatasetError": "errors",
    "explore": "notebook.api",
    "release_detectors": "notebook.api",
    "NotebookCase": "notebook.shown",
    "ShownMap": "notebook.shown",
    "GateSummary": "notebook.display",
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
