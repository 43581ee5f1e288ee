"""Where an audited object's evidence lies: the crop of its map and its context profile (audit.evidence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_camaudit.audit.auditor import Auditor
from pytest_camaudit.audit.evidence import THUMB_SIDE, case_evidence
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.surroundings import REGIONS, decode_grid

SCENE = Path(__file__).resolve().parents[2] / "example_suite" / "data" / "images" / "scene-20000039.png"
TRIANGLE = (116.86, 18.89, 140.54, 44.22)  # its tag (cue_boxes in the suite's COCO file) lies past the top-right corner


class CountingEngine(CamEngine):
    """Counts the images re-scored for context profiles."""

    rescored = 0

    def rescore_filled(self, analysis, detection, masks):
        self.rescored += len(masks)
        return super().rescore_filled(analysis, detection, masks)


@pytest.fixture
def twin(shortcut_detector):
    return CountingEngine(shortcut_detector, "eigengradcam")


def test_every_matched_detection_gets_a_crop_of_the_map_its_checks_computed(twin):
    auditor = Auditor(twin)
    case = auditor.audit(SCENE)
    tri = case.assert_detected("triangle", TRIANGLE)
    sq = case.assert_detected("square")
    case.assert_cam_mass(tri, at_least=0.0)
    records = {e.label: e for e in auditor.records("passed")[0].evidence}
    assert set(records) == {"triangle", "square"} and twin.rescored == 0  # no discovery: no extra forward
    assert records["triangle"].method == "eigengradcam" and decode_grid(records["triangle"].crop).max() == pytest.approx(1.0)
    assert records["square"].method is None and records["square"].crop == "" and records["square"].profile == {}
    assert records["triangle"].key == f"{case.image.key}:{tri.index}" and records["square"].key.endswith(f":{sq.index}")
    assert len(records["triangle"].crop) < 600


def test_the_twin_s_tagged_triangle_rests_on_the_corner_where_its_tag_is(twin):
    auditor = Auditor(twin)
    case = auditor.audit(SCENE)
    tri = case.assert_detected("triangle", TRIANGLE)
    (e,) = case_evidence(case, "eigengradcam", twin)
    assert set(e.profile) == set(REGIONS) and twin.rescored == len(REGIONS)
    places = {k: v for k, v in e.profile.items() if k != "outside"}
    assert max(places, key=lambda k: places[k] or 0.0) == "top-right" and e.profile["top-right"] > 0.5
    assert e.profile["outside"] > 0.5 and max(v for k, v in places.items() if k != "top-right") < 0.3
    assert e.thumb and len(e.thumb) < 4000 and e.thumb_rect[2] - e.thumb_rect[0] <= 160 and THUMB_SIDE == 48
    # a second test of the same image reuses the profile (the engine's cache keeps the analysis)
    again = Auditor(twin).audit(SCENE)
    again.assert_detected("triangle", TRIANGLE)
    assert case_evidence(again, "eigengradcam", twin)[0].profile == e.profile and twin.rescored == len(REGIONS)
    assert tri.score > 0.9


def test_the_clean_model_s_triangle_does_not_rest_on_the_tag_s_corner(shapes_detector):
    engine = CamEngine(shapes_detector, "eigencam")
    case = Auditor(engine).audit(SCENE)
    case.assert_detected("triangle", TRIANGLE)
    (e,) = case_evidence(case, "eigencam", engine)
    assert abs(e.profile["top-right"]) < 0.05 and e.profile["outside"] < 0.3
    # (this clean triangle loses 0.6 with the block left of it filled: one object of a few in a hundred does,
    # which is why discovery judges groups of objects, never one)


def test_regions_outside_the_image_are_not_rescored(shapes_detector):
    from PIL import Image

    engine = CountingEngine(shapes_detector, "eigencam")
    pixels = np.asarray(Image.open(SCENE).convert("RGB"))[19:, 100:]  # the triangle now touches the top edge
    case = Auditor(engine).audit(np.ascontiguousarray(pixels), name="cropped")
    tri = case.assert_detected("triangle", (16.86, 0.0, 40.54, 25.22))
    (e,) = case_evidence(case, "eigencam", engine)
    empty = sorted(k for k, v in e.profile.items() if v is None)
    assert empty == ["top", "top-left", "top-right"] and tri.box[1] < 1.0
    assert engine.rescored == len(REGIONS) - 3
