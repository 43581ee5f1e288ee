"""The CAM mass inside an object's outline (issue 20 item 2) against constructed maps, Quantus, and as a user calls it.

Maps and images are non-square (H != W), so a mask built with x and y swapped measures something else.
"""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_util

from pytest_camaudit import metrics as M
from pytest_camaudit.datatypes import MaskOutline, PolygonOutline
from pytest_camaudit.zoo.dataset import write_coco_dataset

H, W = 60, 80


def _thin_diagonal() -> PolygonOutline:
    """A bar 6 px wide from (10, 10) to (70, 50): its box is [10 - 2, 10 - 3, 70 + 2, 50 + 3], mostly background."""
    return PolygonOutline(((8.0, 13.0, 12.0, 7.0, 72.0, 47.0, 68.0, 53.0),))


def test_a_thin_rotated_object_holds_less_mass_than_its_box_where_the_map_lies_beside_it():
    outline = _thin_diagonal()
    box = outline.bounds()
    mask = outline.mask(H, W)
    assert 0.05 < mask.sum() / ((box[2] - box[0]) * (box[3] - box[1])) < 0.3  # a thin bar fills little of its box
    beside = np.zeros((H, W))
    beside[35:50, 12:30] = 1.0  # inside the box, below the bar: evidence beside the object
    on = mask.astype(float)
    cam = 0.3 * on / on.sum() + 0.7 * beside / beside.sum()
    assert M.box_mass(cam, box) == pytest.approx(1.0)
    assert M.region_mass(cam, mask) == pytest.approx(0.3, abs=0.02)  # only what lies on the bar itself
    assert M.region_mass(on, mask) == pytest.approx(1.0)  # a map on the bar: both measures agree


def _inside_by_pixel(rings: tuple[tuple[float, ...], ...], h: int, w: int) -> np.ndarray:
    """Reference: each pixel centre tested against every edge of every ring (even–odd rule), in plain Python."""
    out = np.zeros((h, w), dtype=bool)
    for ring in rings:
        pts = list(zip(ring[0::2], ring[1::2], strict=True))
        for r in range(h):
            for c in range(w):
                px, py, odd = c + 0.5, r + 0.5, False
                for (xa, ya), (xb, yb) in zip(pts, pts[1:] + pts[:1], strict=True):
                    if (ya > py) != (yb > py) and px < xa + (py - ya) * (xb - xa) / (yb - ya):
                        odd = not odd
                out[r, c] |= odd
    return out


def test_a_polygon_mask_holds_exactly_the_pixels_whose_centres_lie_inside():
    rng = np.random.default_rng(19)
    for i in range(24):
        n = int(rng.integers(3, 12))
        if i % 3 == 0:
            ring = rng.uniform(-6, 46, 2 * n)  # anywhere, partly outside the image
        elif i % 3 == 1:
            ring = rng.integers(-3, 43, 2 * n).astype(float)  # integer corners: horizontal edges, centres on edges
        else:
            ring = np.round(rng.uniform(0, 40, 2 * n) * 2) / 2 + 0.5  # corners on pixel centres
        rings = (tuple(float(v) for v in ring), (5.0, 5.0, 15.0, 5.0, 10.0, 14.0))  # two parts of one object
        assert np.array_equal(PolygonOutline(rings).mask(30, 41), _inside_by_pixel(rings, 30, 41)), rings


def test_a_box_shaped_polygon_gives_exactly_the_box_mass():
    rng = np.random.default_rng(20)
    cam = rng.random((H, W)) - 0.2  # negative values count as zero in both measures
    for box in [(0, 0, W, H), (5, 7, 31, 44), (60, 2, 80, 9)]:
        x1, y1, x2, y2 = box
        ring = PolygonOutline(((x1, y1, x2, y1, x2, y2, x1, y2),))
        assert ring.mask(H, W).sum() == (x2 - x1) * (y2 - y1)
        assert M.region_mass(cam, ring.mask(H, W)) == M.box_mass(cam, box)
        encoded = mask_util.encode(np.asfortranarray(ring.mask(H, W).astype(np.uint8)))  # the same region as a COCO RLE
        rle = MaskOutline(size=(H, W), counts=encoded["counts"])
        assert M.region_mass(cam, rle.mask(H, W)) == M.box_mass(cam, box)


def _quantus_definition(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Quantus 0.6.0 ``RelevanceMassAccuracy.evaluate_batch`` (Arras et al. 2022), restated: ``Σ a·s / Σ a`` per sample."""
    a, s = a.reshape(len(a), -1), s.astype(bool).reshape(len(s), -1)
    return (a * s).sum(-1) / a.sum(-1)


def _maps_and_masks() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2022)
    maps = rng.random((6, 1, H, W)) ** 3  # non-negative maps
    masks = np.zeros((6, 1, H, W), bool)
    for i in range(6):
        x, y = rng.integers(0, W - 20), rng.integers(0, H - 20)
        masks[i, 0] = PolygonOutline(((x, y + 10, x + 10, y, x + 20, y + 10, x + 10, y + 20),)).mask(H, W)  # a diamond
    return maps, masks


def test_on_binary_masks_and_non_negative_maps_it_is_relevance_mass_accuracy():
    maps, masks = _maps_and_masks()
    ours = np.array([M.region_mass(a[0], s[0]) for a, s in zip(maps, masks, strict=True)])
    np.testing.assert_allclose(ours, _quantus_definition(maps, masks), rtol=1e-12)


def test_it_equals_quantus_relevance_mass_accuracy():
    # Quantus requires opencv-python, which shares its cv2/ folder with grad-cam's opencv-python-headless;
    # .ci/run installs it without dependencies (see there), a plain `pip install -e .[test]` does not.
    quantus = pytest.importorskip("quantus", reason="quantus is installed by .ci/run with --no-deps (it pins opencv-python)")
    maps, masks = _maps_and_masks()
    metric = quantus.RelevanceMassAccuracy(normalise=False, abs=False, disable_warnings=True)
    theirs = np.asarray(metric.evaluate_batch(a_batch=maps, s_batch=masks))
    ours = np.array([M.region_mass(a[0], s[0]) for a, s in zip(maps, masks, strict=True)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


OUTLINE_TESTS = '''
import json, numpy as np, pytest
from pytest_camaudit import metrics as M
from pytest_camaudit.datatypes import PolygonOutline
IMG = "data/images/scene-20000000.png"
CIRCLE = [36.8, 4.1, 68.4, 35.7]

def test_box_shaped_outline_and_a_mask(camaudit):
    case = camaudit.audit(IMG)
    circle = case.assert_detected("circle", CIRCLE)
    box = [37, 4, 68, 36]
    ring = PolygonOutline(((37, 4, 68, 4, 68, 36, 37, 36),))
    assert case.assert_box_mass(box, 0.0, explain=circle, region=ring) == case.assert_box_mass(box, 0.0, explain=circle)
    mask = ring.mask(case.image.height, case.image.width)
    assert case.assert_cam_mass(circle, 0.0, region=mask) == M.region_mass(case.cam(circle).values, mask)
    assert [c.measured.get("region") for c in case.checks if c.kind in ("box_mass", "cam_mass")] == ["outline", None, "outline"]

def test_an_outline_that_does_not_fit_fails_clearly(camaudit):
    case = camaudit.audit(IMG)
    circle = case.assert_detected("circle", CIRCLE)
    with pytest.raises(Exception, match=r"`region` must be an \\[H, W\\] mask"):
        case.assert_cam_mass(circle, 0.0, region=np.zeros(3))

def test_thin_outline_fails_where_its_box_passes(camaudit):
    case = camaudit.audit(IMG)
    circle = case.assert_detected("circle", CIRCLE)
    sliver = PolygonOutline(((37, 4, 39, 4, 39, 36, 37, 36),))  # the box's left edge, 2 px wide
    in_box = case.assert_cam_mass(circle, 0.0)
    case.assert_cam_mass(circle, in_box, region=sliver)  # the sliver holds less than its box: fails
'''


def test_the_assertions_take_an_outline_as_a_user_calls_them(pytester):
    write_coco_dataset(pytester.path / "data", [20_000_000], "shapes")
    pytester.makeini("[pytest]\ncamaudit_method = eigencam\ncamaudit_device = cpu\n")
    pytester.makepyfile(test_outline=OUTLINE_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*expected eigencam mass >= 0.* inside the outline of circle *, got 0.0*"])
