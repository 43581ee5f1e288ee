"""A detector's own masks (torchvision's Mask R-CNN) as the region a CAM mass is measured in (issue 20 item 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.torchvision import small

from pytest_camaudit import metrics as M
from pytest_camaudit.audit.auditor import Auditor
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.errors import ExpectationError
from pytest_camaudit.zoo.world import make_scene


def _pixels() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)  # non-square


def test_mask_rcnn_masks_are_kept_per_detection_as_the_model_returned_them():
    detector = small("maskrcnn_resnet50_fpn")
    pixels = _pixels()
    with torch.no_grad():
        out = detector.model([torch.from_numpy(pixels).permute(2, 0, 1).float() / 255])[0]
    case = Auditor(CamEngine(detector, "eigencam")).audit(pixels, name="noise")
    assert len(case.detections) == len(out["masks"]) == 2
    for d in case.detections:
        expected = out["masks"][d.index, 0].numpy() >= 0.5
        mask = case.predicted_mask(d)
        assert mask.shape == (70, 90) and mask.dtype == bool
        assert np.array_equal(mask, expected)  # kept whole: the window around the box holds every pixel of it
    d = next(d for d in case.detections if case.predicted_mask(d).any())
    mask = case.predicted_mask(d)
    assert case.assert_cam_mass(d, 0.0, region=mask) == M.region_mass(case.cam(d).values, mask)
    assert case.checks[-1].measured["region"] == "outline"


def test_a_detector_without_masks_says_what_to_measure_in_instead(shapes_detector):
    case = Auditor(CamEngine(shapes_detector, "eigencam")).audit(make_scene(20_000_003).image, name="scene")
    detection = case.detections[0]
    with pytest.raises(ExpectationError, match=r"predicted no mask for .*only a detector whose output has `masks` .*Mask R-CNN"):
        case.predicted_mask(detection)


def test_ultralytics_segmentation_models_stay_refused():
    pytest.importorskip("ultralytics", reason="ultralytics is not installed (pip install 'pytest-camaudit[yolo]')")
    from pytest_camaudit.detectors.loading import load_detector
    from pytest_camaudit.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match=r"yolo11n-seg\.yaml builds a Segment head; the plugin explains plain Detect heads"):
        load_detector("yolo11n-seg.yaml", device="cpu")
