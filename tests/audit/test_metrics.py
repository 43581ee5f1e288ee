"""The metric pack against small hand-computed cases, then its assertions as a user runs them.

Maps are deliberately non-square (H != W) and objects off the diagonal, so a metric that swaps
x and y gets a different number.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from pytest_camaudit import metrics as M
from pytest_camaudit.audit import perturbation as P
from pytest_camaudit.errors import ExpectationError
from pytest_camaudit.zoo.dataset import write_coco_dataset


def two_spots() -> np.ndarray:
    """``[4, 6]`` (H=4, W=6): value 1 at (x=5, y=1) and at (x=0, y=3)."""
    cam = np.zeros((4, 6))
    cam[1, 5] = 1.0
    cam[3, 0] = 1.0
    return cam


# -- box / region mass ---------------------------------------------------------------------------
def test_box_mass_is_x_then_y_with_fractional_pixels():
    cam = two_spots()
    assert M.box_mass(cam, (4, 0, 6, 2)) == pytest.approx(0.5)  # holds (5, 1) only
    assert M.box_mass(cam, (0, 4, 2, 6)) == pytest.approx(0.0)  # the same box with x and y swapped holds nothing
    # pixel (5, 1) is covered fully in x ([5, 6)) and half in y ([1, 1.5)): a quarter of the mass
    assert M.box_mass(cam, (4.5, 1, 6, 1.5)) == pytest.approx(0.25)
    assert math.isnan(M.box_mass(np.zeros((4, 6)), (0, 0, 2, 2)))


def test_box_mass_reads_only_the_pixels_its_box_touches_and_equals_the_whole_map_sum():
    rng = np.random.default_rng(7)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(3, 90, 2))
        cam = rng.standard_normal((h, w))
        x1, y1 = rng.uniform(-20, w + 5), rng.uniform(-20, h + 5)
        box = (x1, y1, x1 + rng.uniform(0.01, w), y1 + rng.uniform(0.01, h))
        pos = np.maximum(cam, 0.0)
        whole = float((pos * M.box_weights((h, w), box)).sum() / pos.sum())  # every pixel weighted
        assert M.box_mass(cam, box) == pytest.approx(whole, rel=1e-12, abs=1e-15)


def test_region_mass_of_a_bool_mask_is_the_masked_share():
    rng = np.random.default_rng(8)
    cam, mask = rng.standard_normal((30, 40)), rng.random((30, 40)) < 0.3
    pos = np.maximum(cam, 0.0)
    assert M.region_mass(cam, mask) == float((pos * mask.astype(np.float64)).sum() / pos.sum())


def test_region_mass_with_boxes_masks_and_their_mistakes():
    cam = two_spots()
    mask = np.zeros((4, 6), bool)
    mask[3, 0] = True
    assert M.region_mass(cam, mask) == pytest.approx(0.5)
    assert M.region_mass(cam, [(4, 0, 6, 2), (0, 3, 1, 4)]) == pytest.approx(1.0)
    assert M.region_mass(np.ones((4, 4)), [(0, 0, 2, 2), (1, 1, 3, 3)]) == pytest.approx(7 / 16)  # overlap counted once
    soft = np.zeros((4, 6))
    soft[1, 5] = 0.5
    assert M.region_mass(cam, soft) == pytest.approx(0.25)
    with pytest.raises(ExpectationError, match=r"mask shape \(6, 4\) does not match the map's \(4, 6\)"):
        M.region_mass(cam, mask.T)
    bad = soft.copy()
    bad[0, 0] = np.nan  # NaN is not "outside"
    with pytest.raises(ExpectationError, match="finite values in"):
        M.region_mass(cam, bad)
    with pytest.raises(ExpectationError, match="degenerate"):
        M.region_mass(cam, (3, 1, 3, 2))


def test_nan_and_negative_values_in_a_map_count_as_zero():
    cam = two_spots()
    cam[0, 0] = np.nan
    cam[2, 2] = -5.0
    assert M.region_mass(cam, (4, 0, 6, 2)) == pytest.approx(0.5)
    with pytest.raises(ExpectationError, match=r"2-D map \[H, W\]"):
        M.region_mass(np.zeros((2, 2, 3)), (0, 0, 1, 1))


def test_positive_is_a_float64_copy_with_negatives_and_non_finite_values_zeroed():
    finite = np.array([[1.0, -2.0, 0.25], [3.0, -0.5, 0.0]])
    broken = np.array([[1.0, -2.0, np.nan], [np.inf, -np.inf, 0.5]])
    for cam, expected in ((finite, [[1.0, 0.0, 0.25], [3.0, 0.0, 0.0]]), (broken, [[1.0, 0.0, 0.0], [0.0, 0.0, 0.5]])):
        out = M.positive(cam)
        assert out.dtype == np.float64 and out.tolist() == expected
        assert not np.shares_memory(out, cam)  # a metric may scale it in place
    for cam, expected in ((finite.astype(np.float32), [[1.0, 0.0, 0.25], [3.0, 0.0, 0.0]]),  # a float32 map: float64 all the same
                          (broken.astype(np.float32), [[1.0, 0.0, 0.0], [0.0, 0.0, 0.5]]),
                          ([[1, -2, 0], [3, 0, 5]], [[1.0, 0.0, 0.0], [3.0, 0.0, 5.0]])):  # ints, as nested lists
        out = M.positive(cam)
        assert out.dtype == np.float64 and out.tolist() == expected


# -- pointing game -------------------------------------------------------------------------------
def test_pointing_game_distance_tolerance_and_axes():
    cam = np.zeros((5, 8))
    cam[1, 6] = 1.0  # peak at x=6, y=1, centre (6.5, 1.5)
    assert M.pointing_game(cam, (6, 1, 7, 2))
    assert not M.pointing_game(cam, (1, 6, 2, 7), tolerance=1)  # swapped axes: far away
    assert M.peak_distance(cam, (0, 0, 2, 2)) == (pytest.approx(4.5), (6, 1))
    assert not M.pointing_game(cam, (0, 0, 2, 2), tolerance=4.4)
    assert M.pointing_game(cam, (0, 0, 2, 2), tolerance=4.5)
    mask = np.zeros((5, 8), bool)
    mask[1, 3] = True  # three pixel centres to the left
    assert M.peak_distance(cam, mask)[0] == pytest.approx(3.0)
    assert M.pointing_game(cam, mask, tolerance=3) and not M.pointing_game(cam, mask, tolerance=2.9)


def test_pointing_game_tie_rule_every_maximum_must_be_near():
    cam = np.zeros((5, 8))
    cam[1, 6] = cam[3, 1] = 1.0
    d, (x, y) = M.peak_distance(cam, (6, 1, 7, 2))
    assert (x, y) == (1, 3) and d == pytest.approx(math.hypot(4.5, 1.5))
    assert not M.pointing_game(cam, (6, 1, 7, 2))
    flat = np.ones((5, 8))
    assert M.pointing_game(flat, (0, 0, 8, 5)) and not M.pointing_game(flat, (0, 0, 7, 5))
    assert not M.pointing_game(np.zeros((5, 8)), (0, 0, 8, 5))  # nothing to point with
    assert math.isnan(M.peak_distance(np.zeros((5, 8)), (0, 0, 8, 5))[0])


# -- ranking metrics -------------------------------------------------------------------------------
def test_top_k_intersection_counts_and_shares_ties():
    cam = np.array([[5.0, 4, 3, 2, 1], [0, 0, 0, 0, 0]])
    box = (0, 0, 2, 1)  # x = 0, 1 of row 0: values 5 and 4
    assert M.top_k_intersection(cam, box, 2) == pytest.approx(1.0)
    assert M.top_k_intersection(cam, box, 4) == pytest.approx(0.5)
    assert M.top_k_intersection(cam, box, 3.5) == pytest.approx(2 / 3.5)  # half a pixel of value 2, outside
    tied = np.array([[2.0, 1.0], [1.0, 1.0]])
    # top-2: the 2, then one place shared by three 1s (1/3 each); the box holds one of them
    assert M.top_k_intersection(tied, (1, 0, 2, 1), 2) == pytest.approx((1 / 3) / 2)
    assert M.top_k_intersection(tied.T, (0, 1, 1, 2), 2) == pytest.approx((1 / 3) / 2)  # transposed: same
    with pytest.raises(ExpectationError, match=r"`k` must be in \(0, 4\]"):
        M.top_k_intersection(tied, (0, 0, 1, 1), 5)


def test_relevance_rank_accuracy_uses_the_area_as_k():
    cam = np.zeros((4, 5))
    cam[0, 0], cam[0, 1], cam[1, 0], cam[3, 4] = 9, 8, 7, 6  # top four: three in the 2x2 box, one outside
    assert M.relevance_rank_accuracy(cam, (0, 0, 2, 2)) == pytest.approx(0.75)
    cam[1, 1] = 10
    assert M.relevance_rank_accuracy(cam, (0, 0, 2, 2)) == pytest.approx(1.0)
    with pytest.raises(ExpectationError, match="empty"):
        M.relevance_rank_accuracy(cam, (10, 10, 12, 12))


def test_odi_is_mass_on_other_objects_outside_the_target():
    cam = np.ones((4, 4))
    # others cover 7 pixels; one of them, (1, 1), is also the target's
    assert M.odi(cam, (0, 0, 2, 2), [(2, 2, 4, 4), (1, 1, 3, 3)]) == pytest.approx(6 / 16)
    assert M.odi(cam, (0, 0, 2, 2), []) == 0.0
    assert math.isnan(M.odi(np.zeros((4, 4)), (0, 0, 2, 2), [(2, 2, 4, 4)]))


def test_compactness_from_the_area_that_holds_the_mass():
    one = np.zeros((4, 4))
    one[2, 3] = 1.0
    assert M.compactness(one) == pytest.approx(1 - 0.9 / 16)
    assert M.compactness(np.ones((4, 4))) == pytest.approx(0.1)
    two = np.array([[3.0, 1.0], [0.0, 0.0]])  # half the mass (2 of 4) needs 2/3 of the 3-pixel
    assert M.mass_area(two, 0.5) == pytest.approx((2 / 3) / 4)
    assert M.compactness(two, 1.0) == pytest.approx(0.5)


def test_rank_correlation_and_top_region_iou():
    a = np.arange(6.0).reshape(2, 3)
    assert M.rank_correlation(a, a * 3 + 1) == pytest.approx(1.0)
    assert M.rank_correlation(a, 5 - a) == pytest.approx(-1.0)
    # with ties: average ranks [0.5, 0.5, 2] and [0, 1.5, 1.5] correlate at 0.75 / 1.5
    assert M.rank_correlation(np.array([[0.0, 0, 1]]), np.array([[0.0, 1, 1]])) == pytest.approx(0.5)
    assert M.rank_correlation(np.ones((2, 2)), a[:, :2]) == 0.0 and M.rank_correlation(np.ones((2, 2)), np.ones((2, 2))) == 1.0
    with pytest.raises(ExpectationError, match="different shapes"):
        M.rank_correlation(a, a.T)
    r = np.array([[3.0, 2, 1, 0]])
    assert M.top_region_iou(r, r, 0.5) == 1.0
    assert M.top_region_iou(r, r[:, ::-1], 0.5) == 0.0
    assert M.top_region_iou(r, np.array([[3.0, 1, 2, 0]]), 0.5) == pytest.approx(1 / 3)


# -- deletion / insertion ----------------------------------------------------------------------------
def test_perturbation_removes_and_reveals_by_decreasing_map_value():
    image = np.full((2, 3, 3), 200, np.uint8)
    cam = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]])  # (x=2, y=1) goes first
    steps = P.perturbed_images(image, cam, "deletion", steps=6, fill=(0, 0, 0))
    assert len(steps) == 7 and (steps[0] == image).all() and (steps[-1] == 0).all()
    assert (steps[1][1, 2] == 0).all() and (steps[1].sum(axis=2) > 0).sum() == 5
    revealed = P.perturbed_images(image, cam, "insertion", steps=6, fill=(0, 0, 0))
    assert (revealed[1][1, 2] == 200).all() and (revealed[1].sum(axis=2) > 0).sum() == 1
    assert (revealed[-1] == image).all()
    with pytest.raises(ExpectationError, match=r"the map is 2x3 but the image is 3x2 \(W x H\)"):
        P.perturbed_images(image, cam.T, "deletion")
    towards = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)  # remove toward an image (a blurred copy…)
    assert (P.perturbed_images(image, cam, "deletion", steps=6, fill=towards)[1][1, 2] == towards[1, 2]).all()
    with pytest.raises(ExpectationError, match=r"`fill` must be an RGB colour \[3\] or an image \(2, 3, 3\)"):
        P.perturbed_images(image, cam, "deletion", fill=towards[:1])


def test_ties_are_broken_by_a_seeded_permutation_not_by_rows():
    order = P.perturbation_order(np.zeros((8, 8)))
    assert sorted(order.tolist()) == list(range(64))
    assert order[:8].tolist() != list(range(8))
    assert (P.perturbation_order(np.zeros((8, 8))) == order).all()


def test_curve_auc_and_one_call_of_the_scorer():
    image = np.full((2, 2, 3), 100, np.uint8)
    cam = np.array([[1.0, 0.0], [0.0, 0.0]])
    calls = []

    def score(images):  # "detected" while pixel (0, 0) is intact
        calls.append(len(images))
        return [float(im[0, 0, 0] == 100) for im in images]

    deletion = P.perturbation_curve(image, cam, score, "deletion", steps=4, fill=(0, 0, 0))
    assert calls == [5] and deletion.scores == (1.0, 0.0, 0.0, 0.0, 0.0)
    assert deletion.auc == pytest.approx(0.5 / 4)
    insertion = P.perturbation_curve(image, cam, score, "insertion", steps=4, fill=(0, 0, 0))
    assert insertion.scores == (0.0, 1.0, 1.0, 1.0, 1.0) and insertion.auc == pytest.approx(3.5 / 4)
    assert P.trapezoid_auc([1.0, 0.5, 0.0]) == pytest.approx(0.5)


# -- the assertions, through pytest ------------------------------------------------------------------
ASSERTION_TESTS = '''
import numpy as np, pytest
from pytest_camaudit import metrics as M
IMG = "data/images/scene-20000000.png"
CIRCLE, SQUARE = [36.8, 4.1, 68.4, 35.7], [94, 74, 142, 122]

@pytest.fixture
def scene(camaudit):
    case = camaudit.audit(IMG)
    return case, case.assert_detected("circle", CIRCLE), case.assert_detected("square", SQUARE)

def test_measures_match_the_metric_functions(scene):
    case, circle, square = scene
    cam = case.cam(circle).values
    assert case.assert_pointing_game(circle, tolerance=1e6) == M.peak_distance(cam, circle.box)[0]
    assert case.assert_top_k_intersection(circle, 50, 0.0) == M.top_k_intersection(cam, circle.box, 50)
    assert case.assert_rank_accuracy(circle, 0.0) == M.relevance_rank_accuracy(cam, circle.box)
    assert case.assert_odi(circle, 1.0) == M.odi(cam, circle.box, [SQUARE])
    assert case.assert_compactness(0.0, explain=circle) == M.compactness(cam)
    assert case.assert_forbidden_mass(square.box, 1.0, explain=circle) == M.box_mass(cam, square.box)
    assert case.assert_box_mass([30, 0, 80, 40], 0.0, explain=circle) == M.box_mass(cam, (30, 0, 80, 40))
    deletion = case.assert_deletion_auc(circle, 1.0, steps=4)
    insertion = case.assert_insertion_auc(circle, 0.0, steps=4, fill="blur")
    assert len(deletion.scores) == 5 and abs(deletion.scores[0] - circle.score) < 1e-3
    assert abs(insertion.scores[-1] - circle.score) < 1e-3 and insertion.scores[0] < 0.5
    kinds = [c.kind for c in case.checks if c.passed]
    assert {"pointing_game", "top_k_intersection", "rank_accuracy", "odi", "compactness", "forbidden_mass",
            "box_mass", "deletion_auc", "insertion_auc"} <= set(kinds)

def test_pointing_far(scene):
    case, circle, square = scene
    case.assert_pointing_game(SQUARE, explain=circle)

def test_top_k_far(scene):
    case, circle, square = scene
    case.assert_top_k_intersection(SQUARE, 100, 0.5, explain=circle)

def test_rank_far(scene):
    case, circle, square = scene
    case.assert_rank_accuracy([0, 120, 30, 160], 0.5, explain=circle)

def test_odi_strict(scene):
    case, circle, square = scene
    case.assert_odi(CIRCLE, at_most=0.5, explain=square)  # the square's map, asked about the circle

def test_compact(scene):
    case, circle, square = scene
    case.assert_compactness(1.0, explain=circle)

def test_forbidden(scene):
    case, circle, square = scene
    case.assert_forbidden_mass([circle.box, [0, 150, 10, 160]], at_most=0.05, explain=circle, what="the tags")

def test_forbidden_mask_of_wrong_size(scene):
    case, circle, square = scene
    case.assert_forbidden_mass(np.zeros((100, 160), bool), at_most=0.05, explain=circle)

def test_deletion(scene):
    case, circle, square = scene
    case.assert_deletion_auc(circle, at_most=0.0, steps=4)

def test_insertion(scene):
    case, circle, square = scene
    case.assert_insertion_auc(circle, at_least=1.0, steps=4)
'''


def test_metric_assertions_measure_record_and_fail_with_expected_got(pytester):
    write_coco_dataset(pytester.path / "data", [20_000_000], "shapes")
    pytester.makeini("[pytest]\ncamaudit_method = eigengradcam\ncamaudit_device = cpu\n")
    pytester.makepyfile(ASSERTION_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=9)
    out = result.stdout.str()
    for template in (
        "AssertionError: expected the eigengradcam peak within 0 px of box [94, 74, 142, 122], got its peak at (…, …), … px away",
        "AssertionError: expected >= 0.50 of the top 100 eigengradcam pixels inside box [94, 74, 142, 122], got 0.… "
        "(a uniform map would give 0.090)",
        "AssertionError: expected eigengradcam rank accuracy >= 0.50 for box [0, 120, 30, 160] (top 1200 pixels), got 0.…",
        "AssertionError: expected at most 0.50 of the eigengradcam mass on objects other than box [37, 4, 68, 36], got 0.… on 1 other object(s)",
        "AssertionError: expected eigengradcam compactness >= 1.00 (at most 0.0% of the image holding 90% of the mass), got 0.…: "
        "…% of the image holds 90% of the mass",
        "AssertionError: expected at most 0.05 of the eigengradcam mass on the tags ([37, 4, 68, 36], [0, 150, 10, 160]), got 0.… "
        "(the region is …% of the image)",
        "ExpectationError: mask shape (100, 160) does not match the map's (160, 160)",
        "AssertionError: expected deletion AUC <= 0.00 for circle 1.000 at [37, 4, 68, 36] (pixels removed by decreasing "
        "eigengradcam), got 0.…; score after removing 0%: 1.00, 25%: ",
        "AssertionError: expected insertion AUC >= 1.00 for circle 1.000 at [37, 4, 68, 36] (pixels revealed by decreasing "
        "eigengradcam), got 0.…; score after revealing 0%: ",
    ):
        assert re.search("[^\\n]*".join(re.escape(p) for p in template.split("…")), out), template
    assert "metric_assertions.py" not in result.stdout.str().split("short test summary")[0]
