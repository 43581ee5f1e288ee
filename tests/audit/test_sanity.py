"""Sanity checks as assertions: model randomisation (Adebayo et al. 2018) and a change of target."""

from __future__ import annotations

import torch

from pytest_camaudit.audit.sanity import randomised_detector
from pytest_camaudit.zoo.dataset import write_coco_dataset


def test_randomised_copy_leaves_the_original_and_the_scope_alone(shapes_detector):
    before = {k: v.clone() for k, v in shapes_detector.model.state_dict().items()}
    heads = randomised_detector(shapes_detector, "heads", seed=3)
    after = shapes_detector.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    new = heads.model.state_dict()
    backbone = [k for k in new if k.startswith("backbone.")]
    rest = [k for k in new if not k.startswith("backbone.") and new[k].is_floating_point() and new[k].numel() > 1]
    assert backbone and all(torch.equal(new[k], before[k]) for k in backbone)
    assert rest and all(not torch.equal(new[k], before[k]) for k in rest if "weight" in k)
    assert heads.target_layer is heads.model.backbone and heads.identity != shapes_detector.identity
    everything = randomised_detector(shapes_detector, "all", seed=3).model.state_dict()
    assert any(not torch.equal(everything[k], before[k]) for k in backbone)
    again = randomised_detector(shapes_detector, "all", seed=3).model.state_dict()
    assert all(torch.equal(everything[k], again[k]) for k in everything)  # seeded


SANITY_TESTS = '''
import pytest
IMG = "data/images/scene-20000000.png"

@pytest.fixture
def scene(camaudit):
    case = camaudit.audit(IMG)
    return case, case.assert_detected("circle", [36.8, 4.1, 68.4, 35.7]), case.assert_detected("square", [94, 74, 142, 122])

@pytest.mark.parametrize("method", ["eigencam", "eigengradcam"])
def test_weights_all(scene, method):
    case, circle, _ = scene
    case.assert_cam_changes_with_weights(circle, scope="all", method=method)

@pytest.mark.parametrize("method", ["eigencam", "eigengradcam"])
def test_weights_heads(scene, method):
    case, circle, _ = scene
    case.assert_cam_changes_with_weights(circle, scope="heads", method=method)

@pytest.mark.parametrize("method", ["eigencam", "eigengradcam"])
def test_target(scene, method):
    case, circle, square = scene
    case.assert_cam_changes_with_target(circle, square, method=method)

def test_label_without_detection(scene):
    case, circle, _ = scene
    case.assert_cam_changes_with_target(circle, "star", method="eigengradcam")
'''


def test_sanity_assertions_catch_maps_that_ignore_the_model_or_the_target(pytester):
    write_coco_dataset(pytester.path / "data", [20_000_000], "shapes")
    pytester.makeini("[pytest]\ncamaudit_device = cpu\n")
    pytester.makepyfile(SANITY_TESTS)
    result = pytester.runpytest("-s", "-rA")
    # all weights randomised: both methods change; heads only: the class-agnostic map cannot;
    # a change of target: only the per-box method changes
    outcomes = {line.split("::")[-1].split(" ")[0]: line.split(" ")[0] for line in result.stdout.lines if line.startswith(("PASSED", "FAILED"))}
    assert outcomes == {
        "test_weights_all[eigencam]": "PASSED",
        "test_weights_all[eigengradcam]": "PASSED",
        "test_weights_heads[eigencam]": "FAILED",
        "test_weights_heads[eigengradcam]": "PASSED",
        "test_target[eigencam]": "FAILED",
        "test_target[eigengradcam]": "PASSED",
        "test_label_without_detection": "FAILED",
    }, result.stdout.str()
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["*AssertionError: expected the eigencam map to change when the model's weights (heads) are "
                                 "randomised (|rank correlation| <= 0.50), got *: the map explains the image, not the model"])
    assert ("AssertionError: expected the eigencam map to change when the explained target changes from circle 1.000 at "
            "[37, 4, 68, 36] to square 1.000 at [94, 74, 142, 122] (rank correlation <= 0.90), got 1.000: the method ignores "
            "its target (it is class-agnostic: one map per image)") in out
    assert "ExpectationError: the detector returned no star detection at IoU >= 0.5 with circle 1.000 at [37, 4, 68, 36] at any score" in out
